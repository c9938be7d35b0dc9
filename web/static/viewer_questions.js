// Viewer page: questions. The list (in the drawer) shows what everyone sees (approved and
// answered questions) and the viewer's own questions still waiting for a moderator, marked
// so; an answer shows for a few seconds over the video, near the chat ("Q: ... A: ..."),
// and tells the asker their question was answered. All user text through textContent.
import { answerSource, el } from "/static/common.js";

const BANNER_MS = 8000;
const NOTICE_MS = 5000;

export class ViewerQuestions {
  // `request(type, fields)`: a live request; `me()`: the hello ({user_id}) or null.
  constructor({ request, me }) {
    this.request = request;
    this.me = me;
    this.questions = new Map();
    this.public = false;  // questions are seen by everyone at once (LIVESHOP_QUESTIONS_PUBLIC)
    this.bannerTimer = null;
    this.noticeTimer = null;
    this.notice = null;  // {id, text}: a short word on the viewer's own question
    this.main = el("div", { class: "qa-main", "aria-live": "polite" });
    this.mine = el("div", { class: "qa-mine", hidden: true });
    this.banner = el("div", { class: "qa-banner", role: "status", hidden: true });
    this.main.append(this.banner, this.mine);
  }

  // The main-view part goes just above the chat.
  mount(chat) {
    if (!this.main.isConnected) chat.before(this.main);
  }

  isMine(q) {
    const me = this.me();
    return Boolean(me?.user_id) && q.viewer_id === me.user_id;
  }

  waiting(q) {
    return q.status === "asked" && !this.public;
  }

  reset(questions, { isPublic = false } = {}) {
    this.public = Boolean(isPublic);
    this.questions = new Map((questions || []).map((q) => [q.id, q]));
    this.render();
  }

  // A `question`, `question_updated` or `answer` event.
  event(msg) {
    const q = msg.question;
    const before = this.questions.get(q.id);
    this.questions.set(q.id, q);
    if (msg.type === "answer" && q.answer) {
      if (this.notice?.id === q.id) this.notice = null;
      this.showAnswer(q);
    }
    else if (this.isMine(q) && before && this.waiting(before) && q.status === "approved") {
      this.tell(q, "Approved: everyone can see your question now");
    }
    this.render();
  }

  tell(q, text) {
    this.notice = { id: q.id, text };
    clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(() => { this.notice = null; this.render(); }, NOTICE_MS);
  }

  showAnswer(q) {
    const mine = this.isMine(q);
    this.banner.className = `qa-banner${mine ? " mine" : ""}`;
    this.banner.replaceChildren(
      mine ? el("p", { class: "qa-title", text: "Your question was answered" }) : null,
      el("p", {}, el("b", { text: "Q: " }), el("span", { text: q.text })),
      el("p", {}, el("b", { text: "A: " }), el("span", { class: "qa-answer", text: q.answer })),
      answerSource(q) ? el("p", { class: "qa-source", text: `Automatic answer, ${answerSource(q)}` }) : null);
    this.banner.hidden = false;
    clearTimeout(this.bannerTimer);
    this.bannerTimer = setTimeout(() => { this.banner.hidden = true; }, BANNER_MS);
  }

  visible() {
    // (a dismissed question disappears; one waiting for a moderator is only ever the viewer's own)
    return [...this.questions.values()].filter((q) => q.status !== "dismissed" && (!this.waiting(q) || this.isMine(q)))
      .sort((a, b) => (b.pinned - a.pinned) || (this.waiting(b) - this.waiting(a)) || (b.votes - a.votes));
  }

  render() {
    const list = document.getElementById("questions");
    const items = this.visible();
    if (list) list.replaceChildren(...items.map((q) => this.item(q)));
    // The viewer's own question, in the main view while it waits (or just after approval).
    const own = items.filter((q) => this.isMine(q) && (this.waiting(q) || this.notice?.id === q.id));
    const last = own[own.length - 1];
    this.mine.hidden = !last;
    if (last) {
      this.mine.replaceChildren(el("span", { class: "who", text: "Your question: " }), el("span", { text: last.text }),
        el("span", { class: `status${this.waiting(last) ? " pending" : ""}`,
          text: this.waiting(last) ? "Waiting for a moderator" : this.notice.text }));
    }
  }

  item(q) {
    const status = el("p", { class: "muted qa-result", role: "status" });
    const upvotable = !q.answer && !this.waiting(q) && q.status !== "answered" && !this.isMine(q);
    return el("li", { "data-question": q.id, class: this.waiting(q) ? "pending" : null },
      el("p", {}, el("span", { class: "votes", text: `▲ ${q.votes}` }), el("span", { class: "who", text: `${q.viewer_name}: ` }), el("span", { text: q.text })),
      this.waiting(q) ? el("p", { class: "status pending", text: "Waiting for a moderator" }) : null,
      q.answer ? el("p", { class: "answer" }, el("b", { text: "Answer: " }), el("span", { text: q.answer }),
        answerSource(q) ? el("span", { class: "muted qa-source", text: ` (automatic, ${answerSource(q)})` }) : null) : null,
      upvotable ? el("button", { type: "button", class: "secondary", "aria-label": `Upvote: ${q.text}`,
        onclick: () => this.request("upvote", { question_id: q.id }).catch((error) => {
          status.textContent = error.code === "already_voted" ? "You upvoted this already" : "Could not upvote: try again";
        }) }, "Upvote") : null,
      status);
  }
}
