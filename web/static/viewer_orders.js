// After a buy or a cart checkout: a receipt (lines, total, how it was paid, what happens
// next); and "My orders": every order of this viewer, in every show, newest first, from
// GET /api/orders (the viewer's own only: the token says who).
import { api, el, money } from "/static/common.js";
import { humanMessage } from "/static/messages.js";
import { paymentConfig, savedCards } from "/static/payments.js";

let ctx = null;  // { token(), variantName(id) }
let receipt = null;
let orders = null;

const STATUS = {
  paid: "Paid",
  fulfilled: "Shipped",
  cancelled: "Cancelled, refunded",
  refunded: "Refunded",
};
const statusText = (status) => STATUS[status] || status;

function sheet(label, ...children) {
  const node = el("dialog", { class: "sheet", "aria-label": label }, ...children);
  document.getElementById("viewer").append(node);
  return node;
}

export function initOrders(context) {
  ctx = context;
  // in the drawer's header (the top bar has no room left on a phone)
  const button = el("button", { type: "button", class: "secondary", id: "open-orders" }, "My orders");
  button.addEventListener("click", openMyOrders);
  const anchor = document.getElementById("close-cart");
  if (anchor) anchor.before(button);
  else document.getElementById("cart")?.prepend(button);
}

async function paidWith() {
  const config = await paymentConfig();
  if (config.provider !== "stripe") return "Test card (no real money moves)";
  const card = (await savedCards(ctx.token()).catch(() => [])).find((c) => c.default);
  return card ? `${card.brand} ending ${card.last4}` : "Your saved card";
}

function lineText(line) {
  const options = Object.values(line.options || {}).join(" / ");
  const named = options ? `${line.product_name} (${options})` : line.product_name;
  return `${line.quantity} × ${line.product_name ? named : ctx.variantName(line.variant_id)}`;
}

function lineRow(line) {
  const unit = line.unit_price;
  return el("li", { class: "row" }, el("span", { class: "grow", text: lineText(line) }),
    el("span", { text: money({ ...unit, amount: unit.amount * line.quantity }) }));
}

// The receipt of an order just made (the buy's or the checkout's reply).
export async function showReceipt(order) {
  receipt?.remove();
  const payment = el("p", { class: "muted", text: "Paid with …" });
  const toOrders = el("button", { type: "button", class: "secondary" }, "My orders");
  const close = el("button", { type: "button" }, "Close");
  receipt = sheet("Receipt",
    el("h2", { text: "Thank you! Your order is confirmed" }),
    el("p", { class: "order-id" }, el("span", { text: `Order ${order.order_id}` }), " · ",
      el("span", { class: "order-status", text: statusText(order.status) })),
    el("ul", { class: "plain receipt-lines" }, ...(order.lines || []).map(lineRow)),
    el("p", { class: "total", text: `Total ${money(order.total)}` }),
    payment,
    el("h3", { text: "What happens next" }),
    el("ul", { class: "next" },
      el("li", { text: "We'll email you when it ships." }),
      el("li", { text: "If the host cancels it, the money goes back to the same card by itself." }),
      el("li", { text: "Find it any time under “My orders”." })),
    el("div", { class: "row" }, toOrders, close));
  close.addEventListener("click", () => receipt.close());
  toOrders.addEventListener("click", () => { receipt.close(); openMyOrders(); });
  receipt.showModal();
  payment.textContent = `Paid with: ${await paidWith()}`;
}

// A one-tap buy stays on the stream: its answer on the card offers the receipt.
export function receiptButton(order) {
  return el("button", { type: "button", class: "secondary receipt-link", onclick: () => showReceipt(order) }, "Receipt");
}

function orderItem(order) {
  const when = new Date(order.created_at);
  return el("li", { class: "order", "data-order": order.order_id },
    el("div", { class: "row" }, el("b", { class: "grow", text: order.show_title }),
      el("span", { class: "order-total", text: money(order.total) })),
    el("p", { class: "muted", text: `${when.toLocaleString()} · ${statusText(order.status)} · ${order.order_id}` }),
    el("ul", { class: "plain" }, ...order.lines.map((line) => el("li", { text: lineText(line) }))));
}

export async function openMyOrders() {
  orders?.remove();
  const list = el("ul", { class: "plain orders-list", "aria-label": "Your orders" });
  const status = el("p", { role: "status", text: "Loading…" });
  const more = el("button", { type: "button", class: "secondary", hidden: true }, "Show more");
  const close = el("button", { type: "button" }, "Close");
  orders = sheet("My orders", el("h2", { text: "My orders" }), status, list, more, el("div", { class: "row" }, close));
  close.addEventListener("click", () => orders.close());
  orders.showModal();
  let cursor = null;
  const load = async () => {
    try {
      const query = new URLSearchParams({ limit: "20", ...(cursor ? { cursor } : {}) });
      const page = await api("GET", `/api/orders?${query}`, { token: ctx.token() });
      list.append(...page.orders.map(orderItem));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      status.textContent = list.children.length ? "" : "No orders yet. What you buy shows up here.";
    } catch (error) {
      status.textContent = humanMessage(error);
    }
  };
  more.addEventListener("click", load);
  await load();
}
