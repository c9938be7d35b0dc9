// The live channel in step with the picture. A WebRTC viewer sees the host within a few
// hundred milliseconds, so events show at once; an HLS viewer sees the host seconds late,
// and a card pinned "now" must not appear before the picture in which the host shows it.
// Events that announce what is on screen (cards, deals, answers, polls) carry the show
// clock (`clock_ms`, ms since the show's `clock0_ms`, both the server's clock); the HLS
// picture carries the server's wall clock too (the playlist's EXT-X-PROGRAM-DATE-TIME:
// when the segment's first frame reached the server). An event is held until the picture
// time passes clock0 + clock_ms, then handed to the page's own dispatch. Everything held
// is released at once when the picture stalls, when the page is back on WebRTC, and a
// snapshot (the present) drops what it already contains.

// Shown when the picture reaches them (what the host says or shows on air).
const ON_AIR = new Set([
  "card_pinned", "card_unpinned", "deal_started", "deal_ended", "answer",
  "poll_opened", "poll_closed",
]);
// Facts about those (stock of a card, a catalog change): never held for their own sake, but
// kept in order behind held events so that a card released later is not left stale.
const IN_ORDER = new Set(["stock", "back_in_stock", "catalog_changed", "poll_tally"]);

export const STALL_MS = 4000;  // a picture stuck longer than this releases everything
const TICK_MS = 100;

const sync = {
  clock0: null,  // the show clock's origin, epoch ms (server clock)
  picture: null,  // () => epoch ms of the frame on screen, or null; null: WebRTC (no wait)
  queue: [],  // [{msg, due}] in arrival order; due: epoch ms, or null (behind the others)
  lastPicture: null,
  lastAdvance: 0,
  timer: null,
  dispatch: () => {},
};

// For tests and support: what is held and the picture's time.
window.__viewerSync = sync;

export function heldCount() {
  return sync.queue.length;
}

// The page's dispatch (viewer.js onMessage).
export function initSync(dispatch) {
  sync.dispatch = dispatch;
}

// The picture clock: a function answering the epoch ms of the frame on screen (HLS), or
// null for WebRTC, which releases what is held.
export function usePicture(picture) {
  sync.picture = picture;
  sync.lastPicture = null;
  sync.lastAdvance = performance.now();
  if (!picture) release(Infinity);
  else tick();
}

// Every live-channel message goes through here.
export function deliver(msg) {
  if (msg.type === "snapshot") {
    if (Number.isFinite(msg.clock0_ms)) sync.clock0 = msg.clock0_ms;
    else if (Number.isFinite(msg.clock_ms)) sync.clock0 = Date.now() - msg.clock_ms;  // (older server)
    sync.queue = [];  // (the snapshot holds their effect: it is the present)
    sync.dispatch(msg);
    return;
  }
  const held = sync.picture && sync.clock0 !== null;
  if (held && !sync.queue.length) { sync.lastPicture = null; sync.lastAdvance = performance.now(); }
  if (held && ON_AIR.has(msg.type) && Number.isFinite(msg.clock_ms)) {
    sync.queue.push({ msg, due: sync.clock0 + msg.clock_ms });
  } else if (held && IN_ORDER.has(msg.type) && sync.queue.length) {
    sync.queue.push({ msg, due: null });
  } else {
    sync.dispatch(msg);
    return;
  }
  tick();
}

function tick() {
  if (!sync.picture) { release(Infinity); return; }
  const now = performance.now();
  const at = sync.picture();
  if (Number.isFinite(at) && (sync.lastPicture === null || at > sync.lastPicture)) {
    sync.lastPicture = at;
    sync.lastAdvance = now;
  }
  if (now - sync.lastAdvance > STALL_MS) release(Infinity);  // stalled: do not hold forever
  else if (Number.isFinite(at)) release(at);
  if (sync.queue.length && !sync.timer) sync.timer = setInterval(tick, TICK_MS);
  if (!sync.queue.length && sync.timer) { clearInterval(sync.timer); sync.timer = null; }
}

// Hand out, in order, every held event due at or before `upTo`.
function release(upTo) {
  while (sync.queue.length) {
    const { msg, due } = sync.queue[0];
    if (due !== null && due > upTo) break;
    sync.queue.shift();
    sync.dispatch(msg);
  }
  if (!sync.queue.length && sync.timer) { clearInterval(sync.timer); sync.timer = null; }
}
