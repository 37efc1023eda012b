/* The API's error codes as sentences a customer can act on. */

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

export function describeError(error) {
  if (!error) return "Something went wrong.";
  if (error.code === "validation_error") {
    const problems = flatten(error.details);
    return "Please check the form. " + (problems.length ? problems.slice(0, 4).join("; ") : error.message || "");
  }
  return MESSAGES[error.code] || error.message || "Something went wrong.";
}
