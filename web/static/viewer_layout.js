// Viewer layout and keyboard: the cart drawer (open, close, focus, Esc, out of the Tab
// order while closed), the overlays' collapse on small screens (poll chip, hide/show
// overlays), full screen and picture-in-picture, and the CSS variables that keep the
// overlays off each other (--top-h, --form-h, --tools-h on #viewer; see app.css, part F).
// It runs on import; other code opens and closes the drawer with openDrawer/closeDrawer
// (or by toggling the drawer's "open" class: the drawer follows it either way).
const $ = (id) => document.getElementById(id);
const COMPACT = matchMedia("(max-width: 420px), (max-height: 500px)");

// ---- the drawer ----
let returnTo = null;

function drawer() { return $("cart"); }

function focusable(node) {
  return node && node.isConnected && !node.closest("[inert]") && node.checkVisibility?.() !== false;
}

function backTarget(root) {
  const target = focusable(returnTo) && !root.contains(returnTo) && returnTo !== document.body ? returnTo : $("open-cart");
  returnTo = null;
  return target;
}

// Apply what follows from the "open" class, whoever set it: inert (out of the Tab order,
// with visibility:hidden in app.css) while closed, the Cart button's aria-expanded, and the
// focus back on the page when the drawer closes with the focus inside it.
function syncDrawer() {
  const root = drawer();
  if (!root) return;
  const open = root.classList.contains("open");
  $("open-cart")?.setAttribute("aria-expanded", String(open));
  if (root.inert !== open) return;  // already in step
  if (open) {
    returnTo ??= document.activeElement;
    root.inert = false;
    return;
  }
  const hadFocus = root.contains(document.activeElement);
  root.inert = true;
  const target = backTarget(root);
  if (hadFocus) target?.focus({ preventScroll: true });
}

export function openDrawer() {
  const root = drawer();
  if (!root) return;
  if (!root.classList.contains("open")) returnTo = document.activeElement;
  root.classList.add("open");
  syncDrawer();
  const target = root.querySelector("[data-drawer-focus]") || root.querySelector("h2, h3");
  if (target) {
    if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
    target.focus({ preventScroll: true });
  }
}

export function closeDrawer() {
  const root = drawer();
  if (!root || !root.classList.contains("open")) return;
  root.classList.remove("open");
  root.inert = true;
  backTarget(root)?.focus({ preventScroll: true });
  syncDrawer();
}

function setUpDrawer() {
  const root = drawer();
  if (!root) return;
  root.inert = !root.classList.contains("open");
  new MutationObserver(syncDrawer).observe(root, { attributes: true, attributeFilter: ["class"] });
  $("open-cart")?.addEventListener("click", openDrawer);
  $("close-cart")?.addEventListener("click", closeDrawer);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && root.classList.contains("open")) {
      event.preventDefault();
      closeDrawer();
    }
  });
  syncDrawer();
}

// ---- the poll: a one-line chip on small screens, open on wide ones ----
function setUpPoll() {
  const panel = $("poll-panel");
  const poll = $("poll");
  const toggle = $("poll-toggle");
  if (!panel || !poll || !toggle) return;
  let question = null;
  let chosen = null;  // the viewer's own choice for this poll, else the screen's default
  const render = () => {
    const text = poll.querySelector("[data-poll-question], p, h3")?.textContent.trim() || "";
    if (text !== question) { question = text; chosen = null; }
    panel.hidden = poll.childElementCount === 0;
    const expanded = chosen ?? !COMPACT.matches;
    toggle.textContent = question ? `Poll: ${question}` : "Poll";
    toggle.setAttribute("aria-expanded", String(expanded));
    panel.classList.toggle("collapsed", !expanded);
  };
  toggle.addEventListener("click", () => {
    chosen = toggle.getAttribute("aria-expanded") !== "true";
    render();
  });
  new MutationObserver(render).observe(poll, { childList: true, subtree: true, characterData: true });
  COMPACT.addEventListener("change", render);
  render();
}

// ---- hide/show the overlays, full screen, picture-in-picture ----
function setUpViewTools() {
  const viewer = $("viewer");
  const video = $("video");
  const hide = $("toggle-overlays");
  hide?.addEventListener("click", () => {
    const hidden = viewer.classList.toggle("overlays-hidden");
    hide.textContent = hidden ? "Show" : "Hide";
    hide.setAttribute("aria-label", hidden ? "Show overlays" : "Hide overlays");
  });

  const full = $("fullscreen");
  // The viewer element goes full screen, not the video: the cards and chat come along.
  // iPhones have no element full screen; their video's own full screen is the fallback.
  const canElement = document.fullscreenEnabled && viewer.requestFullscreen;
  if (full && (canElement || video.webkitEnterFullscreen)) {
    full.hidden = false;
    const label = () => {
      const on = document.fullscreenElement === viewer;
      full.textContent = on ? "Exit" : "Full";
      full.setAttribute("aria-label", on ? "Exit full screen" : "Full screen");
    };
    full.addEventListener("click", async () => {
      try {
        if (!canElement) video.webkitEnterFullscreen();
        else if (document.fullscreenElement) await document.exitFullscreen();
        else await viewer.requestFullscreen({ navigationUI: "hide" });
      } catch {}
    });
    document.addEventListener("fullscreenchange", label);
    label();
  }

  const pip = $("pip");
  if (pip && document.pictureInPictureEnabled && video.requestPictureInPicture) {
    pip.hidden = false;
    const state = () => {
      const on = document.pictureInPictureElement === video;
      pip.disabled = !on && (video.readyState < 1 || video.videoWidth === 0);
      pip.setAttribute("aria-label", on ? "Leave picture in picture (PiP)" : "Picture in picture (PiP)");
      pip.setAttribute("aria-pressed", String(on));
    };
    pip.addEventListener("click", async () => {
      try {
        if (document.pictureInPictureElement) await document.exitPictureInPicture();
        else await video.requestPictureInPicture();
      } catch {}
      state();
    });
    for (const name of ["loadedmetadata", "resize", "emptied", "enterpictureinpicture", "leavepictureinpicture"]) {
      video.addEventListener(name, state);
    }
    state();
  }
}

// ---- the strips' and tools' sizes, for the CSS that keeps overlays apart ----
function setUpSizes() {
  const viewer = $("viewer");
  const top = viewer?.querySelector(".top");
  const form = $("chat-form");
  const tools = $("view-tools");
  if (!viewer) return;
  const measure = () => {
    const box = viewer.getBoundingClientRect();
    if (top) viewer.style.setProperty("--top-h", `${Math.ceil(top.getBoundingClientRect().bottom - box.top)}px`);
    if (form) viewer.style.setProperty("--form-h", `${Math.ceil(box.bottom - form.getBoundingClientRect().top)}px`);
    if (tools) viewer.style.setProperty("--tools-h", `${Math.ceil(tools.getBoundingClientRect().height)}px`);
  };
  const observer = new ResizeObserver(measure);
  for (const node of [viewer, top, form, tools]) if (node) observer.observe(node);
  measure();
}

setUpDrawer();
setUpPoll();
setUpViewTools();
setUpSizes();
