// Host studio: the show's controls (title, schedule, start, end with its summary), camera
// preview and "Go live" over WHIP with the stream's health, products and stock, pin and deal
// controls, live stats, chat and reactions, every question with an answer box, and polls.
import { answerSource, api, Credentials, seconds, el, exponentOf, hangUp, hashParams, LiveSocket, money, negotiate, setExponents, showId } from "/static/common.js";
import { setupObs } from "/static/studio_obs.js";

const $ = (id) => document.getElementById(id);
const credentials = new Credentials(hashParams().get("token"), { inHash: true });
const whipUrl = new URL(`/whip/${encodeURIComponent(showId)}`, location.href).toString();
const state = {
  show: null, status: null, pinned: new Set(), deals: new Map(), questions: new Map(), poll: null,
  available: new Map(), reactions: new Map(), viewers: null, lastStats: null, currency: "EUR",
  stream: "offline", videoHealth: null,  // the server's: whoever publishes (this tab, OBS)
};
let live;
let pc = null;
let whipLocation = null;
let whipToken = null;  // the session is ended with the token that opened it
let camera = null;

function say(text) { $("publish-msg").textContent = text; }

// ---- money: a price typed in the currency's major unit (63.20) -> integer minor units ----
// The currency's exponent (ISO 4217): common.js's exponentOf, which knows the server's
// (a price's `exponent`, and the snapshot's `currencies`), else what Intl says.
const exponentFor = (currency, price = null) => exponentOf(price?.currency === currency ? price : { currency });
function toMinor(text, currency) {
  const exp = exponentFor(currency);
  const value = String(text).trim().replace(",", ".");
  const match = exp ? value.match(new RegExp(`^(\\d{1,12})(?:\\.(\\d{0,${exp}}))?$`)) : value.match(/^(\d{1,12})$/);
  if (!match) {
    const example = exp ? `12${"."}${"5".padEnd(exp, "0")}` : "1200";
    throw Object.assign(new Error(`enter an amount in ${currency} such as ${example}` + (exp ? ` (at most ${exp} decimals)` : " (no decimals)")), { code: "price_format" });
  }
  return Number(match[1]) * 10 ** exp + Number((match[2] || "").padEnd(exp, "0") || 0);
}
function toMajor(minor, currency) {
  const exp = exponentFor(currency);
  return exp ? (minor / 10 ** exp).toFixed(exp) : String(minor);
}
function dealPrice(deal) { return deal.price || { amount: deal.deal_price_minor, currency: deal.currency }; }

// ---- errors in human words ----
const FIELD_NAMES = {
  name: "Name", description: "Description", image_url: "Image URL", sku: "SKU", stock: "Stock",
  "price.amount": "Price", "price.currency": "Currency", attributes: "Attributes", title: "Title",
  scheduled_at: "Start time", price_minor: "Deal price", units: "Units", duration_s: "Minutes",
  per_buyer_limit: "Limit per buyer", text: "Answer", options: "Options", question: "Question",
};
const FIELD_HINTS = {
  image_url: "use an https:// address or a path of this site such as /static/img/x.svg",
  sku: "letters, digits, dots, dashes or underscores, at most 64",
  "price.currency": "three capital letters, such as EUR",
  stock: "a whole number, 0 or more",
  title: "1 to 200 characters",
  name: "1 to 200 characters",
  scheduled_at: "pick a date between the years 2000 and 9998",
};
const CODE_WORDS = {
  duplicate_sku: "That SKU is used already: choose another one.",
  show_ended: "The show has ended: it cannot change any more.",
  show_not_live: "Start the show first.",
  stock_below_held: "Viewers hold more units than that in their carts right now.",
  invalid_stock: "Stock is a whole number, 0 or more.",
  deal_running: "A deal is running for this item already.",
  invalid_deal: "That deal is not possible: check the price (below the regular one), units and limit.",
  illegal_transition: "The show cannot do that from where it is now.",
  forbidden_role: "This link may not change the show: open the host link liveshop printed.",
  forbidden_show: "This link is for another show: open this show's host link.",
  auth_expired: "Your sign-in expired: open the host link liveshop printed again.",
  auth_invalid: "This link is not valid: open the host link liveshop printed.",
  disconnected: "Not connected to the show right now: try again in a moment.",
  question_not_found: "That question is gone.",
  product_not_found: "That product is gone.",
  variant_not_found: "That item is gone.",
  rate_limited: "Too fast: wait a moment and try again.",
  price_format: null,
};
function human(error) {
  const fields = error.fields || {};
  const named = Object.entries(fields).map(([key, reason]) => {
    const field = key.replace(/^variants\.\d+\./, "").replace(/^body$/, "");
    const base = field.split(".").slice(0, 2).join(".");
    const label = FIELD_NAMES[base] || FIELD_NAMES[field.split(".")[0]] || field;
    const hint = FIELD_HINTS[base] || FIELD_HINTS[field.split(".")[0]] || reason;
    return label ? `${label}: ${hint}` : hint;
  });
  if (error.code === "invalid_input" && named.length) return `Please check ${named.join("; ")}.`;
  if (error.code in CODE_WORDS && CODE_WORDS[error.code]) return CODE_WORDS[error.code];
  return error.message ? error.message.charAt(0).toUpperCase() + error.message.slice(1) : "Something went wrong.";
}

