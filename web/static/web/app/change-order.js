/* Changing an order (update-order). Lines change until the order is paid, the
 * address until it ships. The form sends only what differs from the order as
 * the read model shows it. */

import { el } from "./dom.js";
import { short } from "./format.js";
import { restore, runCommand, setStatus } from "./commands.js";
import { loadOrders, refocusOrder } from "./orders.js";
import { loadProducts } from "./catalogue.js";

export const EDITABLE = ["placed", "payment_pending", "paid"];
const ADDRESS_FIELDS = [
  // Labels unlike the checkout's ("Full name", "Address"…): both forms are on the page.
  ["name", "Recipient", "name"], ["line1", "Street", "address-line1"], ["city", "Town", "address-level2"],
  ["postal_code", "Postcode", "postal-code"], ["country", "Country code", "country"],
];
const openEdits = new Set();

export function editForm(order, status) {
  const id = (name) => `edit-${name}-${order.id}`;
  const linesEditable = order.status === "placed";
  const address = order.shipping_address || {};
  const button = restore(el("button", { type: "submit", class: "primary", id: id("save") }, "Save changes"));
  const lineInputs = linesEditable ? (order.lines || []).map((line) =>
    el("div", { class: "row" },
      el("label", { for: id(`qty-${line.product_id}`) }, `${line.name} (0 removes it)`),
      el("input", { id: id(`qty-${line.product_id}`), name: `qty-${line.product_id}`, type: "number", min: "0", value: String(line.quantity), inputmode: "numeric", required: true }))) : [];
  const form = el("form", { class: "edit", novalidate: true, "aria-label": `Change order ${short(order.id)}` },
    linesEditable ? el("fieldset", {}, el("legend", { text: "Quantities" }), lineInputs)
      : el("p", { class: "muted", text: "Its lines can no longer change: only where it is shipped." }),
    el("fieldset", {}, el("legend", { text: "Ship to" }),
      ADDRESS_FIELDS.map(([field, label, autocomplete]) => el("div", { class: "row" },
        el("label", { for: id(field), text: label }),
        el("input", { id: id(field), name: field, autocomplete, required: true, value: address[field] || "", ...(field === "country" ? { pattern: "[A-Za-z]{2}", maxlength: "2" } : {}) })))),
    button);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!form.reportValidity()) return;
    const data = new FormData(form);
    const body = { order_id: order.id };
    if (linesEditable) {
      const lines = (order.lines || [])
        .map((line) => ({ product_id: line.product_id, quantity: parseInt(data.get(`qty-${line.product_id}`), 10) || 0 }))
        .filter((line) => line.quantity > 0);
      if (!lines.length) {
        setStatus(status, "An order needs at least one line: cancel it instead.", "error");
        return;
      }
      const same = lines.length === order.lines.length
        && lines.every((line, index) => line.quantity === order.lines[index].quantity);
      if (!same) body.lines = lines;
    }
    const wanted = Object.fromEntries(ADDRESS_FIELDS.map(([field]) => [field, String(data.get(field) || "").trim()]));
    wanted.country = wanted.country.toUpperCase();
    if (ADDRESS_FIELDS.some(([field]) => wanted[field] !== (address[field] || ""))) body.shipping_address = wanted;
    if (!body.lines && !body.shipping_address) {
      setStatus(status, "Nothing to change.", "");
      return;
    }
    runCommand({
      button, status, name: "update-order", body,
      busyText: "Saving…",
      done: async (command) => {
        openEdits.delete(order.id);
        await Promise.all([loadOrders(command.position), body.lines ? loadProducts(command.position) : null]);
        refocusOrder(order.id);
        return "Order changed.";
      },
    });
  });
  const details = el("details", { class: "edit-order", id: id("details"), open: openEdits.has(order.id) },
    el("summary", { text: "Change order" }), form);
  details.addEventListener("toggle", () => (details.open ? openEdits.add(order.id) : openEdits.delete(order.id)));
  return details;
}
