/* My orders: the order cards, paying and cancelling (the change form is change-order.js). */

import { read } from "../live.js";
import { APP } from "./config.js";
import { $, el, replaceKeeping, signatures } from "./dom.js";
import { money, short, when } from "./format.js";
import { describeError } from "./errors.js";
import { restore, runCommand } from "./commands.js";
import { pastToggle, timeline } from "./order-timeline.js";
import { EDITABLE, editForm } from "./change-order.js";
import { loadProducts } from "./catalogue.js";

export let orders = [];

export async function loadOrders(position) {
  const mine = APP.isStaff ? `&customer_id=${APP.userId}` : "";
  try {
    const data = await read(`/api/orders/?page_size=50${mine}`, position);
    orders = data.results;
    renderOrders();
  } catch (error) {
    signatures.delete($("#order-list"));
    $("#order-list").replaceChildren(el("p", { class: "alert error", text: describeError(error) }));
  }
}

export function orderCard(order, actions) {
  const status = restore(el("p", { class: "status", role: "status", "aria-live": "polite", id: `${actions.name}-status-${order.id}` }));
  return el("article", { class: "card order", "data-order-id": order.id, "aria-labelledby": `order-title-${order.id}` },
    el("h3", { id: `order-title-${order.id}` }, `Order ${short(order.id)} `,
      el("span", { class: `badge ${order.status}`, text: order.status })),
    el("p", { class: "muted", text: when(order.created_at) }),
    el("ul", { class: "lines" }, (order.lines || []).map((line) =>
      el("li", {}, `${line.quantity} × ${line.name} `, el("span", { class: "muted", text: money(line.total_cents) })))),
    el("p", { class: "total" }, "Total ", el("strong", { text: money(order.total_cents) })),
    order.refunded_cents ? el("p", { class: "refund" }, "Refunded ", el("strong", { text: money(order.refunded_cents) })) : null,
    timeline(order),
    pastToggle(order),
    actions(order, status),
    status);
}

function customerActions(order, status) {
  const box = el("div", { class: "actions" });
  if (order.status === "placed") box.append(payForm(order, status));
  if (EDITABLE.includes(order.status)) box.append(editForm(order, status));
  if (order.status === "placed" || order.status === "paid") {
    const button = el("button", {
      type: "button", class: "danger", id: `cancel-${order.id}`, "aria-label": `Cancel order ${short(order.id)}`,
      onclick: () => runCommand({
        button, status, name: "cancel-order",
        body: { order_id: order.id, reason: "cancelled by the customer" },
        busyText: "Cancelling…",
        done: async (command) => {
          await Promise.all([loadOrders(command.position), loadProducts(command.position)]);
          refocusOrder(order.id);
          return "Order cancelled.";
        },
      }),
    }, "Cancel order");
    box.append(restore(button));
  }
  return box;
}

function payForm(order, status) {
  const id = (name) => `${name}-${order.id}`;
  const button = restore(el("button", { type: "submit", class: "primary", id: `pay-${order.id}` }, `Pay ${money(order.total_cents)}`));
  const form = el("form", { class: "pay", novalidate: true, "aria-label": `Pay order ${short(order.id)}` },
    el("div", { class: "row" },
      el("div", {}, el("label", { for: id("card"), text: "Card number" }),
        el("input", { id: id("card"), name: "number", inputmode: "numeric", autocomplete: "cc-number", required: true, pattern: "[0-9 ]{12,23}", placeholder: "4242 4242 4242 4242" }))),
    el("div", { class: "row" },
      el("div", {}, el("label", { for: id("month"), text: "Month" }),
        el("input", { id: id("month"), name: "exp_month", type: "number", min: "1", max: "12", autocomplete: "cc-exp-month", required: true, value: "12" })),
      el("div", {}, el("label", { for: id("year"), text: "Year" }),
        el("input", { id: id("year"), name: "exp_year", type: "number", min: "2024", max: "2100", autocomplete: "cc-exp-year", required: true, value: String(new Date().getFullYear() + 2) })),
      el("div", {}, el("label", { for: id("cvc"), text: "CVC" }),
        el("input", { id: id("cvc"), name: "cvc", inputmode: "numeric", autocomplete: "cc-csc", required: true, pattern: "[0-9]{3,4}", maxlength: "4" }))),
    button);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!form.reportValidity()) return;
    const data = new FormData(form);
    runCommand({
      button, status, name: "pay-order",
      body: {
        order_id: order.id,
        card: {
          number: String(data.get("number")).replace(/\s+/g, ""),
          exp_month: parseInt(data.get("exp_month"), 10),
          exp_year: parseInt(data.get("exp_year"), 10),
          cvc: String(data.get("cvc")),
        },
      },
      busyText: "Paying…",
      done: async (command) => {
        await loadOrders(command.position);
        refocusOrder(order.id);
        return "Payment accepted.";
      },
    });
  });
  return form;
}

export function refocusOrder(orderId) {
  const heading = document.getElementById(`order-title-${orderId}`);
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  }
}

function renderOrders() {
  replaceKeeping($("#order-list"), orders, () =>
    orders.length ? orders.map((order) => orderCard(order, customerActions)) : [el("p", { class: "muted", text: "No orders yet." })]);
}
