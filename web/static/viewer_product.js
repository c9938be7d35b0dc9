// A product's sheet: tapping a card's image or name opens its description, images and
// every variant with its price and stock, with Buy and Add from the sheet. Buy and Add act
// through the card itself (its variant choice and buttons), so a buy from the sheet is
// the card's buy: one idempotency key, one answer, shown on both.
import { el, money } from "/static/common.js";

let current = null;

function optionName(variant) {
  return Object.values(variant.attributes || {}).join(" / ") || variant.sku || "One size";
}

function stockText(variant) {
  return variant.available > 0 ? `${variant.available} left` : "Sold out";
}

function open(card, node, cardOf) {
  current?.remove();
  const fresh = () => cardOf(card.product_id) || card;
  const variants = fresh().variants || [];
  const choose = node.querySelector("select");
  let chosen = choose?.value || variants[0]?.id;
  const status = el("p", { class: "result", role: "status" });
  const buy = el("button", { type: "button", class: "buy" }, "Buy now");
  const add = el("button", { type: "button", class: "secondary" }, "Add to cart");
  const list = el("ul", { class: "plain variants", "aria-label": "Options" });
  const images = [...new Set([...(card.images || []), card.image_url].filter(Boolean))];
  const draw = () => {
    const live = fresh().variants || variants;
    list.replaceChildren(...live.map((v) => {
      const radio = el("input", { type: "radio", name: "sheet-variant", value: v.id, id: `sheet-${v.id}`, checked: v.id === chosen });
      radio.addEventListener("change", () => { chosen = v.id; draw(); });
      return el("li", { class: `row variant${v.available > 0 ? "" : " sold"}` }, radio,
        el("label", { for: `sheet-${v.id}`, class: "grow", text: optionName(v) }),
        el("span", { text: money(v.price) }), el("span", { class: "muted stock", text: stockText(v) }));
    }));
    const picked = live.find((v) => v.id === chosen);
    buy.disabled = add.disabled = !picked || picked.available <= 0;
  };
  const viaCard = (selector) => {
    const target = node.isConnected ? node : document.querySelector(`.card[data-product="${CSS.escape(card.product_id)}"]`);
    const select = target?.querySelector("select");
    if (select && select.value !== chosen) { select.value = chosen; select.dispatchEvent(new Event("change")); }
    const result = target?.querySelector(".result");
    target?.querySelector(selector)?.click();
    if (result) {  // mirror the card's answer here
      const mirror = () => { status.textContent = result.textContent; status.className = result.className; };
      mirror();
      new MutationObserver(mirror).observe(result, { childList: true, characterData: true, subtree: true, attributes: true });
    }
  };
  buy.addEventListener("click", () => viaCard(".buy"));
  add.addEventListener("click", () => viaCard(".add"));
  const close = el("button", { type: "button", class: "secondary", "aria-label": "Close product details" }, "Close");
  current = el("dialog", { class: "sheet product-sheet", "aria-label": `${card.name} details` },
    el("div", { class: "row" }, el("h2", { class: "grow", text: card.name }), close),
    images.length ? el("div", { class: "gallery" }, ...images.map((src) => el("img", { src, alt: card.name }))) : null,
    el("p", { class: "description", text: fresh().description || "No description yet." }),
    list,
    el("div", { class: "row actions" }, buy, add),
    status);
  close.addEventListener("click", () => current.close());
  current.addEventListener("close", () => { current?.remove(); current = null; });
  document.getElementById("viewer").append(current);
  draw();
  current._redraw = draw;
  current.showModal();
  close.focus();
}

// Make a card's image and name open its sheet. `cardOf(id)` is the card as it is now.
export function attachProduct(node, card, cardOf) {
  for (const target of node.querySelectorAll("img, h3")) {
    target.classList.add("opens-sheet");
    target.setAttribute("role", "button");
    target.setAttribute("tabindex", "0");
    target.setAttribute("aria-label", `Details of ${card.name}`);
    target.addEventListener("click", () => open(card, node, cardOf));
    target.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); open(card, node, cardOf); }
    });
  }
}

// Stock changed: a sheet that is open shows it.
export function refreshProduct() { current?._redraw?.(); }
