// The edges of a show's life on the viewer page: a show that does not exist, has ended, or
// removed this viewer (an overlay that ends the page: video stopped, actions hidden); the
// host's stream paused or reconnecting (over the last frame, the top badge says so); this
// viewer's own connection (a badge while the live socket is down, cleared when it is
// back, with the cart re-read). viewer.js calls the hooks below from its onMessage/main.
// All text goes through textContent (common.js `el`).
import { el } from "/static/common.js";
import { humanMessage } from "/static/messages.js";

const $ = (id) => document.getElementById(id);

export const life = {
  status: null, // the show: scheduled | live | ended
  stream: "offline", // the host's video: offline | live | reconnecting | paused
  gone: null, // null, or why this page is over: not_found | ended | removed
  socket: "connecting", // connecting | ready | down
  video: "new", // this page's WHEP connection state
  cartReleased: false,
  lastError: null, // the code of the last error the server sent unasked (before a close)
};

let hooks = { stopVideo: () => {}, resync: () => {} };
let wasDown = false;
let muteTimer = null;

// (the words messages.js gives these two codes: cleared once the socket is back)
const TEXT = {
  offline: humanMessage({ code: "disconnected" }),
  timeout: humanMessage({ code: "timeout" }),
};

// Whether a refusal says for sure that the request was not taken, so that a new tap may use
// a new idempotency key. A lost connection, no answer in time or a server that was busy
// may have taken it: the next tap sends the same key again (one tap, one order).
const NOT_DEFINITIVE = new Set([
  "disconnected", "timeout", "internal_error", "request_in_progress", "checkout_in_progress",
  "inventory_unavailable", "order_store_unavailable", "payment_provider_unavailable",
  "rate_limited",
]);
export function definitive(error) {
  return !NOT_DEFINITIVE.has(error?.code);
}

export function initShowLife(options) {
  hooks = { ...hooks, ...options };
  const badge = el("span", { id: "conn", class: "conn", role: "status", hidden: true });
  $("show-status").after(badge);
  const notice = el("p", { id: "life-notice", class: "life-notice", role: "status", hidden: true });
  document.querySelector(".viewer .bottom")?.prepend(notice);
  const overlay = el("div", { id: "life", class: "life-overlay", role: "alert", hidden: true },
    el("h2", { id: "life-title" }), el("p", { id: "life-text" }),
    el("p", { id: "life-cart", class: "muted", hidden: true }),
    el("a", { id: "life-replay", hidden: true }, "Watch the replay"),
    el("a", { href: "/", class: "life-home" }, "See other shows"));
  $("viewer").append(overlay);
}

export function canWatch() {
  return !life.gone;
}

function over(kind, title, text) {
  if (life.gone) return;
  life.gone = kind;
  $("life-title").textContent = title;
  $("life-text").textContent = text;
  $("life").hidden = false;
  $("viewer").classList.add("show-over");
  $("conn").hidden = true;
  hooks.stopVideo();
  renderBadge();
  renderCartNote();
}

export function notFound() {
  over("not_found", "This show does not exist", "The link may be mistyped, or the show was removed.");
}

export function removed() {
  over("removed", "You were removed from this show", "A moderator removed you: you can no longer watch or take part.");
}

// Closed 4403 for a reason other than a ban (a link's token for another show): say so,
// rather than a silent page that never reconnects.
function cannotJoin() {
  over("forbidden", "This link cannot open this show", "Open the show from its own link, or from the list of shows.");
}

function ended(replayUrl) {
  over("ended", "The show has ended", "Thanks for watching!");
  if (replayUrl) {
    $("life-replay").href = replayUrl;
    $("life-replay").hidden = false;
  }
}

function renderCartNote() {
  const note = $("life-cart");
  if (!note) return;
  note.hidden = !(life.cartReleased && life.gone === "ended");
  note.textContent = "The show ended; the items in your cart were released.";
}

