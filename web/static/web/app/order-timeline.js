/* An order's timeline: its events, and the order as it was after each event
 * (read with ?as_of_version), shown on demand under the order card. */

import { read } from "../live.js";
import { current, el } from "./dom.js";
import { money, short, when } from "./format.js";
import { describeError } from "./errors.js";

export function timeline(order) {
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

export function pastToggle(order) {
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