// ---- sign-in ----
function signIn(text) {
  $("studio").hidden = true;
  $("signin").hidden = false;
  $("signin-msg").textContent = text;
  live?.close();
  pc?.close(); pc = null;
  camera?.getTracks().forEach((t) => t.stop());
}
function tokenProblem() {
  if (!credentials.token) return "Open the host link liveshop printed: this address has no sign-in token.";
  const claims = credentials.claims();
  if (!claims) return "This link's token cannot be read. Open the host link liveshop printed.";
  if (claims.role !== "host") return `This is a ${claims.role}'s link, not the host's. Open the host link liveshop printed.`;
  if (claims.show && claims.show !== showId) return "This host link is for another show. Open the host link liveshop printed for this show.";
  return null;
}

// ---- the show: title, schedule, status, start and end ----
const STATUS_WORDS = { scheduled: "Scheduled", live: "Live", ended: "Ended" };
function localInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
function setStatus(status) {
  if (!status || status === state.status) return;
  state.status = status;
  $("show-status").textContent = STATUS_WORDS[status] || status;
  $("show-status").className = `status ${status === "live" ? "live" : status === "ended" ? "ended" : ""}`;
  $("start-show").hidden = status !== "scheduled";
  $("end-show").hidden = status !== "live";
  const ended = status === "ended";
  for (const node of document.querySelectorAll("#show-form input, #show-form button, #product-form input, #product-form textarea, #product-form button")) node.disabled = ended;
  if (ended) onEnded();
  refreshProducts();
}
async function onEnded() {
  $("go-live").disabled = true;
  $("stop").disabled = true;
  if (pc || whipLocation) {
    await hangUp(whipLocation, whipToken);
    whipLocation = null;
    pc?.close(); pc = null;
  }
  camera?.getTracks().forEach((t) => t.stop());
  camera = null;
  $("preview").srcObject = null;
  $("preview").hidden = true;
  if (state.show?.title) $("show-title").value = state.show.title;
  for (const node of document.querySelectorAll("#chat-form input, #chat-form button, #poll-form input, #poll-form button, .devices select")) node.disabled = true;
  $("stream-state").textContent = "ended";
  $("stream-state").className = "status";
  say("The show has ended.");
  $("show-msg").textContent = "";
  $("summary").hidden = false;
  renderSummary(state.lastStats);
  await refreshStats();
  renderHealth(null);
}
function renderSummary(stats) {
  const s = stats || {};
  const cells = [
    ["Orders", s.orders ?? 0], ["Revenue", money({ amount: s.revenue_minor || 0, currency: state.currency })],
    ["Units sold", s.units_sold ?? 0], ["Peak viewers", s.viewers_peak ?? 0],
    ...answerCells(s.questions),
  ];
  $("summary-stats").replaceChildren(...cells.map(([label, value]) => el("div", {}, el("b", { text: String(value) }), el("span", { class: "muted", text: label }))));
  const replay = state.show?.replay_url;
  $("replay").replaceChildren(replay ? el("a", { href: replay, text: "Watch the replay" }) : "Replay: coming soon");
}
async function saveShow(event) {
  event.preventDefault();
  const when = $("show-when").value;
  const body = { title: $("show-title").value, scheduled_at: when ? new Date(when).toISOString() : null };
  try {
    const show = await api("PATCH", `/api/shows/${encodeURIComponent(showId)}`, { token: credentials.token, body });
    state.show = { ...state.show, ...show };
    document.title = `liveshop · ${show.title}`;
    $("show-msg").textContent = "Saved";
  } catch (error) { $("show-msg").textContent = human(error); }
}
async function startShow() {
  try {
    const show = await api("POST", `/api/shows/${encodeURIComponent(showId)}/start`, { token: credentials.token });
    setStatus(show.status);
    $("show-msg").textContent = "The show is live";
  } catch (error) { $("show-msg").textContent = human(error); }
}
async function endShow() {
  try {
    const show = await api("POST", `/api/shows/${encodeURIComponent(showId)}/end`, { token: credentials.token });
    state.show = { ...state.show, ...show };
    setStatus(show.status);
  } catch (error) { $("show-msg").textContent = human(error); }
}

// ---- camera, devices, WHIP ----
function secureProblem() {
  if (window.isSecureContext && navigator.mediaDevices?.getUserMedia) return null;
  return "Your browser only allows the camera on https:// or localhost. Open this studio over HTTPS (see README: Serving over TLS), or publish from OBS (below).";
}

async function preview(constraints = null) {
  if (secureProblem() || state.status === "ended") return;
  try {
    camera = await navigator.mediaDevices.getUserMedia(constraints || { video: { width: 640, height: 480 }, audio: true });
    $("preview").srcObject = camera;
    await fillDevices();
  } catch (error) {
    say(`Camera unavailable: ${error.message}`);
  }
}

async function fillDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  const current = (kind) => camera?.getTracks().find((t) => t.kind === kind)?.getSettings().deviceId;
  for (const [select, kind, name] of [[$("camera-select"), "videoinput", "Camera"], [$("mic-select"), "audioinput", "Microphone"]]) {
    const found = devices.filter((d) => d.kind === kind);
    const chosen = current(kind === "videoinput" ? "video" : "audio");
    select.replaceChildren(...found.map((d, i) => el("option", { value: d.deviceId, selected: d.deviceId === chosen }, d.label || `${name} ${i + 1}`)));
    select.disabled = found.length === 0;
  }
}

