// Viewer page: the video fills the screen, cards and chat float over it, buying never
// leaves the stream. All user text goes through textContent (see common.js `el`).
import { api, Credentials, el, hangUp, hashParams, LiveSocket, loadShow, money, negotiate, newKey, setExponents, showId } from "/static/common.js";
import { humanMessage } from "/static/messages.js";
import * as life from "/static/viewer_show.js";
import { cardForm, completeAction, paymentConfig, paymentMethod, savedCards } from "/static/payments.js";
import { ViewerQuestions } from "/static/viewer_questions.js";
import { openDrawer } from "/static/viewer_layout.js";  // drawer, overlays, full screen (part F)
import { initCart, nameOf, renderCart, syncCart } from "/static/viewer_cart.js";
import { drawPoll, onReactions, setMyVote, setReactionTotals } from "/static/viewer_engage.js";
import { backInStock, clearStaleResults } from "/static/viewer_notices.js";
import { initOrders, receiptButton, showReceipt } from "/static/viewer_orders.js";
import { HLS_PLAYER } from "/static/hls_player.js";
import { attachProduct, refreshProduct } from "/static/viewer_product.js";
import * as sync from "/static/viewer_sync.js";  // events in step with an HLS picture
const $ = (id) => document.getElementById(id);
const state = { cards: new Map(), deals: new Map(), poll: null, me: null, stream: "offline" };
const questions = new ViewerQuestions({ request: (type, fields) => live.request(type, fields), me: () => state.me });

// The viewer's identity: a token from the link, or a guest identity kept on this device.
// Either renews itself; a guest whose token could not be renewed in time (the phone slept
// past its expiry) gets a new guest identity rather than losing the live channel.
const SAVED = "liveshop.viewer";

async function newGuest(name) {
  const issued = await api("POST", "/api/viewers", { body: { name: name || `Guest ${Math.floor(1000 + Math.random() * 9000)}` } });
  localStorage.setItem(SAVED, JSON.stringify(issued));
  return issued;
}

async function identity() {
  const fromHash = hashParams().get("token");
  if (fromHash) return new Credentials(fromHash, { inHash: true });
  let issued = null;
  try { issued = JSON.parse(localStorage.getItem(SAVED)); } catch {}
  if (!issued?.token || issued.expires_at * 1000 <= Date.now() + 60_000) issued = await newGuest(issued?.name);
  return new Credentials(issued.token, {
    onRenewed: (fresh) => localStorage.setItem(SAVED, JSON.stringify(fresh)),
    fallback: () => newGuest(issued.name),
  });
}

// ---- video: WebRTC (WHEP) while the show has room and the network allows, else HLS ----
// HLS (hls.js, or Safari's own player) when the relay answers 503 video_full (every relay
// of the show past its viewer budget) or keeps answering video_unavailable, when WebRTC does
// not connect within CONNECT_TIMEOUT_MS (UDP blocked), or when the page URL says ?hls=1
// (tests, support). A show without HLS (its playlist 404: a VP8 host) stays on WebRTC.
// The video element says which: data-transport="webrtc" | "hls".
const HLS_URL = `/hls/${encodeURIComponent(showId)}/index.m3u8`;
const FORCE_HLS = new URLSearchParams(location.search).get("hls") === "1";
const CONNECT_TIMEOUT_MS = 8000;
const UNAVAILABLE_BEFORE_HLS = 3;  // video_unavailable answers in a row before trying HLS
let transport = FORCE_HLS ? "hls" : "webrtc";
let pc = null;
let whepLocation = null;
let whepToken = null;
let unavailable = 0;
let notConnectedSince = null;  // answered but not connected since (across retries)
let hls = null;  // the hls.js player, or true for Safari's own
let hlsRetry = null;
function setStreamMessage() {
  life.renderStream($("video"));  // (viewer_show.js: paused, reconnecting, waiting)
}

