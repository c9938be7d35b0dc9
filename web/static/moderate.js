// Moderator console: the Q&A queue (approve, answer with canned replies or a drafted one,
// pin, dismiss), automatic answers (correct, retract), the time to answer, chat
// moderation (delete, mute, ban, shadow-ban, slow mode, blocked words), the lists of muted,
// banned, shadow-banned and slowed viewers (unmute, unban...), a viewer's orders. Every
// action ends with a confirmation or what went wrong, in words. Without a valid moderator
// token the console says how to get one instead of showing its controls.
import { answerSource, Credentials, el, hashParams, LiveSocket, money, seconds } from "/static/common.js";

const $ = (id) => document.getElementById(id);
const token = hashParams().get("token");
const credentials = token ? new Credentials(token, { inHash: true }) : null;
const state = { questions: new Map(), drafts: new Map(), canned: {}, moderation: null, signedIn: false, times: null };
let live;

// ---- sign-in ----
function signIn(why) {
  $("console").hidden = true;
  $("console-status").hidden = true;
  $("signin").hidden = false;
  $("signin-why").textContent = why;
  live?.close();
}

// ---- confirmations and errors ----
const ERRORS = {
  forbidden_role: "Only a moderator can do that.",
  illegal_transition: "That question was already handled.",
  question_not_found: "That question is gone.",
  question_closed: "A person answered that one: it cannot be taken back.",
  not_found: "That is gone already.",
  rate_limited: "Too fast: try again in a moment.",
  disconnected: "Not connected to the show: reconnecting, try again in a moment.",
  internal_error: "Something went wrong on our side; nothing was changed.",
};
const FIELDS = {
  words: "each blocked word is at most 2000 characters",
  text: "the text is empty or longer than 500 characters",
  seconds: "that time is out of range",
};
function errorText(error) {
  if (error.code === "invalid_input") {
    const fields = Object.entries(error.fields || {}).map(([name, why]) => FIELDS[name] || `${name}: ${why}`);
    return `That was not accepted: ${fields.join("; ") || error.message}.`;
  }
  return ERRORS[error.code] || error.message || "Something went wrong.";
}

let statusTimer = null;
function say(text, ok = true) {
  const status = $("console-status");
  status.textContent = text;
  status.className = `console-status ${ok ? "ok" : "fail"}`;
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => { status.textContent = ""; status.className = "console-status"; }, 8000);
}

// One action: the request, then `done` (a sentence, or a function of the reply) as the
// confirmation, or the error in words; the moderation lists are read again after it.
async function act(type, fields, done, { refresh = false } = {}) {
  try {
    const reply = await live.request(type, fields);
    say(typeof done === "function" ? done(reply) : done);
    if (refresh) loadModeration();
    return reply;
  } catch (error) {
    say(errorText(error), false);
    return null;
  }
}

// ---- viewer's orders ----
async function showViewer(userId, name) {
  $("viewer-name").textContent = `${name}'s orders in this show`;
  try {
    const reply = await live.request("viewer_orders", { user_id: userId });
    const orders = reply.orders || [];
    $("viewer-orders").replaceChildren(...(orders.length ? orders.map((o) => el("li", {
      text: `${o.order_id || o.id} · ${o.status} · ${money(o.total || { amount: o.total_minor, currency: o.currency })}`,
    })) : [el("li", { class: "muted", text: "No orders yet" })]));
  } catch (error) {
    $("viewer-orders").replaceChildren(el("li", { text: errorText(error) }));
  }
}

// ---- Q&A queue ----
const waited = (q) => Math.max(0, Math.round((Date.now() - Date.parse(q.asked_at)) / 1000));

// Drafted replies of a question left to a person: one click sends one, or fills the box.
function draftsOf(q, answer) {
  const drafts = state.drafts.get(q.id) || [];
  if (!drafts.length) return null;
  return el("div", { class: "drafts", "aria-label": "Drafted replies" },
    el("p", { class: "muted", text: "Drafted replies:" }),
    ...drafts.map((d) => el("div", { class: "row draft" },
      el("span", { class: "grow" }, el("span", { text: d.text }), el("span", { class: "muted", text: ` · ${answerSource({ automatic: true, answer_source: d.source })}` })),
      el("button", { type: "button", onclick: () => act("answer", { question_id: q.id, text: d.text }, "Answer sent") }, "Send"),
      el("button", { type: "button", class: "secondary", onclick: () => { answer.value = d.text; answer.focus(); } }, "Edit"))));
}

