/* The shop and the back office: the entry module that wires the views in
 * web/static/web/app/ over live.js (the API, the command tracker and the socket).
 * Loaded as <script type="module">: plain ES modules served as static files, no bundler. */

import { on, start as startLive } from "./live.js";
import { APP } from "./app/config.js";
import { $ } from "./app/dom.js";
import { refreshers, showTab } from "./app/tabs.js";
import { connectionState, setupConnection } from "./app/connection.js";
import { applyStock, loadProducts, restockList, setupCatalogueList, shopList } from "./app/catalogue.js";
import { renderCart, setupCheckout } from "./app/cart.js";
import { loadOrders } from "./app/orders.js";
import { setupRegister } from "./app/restock.js";
import { loadShipping } from "./app/shipping.js";
import { setupImport } from "./app/catalogue-import.js";
import { setupDashboard } from "./app/dashboard.js";
import { setupForget } from "./app/privacy.js";

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
  startLive();
}

start();
