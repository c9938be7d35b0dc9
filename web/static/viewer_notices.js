// Notices that come and go: "X is back in stock" (the `back_in_stock` event, for viewers
// who tapped "Notify me"): a toast on the page and a line on the card, the "we will tell
// you" message gone; and stale answers on cards cleared after a while.
import { el } from "/static/common.js";

const STALE_MS = 8000;

function toasts() {
  let root = document.getElementById("toasts");
  if (!root) {
    root = el("div", { id: "toasts", class: "toasts", role: "status", "aria-live": "polite" });
    document.getElementById("viewer").append(root);
  }
  return root;
}

export function toast(text, kind = "ok") {
  const node = el("p", { class: `toast ${kind}`, text });
  const close = el("button", { type: "button", class: "secondary", "aria-label": "Dismiss" }, "×");
  close.addEventListener("click", () => node.remove());
  node.append(close);
  toasts().append(node);
  setTimeout(() => node.remove(), 10_000);
}

// After the page applied the new stock: tell the viewer on the page and on the card.
export function backInStock(msg, cards, variantName) {
  const name = variantName(msg.variant_id);
  const left = msg.available > 0 ? ` (${msg.available} left)` : "";
  toast(`${name} is back in stock${left}`);
  for (const card of cards.values()) {
    if (!(card.variants || []).some((v) => v.id === msg.variant_id)) continue;
    const result = document.querySelector(`.card[data-product="${CSS.escape(card.product_id)}"] .result`);
    if (result) {
      result.className = "result ok";
      result.textContent = `Back in stock${left}: buy it now`;
    }
  }
}

// A card's answer ("Added to your cart", a refusal) is cleared after a while; the next
// action replaces it anyway. "…" answers (a buy under way) stay until they are answered.
export function clearStaleResults(root) {
  const timers = new WeakMap();
  const watch = (result) => {
    clearTimeout(timers.get(result));
    if (!result.textContent || result.textContent.endsWith("…")) return;
    timers.set(result, setTimeout(() => { result.textContent = ""; result.className = "result"; }, STALE_MS));
  };
  new MutationObserver((changes) => {
    for (const change of changes) {
      const target = change.target.nodeType === Node.ELEMENT_NODE ? change.target : change.target.parentElement;
      const result = target?.closest?.(".result");
      if (result) watch(result);
    }
  }).observe(root, { childList: true, characterData: true, subtree: true });
}
