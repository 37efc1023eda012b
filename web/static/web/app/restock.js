/* Staff catalogue: register a product, restock the products listed. */

import { $, el, replaceKeeping } from "./dom.js";
import { restore, runCommand, setStatus } from "./commands.js";
import { loadProducts, restockList } from "./catalogue.js";

export function setupRegister() {
  const form = $("#register");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!form.reportValidity()) return;
    const data = new FormData(form);
    runCommand({
      button: $("button[type=submit]", form),
      status: $("#register-status"),
      name: "register-product",
      body: {
        sku: String(data.get("sku")).trim(),
        name: String(data.get("name")).trim(),
        price_cents: Math.round(parseFloat(data.get("price")) * 100),
        initial_stock: parseInt(data.get("initial_stock"), 10),
      },
      busyText: "Registering…",
      done: async (command) => {
        await loadProducts(command.position);
        form.reset();
        return `Product ${data.get("sku")} registered.`;
      },
    });
  });
}

export function renderRestock() {
  const box = $("#restock-list");
  if (box) replaceKeeping(box, restockList.items, buildRestock);
}

function buildRestock() {
  const list = el("ul", { class: "restock" });
  if (!restockList.items.length) {
    return [el("p", { class: "muted", text: restockList.search ? `No product matches “${restockList.search}”.` : "No products yet." })];
  }
  for (const product of restockList.items) {
    const inputId = `restock-${product.id}`;
    const status = restore(el("span", { class: "status", role: "status", "aria-live": "polite", id: `restock-status-${product.id}` }));
    const button = restore(el("button", { type: "button", id: `restock-button-${product.id}`, "aria-label": `Restock ${product.name}` }, "Restock"));
    button.addEventListener("click", () => {
      const quantity = parseInt($(`#${CSS.escape(inputId)}`).value, 10);
      if (!(quantity > 0)) {
        setStatus(status, "Enter a quantity of at least 1.", "error");
        return;
      }
      runCommand({
        button, status, name: "restock-product",
        body: { product_id: product.id, quantity },
        busyText: "Restocking…",
        done: async (command) => {
          await loadProducts(command.position);
          return `${product.name} restocked.`;
        },
      });
    });
    list.append(el("li", {},
      el("span", { class: "name" }, `${product.name} `, el("span", { class: "muted", text: `${product.sku} · ${product.available} available` })),
      el("label", { for: inputId, class: "sr-only" }, `Quantity to add to ${product.name}`),
      el("input", { id: inputId, type: "number", min: "1", value: "10", inputmode: "numeric" }),
      button, status));
  }
  return [list];
}
