/* DOM helpers: query, build elements, and re-render a list without losing what
 * the user was typing or where the focus was. */

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

export function el(tag, attrs = {}, ...children) {
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

/* Replace a list's content, unless its data did not change; keep what the user
 * was typing (inputs by id) and where the focus was. */
export const signatures = new WeakMap();
export function replaceKeeping(container, data, build) {
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

export function current(node) {
  return node.isConnected || !node.id ? node : document.getElementById(node.id) || node;
}
