// Shared helpers for the three pages: tokens, the HTTP API, the live socket, WHIP/WHEP.
// Every piece of user text is rendered with textContent, never as HTML.

export const showId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());

export function hashParams() {
  return new URLSearchParams(location.hash.replace(/^#/, ""));
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Money is integer minor units; how many digits a currency has after the point (its
// ISO 4217 exponent: JPY 0, EUR 2, KWD 3) comes from the server: `exponent` in a price,
// or the snapshot's `currencies` (setExponents). Failing both, Intl's own digits.
const exponents = new Map();

export function setExponents(map) {
  for (const [currency, exponent] of Object.entries(map || {})) {
    if (Number.isInteger(exponent)) exponents.set(currency, exponent);
  }
}

export function exponentOf(price) {
  if (Number.isInteger(price.exponent)) {
    exponents.set(price.currency, price.exponent);
    return price.exponent;
  }
  if (exponents.has(price.currency)) return exponents.get(price.currency);
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency: price.currency }).resolvedOptions().maximumFractionDigits;
  } catch {
    return 2;
  }
}

export function money(price) {
  if (!price) return "";
  const digits = exponentOf(price);
  const value = price.amount / 10 ** digits;
  try {
    return new Intl.NumberFormat(undefined, {
      style: "currency", currency: price.currency, minimumFractionDigits: digits, maximumFractionDigits: digits,
    }).format(value);
  } catch {
    return `${value.toFixed(digits)} ${price.currency}`;
  }
}

// A wait or a time to answer, in words: "12 s", "4 min", "–" when there is none.
export function seconds(value) {
  if (value == null) return "–";
  return value < 90 ? `${Math.round(value)} s` : `${Math.round(value / 60)} min`;
}

// Where an automatic answer came from, in words ("from product facts"); null for a person's.
const ANSWER_SOURCES = {
  "live stock": "from the live stock", "live price": "from the live price", "product facts": "from product facts",
  "shop policy": "from the shop's policies", "earlier answer": "from an earlier answer",
};
export function answerSource(q) {
  if (!q?.automatic) return null;
  return ANSWER_SOURCES[q.answer_source] || `from ${q.answer_source}`;
}

export async function api(method, path, { token, body, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  const data = resp.headers.get("content-type")?.includes("json") ? await resp.json() : null;
  if (!resp.ok) {
    const error = new Error(data?.error?.message || `HTTP ${resp.status}`);
    error.code = data?.error?.code || `http_${resp.status}`;
    error.status = resp.status;
    error.fields = data?.error?.fields;
    error.extra = data?.error?.extra;
    throw error;
  }
  return data;
}

export function newKey() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
}

// A token that renews itself before it expires (POST /api/tokens/renew, same person, role
// and show), so that a long show signs nobody out. `onRenewed(issued)` hears of each new
// token; `fallback()` may give a token of its own when the server refuses to renew;
// `inHash`: the token came in the page's #token=, which then holds the newest (a reload
// keeps working).
export class Credentials {
  constructor(token, { onRenewed = () => {}, fallback = null, inHash = false } = {}) {
    this.token = token;
    this.listeners = [onRenewed];
    this.fallback = fallback;
    this.inHash = inHash;
    this.timer = null;
    this.renewing = null;
    this.schedule(false);
  }

  subscribe(listener) { this.listeners.push(listener); }

  claims() {
    try {
      const part = this.token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part));
    } catch {
      return null;
    }
  }

  // Renew when a fifth of the lifetime is left (at most 10 minutes before expiry). A token
  // just issued is timed from now, so that this device's clock does not matter.
  schedule(fresh) {
    clearTimeout(this.timer);
    const claims = this.token ? this.claims() : null;
    if (!claims?.exp) return;
    const lifetime = (claims.exp - (claims.iat ?? claims.exp)) * 1000;
    const ahead = Math.min(600_000, lifetime / 5);
    const wait = fresh ? lifetime - ahead : claims.exp * 1000 - ahead - Date.now();
    this.timer = setTimeout(() => this.renew(), Math.min(Math.max(wait, 1000), 2 ** 31 - 1));
  }

  renew() {
    this.renewing ??= this.renewOnce().finally(() => { this.renewing = null; });
    return this.renewing;
  }

  async renewOnce() {
    if (!this.token) return false;
    let issued = null;
    try {
      issued = await api("POST", "/api/tokens/renew", { token: this.token });
    } catch (error) {
      if (!error.status || error.status >= 500) {  // offline or a server hiccup: again soon
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.renew(), 15_000);
        return false;
      }
      issued = this.fallback ? await this.fallback().catch(() => null) : null;
    }
    if (!issued) return false;
    this.token = issued.token;
    if (this.inHash) {
      const params = hashParams();
      params.set("token", issued.token);
      history.replaceState(null, "", `${location.pathname}${location.search}#${params}`);
    }
    this.schedule(true);
    for (const listener of this.listeners) {
      try { listener(issued); } catch (error) { console.warn("token listener failed", error); }
    }
    return true;
  }
}