// A device chosen: a new track of that kind; while live it replaces the sent one in place
// (replaceTrack: no renegotiation, viewers keep watching), else the preview shows it.
async function switchDevice(kind, deviceId) {
  if (!camera) return;
  const constraints = kind === "video" ? { video: { deviceId: { exact: deviceId }, width: 640, height: 480 } } : { audio: { deviceId: { exact: deviceId } } };
  let fresh;
  try { fresh = (await navigator.mediaDevices.getUserMedia(constraints)).getTracks()[0]; }
  catch (error) { say(`Could not switch: ${error.message}`); return; }
  const old = camera.getTracks().find((t) => t.kind === kind);
  const sender = pc?.getSenders().find((s) => s.track?.kind === kind || (old && s.track === old));
  if (sender) await sender.replaceTrack(fresh);
  if (old) { camera.removeTrack(old); old.stop(); }
  camera.addTrack(fresh);
  $("preview").srcObject = camera;
  say(sender ? `Switched ${kind === "video" ? "camera" : "microphone"} while live` : `${kind === "video" ? "Camera" : "Microphone"} switched`);
}

async function goLive() {
  if (state.status === "ended") return;
  if (!camera) await preview();
  if (!camera) return;
  $("go-live").disabled = true;
  say("Connecting…");
  pc = new RTCPeerConnection();
  for (const track of camera.getTracks()) {
    const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [camera] });
    if (track.kind === "video") preferH264(transceiver);
  }
  pc.onconnectionstatechange = () => {
    const s = pc?.connectionState;
    if (state.status === "ended") return;
    renderStreamState();
    if (s === "connected") say("You are live");
    if (s === "failed") { say("Connection lost, reconnecting…"); reconnect(); }
  };
  try {
    whipToken = credentials.token;
    whipLocation = await negotiate(pc, whipUrl, whipToken);
    $("stop").disabled = false;
    renderCodec(sentCodec(pc.remoteDescription?.sdp));
  } catch (error) {
    say(`Could not go live: ${human(error)}`);
    pc.close(); pc = null;
    $("go-live").disabled = state.status === "ended";
  }
}

// H.264 first when this browser can send it (constrained baseline, packetization-mode=1,
// then any other H.264): the relay packages H.264 into HLS for the crowd without
// re-encoding; a VP8 stream reaches WebRTC viewers only.
function h264Rank(codec) {
  if (codec.mimeType.toLowerCase() !== "video/h264") return 3;
  const fmtp = (codec.sdpFmtpLine || "").toLowerCase();
  if (!fmtp.includes("packetization-mode=1")) return 2;
  return fmtp.includes("profile-level-id=42e0") ? 0 : 1;
}
function preferH264(transceiver) {
  if (!transceiver.setCodecPreferences) return;
  for (const source of [RTCRtpSender, RTCRtpReceiver]) {
    const codecs = source.getCapabilities?.("video")?.codecs;
    if (!codecs?.some((c) => h264Rank(c) < 3)) continue;
    try {
      transceiver.setCodecPreferences([...codecs].sort((a, b) => h264Rank(a) - h264Rank(b)));
      return;
    } catch {}  // (an older browser checks against the other list)
  }
}

// The video codec the relay's answer chose: its first payload type on the video line.
function sentCodec(sdp) {
  const video = (sdp || "").split(/\r?\nm=/).find((m) => m.startsWith("video") || m.startsWith("m=video"));
  const pt = video?.split(/\r?\n/)[0].split(" ")[3];
  const name = pt && video.match(new RegExp(`a=rtpmap:${pt} ([^/\\s]+)`))?.[1];
  return name ? name.toLowerCase() : null;
}

// The host is told when their stream cannot reach the HLS audience (a VP8 stream).
function renderCodec(codec) {
  $("preview").dataset.codec = codec || "";
  const note = $("codec-note");
  note.hidden = !codec || codec === "h264";
  note.textContent = note.hidden ? "" : `Your browser sends ${codec.toUpperCase()}: viewers can watch over WebRTC only. The HLS audience of a large show needs H.264 (Chrome, Edge or Safari send it; with OBS, choose the H.264 encoder).`;
}

async function reconnect() {
  if (pc) pc.close();
  pc = null;
  setTimeout(goLive, 1000);
}

async function stop() {
  await hangUp(whipLocation, whipToken);
  whipLocation = null;
  pc?.close(); pc = null;
  $("stop").disabled = true;
  $("go-live").disabled = state.status === "ended";
  renderStreamState();
  say("Stopped");
  renderHealth(null);
}

// The badge: this tab's own connection while it publishes; otherwise the server's stream
// state, so a host publishing from OBS (a stream key) sees "live" here too.
const STREAM_WORDS = { connected: "live", reconnecting: "reconnecting", paused: "paused", offline: "offline" };
function renderStreamState() {
  if (state.status === "ended") return;
  const own = pc?.connectionState;
  const shown = own ? (STREAM_WORDS[own] || own) : (STREAM_WORDS[state.stream] || state.stream || "offline");
  $("stream-state").textContent = shown;
  $("stream-state").className = `status ${shown === "live" ? "live" : ""}`;
  const elsewhere = !own && state.stream !== "offline" && state.stream !== "paused";
  $("stream-source").hidden = !elsewhere;
  $("stream-source").textContent = !elsewhere ? "" : state.videoHealth?.stream_key
    ? `Your stream comes from a stream key (OBS or another encoder): ${state.stream}.`
    : `Your stream comes from another device or tab: ${state.stream}.`;
  renderAdvice();
}

