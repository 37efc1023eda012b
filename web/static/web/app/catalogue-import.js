/* Staff import: a CSV or JSON catalogue file checked in the browser, sent as one
 * import-products command, its progress and every staff member's imports live. */

import { on } from "../live.js";
import { $, el } from "./dom.js";
import { short } from "./format.js";
import { runCommand, setStatus } from "./commands.js";
import { loadProducts } from "./catalogue.js";

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

export function setupImport() {
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