async function watch() {
  if (transport === "hls") { watchHls(); return; }
  if (pc || !life.canWatch()) return;
  $("video").dataset.transport = "webrtc";
  const mine = pc = new RTCPeerConnection();
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  const stream = new MediaStream();
  pc.ontrack = (event) => {
    stream.addTrack(event.track);
    $("video").srcObject = stream;
  };
  pc.onconnectionstatechange = () => {
    if (pc !== mine) return;
    life.videoStatus(pc.connectionState);
    if (pc.connectionState === "connected") notConnectedSince = null;
    if (["failed", "closed"].includes(pc.connectionState)) restartVideo();
  };
  try {
    whepToken = credentials.token;  // the session is ended with the token that opened it
    whepLocation = await negotiate(pc, `/whep/${encodeURIComponent(showId)}`, whepToken);
    unavailable = 0;
    notConnectedSince ??= performance.now();
    setTimeout(() => {  // no media path (UDP blocked): HLS, if the show has it
      if (pc === mine && pc.connectionState !== "connected") toHls();
    }, CONNECT_TIMEOUT_MS);
  } catch (error) {
    if (pc === mine) { pc.close(); pc = null; }
    if (life.videoRefused(error)) return;
    if (error.code === "video_full") { if (await toHls()) return; }
    if (error.code === "video_unavailable" && ++unavailable >= UNAVAILABLE_BEFORE_HLS) {
      if (await toHls()) return;
    }
    setTimeout(watch, 3000);
  }
}

// Whether the show's HLS playlist is served now (a VP8 host's show has none).
async function hasHls() {
  try {
    const resp = await fetch(HLS_URL, { cache: "no-store" });
    return resp.ok;
  } catch { return false; }
}

// WebRTC cannot serve this viewer: HLS if the show has it (true), else WebRTC goes on.
async function toHls() {
  if (transport === "hls" || !life.canWatch() || !(await hasHls())) return false;
  closeWebrtc();
  transport = "hls";
  notConnectedSince = null;
  watchHls();
  return true;
}

function closeWebrtc() {
  const was = pc;
  pc = null;
  if (was) was.close();
  hangUp(whepLocation, whepToken);
  whepLocation = null;
}

let hlsStarting = false;
async function watchHls() {
  if (hls || hlsStarting || !life.canWatch()) return;
  hlsStarting = true;  // (one player, whoever asks while it starts)
  try { await startHls(); } finally { hlsStarting = false; }
}

async function startHls() {
  const video = $("video");
  video.dataset.transport = "hls";
  clearTimeout(hlsRetry);
  if (!(await hasHls())) {  // (not yet packaged, or the host is away)
    if (!FORCE_HLS && life.stream === "live") { transport = "webrtc"; sync.usePicture(null); watch(); return; }
    hlsRetry = setTimeout(watchHls, 2000);
    return;
  }
  if (hls || !life.canWatch()) return;
  video.srcObject = null;
  if (video.canPlayType("application/vnd.apple.mpegurl") && typeof video.getStartDate === "function") {
    hls = true;  // Safari: its own player; the picture's date is the playlist's start date
    video.src = HLS_URL;
    sync.usePicture(() => {
      const start = video.getStartDate().getTime();
      return Number.isFinite(start) && video.readyState >= 2 ? start + video.currentTime * 1000 : null;
    });
    video.play().catch(() => {});
    return;
  }
  const { default: Hls } = await import("/static/vendor/hls.min.mjs");
  if (hls || !life.canWatch()) return;
  const player = hls = new Hls({
    ...HLS_PLAYER,  // (~2 s behind the live edge with ~1 s segments: hls_player.js)
    enableWorker: false,  // (the pages' CSP allows no blob: worker; fMP4 needs no transmuxing)
  });
  player.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch(() => {}));
  player.on(Hls.Events.FRAG_CHANGED, () => life.videoStatus("connected"));
  player.on(Hls.Events.ERROR, (_event, data) => {
    if (!data.fatal || hls !== player) return;
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR) { player.recoverMediaError(); return; }
    life.videoStatus("disconnected");
    stopHls();
    hlsRetry = setTimeout(watchHls, 2000);  // (the host away: the playlist is back with them)
  });
  player.loadSource(HLS_URL);
  player.attachMedia(video);
  // (hls.js dates the fragment it loads even before a frame of it shows: no picture, no date)
  sync.usePicture(() => (video.readyState >= 2 ? player.playingDate?.getTime() ?? null : null));
}

function stopHls() {
  clearTimeout(hlsRetry);
  const video = $("video");
  if (hls && hls !== true) hls.destroy();
  if (hls) { video.removeAttribute("src"); video.load(); }
  hls = null;
}

// The show ended or this viewer was removed: the video stops, and stays stopped.
function stopVideo() {
  closeWebrtc();
  stopHls();
  sync.usePicture(null);
  $("video").srcObject = null;
}

async function restartVideo() {
  if (!life.canWatch() || transport !== "webrtc") return;
  closeWebrtc();
  // (ICE that fails fast, attempt after attempt, is no connection either)
  const waited = notConnectedSince !== null && performance.now() - notConnectedSince >= CONNECT_TIMEOUT_MS;
  if (waited && await toHls()) return;
  setTimeout(watch, 1000);
}