// The show as GET /api/shows/{id} has it ({id, title, status, ...}), or null when no such
// show exists (404): pages say "This show does not exist" instead of waiting for ever.
// Other failures (offline, 5xx) throw, and the page carries on as if the show existed.
export async function loadShow(id = showId) {
  try {
    return await api("GET", `/api/shows/${encodeURIComponent(id)}`);
  } catch (error) {
    if (error.status === 404) return null;
    throw error;
  }
}

// How long a live request waits for its answer before it fails with `timeout` (read at
// each request; tests shorten it). A payment (buy_now, checkout_cart) may take the
// provider's own timeout (10 s) and a replay's margin on the server: it waits longer, so
// that the buyer hears the server's answer ("did not go through, nothing was charged")
// rather than "no answer".
export const liveOptions = { requestTimeoutMs: 10_000, paymentTimeoutMs: 30_000 };
const PAYMENTS = new Set(["buy_now", "checkout_cart"]);

// The live socket: reconnects with the last event id it saw, so nothing is missed. When the
// server closes it because the token expired (4401), it renews the token and reconnects.
// `onStatus("open" | "ready" | "closed", closeCode)`: "ready" once the server said hello (joined),
// "closed" when the socket is down. Every request gets an answer: a coded error at once
// when the socket is not ready ("disconnected"), or after `liveOptions.requestTimeoutMs`
// ("timeout").
export class LiveSocket {
  constructor(credentials, onMessage, onStatus = () => {}) {
    this.credentials = credentials;
    // A socket that closed for its token (4401) while it could not be renewed (offline)
    // reconnects once a later renewal works.
    this.awaitingToken = false;
    credentials?.subscribe(() => {
      if (this.awaitingToken && !this.closed) { this.awaitingToken = false; this.connect(); }
    });
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.lastId = null;
    this.pending = new Map();
    this.refs = 0;
    this.closed = false;
    this.retry = 0;
    this.ready = false;
    this.connect();
  }

