// What a viewer reads when something is refused: one human sentence per error code the
// server may send (live/error_codes.py, checkout/error_codes.py, web/error_codes.py) and
// the page's own ("disconnected"). Numbers come from the error's `extra` where the server
// sends them. tests/web/test_messages.py checks that every code has an entry here.

const n = (value, one, many) => `${value} ${value === 1 ? one : many}`;

// code -> a sentence, or a function of (extra, error) giving one.
export const MESSAGES = {
  // the page itself
  disconnected: "You are offline. Try again when the connection is back.",
  // the request's shape
  bad_request: "That request did not make sense to the server. Reload the page and try again.",
  client_disconnected: "The request was cut short. Try again.",
  malformed_json: "That request did not make sense to the server. Reload the page and try again.",
  json_too_deep: "That request did not make sense to the server. Reload the page and try again.",
  malformed_message: "That request did not make sense to the server. Reload the page and try again.",
  message_too_large: "That is too long to send.",
  unknown_type: "This page is out of date. Reload it to carry on.",
  invalid_input: "Something in that was not accepted. Check it and try again.",
  body_too_large: "That is too long to send.",
  unsupported_media_type: "This page is out of date. Reload it to carry on.",
  not_found: "That is no longer here.",
  method_not_allowed: "This page is out of date. Reload it to carry on.",
  request_timeout: "The request took too long. Try again.",
  header_too_large: "The request was too large. Reload the page and try again.",
  // who you are
  auth_required: "Sign in to take part: reload the page.",
  auth_missing: "Sign in to take part: reload the page.",
  auth_invalid: "Your sign-in is not valid any more. Reload the page.",
  auth_expired: "Your sign-in ran out. Reload the page.",
  forbidden_role: "That is not something you can do here.",
  forbidden_show: "That is not something you can do in this show.",
  renewal_limit: "Your sign-in is a week old. Reload the page to start afresh.",
  admin_disabled: "That is not something you can do here.",
  too_many_sockets: "This show is open in too many tabs. Close one and reload.",
  banned: "You were removed from this show.",
  muted: (extra) => (extra?.seconds_left > 0
    ? `You are muted: you can chat again in ${n(extra.seconds_left, "second", "seconds")}.`
    : "You are muted for now."),
  slow_mode: (extra) => (extra?.seconds
    ? `Slow mode: one message every ${n(extra.seconds, "second", "seconds")}.`
    : "Slow mode: wait a moment before the next message."),
  rate_limited: "Too fast, try again in a second.",
  blocked_words: "That message has words this show does not allow.",
  // what it names
  show_not_found: "This show does not exist.",
  product_not_found: "That product is no longer in this show.",
  variant_not_found: "That option is no longer available.",
  product_unpublished: "That product is no longer on sale.",
  user_not_found: "That person is not in this show.",
  question_not_found: "That question is no longer there.",
  not_pinned: "That product is no longer shown.",
  too_many_pinned: "Too many products are shown at once.",
  deal_not_found: "That deal has ended.",
  not_in_cart: "That item is no longer in your cart.",
  order_not_found: "We could not find that order.",
  // polls and questions
  already_voted: (extra) => (extra?.choice ? `You already voted: ${extra.choice}.` : "You already voted in this poll."),
  poll_open: "A poll is already open.",
  poll_closed: "This poll has closed.",
  question_closed: "That question is closed.",
  illegal_transition: "That cannot be done now.",
  // the cart and the buy
  invalid_quantity: "Choose at least one.",
  quantity_above_limit: "That is more than you can buy at once.",
  idempotency_key_missing: "This page is out of date. Reload it to carry on.",
  idempotency_key_invalid: "This page is out of date. Reload it to carry on.",
  idempotency_key_reused: "That tap was already used for another purchase. Tap again.",
  request_in_progress: "Still working on your last tap…",
  invalid_deal: "That deal is not valid.",
  invalid_stock: "That stock is not valid.",
  invalid_refund_amount: "That refund is not valid.",
  invalid_reason: "That reason is too long.",
  show_not_live: "The show is not live right now, so nothing can be bought.",
  show_ended: "The show has ended.",
  duplicate_sku: "That product code is already taken.",
  role_mismatch: "That is not something you can do here.",
  sold_out: "Sold out, sorry. Tap “Notify me” to hear when it is back.",
  out_of_stock: (extra) => {
    const left = extra?.available ? Object.values(extra.available)[0] : null;
    return Number.isInteger(left) ? `Only ${left} more available: choose fewer.` : "Not that many are left: choose fewer.";
  },
  deal_limit_reached: (extra) => (extra?.room > 0
    ? `The deal allows only ${n(extra.room, "more unit", "more units")} for you.`
    : "You already have the most this deal allows."),
  deal_sold_out: (extra) => (extra?.left > 0
    ? `Only ${n(extra.left, "deal unit is", "deal units are")} left.`
    : "The deal is sold out."),
  deal_running: "A deal is already running for that.",
  deal_expired: "That deal has ended.",
  cart_empty: "Your cart is empty.",
  cart_expired: "Your cart's hold ran out. Add the items again.",
  checkout_in_progress: "Your cart is already being paid for…",
  mixed_currency: "Your cart holds items in different currencies: pay for them apart.",
  not_sold_out: "That is still in stock: you can buy it now.",
  stock_below_held: "Some of those units are held in carts right now.",
  refund_in_progress: "A refund is already under way.",
  // payment
  payment_declined: "Your card was declined. Nothing was charged.",
  payment_timeout: "The payment did not go through in time. Nothing was charged.",
  payment_method_invalid: "That card cannot be used. Save another one in your cart.",
  payment_requires_action: "Your bank needs you to confirm this payment.",
  payment_interrupted: "The payment was interrupted. Nothing was charged: try again.",
  payment_expired: "The payment took too long and was cancelled. Nothing was charged.",
  payment_method_missing: "Save a card first (in the drawer, under “Your card”).",
  payment_provider_unsupported: "Payments are not set up that way here.",
  payment_not_refundable: "That payment cannot be refunded.",
  refund_exceeds_payment: "That is more than the payment.",
  webhook_signature_invalid: "Something went wrong on our side. Try again in a moment.",
  webhook_event_invalid: "Something went wrong on our side. Try again in a moment.",
  payment_provider_error: "The payment service had a problem. Nothing was charged: try again.",
  payment_provider_unavailable: "The payment service is not answering. Try again in a moment.",
  refund_refused: "The refund was refused.",
  refund_unavailable: "Refunds are not answering right now. Try again later.",
  // retry later
  inventory_unavailable: "The shop is busy. Try again in a moment.",
  order_store_unavailable: "The shop is busy. Try again in a moment.",
  internal_error: "Something went wrong on our side. Try again in a moment.",
  timeout: "No answer from the server. Check your connection and try again.",
  // the studio's stream keys (host only)
  stream_key_limit: "This show has as many stream keys as it may: revoke one first.",
  stream_key_not_found: "That stream key does not exist (any more).",
};

// The human sentence for a refusal ({code, message, extra}); never the server's raw text
// for a code this table knows.
export function humanMessage(error) {
  const entry = MESSAGES[error?.code];
  if (typeof entry === "function") return entry(error.extra || {}, error);
  if (entry) return entry;
  return "Something went wrong. Try again in a moment.";
}
