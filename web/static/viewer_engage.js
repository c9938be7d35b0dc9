// Hearts and polls. Each `reactions` event floats its hearts up over the video (none when
// the viewer prefers reduced motion) and shows the show's running total (`totals`, kept by
// the server: a reload shows it from the snapshot). A poll shows the viewer's own choice
// ("You voted …"); a second vote is refused by the server and said so.
import { el } from "/static/common.js";
import { humanMessage } from "/static/messages.js";

const $ = (id) => document.getElementById(id);
const totals = new Map();
const stillMotion = matchMedia("(prefers-reduced-motion: reduce)");

function drawTotals() {
  $("reactions").replaceChildren(...[...totals].map(([emoji, n]) =>
    el("span", { class: "total", "aria-label": `${n} ${emoji === "❤" ? "hearts" : emoji}`, text: `${emoji} ${n}` })));
}

// The snapshot's totals, or an event's (each process adds its own: keep the largest seen).
export function setReactionTotals(map) {
  for (const [emoji, n] of Object.entries(map || {})) totals.set(emoji, Math.max(totals.get(emoji) || 0, n));
  drawTotals();
}

function layer() {
  let node = $("hearts");
  if (!node) {
    node = el("div", { id: "hearts", class: "hearts", "aria-hidden": "true" });
    $("video").after(node);
  }
  return node;
}

function floatHearts(emoji, count) {
  if (stillMotion.matches) return;
  const root = layer();
  for (let i = 0; i < Math.min(count, 8); i++) {
    const heart = el("span", { class: "heart", text: emoji === "<3" ? "❤" : emoji });
    heart.style.left = `${10 + Math.random() * 70}%`;
    heart.style.animationDelay = `${i * 90}ms`;
    heart.addEventListener("animationend", () => heart.remove());
    root.append(heart);
    setTimeout(() => heart.remove(), 4000);  // (an animation that never ran)
  }
}

export function onReactions(msg) {
  for (const [emoji, n] of Object.entries(msg.counts || {})) {
    floatHearts(emoji, n);
    if (!msg.totals) totals.set(emoji, (totals.get(emoji) || 0) + n);  // (an old server)
  }
  setReactionTotals(msg.totals);
}

// ---- polls ----
let mine = { pollId: null, option: null };
let note = "";

export function setMyVote(pollId, option) {
  mine = { pollId, option: Number.isInteger(option) ? option : null };
  note = "";
}

export function drawPoll(root, poll, request) {
  if (!poll) { root.replaceChildren(); return; }
  if (mine.pollId !== poll.poll_id) setMyVote(poll.poll_id, null);
  const tally = poll.tally || {};
  const voted = mine.option !== null;
  const vote = async (i) => {
    try {
      await request("vote", { poll_id: poll.poll_id, option: i });
      setMyVote(poll.poll_id, i);
    } catch (error) {
      if (error.code === "already_voted" && Number.isInteger(error.extra?.option)) setMyVote(poll.poll_id, error.extra.option);
      note = humanMessage(error);
    }
    drawPoll(root, poll, request);
  };
  const said = voted ? `You voted ${poll.options[mine.option]}` : (poll.closed ? "The poll has closed" : "");
  root.replaceChildren(el("div", { class: "poll", role: "group", "aria-label": "Poll" },
    el("p", { text: poll.question }),
    ...poll.options.map((option, i) => el("button", {
      type: "button",
      class: `secondary${mine.option === i ? " chosen" : ""}`,
      "aria-pressed": mine.option === i ? "true" : "false",
      disabled: poll.closed,
      onclick: () => vote(i),
    }, `${option} (${tally[i] ?? tally[String(i)] ?? 0})`)),
    el("p", { class: "poll-note", role: "status", text: [said, note].filter(Boolean).join(". ") })));
}
