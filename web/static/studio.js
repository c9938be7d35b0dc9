// Host studio: camera preview and "Go live" over WHIP, products with pin and deal controls,
// live stats, polls and the approved questions.
import { api, Credentials, el, hangUp, hashParams, LiveSocket, money, negotiate, showId } from "/static/common.js";
import { setupObs } from "/static/studio_obs.js";

const $ = (id) => document.getElementById(id);
const credentials = new Credentials(hashParams().get("token"), { inHash: true });
const whipUrl = new URL(`/whip/${encodeURIComponent(showId)}`, location.href).toString();
const state = { pinned: new Set(), deals: new Map(), questions: new Map(), poll: null };
let live;
let pc = null;
let whipLocation = null;
let whipToken = null;  // the session is ended with the token that opened it
let camera = null;

function say(text) { $("publish-msg").textContent = text; }

async function preview() {
  try {
    camera = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
    $("preview").srcObject = camera;
  } catch (error) {
    say(`Camera unavailable: ${error.message}`);
  }
}

async function goLive() {
  if (!camera) await preview();
  if (!camera) return;
  $("go-live").disabled = true;
  say("Connecting…");
  pc = new RTCPeerConnection();
  for (const track of camera.getTracks()) pc.addTransceiver(track, { direction: "sendonly", streams: [camera] });
  pc.onconnectionstatechange = () => {
    const s = pc?.connectionState;
    $("stream-state").textContent = s === "connected" ? "live" : s || "offline";
    $("stream-state").className = `status ${s === "connected" ? "live" : ""}`;
    if (s === "connected") say("You are live");
    if (s === "failed") { say("Connection lost, reconnecting…"); reconnect(); }
  };
  try {
    whipToken = credentials.token;
    whipLocation = await negotiate(pc, whipUrl, whipToken);
    $("stop").disabled = false;
  } catch (error) {
    say(`Could not go live: ${error.message}`);
    pc.close(); pc = null;
    $("go-live").disabled = false;
  }
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
  $("go-live").disabled = false;
  $("stream-state").textContent = "offline";
  $("stream-state").className = "status";
  say("Stopped");
}

async function loadProducts() {
  const show = await api("GET", `/api/shows/${encodeURIComponent(showId)}`);
  document.title = `liveshop · ${show.title}`;
  $("products").replaceChildren(...show.products.map(productRow));
}

function productRow(product) {
  const pinned = state.pinned.has(product.id);
  const msg = el("p", { class: "muted", role: "status" });
  const pin = el("button", { type: "button", class: pinned ? "secondary" : "", "aria-pressed": String(pinned),
    "aria-label": `${pinned ? "Unpin" : "Pin"} ${product.name}` }, pinned ? "Unpin" : "Pin");
  pin.addEventListener("click", async () => {
    try {
      await live.request(state.pinned.has(product.id) ? "unpin" : "pin", { product_id: product.id });
    } catch (error) { msg.textContent = error.message; }
  });
  const variants = product.variants.map((v) => {
    const label = Object.values(v.attributes || {}).join(" / ") || v.sku;
    const deal = state.deals.get(v.id);
    const price = el("input", { type: "number", min: "0", value: String(Math.round(v.price.amount * 0.8)), "aria-label": `Deal price for ${label} (minor units)`, class: "num" });
    const units = el("input", { type: "number", min: "1", value: "10", "aria-label": `Deal units for ${label}`, class: "num" });
    const minutes = el("input", { type: "number", min: "1", value: "5", "aria-label": `Deal minutes for ${label}`, class: "num" });
    const start = el("button", { type: "button", class: "secondary" }, deal ? "Stop deal" : "Start deal");
    start.addEventListener("click", async () => {
      try {
        if (state.deals.has(v.id)) await live.request("stop_deal", { variant_id: v.id });
        else await live.request("start_deal", { variant_id: v.id, price_minor: Number(price.value), units: Number(units.value), duration_s: Number(minutes.value) * 60, per_buyer_limit: 1 });
      } catch (error) { msg.textContent = error.message; }
    });
    return el("div", { class: "variant" }, el("span", { text: `${label} · ${money(v.price)} · ${v.stock} in stock` }),
      el("div", { class: "row" }, ...(deal ? [el("span", { class: "deal grow", text: `Deal ${money(deal.price || { amount: deal.deal_price_minor, currency: deal.currency })}` })]
        : [el("span", { class: "muted", text: "Deal" }), price, units, minutes]), start));
  });
  return el("li", {}, el("div", { class: "row" }, el("strong", { class: "grow", text: product.name }), pin), ...variants, msg);
}

