// Moderator console: the Q&A queue (approve, answer with canned replies, pin, dismiss), chat
// moderation (delete, mute, ban, shadow-ban, slow mode, blocked words), a viewer's orders.
import { Credentials, el, hashParams, LiveSocket, money } from "/static/common.js";

const $ = (id) => document.getElementById(id);
const credentials = new Credentials(hashParams().get("token"), { inHash: true });
const state = { questions: new Map(), canned: {} };
let live;

function act(type, fields, status) {
  return live.request(type, fields).catch((error) => { if (status) status.textContent = error.message; });
}

async function showViewer(userId, name) {
  $("viewer-name").textContent = `${name}'s orders in this show`;
  try {
    const reply = await live.request("viewer_orders", { user_id: userId });
    const orders = reply.orders || [];
    $("viewer-orders").replaceChildren(...(orders.length ? orders.map((o) => el("li", {
      text: `${o.order_id || o.id} · ${o.status} · ${money(o.total || { amount: o.total_minor, currency: o.currency })}`,
    })) : [el("li", { class: "muted", text: "No orders yet" })]));
  } catch (error) {
    $("viewer-orders").replaceChildren(el("li", { text: error.message }));
  }
}

function renderQueue() {
  const open = [...state.questions.values()].filter((q) => q.status === "asked" || q.status === "approved")
    .sort((a, b) => (b.pinned - a.pinned) || (b.votes - a.votes) || (Date.parse(a.asked_at) - Date.parse(b.asked_at)));
  $("queue").replaceChildren(...open.map((q) => {
    const status = el("p", { class: "muted", role: "status" });
    const answer = el("input", { class: "grow", placeholder: "Answer", "aria-label": `Answer to: ${q.text}`, maxlength: "500" });
    const canned = el("select", { "aria-label": "Canned replies" }, el("option", { value: "", text: "Canned reply…" }),
      ...Object.entries(state.canned).map(([id, text]) => el("option", { value: id, text })));
    canned.addEventListener("change", () => { if (canned.value) answer.value = state.canned[canned.value]; });
    return el("li", { "data-question": q.id },
      el("p", {}, el("span", { class: "votes", text: `▲ ${q.votes}` }),
        el("button", { type: "button", class: "secondary", onclick: () => showViewer(q.viewer_id, q.viewer_name) }, q.viewer_name),
        el("span", { text: ` ${q.text}` }), q.pinned ? el("span", { class: "status", text: "pinned" }) : null,
        el("span", { class: "status", text: q.status })),
      el("div", { class: "row" },
        q.status === "asked" ? el("button", { type: "button", onclick: () => act("approve", { question_id: q.id }, status) }, "Approve") : null,
        el("button", { type: "button", class: "secondary", onclick: () => act("pin_question", { question_id: q.id }, status) }, "Pin"),
        el("button", { type: "button", class: "secondary", onclick: () => act("dismiss", { question_id: q.id }, status) }, "Dismiss")),
      el("form", { class: "row", onsubmit: (event) => { event.preventDefault(); if (answer.value.trim()) act("answer", { question_id: q.id, text: answer.value }, status); } },
        canned, answer, el("button", { type: "submit" }, "Answer")),
      status);
  }));
}

function addChat(msg) {
  const status = el("span", { class: "muted", role: "status" });
  const who = msg.user_id;
  const item = el("li", { "data-id": msg.id },
    el("p", {}, el("button", { type: "button", class: "secondary", onclick: () => showViewer(who, msg.name) }, msg.name), el("span", { text: ` ${msg.text}` })),
    msg.role === "viewer" ? el("div", { class: "row" },
      el("button", { type: "button", class: "secondary", onclick: () => act("delete_chat", { message_id: msg.id }, status) }, "Delete"),
      el("button", { type: "button", class: "secondary", onclick: () => act("mute", { user_id: who, seconds: 300 }, status) }, "Mute 5 min"),
      el("button", { type: "button", class: "secondary", onclick: () => act("slow_mode", { user_id: who, seconds: 30 }, status) }, "Slow 30 s"),
      el("button", { type: "button", class: "secondary", onclick: () => act("shadow_ban", { user_id: who }, status) }, "Shadow-ban"),
      el("button", { type: "button", onclick: () => act("ban", { user_id: who }, status) }, "Ban"), status) : null);
  $("chat").append(item);
  while ($("chat").children.length > 100) $("chat").firstElementChild.remove();
}

function onMessage(msg) {
  switch (msg.type) {
    case "snapshot":
      state.questions = new Map((msg.questions || []).map((q) => [q.id, q]));
      $("chat").replaceChildren();
      (msg.chat || []).forEach(addChat);
      refreshQueue();
      break;
    case "question": case "question_updated": case "answer": state.questions.set(msg.question.id, msg.question); renderQueue(); break;
    case "chat": addChat(msg); break;
    case "chat_deleted": document.querySelector(`#chat [data-id="${CSS.escape(msg.message_id)}"]`)?.remove(); break;
    default: break;
  }
}

async function refreshQueue() {
  try {
    const reply = await live.request("queue");
    for (const q of reply.questions) state.questions.set(q.id, q);
    state.canned = (await live.request("canned_list")).canned || {};
  } catch {}
  renderQueue();
}

function main() {
  live = new LiveSocket(credentials, onMessage);
  $("canned-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("canned-text").value.trim();
    if (!text) return;
    await act("canned_add", { text });
    $("canned-text").value = "";
    refreshQueue();
  });
  $("slow-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const words = $("blocked").value.split(",").map((w) => w.trim()).filter(Boolean);
    act("blocked_words", { words });
  });
}

main();