  // The token travels as a subprotocol ("token.<token>", the server selects "liveshop"),
  // never in the URL, which servers and proxies write to their logs.
  connect() {
    const params = new URLSearchParams();
    const protocols = ["liveshop"];
    this.openedWith = this.credentials?.token;
    if (this.openedWith) protocols.push(`token.${this.openedWith}`);
    if (this.lastId) params.set("last_id", this.lastId);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${location.host}/live/${encodeURIComponent(showId)}?${params}`;
    this.ws = new WebSocket(url, protocols);
    const ws = this.ws;
    this.ws.onopen = () => { this.retry = 0; this.onStatus("open"); };
    this.ws.onmessage = (event) => this.dispatch(JSON.parse(event.data));
    this.ws.onclose = async (event) => {
      if (ws !== this.ws) return;  // (an older socket, replaced already)
      this.ready = false;
      for (const { reject, timer } of this.pending.values()) {
        clearTimeout(timer);
        reject(Object.assign(new Error("disconnected"), { code: "disconnected" }));
      }
      this.pending.clear();
      // (the token may have been renewed already, while this socket still ran on the old one)
      const fresh = () => this.credentials.token !== this.openedWith || this.credentials.renew();
      if (!this.closed && event.code === 4401 && this.credentials) {
        let renewed = false;
        try { renewed = await fresh(); } catch {}
        if (renewed) {
          // Closed for its token again soon after: the server refuses fresh tokens (a
          // clock or key problem): back off instead of renewing in a tight loop.
          const now = Date.now();
          this.authCloses = now - (this.lastAuthClose || 0) < 10_000 ? (this.authCloses || 0) + 1 : 0;
          this.lastAuthClose = now;
          const delay = this.authCloses ? Math.min(30_000, 1000 * 2 ** this.authCloses) : 0;
          setTimeout(() => { if (!this.closed) this.connect(); }, delay);
          return;
        }
        this.awaitingToken = true;
      }
      this.onStatus("closed", event.code);
      if (this.closed || event.code === 4401 || event.code === 4403) return;
      const delay = Math.min(5000, 250 * 2 ** this.retry++) * (0.5 + Math.random());
      setTimeout(() => this.connect(), delay);
    };
  }

  dispatch(message) {
    const messages = message.type === "batch" ? message.events : [message];
    for (const msg of messages) {
      if (msg.id) this.lastId = msg.id;
      if (msg.type === "hello" && !this.ready) { this.ready = true; this.onStatus("ready"); }
      if ((msg.type === "ok" || msg.type === "error") && this.pending.has(msg.ref)) {
        const { resolve, reject, timer } = this.pending.get(msg.ref);
        clearTimeout(timer);
        this.pending.delete(msg.ref);
        if (msg.type === "ok") resolve(msg);
        else reject(Object.assign(new Error(msg.message), { code: msg.code, fields: msg.fields, extra: msg.extra }));
        continue;
      }
      this.onMessage(msg);
    }
  }

  request(type, fields = {}) {
    const ref = `c${++this.refs}`;
    return new Promise((resolve, reject) => {
      if (this.ws.readyState !== WebSocket.OPEN || !this.ready) {
        reject(Object.assign(new Error("not connected"), { code: "disconnected" }));
        return;
      }
      const timer = setTimeout(() => {
        if (!this.pending.delete(ref)) return;
        reject(Object.assign(new Error("no answer in time"), { code: "timeout" }));
      }, PAYMENTS.has(type) ? Math.max(liveOptions.paymentTimeoutMs, liveOptions.requestTimeoutMs) : liveOptions.requestTimeoutMs);
      this.pending.set(ref, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ type, ref, ...fields }));
    });
  }

  // A message that gets no reply (reactions).
  send(type, fields = {}) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type, ...fields }));
  }

  close() { this.closed = true; this.ws.close(); }
}

async function iceGathered(pc, timeoutMs = 2000) {
  if (pc.iceGatheringState === "complete") return;
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
    });
  });
}

// WHIP (publish) and WHEP (play): one POST of the offer, the answer back, DELETE to stop.
export async function negotiate(pc, url, token) {
  await pc.setLocalDescription(await pc.createOffer());
  await iceGathered(pc);
  const headers = { "Content-Type": "application/sdp" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const resp = await fetch(url, { method: "POST", headers, body: pc.localDescription.sdp });
  if (resp.status !== 201) {
    let message = `HTTP ${resp.status}`;
    let code = `http_${resp.status}`;
    try { ({ message, code } = (await resp.json()).error); } catch {}
    throw Object.assign(new Error(message), { status: resp.status, code });
  }
  const base = new URL(url, window.location.href);
  const session = new URL(resp.headers.get("Location"), base).toString();
  await pc.setRemoteDescription({ type: "answer", sdp: await resp.text() });
  return session;
}

export async function hangUp(location, token) {
  if (!location) return;
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  try { await fetch(location, { method: "DELETE", headers }); } catch {}
}