// What the relay measures of the publisher (the live channel's video_health, staff only):
// the keyframe interval, and what an OBS host with a long one should set, and why.
function renderAdvice() {
  const h = state.videoHealth;
  const streaming = state.stream === "live" || state.stream === "reconnecting";
  const long = streaming && h?.advice === "keyframe_interval_long";
  const box = $("keyframe-advice");
  box.hidden = !long;
  if (!long) { box.replaceChildren(); return; }
  const every = `${h.keyframe_interval_s.toFixed(1)} s`;
  box.replaceChildren(
    el("b", { text: `Your encoder makes a keyframe only every ${every}.` }),
    el("span", { text: " In OBS: Settings → Output (Output Mode: Advanced) → Streaming → Keyframe Interval: set 1 s or 2 s (0 means automatic, often 8-10 s), then stop and start streaming again." }),
    el("span", { class: "muted", text: ` Why: liveshop passes your video on without re-encoding it, so a viewer who joins starts at your last keyframe and catches up from there; the longer the interval, the more there is to catch up, and on a slow phone link that is seconds of a late picture. A 1-2 s interval costs about 5-10% more bitrate for the same picture.` }),
  );
}

// Stream health from the sender's own statistics (outbound-rtp): bitrate over the last
// second, the resolution and frame rate the encoder sends, and the viewers watching.
let lastSent = null;
async function sampleHealth() {
  if (!pc || pc.connectionState !== "connected") { renderHealth(null); lastSent = null; renderStreamState(); return; }
  let bytes = 0; let video = null;
  const report = await pc.getStats();
  report.forEach((s) => {
    if (s.type !== "outbound-rtp") return;
    bytes += s.bytesSent || 0;
    if (s.kind === "video") video = s;
  });
  const now = performance.now();
  const kbps = lastSent && now > lastSent.at ? Math.round(((bytes - lastSent.bytes) * 8) / (now - lastSent.at)) : null;
  lastSent = { bytes, at: now };
  renderHealth({
    bitrate: kbps != null ? `${kbps} kbit/s` : "…",
    resolution: video?.frameWidth ? `${video.frameWidth}×${video.frameHeight}` : "…",
    fps: video?.framesPerSecond != null ? `${Math.round(video.framesPerSecond)} fps` : "…",
  });
}
function renderHealth(h) {
  const server = state.stream === "live" ? state.videoHealth : null;
  // (a browser makes a keyframe when the relay asks: only an encoder's own interval counts)
  const interval = server?.stream_key ? server.keyframe_interval_s : null;
  const bitrate = h?.bitrate ?? (server ? `${Math.round(server.bitrate_bps / 1000)} kbit/s` : "–");
  const cells = [["Bitrate", bitrate], ["Resolution", h?.resolution ?? "–"], ["Frame rate", h?.fps ?? "–"],
    ["Keyframe every", interval != null ? `${interval.toFixed(1)} s` : server ? "on request" : "–"], ["Viewers", state.viewers ?? "–"]];
  $("health").replaceChildren(...cells.map(([label, value]) => el("div", {}, el("b", { text: String(value) }), el("span", { class: "muted", text: label }))));
}

// ---- products: one node per product and per variant, updated in place (an edit in
// progress keeps its focus and text while stock, pins and deals change) ----
const productNodes = new Map();

async function loadProducts() {
  const show = await api("GET", `/api/shows/${encodeURIComponent(showId)}`);
  state.show = { ...state.show, ...show };
  document.title = `liveshop · ${show.title}`;
  if (document.activeElement !== $("show-title") && !$("show-title").dataset.loaded) {
    $("show-title").value = show.title;
    $("show-when").value = localInput(show.scheduled_at);
    $("policies").value = linesText(show.policies);
    $("show-title").dataset.loaded = "1";
  }
  state.currency = show.products.flatMap((p) => p.variants)[0]?.price.currency || state.currency;
  for (const product of show.products) {
    for (const v of product.variants) if (!state.available.has(v.id)) state.available.set(v.id, v.stock);
    let node = productNodes.get(product.id);
    if (!node) {
      node = productNode(product);
      productNodes.set(product.id, node);
      $("products").append(node.li);
    }
    node.product = product;
    for (const v of product.variants) {
      if (!node.variants.has(v.id)) {
        const row = variantRow(product, v);
        node.variants.set(v.id, row);
        node.box.append(row.node);
      }
      node.variants.get(v.id).variant = v;
    }
  }
  setStatus(show.status);
  refreshProducts();
}

function refreshProducts() {
  const ended = state.status === "ended";
  for (const node of productNodes.values()) {
    const pinned = state.pinned.has(node.product.id);
    node.pin.textContent = pinned ? "Unpin" : "Pin";
    node.pin.className = pinned ? "secondary" : "";
    node.pin.setAttribute("aria-pressed", String(pinned));
    node.pin.setAttribute("aria-label", `${pinned ? "Unpin" : "Pin"} ${node.product.name}`);
    node.pin.disabled = ended;
    for (const row of node.variants.values()) row.refresh();
  }
}

function field(label, input) { return el("label", {}, label, " ", input); }

