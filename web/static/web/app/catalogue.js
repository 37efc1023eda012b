/* The catalogue as browsed: searchable keyset pages (the shop's and the staff
 * restock list), every product seen, and stock patched live from pushes. */

import { read } from "../live.js";
import { $, el, replaceKeeping, signatures } from "./dom.js";
import { money } from "./format.js";
import { describeError } from "./errors.js";
import { announce } from "./commands.js";
import { cart, loadCartProducts, renderCart, saveCart } from "./cart.js";
import { renderRestock } from "./restock.js";

let products = [];
// Every product seen (a page, a push, a cart line): the cart's names and prices.
export const known = new Map();

const PAGE_SIZE = 24;

/* One browsable list of the catalogue: a search (name or SKU) and keyset pages. */
function catalogueList(prefix) {
  return { prefix, search: "", cursor: null, back: [], next: null, page: 1, items: [], asked: 0 };
}
export const shopList = catalogueList("products");
export const restockList = catalogueList("restock");

function cursorOf(link) {
  return link ? new URL(link, location.href).searchParams.get("cursor") : null;
}

function listUrl(list) {
  let url = `/api/products/?page_size=${PAGE_SIZE}&ordering=name`;
  if (list.search) url += `&search=${encodeURIComponent(list.search)}`;
  if (list.cursor) url += `&cursor=${encodeURIComponent(list.cursor)}`;
  return url;
}

async function loadList(list, position) {
  // Only the last request counts: an earlier one (another page, another
  // search) may answer after it.
  const asked = ++list.asked;
  const data = await read(listUrl(list), position);
  if (asked !== list.asked) return;
  list.items = data.results;
  list.next = cursorOf(data.next);
  for (const product of data.results) known.set(product.id, product);
  const info = $(`#${list.prefix}-page`);
  if (info) {
    info.textContent = `Page ${list.page}` + (list.search ? ` of the results for “${list.search}”` : "");
    $(`#${list.prefix}-prev`).disabled = !list.back.length;
    $(`#${list.prefix}-next`).disabled = !list.next;
  }
}

export async function loadProducts(position) {
  try {
    await Promise.all([
      loadList(shopList, position),
      $("#restock-list") ? loadList(restockList, position) : null,
      loadCartProducts(position),
    ]);
    products = shopList.items;
    renderProducts();
    renderCart();
    renderRestock();
  } catch (error) {
    signatures.delete($("#products"));
    $("#products").replaceChildren(el("p", { class: "alert error", text: describeError(error) }));
  }
}

export function setupCatalogueList(list, reload) {
  const input = $(`#${list.prefix}-search`);
  if (!input) return;
  let timer = null;
  const search = () => {
    list.search = input.value.trim();
    list.cursor = null;
    list.back = [];
    list.page = 1;
    reload();
  };
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 250);
  });
  input.form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    search();
  });
  $(`#${list.prefix}-next`).addEventListener("click", () => {
    if (!list.next) return;
    list.back.push(list.cursor);
    list.cursor = list.next;
    list.page += 1;
    reload();
  });
  $(`#${list.prefix}-prev`).addEventListener("click", () => {
    if (!list.back.length) return;
    list.cursor = list.back.pop();
    list.page -= 1;
    reload();
  });
}

/* Stock pushed once the catalogue has applied it: patch what is on screen. */
let reloadTimer = null;
export function applyStock(message) {
  const changes = new Map((message.products || []).map((p) => [p.id, p.available]));
  // A product never seen may be new, and belong on the pages shown: read them
  // again (once for a burst, as an import announces products by hundreds).
  if (Array.from(changes.keys()).some((id) => !known.has(id)) && !reloadTimer) {
    reloadTimer = setTimeout(() => {
      reloadTimer = null;
      loadProducts();
    }, 500);
  }
  let touched = false;
  for (const list of [shopList, restockList]) {
    list.items = list.items.map((product) => {
      if (!changes.has(product.id) || changes.get(product.id) === product.available) return product;
      touched = true;
      return { ...product, available: changes.get(product.id) };
    });
  }
  for (const [id, available] of changes) {
    const product = known.get(id);
    if (product) known.set(id, { ...product, available });
  }
  if (!touched) return;
  products = shopList.items;
  renderProducts();
  renderCart();
  renderRestock();
}

function renderProducts() {
  replaceKeeping($("#products"), products, buildProducts);
}

function buildProducts() {
  const list = el("ul", { class: "products" });
  for (const product of products) {
    const qtyId = `qty-${product.id}`;
    const soldOut = product.available <= 0;
    list.append(
      el("li", { class: "card product", "data-product-id": product.id, "data-sku": product.sku },
        el("h3", { text: product.name }),
        el("p", { class: "muted", text: product.sku }),
        el("p", { class: "price", text: money(product.price_cents) }),
        el("p", { class: soldOut ? "stock out" : "stock" },
          soldOut ? "Sold out" : [el("span", { class: "available", text: product.available }), " in stock"]),
        el("div", { class: "add" },
          el("label", { for: qtyId, class: "sr-only" }, `Quantity of ${product.name}`),
          el("input", { id: qtyId, type: "number", min: "1", max: String(Math.max(product.available, 1)), value: "1", inputmode: "numeric" }),
          el("button", {
            type: "button",
            disabled: soldOut,
            "aria-label": `Add ${product.name} to cart`,
            onclick: () => {
              const quantity = Math.max(1, parseInt($(`#${CSS.escape(qtyId)}`).value, 10) || 1);
              cart[product.id] = (cart[product.id] || 0) + quantity;
              saveCart();
              renderCart();
              announce(`${quantity} × ${product.name} added to the cart.`);
            },
          }, "Add to cart"))));
  }
  const none = shopList.search ? `No product matches “${shopList.search}”.` : "No products yet.";
  return [products.length ? list : el("p", { class: "muted", text: none })];
}
