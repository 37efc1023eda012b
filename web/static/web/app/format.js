/* How money, instants and ids read on the page. */

export function money(cents) {
  return (cents / 100).toLocaleString(undefined, { style: "currency", currency: "EUR" });
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

export function short(id) {
  return String(id).slice(0, 8);
}
