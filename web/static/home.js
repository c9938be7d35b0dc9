// The front door (GET / and /watch): the live and upcoming shows, and those that ended
// lately, from GET /api/shows. All text goes through textContent (common.js `el`).
import { api, el } from "/static/common.js";

const $ = (id) => document.getElementById(id);

function when(iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
}

function showItem(show) {
  const time = show.status === "live" ? show.started_at
    : show.status === "ended" ? show.ended_at : show.scheduled_at;
  const label = show.status === "live" ? "Started" : show.status === "ended" ? "Ended" : "Starts";
  const timeText = time ? `${label} ${when(time)}` : (show.status === "scheduled" ? "Time to be announced" : "");
  return el("li", { class: "show-item", "data-show": show.id },
    el("a", { href: `/watch/${encodeURIComponent(show.id)}`, class: "show-link" },
      el("span", { class: `status ${show.status === "live" ? "live" : ""}`, text: show.status }),
      el("span", { class: "show-title", text: show.title })),
    el("p", { class: "muted" },
      el("span", { class: "show-host", text: show.host_name ? `with ${show.host_name}` : "" }),
      el("span", { text: show.host_name && timeText ? " · " : "" }),
      el("span", { class: "show-time", text: timeText })));
}

function fill(list, shows, empty) {
  list.replaceChildren(...(shows.length ? shows.map(showItem) : [el("li", { class: "muted", text: empty })]));
}

async function main() {
  let shows;
  try {
    shows = (await api("GET", "/api/shows")).shows;
  } catch {
    $("home-status").textContent = "The shows could not be loaded. Check your connection and reload.";
    return;
  }
  const live = shows.filter((s) => s.status === "live");
  const upcoming = shows.filter((s) => s.status === "scheduled")
    .sort((a, b) => (a.scheduled_at || "9999").localeCompare(b.scheduled_at || "9999"));
  const ended = shows.filter((s) => s.status === "ended");
  $("home-status").textContent = live.length || upcoming.length ? "" : "No shows right now";
  $("home-status").hidden = Boolean(live.length || upcoming.length);
  fill($("live-shows"), live, "Nothing live right now.");
  fill($("upcoming-shows"), upcoming, "Nothing scheduled yet.");
  $("ended-section").hidden = ended.length === 0;
  fill($("ended-shows"), ended, "");
}

main();