// ---- cards ----
function countdown(endsAt) {
  const left = Math.max(0, Math.round((Date.parse(endsAt) - Date.now()) / 1000));
  return `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
}

// A deal as checkout lists it ({price}) or as the deal_started event carries it.
function dealPrice(deal) {
  return deal.price || { amount: deal.deal_price_minor, currency: deal.currency };
}

function cardVariant(card, node) {
  const select = node.querySelector("select");
  const id = select ? select.value : card.variants[0]?.id;
  return card.variants.find((v) => v.id === id) || card.variants[0];
}

function renderCards() {
  const root = $("cards");
  root.replaceChildren();
  for (const card of state.cards.values()) root.append(renderCard(card));
}

const buyKeys = new Map();  // variant id -> the idempotency key of its buy until answered

function renderCard(card) {
  const node = el("article", { class: "card", "aria-label": card.name, "data-product": card.product_id });
  const result = el("p", { class: "result", role: "status" });
  const variants = card.variants || [];
  const select = variants.length > 1
    ? el("select", { "aria-label": `${card.name} option` },
        ...variants.map((v) => el("option", { value: v.id, text: Object.values(v.attributes || {}).join(" / ") || v.sku })))
    : null;
  const price = el("p", { class: "price" });
  const units = el("p", { class: "muted units" });
  const buy = el("button", { type: "button", class: "buy" }, "Buy now");
  const add = el("button", { type: "button", class: "secondary add" }, "Add to cart");
  const notify = el("button", { type: "button", class: "secondary notify" }, "Notify me");
  const refresh = () => {
    const variant = cardVariant(card, node);
    const deal = variant && state.deals.get(variant.id);
    price.replaceChildren();
    if (deal && Date.parse(deal.ends_at) > Date.now()) {
      price.append(el("span", { class: "deal", text: money(dealPrice(deal)) }),
        el("s", { text: money(variant.price) }), el("span", { class: "deal", text: ` ends in ${countdown(deal.ends_at)}` }));
    } else {
      price.append(money(variant?.price || card.price));
    }
    const left = variant ? variant.available : card.available;
    const soldOut = left <= 0;
    units.textContent = soldOut ? "Sold out" : `${left} left`;
    buy.disabled = soldOut;
    add.disabled = soldOut;
    notify.hidden = !soldOut;
  };
  node._refresh = refresh;
  buy.addEventListener("click", async () => {
    const variant = cardVariant(card, node);
    // A double tap, or a tap again after a lost answer, reuses the key: one order, never
    // two (kept by variant, so that a card drawn again keeps it too).
    const pendingKey = buyKeys.get(variant.id) ?? newKey();
    buyKeys.set(variant.id, pendingKey);
    buy.disabled = true;
    result.className = "result";
    result.textContent = "Buying…";
    try {
      const fields = { variant_id: variant.id, quantity: 1, idempotency_key: pendingKey };
      const reply = await pay("buy_now", fields, result);
      result.className = "result ok";
      result.textContent = `Bought! Order ${reply.order.order_id}`;
      result.append(" ", receiptButton(reply.order));
      buyKeys.delete(variant.id);
    } catch (error) {
      result.className = "result fail";
      result.textContent = reasonText(error);
      // kept until a definitive answer: a retry after a lost answer is the same buy
      if (life.definitive(error)) buyKeys.delete(variant.id);
    } finally {
      refresh();
    }
  });
  add.addEventListener("click", async () => {
    try {
      const reply = await live.request("add_to_cart", { variant_id: cardVariant(card, node).id, quantity: 1 });
      renderCart(reply.cart);
      result.className = "result ok";
      result.textContent = "Added to your cart";
    } catch (error) {
      result.className = "result fail";
      result.textContent = reasonText(error);
    }
  });
  notify.addEventListener("click", async () => {
    try {
      await live.request("notify_me", { variant_id: cardVariant(card, node).id });
      result.className = "result ok";
      result.textContent = "We will tell you when it is back";
    } catch (error) {
      result.className = "result fail";
      result.textContent = reasonText(error);
    }
  });
  node.addEventListener("click", (event) => {
    if (event.target === node) live.request("tap", { product_id: card.product_id }).catch(() => {});
  });
  select?.addEventListener("change", refresh);
  node.append(
    el("img", { src: card.image_url || "", alt: "" }),
    el("div", {}, el("h3", { text: card.name }), price, units),
    el("div", { class: "actions" }, select, buy, add, notify),
    result,
  );
  attachProduct(node, card, (id) => state.cards.get(id));
  refresh();
  return node;
}

// A buy or a cart checkout; one the bank wants to authenticate (3-D Secure) is completed
// on the page and sent again with the same idempotency key: the same payment, now paid.
async function pay(type, fields, status) {
  const send = () => live.request(type, { ...fields, payment_method: paymentMethod() });
  try {
    return await send();
  } catch (error) {
    if (error.code === "payment_method_missing") openDrawer();
    if (error.code !== "payment_requires_action") throw error;
    status.textContent = "Confirm the payment with your bank…";
    await completeAction(error);
    return send();
  }
}

// Card on file (Stripe only): the drawer's "Your card" section.
async function setUpCardOnFile() {
  const config = await paymentConfig();
  if (config.provider !== "stripe") return;
  const section = $("card-on-file");
  section.hidden = false;
  const show = async () => {
    const cards = await savedCards(credentials.token);
    const card = cards.find((c) => c.default);
    $("card-saved").textContent = card ? `${card.brand} ending ${card.last4}, ${card.exp_month}/${card.exp_year}` : "No card saved yet";
  };
  let save = null;
  $("add-card").addEventListener("click", async () => {
    try {
      $("card-result").textContent = "";
      save ??= await cardForm(credentials.token, $("card-element"));
      $("save-card").hidden = false;
    } catch (error) { $("card-result").textContent = reasonText(error); }
  });
  $("save-card").addEventListener("click", async () => {
    $("card-result").textContent = "Saving…";
    try {
      await save();
      $("card-result").textContent = "Card saved: one tap buys with it";
      await show();
    } catch (error) { $("card-result").textContent = reasonText(error); }
  });
  await show().catch(() => {});
}

// Every refusal in words a shopper reads (web/static/messages.js), never the raw server text.
function reasonText(error) {
  return humanMessage(error);
}

function applyStock({ variant_id, available }) {
  for (const card of state.cards.values()) {
    const variant = (card.variants || []).find((v) => v.id === variant_id);
    if (!variant) continue;
    variant.available = available;
    variant.sold_out = available <= 0;
    card.available = card.variants.reduce((n, v) => n + Math.max(0, v.available), 0);
    card.sold_out = card.available <= 0;
  }
  for (const node of document.querySelectorAll(".card")) node._refresh?.();
  refreshProduct();
}

// ---- cart ----
function variantName(variantId) {
  for (const card of state.cards.values()) {
    const variant = (card.variants || []).find((v) => v.id === variantId);
    if (variant) {
      const options = Object.values(variant.attributes || {}).join(" / ");
      return options ? `${card.name} (${options})` : card.name;
    }
  }
  return "Item";
}

// renderCart: web/static/viewer_cart.js (hold timers, quantities).

// ---- chat, questions, polls ----
function addChat(msg) {
  const chat = $("chat");
  chat.append(el("li", { "data-id": msg.id }, el("span", { class: "who", text: msg.name }), el("span", { text: msg.text })));
  while (chat.children.length > 50) chat.firstElementChild.remove();
  chat.scrollTop = chat.scrollHeight;
}

function renderPoll() {
  drawPoll($("poll"), state.poll, (type, fields) => live.request(type, fields));
}

function setStatus(status, replayUrl = null) {
  life.setShowStatus(status, replayUrl);
  setStreamMessage();
}

function onMessage(msg) {
  life.lifeMessage(msg);
  switch (msg.type) {
    case "hello": state.me = msg; break;  // (a reconnect re-reads the cart: life's resync)
    case "snapshot":
      setExponents(msg.currencies);
      setReactionTotals(msg.reactions);
      setMyVote(msg.poll?.poll_id ?? null, msg.my_vote);
      setStatus(msg.status, msg.replay_url);
      state.cards = new Map((msg.cards || []).map((c) => [c.product_id, c]));
      state.deals = new Map((msg.deals || []).map((d) => [d.variant_id, d]));
      questions.reset(msg.questions, { isPublic: msg.questions_public });
      state.poll = msg.poll || null;
      if (msg.stream) { state.stream = msg.stream; life.setStream(msg.stream); setStreamMessage(); }
      $("chat").replaceChildren();
      (msg.chat || []).forEach(addChat);
      if (msg.viewers) $("viewers").textContent = `${msg.viewers.now} watching`;
      renderCards(); renderPoll();
      syncCart();  // the badge is right after a reload
      break;
    case "chat": addChat(msg); break;
    case "chat_deleted": document.querySelector(`#chat [data-id="${CSS.escape(msg.message_id)}"]`)?.remove(); break;
    case "reactions": onReactions(msg); break;
    case "viewers": $("viewers").textContent = `${msg.now} watching`; break;
    case "card_pinned": state.cards.set(msg.card.product_id, msg.card); renderCards(); break;
    case "card_unpinned": state.cards.delete(msg.product_id); renderCards(); break;
    case "catalog_changed": state.cards = new Map((msg.cards || []).map((c) => [c.product_id, c])); renderCards(); break;
    case "stock": applyStock(msg); break;
    case "deal_started": state.deals.set(msg.variant_id, msg); renderCards(); break;
    case "deal_ended": state.deals.delete(msg.variant_id); renderCards(); break;
    case "back_in_stock": applyStock(msg); backInStock(msg, state.cards, nameOf); break;
    case "order":
      if (msg.status === "cart_expired") $("cart-result").textContent = "Your cart expired and its items were released.";
      break;
    case "question": case "question_updated": case "answer": questions.event(msg); break;
    case "poll_opened": state.poll = msg.poll; renderPoll(); break;
    case "poll_tally": if (state.poll?.poll_id === msg.poll_id) { state.poll.tally = msg.tally; renderPoll(); } break;
    case "poll_closed": state.poll = { ...msg.poll, closed: true }; renderPoll(); break;
    case "show_status": setStatus(msg.status, msg.replay_url); break;
    case "stream": {
      const was = state.stream;
      state.stream = msg.state; life.setStream(msg.state); setStreamMessage();
      // (the host back: an HLS playlist ended with their stream is read afresh)
      if (msg.state === "live" && hls && was !== "live") { stopHls(); watchHls(); }
      else if (msg.state === "live" && !pc && !hls) watch();
      break;
    }
    case "moderation":
      // (a mute is told by viewer_show.js's notice)
      if (msg.action === "slow_mode") addChat({ name: "liveshop", text: `Slow mode: one message every ${msg.seconds} s.` });
      break;
    default: break;
  }
}

