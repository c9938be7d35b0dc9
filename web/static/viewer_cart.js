// The viewer's cart drawer: each line with its hold's time left (counting down), a quantity
// to change (− / number / +, set_cart_quantity) and Remove; the badge counts the units held.
// The page asks for the cart as soon as the live socket is up (a reload shows it at once).
import { api, el, money, showId } from "/static/common.js";
import { humanMessage } from "/static/messages.js";

const $ = (id) => document.getElementById(id);
let ctx = null;  // { request(type, fields), variantName(id) }
let timer = null;

const catalog = new Map();  // variant id -> its name, for lines of cards not pinned now

export function initCart(context) {
  ctx = context;
  clearInterval(timer);
  timer = setInterval(tickHolds, 1000);
  api("GET", `/api/shows/${encodeURIComponent(showId)}`).then((show) => {
    for (const product of show.products || []) {
      for (const v of product.variants || []) {
        const options = Object.values(v.attributes || {}).join(" / ");
        catalog.set(v.id, options ? `${product.name} (${options})` : product.name);
      }
    }
  }).catch(() => {});
}

// A variant's name as the shopper knows it: from the pinned cards, else the show's catalog.
export function nameOf(variantId) {
  const pinned = ctx?.variantName(variantId);
  return pinned && pinned !== "Item" ? pinned : catalog.get(variantId) || pinned || "Item";
}

function holdLeft(expiresAt) {
  const left = Math.max(0, Math.round((Date.parse(expiresAt) - Date.now()) / 1000));
  return { left, text: `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}` };
}

function tickHolds() {
  let ranOut = false;
  for (const node of document.querySelectorAll("#cart-lines .hold[data-expires]")) {
    const { left, text } = holdLeft(node.dataset.expires);
    node.textContent = left > 0 ? `Held for you ${text}` : "Hold ran out";
    node.classList.toggle("soon", left > 0 && left <= 60);
    if (left === 0 && !node.dataset.done) { node.dataset.done = "1"; ranOut = true; }
  }
  if (ranOut) syncCart();  // the server says which lines went
}

function say(text, ok = false) {
  const result = $("cart-result");
  result.textContent = text;
  result.className = ok ? "ok" : "fail";
}

async function change(type, fields) {
  try {
    renderCart((await ctx.request(type, fields)).cart);
    $("cart-result").textContent = "";
  } catch (error) {
    say(humanMessage(error));
    syncCart();  // show what the server holds, not what was typed
  }
}

export async function syncCart() {
  if (!ctx) return;
  try { renderCart((await ctx.request("view_cart")).cart); } catch {}
}

function renderLine(line) {
  const name = nameOf(line.variant_id);
  const setTo = (quantity) => change(quantity > 0 ? "set_cart_quantity" : "remove_from_cart",
    quantity > 0 ? { variant_id: line.variant_id, quantity } : { variant_id: line.variant_id });
  const input = el("input", { type: "number", min: "1", max: "99", value: String(line.quantity), inputmode: "numeric",
    class: "qty", "aria-label": `Quantity of ${name}` });
  input.addEventListener("change", () => {
    const wanted = Number(input.value);
    if (!Number.isInteger(wanted) || wanted < 0) { say("Choose a whole number."); input.value = String(line.quantity); return; }
    setTo(wanted);
  });
  const hold = line.expires_at ? el("span", { class: "hold muted", "data-expires": line.expires_at, role: "timer" }) : null;
  const unit = line.unit_price;
  return el("li", { class: "cart-line", "data-variant": line.variant_id },
    el("div", { class: "row" },
      el("span", { class: "grow", text: `${line.quantity} × ${name}` }),
      el("span", { class: "line-total", text: money({ ...unit, amount: unit.amount * line.quantity }) })),
    el("div", { class: "row" },
      el("button", { type: "button", class: "secondary step", "aria-label": `One fewer ${name}`,
        onclick: () => setTo(line.quantity - 1) }, "−"),
      input,
      el("button", { type: "button", class: "secondary step", "aria-label": `One more ${name}`,
        onclick: () => setTo(line.quantity + 1) }, "+"),
      el("span", { class: "grow" }),
      el("button", { type: "button", class: "secondary", "aria-label": `Remove ${name}`,
        onclick: () => change("remove_from_cart", { variant_id: line.variant_id }) }, "Remove")),
    hold);
}

export function renderCart(cart) {
  const lines = cart?.lines || [];
  $("cart-count").textContent = String(lines.reduce((n, l) => n + l.quantity, 0));
  $("cart-lines").replaceChildren(...lines.map(renderLine));
  $("cart-total").textContent = cart?.total ? `Total ${money(cart.total)}` : "";
  $("checkout").disabled = lines.length === 0;
  if (cart?.expired?.length) say(`Your hold ran out on ${cart.expired.map((id) => nameOf(id)).join(", ")}.`);
  tickHolds();
}
