// Studio: the "Publish from OBS (WHIP)" panel. The WHIP URL and a stream key to paste into
// OBS, each with a copy button; the show's stream keys, made here (the key is shown once:
// the server keeps only its hash) and revoked here after a confirmation.
import { api, el, showId } from "/static/common.js";

const $ = (id) => document.getElementById(id);
const keysPath = `/api/shows/${encodeURIComponent(showId)}/stream-keys`;

// navigator.clipboard needs a secure context and the page's focus; else a hidden textarea
// and execCommand("copy"); else the text is selected for the user to copy by hand.
export async function copyText(text, source) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch { /* fall back below */ }
  const area = el("textarea", { class: "obs-offscreen", "aria-hidden": "true", readonly: true });
  area.value = text;
  document.body.append(area);
  area.select();
  let done = false;
  try { done = document.execCommand("copy"); } catch { done = false; }
  area.remove();
  if (!done && source) {
    const range = document.createRange();
    range.selectNodeContents(source);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
  }
  return done;
}

function copyButton(button, source, status) {
  let timer = null;
  button.addEventListener("click", async () => {
    const text = source.textContent;
    if (!text) return;
    const ok = await copyText(text, source);
    status.textContent = ok ? "Copied" : "Selected: press Ctrl+C (⌘C) to copy";
    clearTimeout(timer);
    timer = setTimeout(() => { status.textContent = ""; }, 4000);
  });
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "";
}

export function setupObs({ credentials, whipUrl }) {
  if (!$("obs")) return;
  let keys = [];
  let shownKeyId = null;  // the key whose secret is on screen (made in this page, once)
  const say = (text) => { $("obs-msg").textContent = text; };
  const token = () => credentials.token;

  $("whip-url").textContent = whipUrl;
  copyButton($("obs-copy-url"), $("whip-url"), $("obs-url-copied"));
  copyButton($("obs-copy-key"), $("obs-key"), $("obs-key-copied"));

  function hideNewKey() {
    shownKeyId = null;
    $("obs-key").textContent = "";
    $("obs-key-copied").textContent = "";
    $("obs-new-key").hidden = true;
  }

  function keyRow(key) {
    const used = key.last_used_at ? `last used ${when(key.last_used_at)}` : "never used";
    const revoke = el("button", { type: "button", class: "secondary", "aria-label": `Revoke ${key.label}` }, "Revoke");
    const row = el("li", { class: "obs-key-row", "data-key-id": key.id },
      el("div", { class: "row" },
        el("span", { class: "grow" }, el("strong", { text: key.label }),
          el("span", { class: "muted", text: ` · created ${when(key.created_at)} · ${used}` })),
        revoke));
    revoke.addEventListener("click", () => {
      const confirmBox = el("div", { class: "row obs-confirm", role: "group", "aria-label": `Revoke ${key.label}?` },
        el("span", { class: "grow", text: `Revoke "${key.label}"? OBS streaming with it stops at once.` }),
        el("button", { type: "button", onclick: () => revokeKey(key, confirmBox) }, "Yes, revoke"),
        el("button", { type: "button", class: "secondary", onclick: () => { confirmBox.remove(); revoke.disabled = false; revoke.focus(); } }, "Cancel"));
      revoke.disabled = true;
      row.append(confirmBox);
      confirmBox.querySelector("button").focus();
    });
    return row;
  }

  function render() {
    const active = keys.filter((k) => !k.revoked_at);
    const revoked = keys.length - active.length;
    const items = active.map(keyRow);
    if (!active.length) items.push(el("li", { class: "muted", text: "No stream key yet." }));
    if (revoked) items.push(el("li", { class: "muted", text: `${revoked} revoked` }));
    $("obs-keys").replaceChildren(...items);
  }

  async function load() {
    try {
      const listed = await api("GET", keysPath, { token: token() });
      keys = listed.stream_keys;
      if (listed.whip_url) $("whip-url").textContent = listed.whip_url;
      render();
    } catch (error) {
      say(`Could not load the stream keys: ${error.message}`);
    }
  }

  async function revokeKey(key, confirmBox) {
    for (const button of confirmBox.querySelectorAll("button")) button.disabled = true;
    try {
      await api("DELETE", `${keysPath}/${encodeURIComponent(key.id)}`, { token: token() });
      if (shownKeyId === key.id) hideNewKey();
      say(`Revoked "${key.label}": it can no longer publish.`);
      await load();
    } catch (error) {
      say(`Could not revoke "${key.label}": ${error.message}`);
      for (const button of confirmBox.querySelectorAll("button")) button.disabled = false;
    }
  }

  $("obs-create").addEventListener("submit", async (event) => {
    event.preventDefault();
    const label = $("obs-label").value.trim();
    if (!label) { say("Give the key a label, e.g. OBS."); return; }
    $("obs-create-button").disabled = true;
    try {
      const made = await api("POST", keysPath, { token: token(), body: { label } });
      shownKeyId = made.id;
      $("obs-key").textContent = made.key;
      $("obs-key-copied").textContent = "";
      $("obs-new-key").hidden = false;
      if (made.whip_url) $("whip-url").textContent = made.whip_url;
      say(`Stream key "${made.label}" created. Paste it into OBS as the Bearer Token.`);
      await load();
    } catch (error) {
      say(error.code === "stream_key_limit" ? "This show has the most stream keys it may have: revoke one first."
        : `Could not create a stream key: ${error.message}`);
    } finally {
      $("obs-create-button").disabled = false;
    }
  });

  if (!token()) {
    $("obs-create-button").disabled = true;
    say("Open this page from the host link liveshop printed to make stream keys.");
    return;
  }
  load();
}
