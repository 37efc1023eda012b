/* Sending a command from a button: busy state and status messages (kept across
 * re-renders by element id) until the push or a poll brings the outcome. */

import { send } from "../live.js";
import { $, current } from "./dom.js";
import { describeError } from "./errors.js";

export function announce(text) {
  const region = $("#announcer");
  region.textContent = "";
  setTimeout(() => (region.textContent = text), 50);
}

// Lists are re-rendered from the read API while a command runs or after it
// ends: busy buttons and status messages are remembered by element id, and
// restored on the new elements.
const busyIds = new Set();
const messages = new Map();

export function setStatus(node, text, kind) {
  node.textContent = text;
  node.dataset.kind = kind || "";
  if (node.id) messages.set(node.id, [text, kind]);
}

export function restore(node) {
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

/* Run a command from a button: busy until the push (or a poll) brings the outcome.
 * `done(command)` refreshes the page from the read API and returns a message. */
export async function runCommand({ button, status, name, body, busyText, done, onUpdate }) {
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
