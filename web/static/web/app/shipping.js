/* Staff shipping: paid orders, oldest first, each shipped with an optional tracking number. */

import { read } from "../live.js";
import { $, el, replaceKeeping, signatures } from "./dom.js";
import { short } from "./format.js";
import { describeError } from "./errors.js";
import { restore, runCommand } from "./commands.js";
import { orderCard } from "./orders.js";

let shipping = [];

export async function loadShipping(position) {
  const box = $("#ship-list");
  if (!box) return;
  try {
    shipping = (await read("/api/orders/?status=paid&ordering=created_at&page_size=50", position)).results;
    replaceKeeping(box, shipping, () =>
      shipping.length ? shipping.map((order) => orderCard(order, shipActions)) : [el("p", { class: "muted", text: "Nothing to ship." })]);
  } catch (error) {
    signatures.delete(box);
    box.replaceChildren(el("p", { class: "alert error", text: describeError(error) }));
  }
}

function shipActions(order, status) {
  const inputId = `tracking-${order.id}`;
  const button = restore(el("button", { type: "button", class: "primary", id: `ship-${order.id}` }, "Ship"));
  button.addEventListener("click", () => runCommand({
    button, status, name: "ship-order",
    body: { order_id: order.id, tracking_number: $(`#${CSS.escape(inputId)}`).value.trim() || undefined },
    busyText: "Shipping…",
    done: async (command) => {
      await loadShipping(command.position);
      $("#shipping-title").focus();
      return `Order ${short(order.id)} shipped.`;
    },
  }));
  return el("div", { class: "actions" },
    el("label", { for: inputId }, "Tracking number"),
    el("input", { id: inputId, maxlength: "100" }),
    button);
}