// Answered automatically: what went out, from where; a moderator corrects or retracts it.
function renderAutomatic() {
  const auto = [...state.questions.values()].filter((q) => q.status === "answered" && q.automatic)
    .sort((a, b) => Date.parse(b.answered_at) - Date.parse(a.answered_at)).slice(0, 30);
  $("automatic").replaceChildren(...(auto.length ? auto.map((q) => {
    const fix = el("input", { class: "grow", value: q.answer, "aria-label": `Correct the answer to: ${q.text}`, maxlength: "500" });
    return el("li", { "data-question": q.id },
      el("p", {}, el("b", { text: q.viewer_name }), el("span", { text: ` ${q.text}` })),
      el("p", { class: "auto-answer" }, el("span", { text: q.answer }),
        el("span", { class: "status", text: answerSource(q) })),
      el("form", { class: "row", onsubmit: (event) => {
        event.preventDefault();
        if (fix.value.trim()) act("answer", { question_id: q.id, text: fix.value }, "Answer corrected: everyone sees yours now");
      } }, fix, el("button", { type: "submit", class: "secondary" }, "Correct"),
        el("button", { type: "button", onclick: () => act("retract", { question_id: q.id }, "Answer retracted: the question is back in the queue") }, "Retract")));
  }) : [el("li", { class: "muted", text: "None yet" })]));
}

// Time to answer: each open question's wait (ticking), the oldest, and the show's figures.
function renderTimes() {
  const open = [...state.questions.values()].filter((q) => q.status === "asked" || q.status === "approved");
  for (const q of open) {
    const cell = document.querySelector(`#queue [data-question="${CSS.escape(q.id)}"] .waiting`);
    if (cell) cell.textContent = `waiting ${seconds(waited(q))}`;
  }
  const t = state.times || {};
  const oldest = open.length ? Math.max(...open.map(waited)) : null;
  const cells = [
    ["Waiting", open.length], ["Oldest waiting", seconds(oldest)],
    ["Automatic: median", seconds(t.automatic?.median_answer_s)], ["Automatic: p90", seconds(t.automatic?.p90_answer_s)],
    ["People: median", seconds(t.human?.median_answer_s)], ["People: p90", seconds(t.human?.p90_answer_s)],
    ["Answered automatically", t.automatic?.answered ?? 0], ["Answered by people", t.human?.answered ?? 0],
  ];
  $("answer-times").replaceChildren(...cells.map(([label, value]) => el("div", {}, el("b", { text: String(value) }), el("span", { class: "muted", text: label }))));
}

async function refreshTimes() {
  try { state.times = (await live.request("stats")).questions; } catch {}
  renderTimes();
}
let timesTimer = null;
const timesSoon = () => { clearTimeout(timesTimer); timesTimer = setTimeout(refreshTimes, 300); };

