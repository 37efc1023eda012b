/* The live connection's state, shown in the header badge (the socket itself is live.js). */

import { on } from "../live.js";
import { $ } from "./dom.js";

export let connectionState = "connecting";

export function setupConnection() {
  const badge = $("#connection");
  const text = { live: "live", connecting: "connecting…", offline: "offline: checking by polling" };
  on("connection", (state) => {
    connectionState = state;
    badge.dataset.state = state;
    badge.textContent = text[state] || state;
  });
}