let live;
let credentials;

async function main() {
  life.initShowLife({
    stopVideo,
    resync: () => syncCart(),
  });
  const show = await loadShow().catch(() => undefined);  // (offline: carry on)
  if (show === null) { life.notFound(); return; }  // no such show: no socket, no video
  if (show?.status) setStatus(show.status);
  credentials = await identity();
  sync.initSync(onMessage);
  live = new LiveSocket(credentials, sync.deliver, life.socketStatus);
  questions.mount($("chat"));
  initCart({ request: (type, fields) => live.request(type, fields), variantName });
  initOrders({ token: () => credentials.token, variantName: nameOf });
  clearStaleResults($("cards"));
  watch();
  setUpCardOnFile().catch(() => {});
  const video = $("video");
  for (const name of ["playing", "resize", "pause", "emptied"]) video.addEventListener(name, setStreamMessage);
  setInterval(() => { for (const node of document.querySelectorAll(".card")) node._refresh?.(); setStreamMessage(); }, 1000);
  $("unmute").addEventListener("click", () => { video.muted = !video.muted; $("unmute").textContent = video.muted ? "Unmute" : "Mute"; });
  // A chat or a question from the field; the field is cleared only if it still holds what
  // was sent (a viewer who typed the next message while this one was on its way keeps it).
  const post = async (type, sent) => {
    const input = $("chat-input");
    if (!input.value.trim()) return;
    const text = input.value;
    try {
      const reply = await live.request(type, { text });
      if (input.value === text) input.value = "";
      if (sent) addChat({ name: "liveshop", text: typeof sent === "function" ? sent(reply) : sent });
    } catch (error) { addChat({ name: "liveshop", text: reasonText(error) }); }
  };
  $("chat-form").addEventListener("submit", (event) => { event.preventDefault(); post("chat"); });
  $("ask").addEventListener("click", () => post("ask", (reply) => (reply?.status === "answered"
    ? "Answered at once, from the show's own information." : "Question sent to the moderators.")));
  $("react").addEventListener("click", () => live.send("react", { emoji: "❤" }));
  $("open-cart").addEventListener("click", () => {  // viewer_layout.js opens the drawer
    syncCart();
  });
  let checkoutKey = null;
  $("checkout").addEventListener("click", async () => {
    checkoutKey ??= newKey();
    $("cart-result").textContent = "Paying…";
    try {
      const reply = await pay("checkout_cart", { idempotency_key: checkoutKey }, $("cart-result"));
      checkoutKey = null;
      $("cart-result").textContent = `Order ${reply.order.order_id} confirmed`;
      showReceipt(reply.order);
      renderCart((await live.request("view_cart")).cart);
    } catch (error) {
      $("cart-result").textContent = reasonText(error);
      if (life.definitive(error)) checkoutKey = null;  // (else the retry is the same checkout)
    }
  });
}

main();
