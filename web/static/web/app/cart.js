/* The cart (kept in localStorage per user) and the checkout form (place-order). */

import { read } from "../live.js";
import { APP } from "./config.js";
import { $, el } from "./dom.js";
import { money, short } from "./format.js";
import { runCommand, setStatus } from "./commands.js";
import { known, loadProducts } from "./catalogue.js";
import { loadOrders, orders } from "./orders.js";

export const cart = loadCart();

function loadCart() {
  try {
    return JSON.parse(localStorage.getItem(`cart-${APP.userId}`) || "{}");
  } catch (error) {
    return {};
  }
}

export function saveCart() {
  localStorage.setItem(`cart-${APP.userId}`, JSON.stringify(cart));
}

/* Products in the cart but on no page seen yet (after a reload, another page). */
export async function loadCartProducts(position) {
  const missing = Object.keys(cart).filter((id) => !known.has(id));
  await Promise.all(missing.map(async (id) => {
    try {
      known.set(id, await read(`/api/products/${encodeURIComponent(id)}/`, position));
    } catch (error) {
      /* shown as an unknown product */
    }
  }));
}

export function renderCart() {
  const lines = Object.entries(cart).filter(([, quantity]) => quantity > 0);
  const box = $("#cart");
  if (!lines.length) {
    box.replaceChildren(el("p", { class: "muted", id: "cart-empty", text: "Your cart is empty." }));
    return;
  }
  let total = 0;
  const list = el("ul", { class: "cart-lines" });
  for (const [productId, quantity] of lines) {
    const product = known.get(productId);
    const name = product ? product.name : "Unknown product";
    if (product) total += product.price_cents * quantity;
    const inputId = `cart-${productId}`;
    list.append(el("li", {},
      el("label", { for: inputId }, name),
      el("input", {
        id: inputId, type: "number", min: "0", value: String(quantity), inputmode: "numeric",
        onchange: (event) => {
          cart[productId] = Math.max(0, parseInt(event.target.value, 10) || 0);
          if (!cart[productId]) delete cart[productId];
          saveCart();
          renderCart();
        },
      }),
      el("button", {
        type: "button", class: "link", "aria-label": `Remove ${name} from the cart`,
        onclick: () => {
          delete cart[productId];
          saveCart();
          renderCart();
          $("#cart-title").focus();
        },
      }, "Remove"),
      product && product.available < quantity ? el("span", { class: "warn", text: `only ${product.available} left` }) : null));
  }
  box.replaceChildren(list, el("p", { class: "total" }, "Total ", el("strong", { text: money(total) })));
}

export function setupCheckout() {
  const form = $("#checkout");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = $("#checkout-status");
    const lines = Object.entries(cart)
      .filter(([, quantity]) => quantity > 0)
      .map(([product_id, quantity]) => ({ product_id, quantity }));
    if (!lines.length) {
      setStatus(status, "Your cart is empty: add a product first.", "error");
      return;
    }
    if (!form.reportValidity()) return;
    const address = Object.fromEntries(new FormData(form).entries());
    address.country = String(address.country || "").toUpperCase();
    await runCommand({
      button: $("#place-order"),
      status,
      name: "place-order",
      body: { lines, shipping_address: address },
      busyText: "Placing your order…",
      done: async (command) => {
        for (const key of Object.keys(cart)) delete cart[key];
        saveCart();
        await Promise.all([loadProducts(command.position), loadOrders(command.position)]);
        const order = orders.find((o) => o.id === command.aggregate_id);
        return `Order placed: ${short(command.aggregate_id)}${order ? ", total " + money(order.total_cents) : ""}. Pay it under My orders.`;
      },
    });
  });
}