function productNode(product) {
  const msg = el("p", { class: "muted form-msg", role: "status" });
  const pin = el("button", { type: "button" }, "Pin");
  const node = { product, pin, msg, variants: new Map(), box: el("div", { class: "variants" }), li: null };
  pin.addEventListener("click", async () => {
    try {
      await live.request(state.pinned.has(node.product.id) ? "unpin" : "pin", { product_id: node.product.id });
      msg.textContent = "";
    } catch (error) { msg.textContent = human(error); }
  });
  node.li = el("li", { "data-product": product.id },
    el("div", { class: "row" }, el("strong", { class: "grow", text: product.name }), pin),
    node.box, addVariantForm(node), factsForm(node), msg);
  return node;
}

// Facts and policies, as the host writes them: "key: value", one per line.
function linesOf(text, what) {
  const out = {};
  for (const line of String(text).split("\n").map((s) => s.trim()).filter(Boolean)) {
    const at = line.indexOf(":");
    if (at < 1 || !line.slice(at + 1).trim()) throw Object.assign(new Error(`${what}: write each as key: value, one per line (material: 100% cotton).`), { code: "lines_format" });
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}
const linesText = (map) => Object.entries(map || {}).map(([k, v]) => `${k}: ${v}`).join("\n");

// What automatic answers to shoppers are made from: the product's facts.
function factsForm(node) {
  const text = el("textarea", { rows: "4", "aria-label": `Facts of ${node.product.name}`, placeholder: "material: 100% merino\nfit: true to size\ncare: machine wash cold" });
  text.value = linesText(node.product.facts);
  const msg = el("p", { class: "muted form-msg", role: "status" });
  const form = el("form", { class: "fields" }, text, el("button", { type: "submit", class: "secondary" }, "Save facts"), msg);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const product = await api("PUT", `/api/products/${encodeURIComponent(node.product.id)}/facts`, { token: credentials.token, body: { facts: linesOf(text.value, "Facts") } });
      node.product = { ...node.product, facts: product.facts };
      msg.textContent = `Facts saved (${Object.keys(product.facts).length}): questions about them are answered at once`;
    } catch (error) { msg.textContent = error.code === "lines_format" ? error.message : human(error); }
  });
  return el("details", { class: "facts" }, el("summary", {}, `Facts of ${node.product.name} (for automatic answers)`), form);
}

async function savePolicies(event) {
  event.preventDefault();
  try {
    const saved = await api("PUT", `/api/shows/${encodeURIComponent(showId)}/policies`, { token: credentials.token, body: { policies: linesOf($("policies").value, "Policies") } });
    $("policies-msg").textContent = `Policies saved (${Object.keys(saved.policies).length})`;
  } catch (error) { $("policies-msg").textContent = error.code === "lines_format" ? error.message : human(error); }
}

function attributesOf(text) {
  const out = {};
  for (const part of String(text).split(",").map((s) => s.trim()).filter(Boolean)) {
    const [key, ...rest] = part.split("=");
    if (!key.trim() || !rest.length) throw Object.assign(new Error("Attributes: write them as name=value, separated by commas (size=M, colour=red)."), { code: "attributes_format" });
    out[key.trim()] = rest.join("=").trim();
  }
  return out;
}

function addVariantForm(node) {
  const sku = el("input", { name: "sku", maxlength: "64", required: true });
  const attrs = el("input", { name: "attributes", placeholder: "size=M" });
  const price = el("input", { name: "price", inputmode: "decimal", required: true });
  const stock = el("input", { name: "stock", type: "number", min: "0", step: "1", value: "10", class: "num", required: true });
  const msg = el("p", { class: "muted form-msg", role: "status" });
  const form = el("form", { class: "fields" }, field("SKU", sku), field("Attributes", attrs), field("Price", price), field("Stock", stock),
    el("button", { type: "submit", class: "secondary" }, "Add variant"), msg);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const currency = node.product.variants[0]?.price.currency || state.currency;
    try {
      const body = { sku: sku.value.trim(), attributes: attributesOf(attrs.value), price: { amount: toMinor(price.value, currency), currency }, stock: Number(stock.value) };
      await api("POST", `/api/products/${encodeURIComponent(node.product.id)}/variants`, { token: credentials.token, body });
      msg.textContent = `Added ${body.sku}`;
      sku.value = ""; attrs.value = ""; price.value = "";
      await loadProducts();
    } catch (error) { msg.textContent = error.code === "price_format" ? `Price: ${error.message}.` : human(error); }
  });
  return el("details", { class: "add-variant" }, el("summary", {}, `Add a variant of ${node.product.name}`), form);
}