function renderQueue() {
  const open = [...state.questions.values()].filter((q) => q.status === "asked" || q.status === "approved")
    .sort((a, b) => (b.pinned - a.pinned) || (b.votes - a.votes) || (Date.parse(a.asked_at) - Date.parse(b.asked_at)));
  $("queue").replaceChildren(...open.map((q) => {
    const answer = el("input", { class: "grow", placeholder: "Answer", "aria-label": `Answer to: ${q.text}`, maxlength: "500" });
    const canned = el("select", { "aria-label": "Canned replies" }, el("option", { value: "", text: "Canned reply…" }),
      ...Object.entries(state.canned).map(([id, text]) => el("option", { value: id, text })));
    canned.addEventListener("change", () => { if (canned.value) answer.value = state.canned[canned.value]; });
    return el("li", { "data-question": q.id },
      el("p", {}, el("span", { class: "votes", text: `▲ ${q.votes}` }),
        el("button", { type: "button", class: "secondary", onclick: () => showViewer(q.viewer_id, q.viewer_name) }, q.viewer_name),
        el("span", { text: ` ${q.text}` }), q.pinned ? el("span", { class: "status", text: "pinned" }) : null,
        el("span", { class: "status", text: q.status }), el("span", { class: "muted waiting", text: `waiting ${seconds(waited(q))}` })),
      el("div", { class: "row" },
        q.status === "asked" ? el("button", { type: "button", onclick: () => act("approve", { question_id: q.id }, "Question approved: every viewer sees it now") }, "Approve") : null,
        el("button", { type: "button", class: "secondary", onclick: () => act("pin_question", { question_id: q.id }, "Question pinned") }, "Pin"),
        el("button", { type: "button", class: "secondary", onclick: () => act("dismiss", { question_id: q.id }, "Question dismissed") }, "Dismiss")),
      el("form", { class: "row", onsubmit: (event) => {
        event.preventDefault();
        if (answer.value.trim()) act("answer", { question_id: q.id, text: answer.value }, "Answer sent");
      } }, canned, answer, el("button", { type: "submit" }, "Answer")),
      draftsOf(q, answer));
  }));
  renderAutomatic();
  renderTimes();
}

async function refreshQueue() {
  try {
    const reply = await live.request("queue");
    for (const q of reply.questions) {
      state.questions.set(q.id, q);
      if (q.drafts?.length) state.drafts.set(q.id, q.drafts);
    }
    state.canned = (await live.request("canned_list")).canned || {};
  } catch {}
  renderQueue();
}

// ---- chat ----
function confirmBan(row, who, name) {
  const saved = [...row.childNodes];
  const cancel = () => row.replaceChildren(...saved);
  row.replaceChildren(
    el("span", { class: "grow confirm", text: `Ban ${name} from this show? They are removed at once and cannot join again unless unbanned.` }),
    el("button", { type: "button", onclick: async () => { cancel(); await act("ban", { user_id: who }, `Banned ${name}`, { refresh: true }); } }, `Yes, ban ${name}`),
    el("button", { type: "button", class: "secondary", onclick: cancel }, "Cancel"));
}

function addChat(msg) {
  const who = msg.user_id;
  const name = msg.name;
  const actions = msg.role === "viewer" ? el("div", { class: "row" },
    el("button", { type: "button", class: "secondary", onclick: () => act("delete_chat", { message_id: msg.id }, "Message deleted") }, "Delete"),
    el("button", { type: "button", class: "secondary", onclick: () => act("mute", { user_id: who, seconds: 300 }, `Muted ${name} for 5 min`, { refresh: true }) }, "Mute 5 min"),
    el("button", { type: "button", class: "secondary", onclick: () => act("slow_mode", { user_id: who, seconds: 30 }, `Slow mode for ${name}: one message every 30 s`, { refresh: true }) }, "Slow 30 s"),
    el("button", { type: "button", class: "secondary", onclick: () => act("shadow_ban", { user_id: who }, `Shadow-banned ${name}: only they see their messages now`, { refresh: true }) }, "Shadow-ban"),
    el("button", { type: "button", onclick: () => confirmBan(actions, who, name) }, "Ban")) : null;
  const item = el("li", { "data-id": msg.id },
    el("p", {}, el("button", { type: "button", class: "secondary", onclick: () => showViewer(who, name) }, name), el("span", { text: ` ${msg.text}` })),
    actions);
  $("chat").append(item);
  while ($("chat").children.length > 100) $("chat").firstElementChild.remove();
}

// ---- muted, banned, shadow-banned, slowed; blocked words ----
function until(row) {
  const ends = new Date(row.until_ms ?? Date.parse(row.until));
  const left = Math.max(0, Math.ceil((ends - Date.now()) / 60_000));
  return `until ${ends.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" })} (${left} min left)`;
}

function viewerList(id, rows, detail, button) {
  const label = (row) => row.name || row.user_id;
  $(id).replaceChildren(...(rows.length ? rows.map((row) => el("li", { class: "row", "data-user": row.user_id },
    el("span", { class: "grow" }, el("b", { text: label(row) }), detail ? el("span", { class: "muted", text: ` ${detail(row)}` }) : null),
    button(row, label(row)))) : [el("li", { class: "muted", text: "Nobody" })]));
}

