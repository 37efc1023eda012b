/* The sections of the page (#shop, #orders…): one shown at a time, each refreshed when shown. */

import { $, $$ } from "./dom.js";

export const refreshers = {};

export function showTab(name, { focus = true } = {}) {
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