function variantRow(product, v) {
  const label = () => Object.values(row.variant.attributes || {}).join(" / ") || row.variant.sku;
  const row = { variant: v };
  const stockText = el("span", { class: "stock-left" });
  const head = el("div", { class: "row" }, el("span", { class: "grow variant-name" }), el("span", { class: "variant-price" }), stockText);
  const msg = el("p", { class: "muted form-msg", role: "status" });

  const stockInput = el("input", { type: "number", min: "0", step: "1", class: "num" });
  const stockForm = el("form", { class: "fields inline", novalidate: true }, field("Stock", stockInput), el("button", { type: "submit", class: "secondary" }, "Set stock"));
  stockForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const value = Number(stockInput.value);
      if (stockInput.value.trim() === "" || !Number.isInteger(value) || value < 0) throw Object.assign(new Error(""), { code: "invalid_stock" });
      const got = await api("PUT", `/api/variants/${encodeURIComponent(row.variant.id)}/stock`, { token: credentials.token, body: { stock: value } });
      msg.textContent = `Stock set to ${got.stock ?? value}`;
      if (got.available != null) state.available.set(row.variant.id, got.available);
      row.refresh();
    } catch (error) { msg.textContent = human(error); }
  });

  const currency = v.price.currency;
  const exp = exponentFor(currency, v.price);
  const price = el("input", { inputmode: "decimal", class: "num", value: toMajor(Math.round(v.price.amount * 0.8), currency), step: exp ? String(10 ** -exp) : "1" });
  const units = el("input", { type: "number", min: "1", step: "1", value: "10", class: "num" });
  const minutes = el("input", { type: "number", min: "1", max: "1440", step: "1", value: "5", class: "num" });
  const limit = el("input", { type: "number", min: "1", step: "1", value: "1", class: "num" });
  const dealForm = el("form", { class: "fields inline deal-form" },
    field(`Deal price (${currency})`, price), field("Units", units), field("Minutes", minutes), field("Limit per buyer", limit),
    el("button", { type: "submit", class: "secondary" }, "Start deal"));
  dealForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const body = { variant_id: row.variant.id, price_minor: toMinor(price.value, currency), units: Number(units.value), duration_s: Math.round(Number(minutes.value) * 60), per_buyer_limit: Number(limit.value) };
      const reply = await live.request("start_deal", body);
      if (reply.deal) state.deals.set(row.variant.id, { ...reply.deal, seen_at: performance.now() });
      msg.textContent = "";
      row.refresh();
    } catch (error) { msg.textContent = error.code === "price_format" ? `Deal price: ${error.message}.` : human(error); }
  });
  const dealText = el("span", { class: "deal grow", role: "timer" });
  const stopDeal = el("button", { type: "button", class: "secondary" }, "Stop deal");
  stopDeal.addEventListener("click", async () => {
    try { await live.request("stop_deal", { variant_id: row.variant.id }); state.deals.delete(row.variant.id); row.refresh(); }
    catch (error) { msg.textContent = human(error); }
  });
  const dealBox = el("div", { class: "row running-deal" }, dealText, stopDeal);

  row.node = el("div", { class: "variant", "data-variant": v.id }, head, el("div", { class: "variant-forms" }, stockForm, dealForm, dealBox), msg);
  row.refresh = () => {
    head.querySelector(".variant-name").textContent = label();
    head.querySelector(".variant-price").textContent = money(row.variant.price);
    const left = state.available.get(row.variant.id) ?? row.variant.stock;
    stockText.textContent = left > 0 ? `${left} in stock` : "Sold out";
    stockText.className = `stock-left ${left > 0 ? "" : "sold-out"}`;
    stockInput.placeholder = String(Math.max(0, left));
    const deal = state.deals.get(row.variant.id);
    const running = deal && Date.parse(deal.ends_at) > Date.now();
    dealForm.hidden = Boolean(running);
    dealBox.hidden = !running;
    if (running) {
      const unitsLeft = Math.max(0, Math.min(deal.units_left ?? deal.units, left));
      dealText.textContent = `Deal ${money(dealPrice(deal))} · ${unitsLeft} of ${deal.units} left · ends in ${countdown(deal.ends_at)}`;
    }
    const ended = state.status === "ended";
    for (const input of row.node.querySelectorAll("input, button")) input.disabled = ended;
  };
  row.refresh();
  return row;
}