function renderModeration() {
  const m = state.moderation;
  if (!m) return;
  const muted = m.muted.filter((row) => (row.until_ms ?? Date.parse(row.until)) > Date.now());
  viewerList("muted", muted, until, (row, name) => el("button", { type: "button", class: "secondary", "aria-label": `Unmute ${name}`,
    onclick: () => act("unmute", { user_id: row.user_id }, `Unmuted ${name}`, { refresh: true }) }, "Unmute"));
  viewerList("banned", m.banned, null, (row, name) => el("button", { type: "button", class: "secondary", "aria-label": `Unban ${name}`,
    onclick: () => act("unban", { user_id: row.user_id }, `Unbanned ${name}: they can join again`, { refresh: true }) }, "Unban"));
  viewerList("shadow-banned", m.shadow_banned, null, (row, name) => el("button", { type: "button", class: "secondary", "aria-label": `Unshadow ${name}`,
    onclick: () => act("unshadow_ban", { user_id: row.user_id }, `${name} is no longer shadow-banned`, { refresh: true }) }, "Unshadow"));
  viewerList("slow-mode", m.slow_mode, (row) => `one message every ${row.seconds} s`, (row, name) => el("button", { type: "button", class: "secondary", "aria-label": `End slow mode for ${name}`,
    onclick: () => act("slow_mode", { user_id: row.user_id, seconds: 0 }, `Slow mode off for ${name}`, { refresh: true }) }, "End slow mode"));
}

async function loadModeration({ words = false } = {}) {
  try {
    state.moderation = await live.request("moderation_state");
  } catch (error) {
    if (words) say(`The blocked words could not be loaded: ${errorText(error)}`, false);
    return;
  }
  renderModeration();
  if (words) {
    $("blocked").value = state.moderation.blocked_words.join(", ");
    $("save-blocked").disabled = false;  // (saving before they were loaded would wipe them)
  }
}

// ---- socket ----
function onMessage(msg) {
  switch (msg.type) {
    case "hello":
      if (msg.role !== "moderator") {
        signIn(msg.role === "host" ? "This is the host's link: the console needs a moderator's." : "This link is not a moderator's.");
        return;
      }
      state.signedIn = true;
      break;
    case "snapshot":
      state.questions = new Map((msg.questions || []).map((q) => [q.id, q]));
      $("chat").replaceChildren();
      (msg.chat || []).forEach(addChat);
      refreshQueue();
      refreshTimes();
      loadModeration({ words: $("save-blocked").disabled });
      break;
    case "question": case "question_updated": case "answer":
      state.questions.set(msg.question.id, msg.question);
      renderQueue();
      timesSoon();
      break;
    case "question_drafts": state.drafts.set(msg.question_id, msg.drafts); renderQueue(); break;
    case "chat": addChat(msg); break;
    case "chat_deleted": document.querySelector(`#chat [data-id="${CSS.escape(msg.message_id)}"]`)?.remove(); break;
    default: break;
  }
}

function onStatus(status, code) {
  if (status !== "closed") return;
  if (code === 4401) signIn("The link's token is not valid, or it has expired.");
  else if (code === 4403) signIn("The link's token is not for this show.");
}

function main() {
  if (!credentials) { signIn("This link has no token."); return; }
  live = new LiveSocket(credentials, onMessage, onStatus);
  $("canned-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("canned-text").value.trim();
    if (!text) return;
    if (await act("canned_add", { text }, "Canned reply added")) $("canned-text").value = "";
    refreshQueue();
  });
  $("slow-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const words = $("blocked").value.split(",").map((w) => w.trim()).filter(Boolean);
    act("blocked_words", { words }, (reply) => {
      $("blocked").value = reply.words.join(", ");
      return `Blocked words saved (${reply.words.length})`;
    });
  });
  setInterval(renderModeration, 30_000);  // (mutes run out)
  setInterval(renderTimes, 1_000);  // (waits grow)
  setInterval(() => { if (state.signedIn && !$("console").hidden) refreshTimes(); }, 10_000);
  setInterval(() => { if (state.signedIn && !$("console").hidden) loadModeration(); }, 15_000);
}

main();