export function setShowStatus(status, replayUrl = null) {
  life.status = status;
  if (status === "ended") ended(replayUrl);
  renderBadge();
}

export function setStream(state) {
  life.stream = state || "offline";
  renderBadge();
}

// The top badge: the show's status, or what its video does while it is live.
function renderBadge() {
  const badge = $("show-status");
  if (!badge) return;
  let text = life.status || "…";
  if (life.status === "live" && ["paused", "reconnecting"].includes(life.stream)) text = life.stream;
  badge.textContent = text;
  badge.className = `status ${text === "live" ? "live" : ""}`;
}

// The message over the video (#stream-msg): hidden while the video plays.
export function renderStream(video) {
  const msg = $("stream-msg");
  const playing = video.videoWidth > 0 && !video.paused;
  let text = "";
  if (life.gone) text = "";
  else if (life.stream === "paused") text = "The host paused the stream";
  else if (life.stream === "reconnecting") text = "Reconnecting…";
  else if (!playing) text = "Waiting for the host…";
  if (text) msg.textContent = text;
  msg.hidden = !text;
}

function renderConnection() {
  const badge = $("conn");
  if (!badge) return;
  let text = "";
  if (life.gone) text = "";
  else if (life.socket === "down") text = "Offline - reconnecting…";
  else if (life.stream === "live" && ["disconnected", "failed"].includes(life.video)) text = "Video reconnecting…";
  badge.textContent = text;
  badge.hidden = !text;
}

// LiveSocket's onStatus.
export function socketStatus(status, code) {
  if (status === "ready") {
    life.socket = "ready";
    life.lastError = null;
    renderConnection();
    if (wasDown) {
      wasDown = false;
      // the offline/timeout answers are stale now
      for (const node of document.querySelectorAll("[role=status]")) {
        if (node.textContent === TEXT.offline || node.textContent === TEXT.timeout) node.textContent = "";
      }
      hooks.resync();
    }
  } else if (status === "closed") {
    if (code === 4403) {
      if (life.lastError === "show_not_found") notFound();
      else if (!life.lastError || life.lastError === "banned") removed();
      else cannotJoin();
      return;
    }
    life.socket = "down";
    wasDown = true;
    renderConnection();
  }
}

// The WHEP peer connection's state (RTCPeerConnection.connectionState).
export function videoStatus(state) {
  life.video = state;
  renderConnection();
}

// A refused WHEP offer: true when the page is over (no retry).
export function videoRefused(error) {
  if (error?.code === "show_ended") setShowStatus("ended");
  else if (error?.code === "banned") removed();
  else if (error?.code === "session_not_found" && error.status === 404) notFound();
  return Boolean(life.gone);
}

// Every server message goes through here first (viewer.js handles the rest).
export function lifeMessage(msg) {
  switch (msg.type) {
    case "error":
      if (!msg.ref) life.lastError = msg.code;
      if (msg.code === "banned" && !msg.ref) removed();
      break;
    case "moderation":
      if (msg.action === "ban") removed();
      if (msg.action === "mute") mutedFor(msg.seconds);
      if (msg.action === "unmute") mutedFor(0);
      break;
    case "order":
      if (msg.status === "cart_released") {
        life.cartReleased = true;
        const result = $("cart-result");
        if (result) result.textContent = "The show ended; the items in your cart were released.";
        renderCartNote();
        hooks.resync();  // (the cart, now empty)
      }
      break;
    default: break;
  }
}

function mutedFor(seconds) {
  const notice = $("life-notice");
  if (!notice) return;
  clearTimeout(muteTimer);
  const s = Number(seconds) || 0;
  if (s <= 0) { notice.hidden = true; return; }
  const span = s >= 120 ? `${Math.round(s / 60)} minutes` : `${s} second${s === 1 ? "" : "s"}`;
  notice.textContent = `A moderator muted you for ${span}: you can watch and shop, but not chat or ask.`;
  notice.hidden = false;
  muteTimer = setTimeout(() => { notice.hidden = true; }, s * 1000);
}