function countdown(iso) {
  const s = Math.max(0, Math.round((Date.parse(iso) - Date.now()) / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

async function addProduct(event) {
  event.preventDefault();
  const form = $("product-form");
  const value = (name) => form.elements[name].value;
  try {
    const currency = value("currency").trim().toUpperCase();
    if (!/^[A-Z]{3}$/.test(currency)) throw Object.assign(new Error(""), { code: "invalid_input", fields: { "price.currency": "" } });
    const body = {
      name: value("name"), description: value("description"),
      variants: [{ sku: value("sku").trim(), attributes: attributesOf(value("attributes")), price: { amount: toMinor(value("price"), currency), currency }, stock: Number(value("stock")) }],
    };
    if (value("image_url").trim()) body.image_url = value("image_url").trim();
    const product = await api("POST", `/api/shows/${encodeURIComponent(showId)}/products`, { token: credentials.token, body });
    $("product-msg").textContent = `Added ${product.name}`;
    for (const name of ["name", "description", "image_url", "price", "sku", "attributes"]) form.elements[name].value = "";
    await loadProducts();
  } catch (error) { $("product-msg").textContent = error.code === "price_format" ? `Price: ${error.message}.` : human(error); }
}

// ---- stats ----
// The time to answer: automatic answers and people's apart, and what still waits.
function answerCells(q) {
  const t = q || {};
  return [
    ["Answered auto", t.automatic?.answered ?? 0], ["Answered by people", t.human?.answered ?? 0],
    ["Median auto", seconds(t.automatic?.median_answer_s)], ["Median people", seconds(t.human?.median_answer_s)],
    ["p90 auto", seconds(t.automatic?.p90_answer_s)], ["p90 people", seconds(t.human?.p90_answer_s)],
    ["Questions waiting", t.waiting ?? 0], ["Oldest wait", seconds(t.oldest_waiting_s)],
  ];
}
function renderStats(stats) {
  state.lastStats = stats;
  state.viewers = stats.viewers_now;
  if (Array.isArray(stats.deals)) {  // the running deals now, but not one started since we asked
    const fresh = [...state.deals.values()].filter((d) => (d.seen_at || 0) > (stats.asked_at || 0));
    state.deals = new Map([...stats.deals, ...fresh].map((d) => [d.variant_id, d]));
  }
  const cells = [
    ["Viewers now", stats.viewers_now], ["Peak", stats.viewers_peak], ["Orders", stats.orders],
    ["Revenue", money({ amount: stats.revenue_minor || 0, currency: state.currency })], ["Units sold", stats.units_sold],
    ...answerCells(stats.questions),
  ];
  const taps = Object.entries(stats.taps || {}).map(([p, n]) => [`Taps ${p.slice(-4)}`, n]);
  $("stats").replaceChildren(...[...cells, ...taps].map(([label, value]) => el("div", {}, el("b", { text: String(value ?? 0) }), el("span", { class: "muted", text: label }))));
  if (state.status === "ended") renderSummary(stats);
  refreshProducts();
}

async function refreshStats() {
  const asked = performance.now();
  try { renderStats({ ...(await live.request("stats")), asked_at: asked }); } catch {}
}
let statsSoon = null;
function refreshStatsSoon() {
  statsSoon ??= setTimeout(() => { statsSoon = null; refreshStats(); }, 250);
}

// ---- chat and reactions ----
function addChat(msg) {
  if (msg.id && document.querySelector(`#chat li[data-id="${CSS.escape(msg.id)}"]`)) return;
  const li = el("li", { "data-id": msg.id || "" }, el("span", { class: "who", text: msg.role === "host" ? `${msg.name} (host)` : msg.name }), el("span", { text: msg.text }));
  $("chat").append(li);
  while ($("chat").children.length > 100) $("chat").firstElementChild.remove();
  $("chat").scrollTop = $("chat").scrollHeight;
}
function renderReactions() {
  const total = [...state.reactions.values()].reduce((a, b) => a + b, 0);
  const parts = [...state.reactions.entries()].map(([emoji, n]) => `${emoji} ${n}`);
  $("reactions").textContent = parts.length ? `${parts.join(" · ")}${parts.length > 1 ? ` · ${total} in all` : ""}` : "❤ 0";
}

// ---- questions: every asked one (not only approved), newest first, each with an answer box
const questionNodes = new Map();
// An open question's wait, kept current (every second) while it waits.
function tickWaiting(q, node) {
  const open = q.status === "asked" || q.status === "approved";
  node.waiting.textContent = open ? `waiting ${seconds(Math.max(0, (Date.now() - Date.parse(q.asked_at)) / 1000))}` : "";
}
function upsertQuestion(q) {
  state.questions.set(q.id, q);
  let node = questionNodes.get(q.id);
  if (!node) {
    const input = el("input", { maxlength: "500", "aria-label": `Answer to: ${q.text}` });
    const msg = el("p", { class: "muted form-msg", role: "status" });
    const form = el("form", { class: "row answer-form" }, el("label", { class: "grow" }, "Answer ", input), el("button", { type: "submit" }, "Answer"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await live.request("answer", { question_id: q.id, text: input.value });
        input.value = ""; msg.textContent = "Answered";
      } catch (error) { msg.textContent = human(error); }
    });
    node = {
      li: el("li", { "data-question": q.id }), votes: el("span", { class: "votes" }), status: el("span", { class: "status" }),
      waiting: el("span", { class: "muted waiting" }), answer: el("p", { class: "answer" }), form, msg,
    };
    node.li.append(el("p", {}, node.votes, el("b", { text: `${q.viewer_name}: ` }), el("span", { text: q.text }), " ", node.status, " ", node.waiting), node.answer, form, msg);
    questionNodes.set(q.id, node);
    $("questions").prepend(node.li);
  }
  node.votes.textContent = `▲ ${q.votes}`;
  node.status.textContent = q.pinned ? `${q.status}, pinned` : q.status;
  node.answer.textContent = !q.answer ? "" : q.automatic
    ? `Answered automatically (${answerSource(q)}): ${q.answer}` : `Answered: ${q.answer}`;
  node.answer.hidden = !q.answer;
  node.form.hidden = q.status === "answered" || q.status === "dismissed";
  node.li.hidden = q.status === "dismissed";
  tickWaiting(q, node);
  const open = [...state.questions.values()].filter((x) => x.status === "asked" || x.status === "approved").length;
  $("questions-count").textContent = open ? `${open} open` : "";
}

// ---- polls ----
function renderPoll() {
  const poll = state.poll;
  if (!poll) { $("poll").replaceChildren(); return; }
  const tally = poll.tally || {};
  $("poll").replaceChildren(el("p", { text: poll.question }),
    el("ul", { class: "plain" }, ...poll.options.map((o, i) => el("li", { text: `${o}: ${tally[i] ?? tally[String(i)] ?? 0}` }))),
    poll.closed ? el("p", { class: "muted", text: "Closed" }) :
      el("button", { type: "button", class: "secondary", onclick: () => live.request("close_poll", { poll_id: poll.poll_id }) }, "Close poll"));
}

function onMessage(msg) {
  switch (msg.type) {
    case "snapshot":
      setExponents(msg.currencies);
      state.reactions = new Map(Object.entries(msg.reactions || {}).map(([emoji, n]) => [emoji, Number(n)]));
      renderReactions();
      state.pinned = new Set((msg.cards || []).map((c) => c.product_id));
      state.deals = new Map((msg.deals || []).map((d) => [d.variant_id, d]));
      for (const card of msg.cards || []) for (const v of card.variants || []) if (v.available != null) state.available.set(v.id, v.available);
      for (const q of msg.questions || []) upsertQuestion(q);
      for (const c of msg.chat || []) addChat(c);
      state.poll = msg.poll || null;
      if (msg.viewers) state.viewers = msg.viewers.now;
      state.stream = msg.stream || "offline";
      state.videoHealth = msg.video_health || null;
      renderStreamState();
      setStatus(msg.status);
      loadProducts(); renderPoll();
      live.request("queue").then((r) => r.questions.forEach(upsertQuestion)).catch(() => {});
      break;
    case "card_pinned": state.pinned.add(msg.card.product_id); refreshProducts(); break;
    case "card_unpinned": state.pinned.delete(msg.product_id); refreshProducts(); break;
    case "catalog_changed": loadProducts(); break;
    case "deal_started": state.deals.set(msg.variant_id, { ...msg, seen_at: performance.now() }); refreshProducts(); break;
    case "deal_ended": state.deals.delete(msg.variant_id); refreshProducts(); break;
    case "stock": case "back_in_stock":
      state.available.set(msg.variant_id, msg.available);
      if (state.deals.has(msg.variant_id)) refreshStatsSoon();
      refreshProducts();
      break;
    case "chat": addChat(msg); break;
    case "chat_deleted": document.querySelector(`#chat li[data-id="${CSS.escape(msg.message_id)}"]`)?.remove(); break;
    case "reactions":
      // the show's running total (every process's ticks), else this tick's counts added
      if (msg.totals) state.reactions = new Map(Object.entries(msg.totals).map(([emoji, n]) => [emoji, Number(n)]));
      else for (const [emoji, n] of Object.entries(msg.counts || {})) state.reactions.set(emoji, (state.reactions.get(emoji) || 0) + n);
      renderReactions();
      break;
    case "viewers": state.viewers = msg.now; break;
    case "question": case "question_updated": case "answer": upsertQuestion(msg.question); refreshStatsSoon(); break;
    case "poll_opened": state.poll = msg.poll; renderPoll(); break;
    case "poll_tally": if (state.poll?.poll_id === msg.poll_id) { state.poll.tally = msg.tally; renderPoll(); } break;
    case "poll_closed": state.poll = { ...msg.poll, closed: true }; renderPoll(); break;
    case "show_status": setStatus(msg.status); break;
    case "stream": state.stream = msg.state; if (msg.state === "paused" || msg.state === "offline") state.videoHealth = null; renderStreamState(); break;
    case "video_health": state.videoHealth = msg.health; renderStreamState(); break;
    default: break;
  }
}

function main() {
  const problem = tokenProblem();
  if (problem) { signIn(problem); return; }
  setupObs({ credentials, whipUrl });  // the "Publish from OBS (WHIP)" panel (studio_obs.js)
  live = new LiveSocket(credentials, onMessage, (status, code) => {
    // (4401 reaches here only once the token could not be renewed; offline, it is retried)
    if (code === 4401 && navigator.onLine !== false) signIn("Your sign-in is no longer valid. Open the host link liveshop printed.");
    else if (code === 4403) signIn("This link may not open this show's studio. Open the host link liveshop printed.");
  });
  const insecure = secureProblem();
  if (insecure) {
    $("camera-msg").textContent = insecure;
    $("camera-msg").hidden = false;
    $("go-live").disabled = true;
    $("preview").hidden = true;
    document.querySelector(".devices").hidden = true;
    $("health").hidden = true;
  } else {
    preview();
    navigator.mediaDevices.addEventListener?.("devicechange", () => fillDevices().catch(() => {}));
  }
  renderHealth(null);
  $("go-live").addEventListener("click", goLive);
  $("stop").addEventListener("click", stop);
  $("camera-select").addEventListener("change", (e) => switchDevice("video", e.target.value));
  $("mic-select").addEventListener("change", (e) => switchDevice("audio", e.target.value));
  $("show-form").addEventListener("submit", saveShow);
  $("policies-form").addEventListener("submit", savePolicies);
  $("start-show").addEventListener("click", startShow);
  $("end-show").addEventListener("click", () => $("end-dialog").showModal());
  $("end-dialog").addEventListener("close", () => { if ($("end-dialog").returnValue === "end") endShow(); });
  $("product-form").addEventListener("submit", addProduct);
  $("chat-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("chat-text").value;  // (cleared only if it still holds what was sent)
    try { await live.request("chat", { text }); if ($("chat-text").value === text) $("chat-text").value = ""; }
    catch (error) { addChat({ name: "liveshop", text: human(error) }); }
  });
  $("poll-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const options = $("poll-o").value.split(",").map((s) => s.trim()).filter(Boolean);
    try { await live.request("open_poll", { question: $("poll-q").value, options }); $("poll-q").value = ""; $("poll-o").value = ""; }
    catch (error) { $("poll").textContent = human(error); }
  });
  loadProducts().catch((error) => { $("show-msg").textContent = human(error); });
  setInterval(refreshStats, 2000);
  setInterval(() => { for (const [id, node] of questionNodes) tickWaiting(state.questions.get(id), node); }, 1000);
  setTimeout(refreshStats, 500);
  setInterval(() => { sampleHealth().catch(() => {}); }, 1000);
  setInterval(() => { for (const node of productNodes.values()) for (const row of node.variants.values()) if (state.deals.has(row.variant.id)) row.refresh(); }, 1000);
}

main();