function renderStats(stats) {
  const cells = [
    ["Viewers now", stats.viewers_now], ["Peak", stats.viewers_peak], ["Orders", stats.orders],
    ["Revenue", money({ amount: stats.revenue_minor || 0, currency: "EUR" })], ["Units sold", stats.units_sold],
    ["Answered", stats.questions?.answered ?? 0],
    ["Median answer", stats.questions?.median_answer_s != null ? `${Math.round(stats.questions.median_answer_s)} s` : "–"],
  ];
  const taps = Object.entries(stats.taps || {}).map(([p, n]) => [`Taps ${p.slice(-4)}`, n]);
  $("stats").replaceChildren(...[...cells, ...taps].map(([label, value]) => el("div", {}, el("b", { text: String(value ?? 0) }), el("span", { class: "muted", text: label }))));
}

function renderQuestions() {
  const items = [...state.questions.values()].filter((q) => q.status === "approved" || q.status === "answered" || q.pinned)
    .sort((a, b) => (b.pinned - a.pinned) || (b.votes - a.votes));
  $("questions").replaceChildren(...items.map((q) => el("li", {},
    el("p", {}, el("span", { class: "votes", text: `▲ ${q.votes}` }), el("b", { text: `${q.viewer_name}: ` }), el("span", { text: q.text })),
    q.answer ? el("p", { class: "muted", text: `Answered: ${q.answer}` }) : null)));
}

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
      state.pinned = new Set((msg.cards || []).map((c) => c.product_id));
      state.deals = new Map((msg.deals || []).map((d) => [d.variant_id, d]));
      state.questions = new Map((msg.questions || []).map((q) => [q.id, q]));
      state.poll = msg.poll || null;
      loadProducts(); renderQuestions(); renderPoll();
      break;
    case "card_pinned": state.pinned.add(msg.card.product_id); loadProducts(); break;
    case "card_unpinned": state.pinned.delete(msg.product_id); loadProducts(); break;
    case "deal_started": state.deals.set(msg.variant_id, msg); loadProducts(); break;
    case "deal_ended": state.deals.delete(msg.variant_id); loadProducts(); break;
    case "stock": break;
    case "question": case "question_updated": case "answer": state.questions.set(msg.question.id, msg.question); renderQuestions(); break;
    case "poll_opened": state.poll = msg.poll; renderPoll(); break;
    case "poll_tally": if (state.poll?.poll_id === msg.poll_id) { state.poll.tally = msg.tally; renderPoll(); } break;
    case "poll_closed": state.poll = { ...msg.poll, closed: true }; renderPoll(); break;
    default: break;
  }
}

async function refreshStats() {
  try { renderStats(await live.request("stats")); } catch {}
}

function main() {
  setupObs({ credentials, whipUrl });  // the "Publish from OBS (WHIP)" panel (studio_obs.js)
  live = new LiveSocket(credentials, onMessage, (status, code) => {
    if (code === 4401 || code === 4403) say("This link's token is not valid for this show.");
    else if (status === "open" && $("publish-msg").textContent.startsWith("This link")) say("");
  });
  preview();
  $("go-live").addEventListener("click", goLive);
  $("stop").addEventListener("click", stop);
  $("poll-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const options = $("poll-o").value.split(",").map((s) => s.trim()).filter(Boolean);
    try { await live.request("open_poll", { question: $("poll-q").value, options }); $("poll-q").value = ""; $("poll-o").value = ""; }
    catch (error) { $("poll").textContent = error.message; }
  });
  setInterval(refreshStats, 2000);
  setTimeout(refreshStats, 500);
}

main();
