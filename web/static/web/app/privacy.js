/* Staff privacy: forget a customer (forget-customer destroys their key). */

import { $ } from "./dom.js";
import { runCommand } from "./commands.js";

export function setupForget() {
  const form = $("#forget");
  if (!form) return;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!form.reportValidity()) return;
    const customerId = parseInt(new FormData(form).get("customer_id"), 10);
    runCommand({
      button: $("button[type=submit]", form),
      status: $("#forget-status"),
      name: "forget-customer",
      body: { customer_id: customerId },
      busyText: "Forgetting…",
      done: async () => {
        form.reset();
        return `Customer ${customerId} is forgotten: their personal data reads [erased].`;
      },
    });
  });
}
