/* The shop and the back office: plain DOM code over window.Live (live.js). */
(function () {
  "use strict";

  const { api, read, send, on } = window.Live;
  const config = document.getElementById("app-config").dataset;
  const APP = { isStaff: config.isStaff === "true", userId: Number(config.userId) };
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

  const MESSAGES = {
    insufficient_stock: "Sorry, there is not enough stock for one of these products. Lower the quantity and try again.",
    payment_declined: "Your card was declined. Please try another card.",
    payment_in_progress: "A payment for this order is in progress: wait for its outcome, then try again.",
    invalid_state: "This order can no longer be changed that way: it may already be paid, shipped or cancelled.",
    product_not_found: "One of these products no longer exists.",
    order_not_found: "This order does not exist.",
    duplicate_sku: "A product with this SKU already exists.",
    duplicate_id: "This has already been created.",
    permission_denied: "You are not allowed to do that.",
    worker_lost: "The server could not finish this. Please try again.",
    too_much_contention: "The shop is very busy right now. Please try again.",
    network_error: "The server cannot be reached. Check your connection and try again.",
    payload_too_large: "This is too large to send in one go.",
    not_found: "The server has no record of this action.",
  };

  // --- Small helpers ----------------------------------------------------------------

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === false || value === null || value === undefined) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function money(cents) {
    return (cents / 100).toLocaleString(undefined, { style: "currency", currency: "EUR" });
  }

  function when(iso) {
    return iso ? new Date(iso).toLocaleString() : "";
  }

  function short(id) {
    return String(id).slice(0, 8);
  }

  function flatten(details, prefix = "") {
    if (details === null || details === undefined) return [];
    if (Array.isArray(details)) {
      return details.flatMap((item) => (typeof item === "object" ? flatten(item, prefix) : [(prefix ? prefix + ": " : "") + item]));
    }
    if (typeof details === "object") {
      return Object.entries(details).flatMap(([key, value]) => flatten(value, prefix ? `${prefix}.${key}` : key));
    }
    return [(prefix ? prefix + ": " : "") + details];
  }

  function describeError(error) {
    if (!error) return "Something went wrong.";
    if (error.code === "validation_error") {
      const problems = flatten(error.details);
      return "Please check the form. " + (problems.length ? problems.slice(0, 4).join("; ") : error.message || "");
    }
    return MESSAGES[error.code] || error.message || "Something went wrong.";
  }

  function announce(text) {
    const region = $("#announcer");
    region.textContent = "";
    setTimeout(() => (region.textContent = text), 50);
  }

  // Lists are re-rendered from the read API while a command runs or after it
  // ends: busy buttons and status messages are remembered by element id, and
  // restored on the new elements.
  const busyIds = new Set();
  const messages = new Map();

  function setStatus(node, text, kind) {
    node.textContent = text;
    node.dataset.kind = kind || "";
    if (node.id) messages.set(node.id, [text, kind]);
  }

  function restore(node) {
    if (busyIds.has(node.id)) {
      node.disabled = true;
      node.setAttribute("aria-busy", "true");
    }
    const message = messages.get(node.id);
    if (message) {
      node.textContent = message[0];
      node.dataset.kind = message[1] || "";
      if (message[1] === "busy") node.setAttribute("aria-busy", "true");
    }
    return node;
  }

  /* Replace a list's content, unless its data did not change; keep what the user
   * was typing (inputs by id) and where the focus was. */
  const signatures = new WeakMap();
  function replaceKeeping(container, data, build) {
    const signature = JSON.stringify(data);
    if (signatures.get(container) === signature) return;
    signatures.set(container, signature);
    const values = new Map();
    for (const input of $$("input[id]", container)) {
      if (input.value !== input.defaultValue) values.set(input.id, input.value);
    }
    const focused = container.contains(document.activeElement) ? document.activeElement.id : null;
    container.replaceChildren(...build());
    for (const [id, value] of values) {
      const input = document.getElementById(id);
      if (input && container.contains(input)) input.value = value;
    }
    if (focused) {
      const again = document.getElementById(focused);
      if (again) again.focus();
    }
  }

  function current(node) {
    return node.isConnected || !node.id ? node : document.getElementById(node.id) || node;
  }

  /* Run a command from a button: busy until the push (or a poll) brings the outcome.
   * `done(command)` refreshes the page from the read API and returns a message. */
  async function runCommand({ button, status, name, body, busyText, done, onUpdate }) {
    const hadFocus = document.activeElement === button;
    if (button.id) busyIds.add(button.id);
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    status.setAttribute("aria-busy", "true");
    setStatus(status, busyText || "Processing…", "busy");
    let command;
    let outcome;
    try {
      command = await send(name, body, { onUpdate });
      if (command.status === "succeeded") {
        busyIds.delete(button.id);
        outcome = [await done(command), "ok"];
        announce(outcome[0]);
      } else {
        outcome = [describeError(command.error), "error"];
      }
    } catch (error) {
      outcome = [describeError(error), "error"];
    } finally {
      busyIds.delete(button.id);
      button = current(button);
      status = current(status);
      setStatus(status, ...(outcome || ["Something went wrong.", "error"]));
      button.disabled = false;
      button.removeAttribute("aria-busy");
      status.removeAttribute("aria-busy");
      if (hadFocus || document.activeElement === document.body || !document.activeElement) {
        status.setAttribute("tabindex", "-1");
        status.focus();
      }
    }
    return command;
  }

  // --- Tabs --------------------------------------------------------------------------

  const refreshers = {};

  function showTab(name, { focus = true } = {}) {
    const panels = $$("[data-panel]");
    if (!panels.some((panel) => panel.id === name)) name = "shop";
    for (const panel of panels) panel.hidden = panel.id !== name;
    for (const link of $$("[data-tab]")) {
      if (link.dataset.tab === name) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    if (refreshers[name]) refreshers[name]();
    if (focus) {
      const heading = $(`#${name} h1`);
      if (heading) heading.focus();
    }
  }

  // --- Products and cart -----------------------------------------------------------------

  let products = [];
  // Every product seen (a page, a push, a cart line): the cart's names and prices.
  const known = new Map();
  const cart = loadCart();
  const PAGE_SIZE = 24;

  /* One browsable list of the catalogue: a search (name or SKU) and keyset pages. */
  function catalogueList(prefix) {
    return { prefix, search: "", cursor: null, back: [], next: null, page: 1, items: [], asked: 0 };
  }
  const shopList = catalogueList("products");
  const restockList = catalogueList("restock");

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

  function loadCart() {
    try {
      return JSON.parse(localStorage.getItem(`cart-${APP.userId}`) || "{}");
    } catch (error) {
      return {};
    }
  }

  function saveCart() {
    localStorage.setItem(`cart-${APP.userId}`, JSON.stringify(cart));
  }

  async function loadProducts(position) {
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

  /* Products in the cart but on no page seen yet (after a reload, another page). */
  async function loadCartProducts(position) {
    const missing = Object.keys(cart).filter((id) => !known.has(id));
    await Promise.all(missing.map(async (id) => {
      try {
        known.set(id, await read(`/api/products/${encodeURIComponent(id)}/`, position));
      } catch (error) {
        /* shown as an unknown product */
      }
    }));
  }

  function setupCatalogueList(list, reload) {
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
  function applyStock(message) {
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

  function renderCart() {
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

  function setupCheckout() {
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

  // --- Orders ----------------------------------------------------------------------

  let orders = [];

  async function loadOrders(position) {
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

  function timeline(order) {
    return el("ol", { class: "timeline", "aria-label": `Timeline of order ${short(order.id)}` },
      (order.history || []).map((entry) => {
        const details = entry.details || {};
        const extra = entry.event === "refunded" || entry.event === "lines_changed"
          ? money(details.amount_cents ?? details.total_cents)
          : details.reason || details.tracking_number || details.last4 || details.decline_code;
        return el("li", { "data-event": entry.event },
          el("span", { class: "event", text: entry.event }), " ",
          el("time", { datetime: entry.at, text: when(entry.at) }),
          extra ? el("span", { class: "muted", text: ` (${extra})` }) : null);
      }));
  }

  // --- Order timeline: the order as it was after each event (?as_of_version) -------

  const pastStates = new Map(); // order id -> { key, states } or { key, error }
  const pastOpen = new Set();

  function pastKey(order) {
    return `${order.status}:${(order.history || []).length}:${order.updated_at}`;
  }

  /* Fold-by-version reads: the newest state first (an instant ahead of any clock
   * skew gives the latest; the server caps the instant it reports at now), which
   * says how many versions there are, then each earlier one. */
  async function loadPastStates(order) {
    const key = pastKey(order);
    const cached = pastStates.get(order.id);
    if (cached && cached.key === key) return cached;
    const base = `/api/orders/${order.id}/`;
    const entry = { key };
    try {
      const ahead = new Date(Date.now() + 24 * 3600 * 1000).toISOString();
      const latest = await read(`${base}?as_of=${encodeURIComponent(ahead)}`);
      const versions = Array.from({ length: latest.as_of_version - 1 }, (_, i) => i + 1);
      const earlier = await Promise.all(versions.map((v) => read(`${base}?as_of_version=${v}`)));
      entry.states = [...earlier, latest];
    } catch (error) {
      entry.error = describeError(error);
    }
    pastStates.set(order.id, entry);
    return entry;
  }

  function changesBetween(before, after) {
    if (!before) return [`placed, total ${money(after.total_cents)}`];
    const changes = [];
    if (before.status !== after.status) changes.push(`status ${before.status} → ${after.status}`);
    if (before.total_cents !== after.total_cents) changes.push(`total ${money(before.total_cents)} → ${money(after.total_cents)}`);
    if (before.refunded_cents !== after.refunded_cents) changes.push(`refunded ${money(after.refunded_cents)}`);
    if (JSON.stringify(before.lines) !== JSON.stringify(after.lines)) changes.push("lines changed");
    if (JSON.stringify(before.shipping_address) !== JSON.stringify(after.shipping_address)) changes.push("shipping address changed");
    return changes;
  }

  function pastTable(order, entry) {
    if (!entry) return el("p", { class: "muted", text: "Loading the order's past states…" });
    if (entry.error) return el("p", { class: "alert error", text: entry.error });
    let previous = null;
    const rows = entry.states.map((state) => {
      const history = state.history || [];
      const grew = !previous || history.length > (previous.history || []).length;
      const event = grew && history.length ? history[history.length - 1].event : "—";
      const row = el("tr", { "data-version": state.as_of_version },
        el("th", { scope: "row", text: state.as_of_version }),
        el("td", { text: event }),
        el("td", {}, el("time", { datetime: state.updated_at, text: when(state.updated_at) })),
        el("td", {}, el("span", { class: `badge ${state.status}`, text: state.status })),
        el("td", { text: money(state.total_cents) }),
        el("td", { class: "changes", text: changesBetween(previous, state).join("; ") || "—" }));
      previous = state;
      return row;
    });
    return el("table", { class: "compact past-states" },
      el("caption", { text: `Order ${short(order.id)} after each event` }),
      el("thead", {}, el("tr", {}, ["Version", "Event", "When", "Status", "Total", "What changed"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows));
  }

  async function showPastStates(order) {
    const region = () => document.getElementById(`past-${order.id}`);
    const shown = region();
    if (!shown) return;
    const cached = pastStates.get(order.id);
    if (!cached || cached.key !== pastKey(order)) shown.replaceChildren(pastTable(order, null));
    const entry = await loadPastStates(order);
    const now = region();
    if (now && pastOpen.has(order.id)) now.replaceChildren(pastTable(order, entry));
  }

  function pastToggle(order) {
    const open = pastOpen.has(order.id);
    const regionId = `past-${order.id}`;
    const cached = pastStates.get(order.id);
    const region = el("div", { id: regionId, class: "past", hidden: !open },
      open && cached ? pastTable(order, cached) : null);
    const label = (isOpen) => (isOpen ? "Hide the timeline" : "Timeline: the order after each event");
    const button = el("button", {
      type: "button", class: "link", id: `past-toggle-${order.id}`,
      "aria-expanded": String(open), "aria-controls": regionId,
      onclick: () => {
        const target = current(button);
        const opening = !pastOpen.has(order.id);
        if (opening) pastOpen.add(order.id);
        else pastOpen.delete(order.id);
        target.setAttribute("aria-expanded", String(opening));
        target.textContent = label(opening);
        const shown = document.getElementById(regionId);
        if (shown) shown.hidden = !opening;
        if (opening) showPastStates(order);
      },
    }, label(open));
    if (open && (!cached || cached.key !== pastKey(order))) setTimeout(() => showPastStates(order), 0);
    return el("div", { class: "past-toggle" }, button, region);
  }

  function orderCard(order, actions) {
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

  // --- Changing an order (update-order) -----------------------------------------------
  // Lines change until the order is paid, the address until it ships. The form
  // sends only what differs from the order as the read model shows it.

  const EDITABLE = ["placed", "payment_pending", "paid"];
  const ADDRESS_FIELDS = [
    // Labels unlike the checkout's ("Full name", "Address"…): both forms are on the page.
    ["name", "Recipient", "name"], ["line1", "Street", "address-line1"], ["city", "Town", "address-level2"],
    ["postal_code", "Postcode", "postal-code"], ["country", "Country code", "country"],
  ];
  const openEdits = new Set();

  function editForm(order, status) {
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

  function refocusOrder(orderId) {
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

  // --- Staff: catalogue, restock, shipping, import ------------------------------------------

  function setupRegister() {
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

  function renderRestock() {
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

  let shipping = [];

  async function loadShipping(position) {
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

  function parseCsv(text) {
    const rows = [];
    let row = [], field = "", quoted = false;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (quoted) {
        if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
        else if (c === '"') quoted = false;
        else field += c;
      } else if (c === '"') quoted = true;
      else if (c === ",") { row.push(field); field = ""; }
      else if (c === "\n" || c === "\r") {
        if (c === "\r" && text[i + 1] === "\n") i++;
        row.push(field); field = "";
        if (row.some((cell) => cell.trim() !== "")) rows.push(row);
        row = [];
      } else field += c;
    }
    row.push(field);
    if (row.some((cell) => cell.trim() !== "")) rows.push(row);
    if (!rows.length) return [];
    const header = rows[0].map((name) => name.trim().toLowerCase());
    for (const needed of ["sku", "name", "price_cents", "initial_stock"]) {
      if (!header.includes(needed)) throw new Error(`The CSV header has no "${needed}" column.`);
    }
    return rows.slice(1).map((cells) => Object.fromEntries(header.map((name, i) => [name, (cells[i] || "").trim()])));
  }

  function normalise(items) {
    if (!Array.isArray(items)) throw new Error("Expected a list of products.");
    return items.map((item, index) => {
      const price = Number(item.price_cents);
      const stock = Number(item.initial_stock);
      if (!item.sku || !item.name || !Number.isInteger(price) || !Number.isInteger(stock)) {
        throw new Error(`Product ${index + 1} needs sku, name and whole-number price_cents and initial_stock.`);
      }
      return { sku: String(item.sku), name: String(item.name), price_cents: price, initial_stock: stock };
    });
  }

  function setupImport() {
    const form = $("#import-form");
    const input = $("#import-file");
    const button = $("#import-button");
    const summary = $("#import-summary");
    const bar = $("#import-progress");
    let items = [];
    let current = null;

    const showProgress = (value) => {
      const percent = Math.max(Number(bar.value) || 0, value);
      bar.value = percent;
      bar.textContent = `${percent} %`;
      $("#import-percent").textContent = `${percent} %`;
    };

    input.addEventListener("change", async () => {
      items = [];
      button.disabled = true;
      const file = input.files[0];
      if (!file) return;
      try {
        const text = await file.text();
        const parsed = /\.json$/i.test(file.name) || /^\s*[[{]/.test(text) ? JSON.parse(text) : parseCsv(text);
        items = normalise(Array.isArray(parsed) ? parsed : parsed.products);
        if (!items.length || items.length > 50000) throw new Error("A catalogue holds 1 to 50,000 products.");
        setStatus(summary, `${items.length} products ready to import (first: ${items[0].sku}).`, "ok");
        button.disabled = false;
      } catch (error) {
        setStatus(summary, `This file cannot be imported: ${error.message}`, "error");
      }
    });

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!items.length) return;
      bar.value = 0;
      showProgress(0);
      const command = await runCommand({
        button, status: $("#import-status"), name: "import-products",
        body: { products: items },
        busyText: `Importing ${items.length} products…`,
        onUpdate: (update) => {
          current = update.id;
          showProgress(update.status === "succeeded" ? 100 : update.progress || 0);
        },
        done: async (done) => {
          showProgress(100);
          await loadProducts(done.position);
          const result = done.result || {};
          return `Import finished: ${result.imported ?? 0} imported, ${result.skipped ?? 0} skipped.`;
        },
      });
      // The same file again would only be skipped: wait for another one.
      button.disabled = Boolean(command && command.status === "succeeded");
    });

    const feed = new Map();
    on("import.progress", (message) => {
      const command = message.command;
      const seen = feed.get(command.id);
      if (seen && seen.seq >= message.seq) return;
      feed.set(command.id, { seq: message.seq, command, userId: message.user_id });
      if (command.id === current) showProgress(command.status === "succeeded" ? 100 : command.progress || 0);
      const list = $("#import-feed");
      list.replaceChildren(...Array.from(feed.values()).slice(-10).reverse().map(({ command: c, userId }) =>
        el("li", {},
          `Import ${short(c.id)} by user ${userId}: `,
          el("strong", { text: c.status === "succeeded" ? "100 %" : `${c.progress} %` }),
          ` (${c.status})`)));
    });
  }

  // --- Staff: dashboard ------------------------------------------------------------

  const lagHistory = [];
  const COLOURS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#0a7f8f"];

  function prepare(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || canvas.width;
    const height = canvas.clientHeight || canvas.height;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "12px system-ui, sans-serif";
    return { ctx, width, height };
  }

  function axes(ctx, width, height, max, unit) {
    const pad = { left: 40, bottom: 20, top: 10, right: 10 };
    ctx.strokeStyle = "#d0d7de";
    ctx.fillStyle = "#57606a";
    for (let i = 0; i <= 4; i++) {
      const y = pad.top + ((height - pad.top - pad.bottom) * i) / 4;
      ctx.beginPath();
      ctx.moveTo(pad.left, y);
      ctx.lineTo(width - pad.right, y);
      ctx.stroke();
      const value = max - (max * i) / 4;
      ctx.fillText(`${Number.isInteger(value) ? value : value.toFixed(1)}${unit}`, 2, y + 4);
    }
    return pad;
  }

  function drawBars(canvas, values, labels) {
    const { ctx, width, height } = prepare(canvas);
    const max = Math.max(4, ...values);
    const pad = axes(ctx, width, height, max, "");
    const step = (width - pad.left - pad.right) / values.length;
    ctx.fillStyle = COLOURS[0];
    values.forEach((value, i) => {
      const h = ((height - pad.top - pad.bottom) * value) / max;
      ctx.fillRect(pad.left + i * step + 2, height - pad.bottom - h, Math.max(step - 4, 1), h);
    });
    ctx.fillStyle = "#57606a";
    if (labels.length) {
      ctx.fillText(labels[0], pad.left, height - 4);
      const last = labels[labels.length - 1];
      ctx.fillText(last, width - pad.right - ctx.measureText(last).width, height - 4);
    }
  }

  function drawLines(canvas, series, max, unit) {
    const { ctx, width, height } = prepare(canvas);
    const pad = axes(ctx, width, height, max, unit);
    const plotWidth = width - pad.left - pad.right;
    const plotHeight = height - pad.top - pad.bottom;
    series.forEach(({ values, colour }) => {
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2;
      ctx.beginPath();
      let started = false;
      values.forEach((value, i) => {
        if (value === null) return;
        const x = pad.left + (values.length > 1 ? (plotWidth * i) / (values.length - 1) : plotWidth);
        const y = pad.top + plotHeight - (plotHeight * Math.min(value, max)) / max;
        if (started) ctx.lineTo(x, y);
        else ctx.moveTo(x, y);
        started = true;
      });
      ctx.stroke();
      ctx.lineWidth = 1;
      // Dots too, so that a single sample (or isolated minutes) shows.
      ctx.fillStyle = colour;
      values.forEach((value, i) => {
        if (value === null) return;
        const x = pad.left + (values.length > 1 ? (plotWidth * i) / (values.length - 1) : plotWidth);
        const y = pad.top + plotHeight - (plotHeight * Math.min(value, max)) / max;
        ctx.beginPath();
        ctx.arc(x, y, 3, 0, 2 * Math.PI);
        ctx.fill();
      });
    });
  }

  function setupDashboard() {
    on("command.stats", (message) => {
      const minutes = message.minutes || [];
      const labels = minutes.map((m) => new Date(m.minute).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
      const sent = minutes.map((m) => m.sent);
      drawBars($("#chart-rate"), sent, labels);
      const rate = minutes.map((m) => {
        const finished = m.succeeded + m.rejected + m.failed;
        return finished ? (100 * m.succeeded) / finished : null;
      });
      drawLines($("#chart-success"), [{ values: rate, colour: COLOURS[2] }], 100, "%");
      const last = minutes[minutes.length - 1] || { sent: 0 };
      const finished = minutes.reduce((acc, m) => acc + m.succeeded + m.rejected + m.failed, 0);
      const succeeded = minutes.reduce((acc, m) => acc + m.succeeded, 0);
      $("#chart-rate-text").textContent = `${last.sent} commands this minute.`;
      $("#chart-success-text").textContent = finished ? `${Math.round((100 * succeeded) / finished)} % succeeded over ${minutes.length} minutes.` : "No finished commands yet.";
    });
    on("projection.lag", (message) => {
      lagHistory.push({ at: Date.now(), projections: message.projections });
      if (lagHistory.length > 150) lagHistory.shift();
      const names = message.projections.map((p) => p.name);
      const series = names.map((name, i) => ({
        colour: COLOURS[i % COLOURS.length],
        values: lagHistory.map((sample) => {
          const found = sample.projections.find((p) => p.name === name);
          return found ? found.lag_events : null;
        }),
      }));
      const max = Math.max(10, ...series.flatMap((s) => s.values.filter((v) => v !== null)));
      drawLines($("#chart-lag"), series, max, "");
      $("#lag-table tbody").replaceChildren(...message.projections.map((p, i) =>
        el("tr", {},
          el("th", { scope: "row" }, el("span", { class: "swatch", style: `background:${COLOURS[i % COLOURS.length]}` }), p.name),
          el("td", { text: p.lag_events }),
          el("td", { text: p.lag_seconds.toFixed(1) }))));
    });
  }

  // --- Privacy (staff): forget a customer ----------------------------------------------

  function setupForget() {
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

  // --- Start -------------------------------------------------------------------------

  let connectionState = "connecting";

  function setupConnection() {
    const badge = $("#connection");
    const text = { live: "live", connecting: "connecting…", offline: "offline: checking by polling" };
    on("connection", (state) => {
      connectionState = state;
      badge.dataset.state = state;
      badge.textContent = text[state] || state;
    });
  }

  function start() {
    setupConnection();
    setupCheckout();
    refreshers.shop = () => loadProducts();
    refreshers.orders = () => loadOrders();
    setupCatalogueList(shopList, () => loadProducts());
    on("catalogue.stock", applyStock);
    if (APP.isStaff) {
      setupRegister();
      setupImport();
      setupDashboard();
      setupForget();
      refreshers.catalogue = () => loadProducts();
      setupCatalogueList(restockList, () => loadProducts());
      refreshers.shipping = () => loadShipping();
    }
    window.addEventListener("hashchange", () => showTab(location.hash.slice(1)));
    showTab(location.hash.slice(1) || "shop", { focus: false });
    renderCart();
    loadOrders();
    // Stock changes with other customers' orders: pushed (catalogue.stock) while
    // the socket is live; polled every 5 s while it is down, and once a minute
    // anyway, as pushes are at most once.
    let lastPoll = Date.now();
    setInterval(() => {
      if (document.hidden) return;
      if (connectionState === "live" && Date.now() - lastPoll < 60000) return;
      if (!$("#shop").hidden || ($("#catalogue") && !$("#catalogue").hidden)) {
        lastPoll = Date.now();
        loadProducts();
      }
    }, 5000);
    window.Live.start();
  }

  start();
})();
