// alertkit dashboard: sign-in, the API client, the live connection with its
// polling fallback, and the tabs. The views live in alerts.js, forecast.js
// and admin.js. Plain ES modules: no build step, no CDN.

import { AlertsView } from "./alerts.js";
import { ForecastView } from "./forecast.js";
import { AdminView } from "./admin.js";

const TOKEN_KEY = "alertkit.token";
/** How often REST is polled while the WebSocket is down. */
export const POLL_MS = 3000;
/** Reconnect delays: 1 s doubling to 30 s, with ±20 % jitter. */
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 30000;

export const $ = (sel, root = document) => root.querySelector(sel);

/** An element with attributes and children (strings become text). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

/** A short local time, with the full time as a tooltip. */
export function when(iso) {
  if (!iso) return el("span", { text: "—" });
  const d = new Date(iso);
  return el("time", { datetime: iso, title: d.toLocaleString(), text: d.toLocaleString([], { dateStyle: "short", timeStyle: "short" }) });
}

/** What a failed request says, for people. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** The REST API, with the token in the Authorization header. */
export class Api {
  constructor(token, onUnauthorized) {
    this.token = token;
    this.onUnauthorized = onUnauthorized;
  }

  /**
   * Sends a request; answers `{status, data, headers}`. A 304 has no data.
   * Errors: ApiError for an error status, TypeError when the network fails.
   */
  async req(method, path, { body, json, headers = {}, etag } = {}) {
    const h = { Authorization: `Bearer ${this.token}`, ...headers };
    if (json !== undefined) {
      h["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    }
    if (etag) h["If-None-Match"] = etag;
    const res = await fetch(path, { method, headers: h, body, cache: "no-store", credentials: "omit" });
    if (res.status === 304) return { status: 304, data: null, headers: res.headers };
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = text; }
    if (!res.ok) {
      const err = (data && data.error) || {};
      const e = new ApiError(res.status, err.code || "error", err.message || `${res.status} ${res.statusText}`,
        Number(res.headers.get("Retry-After")) || 0);
      e.body = data;
      if (res.status === 401) this.onUnauthorized(e);
      throw e;
    }
    return { status: res.status, data, headers: res.headers };
  }
  get(path, opts) { return this.req("GET", path, opts); }
  post(path, json) { return this.req("POST", path, { json }); }
}

/** The claims of a JWT, read only to choose what to show (the server decides what is allowed). */
function claims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const c = JSON.parse(atob(part.padEnd(Math.ceil(part.length / 4) * 4, "=")));
    return { sub: String(c.sub ?? "?"), perms: Array.isArray(c.perms) ? c.perms : null, exp: c.exp };
  } catch {
    return { sub: "?", perms: null, exp: null };
  }
}

/**
 * The live connection: a WebSocket that signs in with its first message and
 * resumes from the last cursor it saw; while it is down, REST is polled.
 * Modes: `live` (socket open), `polling` (socket down, REST answers),
 * `offline` (neither).
 */
export class Connection {
  constructor(token, { onFrame, onPoll, onMode, onAuthLost, onCursorExpired }) {
    this.token = token;
    this.h = { onFrame, onPoll, onMode, onAuthLost, onCursorExpired };
    this.cursor = null;
    this.mode = null;
    this.attempt = 0;
    this.ws = null;
    this.pollTimer = null;
    this.retryTimer = null;
    this.stopped = false;
    this.onOnline = () => { this.setMode(this.mode === "live" ? "live" : "polling"); this.connect(); };
    this.onOffline = () => this.setMode("offline");
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOffline);
  }

  setMode(m) {
    if (this.mode === m) return;
    this.mode = m;
    this.h.onMode(m);
    if (m === "live") this.stopPolling();
    else this.startPolling();
  }

  connect() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) return;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/ws`);
    this.ws = ws;
    ws.onopen = () => {
      const auth = { type: "auth", token: this.token };
      if (this.cursor) auth.cursor = this.cursor;
      ws.send(JSON.stringify(auth));
    };
    ws.onmessage = (ev) => {
      let f;
      try { f = JSON.parse(ev.data); } catch { return; }
      if (f.type === "hello") {
        this.attempt = 0;
        // A fresh start (no cursor to resume from): what came before the
        // hello is read over REST, everything after arrives here.
        f.fresh = !this.cursor;
        if (!this.cursor) this.cursor = f.cursor;
        this.setMode("live");
      } else if (f.type === "error" && f.code === "cursor_expired") {
        // Too much was missed to replay: start again from REST.
        this.cursor = null;
        this.h.onCursorExpired();
        ws.close();
        return;
      }
      if (f.cursor && (f.type === "alert" || f.type === "resumed")) this.cursor = f.cursor;
      this.h.onFrame(f);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      if (ev.code === 4001) {
        this.h.onAuthLost("The server ended the session: the token expired or is no longer accepted.");
        return;
      }
      this.setMode(navigator.onLine === false ? "offline" : "polling");
      this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    const base = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 10);
    const delay = base * (0.8 + Math.random() * 0.4);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  startPolling() {
    if (this.pollTimer || this.stopped) return;
    const tick = async () => {
      if (this.stopped || this.mode === "live") { this.pollTimer = null; return; }
      try {
        await this.h.onPoll();
        if (this.mode !== "live") this.setMode("polling");
      } catch (e) {
        if (e instanceof TypeError && this.mode !== "live") this.setMode("offline");
      }
      if (this.mode !== "live" && !this.stopped) this.pollTimer = setTimeout(tick, POLL_MS);
      else this.pollTimer = null;
    };
    this.pollTimer = setTimeout(tick, 0);
  }

  stopPolling() {
    clearTimeout(this.pollTimer);
    this.pollTimer = null;
  }

  stop() {
    this.stopped = true;
    this.stopPolling();
    clearTimeout(this.retryTimer);
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOffline);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
  }
}

/** Tabs with arrow-key navigation (WAI-ARIA tabs pattern). */
export function tablist(list, onSelect) {
  const tabs = () => [...list.querySelectorAll("[role=tab]")].filter((t) => !t.hidden);
  const select = (tab, focus) => {
    for (const t of tabs()) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
    }
    if (focus) tab.focus();
    onSelect(tab);
  };
  list.addEventListener("click", (e) => {
    const t = e.target.closest("[role=tab]");
    if (t) select(t, false);
  });
  list.addEventListener("keydown", (e) => {
    const all = tabs();
    const i = all.indexOf(document.activeElement);
    if (i < 0) return;
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: all.length - 1 }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    select(all[(next + all.length) % all.length], true);
  });
  return select;
}

// ---- the page ---------------------------------------------------------------

let session = null;

function showSignin(message) {
  $("#app").hidden = true;
  $("#signin").hidden = false;
  $("#signin-error").textContent = message || "";
  $("#token").focus();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (session) session.stop();
  session = null;
  showSignin(message);
}

/** Shows a banner: an admin broadcast, or trouble worth knowing about. */
let bannerTimer = null;
export function banner(text, level = "info", ms = 15000) {
  const b = $("#banner");
  b.textContent = text;
  b.dataset.level = level;
  b.hidden = false;
  clearTimeout(bannerTimer);
  if (ms) bannerTimer = setTimeout(() => { b.hidden = true; }, ms);
}

/** One signed-in session: the views and the connection. */
class Session {
  constructor(token, who) {
    this.api = new Api(token, (e) => signOut(`Signed out: ${e.message}`));
    this.who = who;
    const can = (p) => who.perms === null || who.perms.includes(p);
    this.can = can;
    this.alerts = new AlertsView(this.api, (text) => { $("#announcer").append(el("p", { text })); });
    this.forecast = new ForecastView(this.api, can("forecast.manage"));
    this.admin = new AdminView(this.api, {
      jobs: can("scheduler.manage") || can("alerts.manage"),
      manage: can("alerts.manage"),
      broadcast: can("alerts.broadcast"),
      control: can("scheduler.manage"),
    });
    $("#tab-admin").hidden = !(can("alerts.manage") || can("scheduler.manage"));
    $("#who").textContent = `signed in as ${who.sub}`;
    this.conn = new Connection(token, {
      onFrame: (f) => this.frame(f),
      onPoll: () => this.alerts.poll(),
      onMode: (m) => {
        const e = $("#mode");
        e.dataset.mode = m;
        e.textContent = m;
        e.title = { live: "Live: updates arrive over a WebSocket", polling: "Polling: the WebSocket is down; checking every few seconds", offline: "Offline: the server cannot be reached" }[m];
      },
      onAuthLost: (msg) => signOut(msg),
      onCursorExpired: () => this.alerts.reload(),
    });
    this.selectTab = tablist($("#tabs"), (tab) => this.show(tab.id.replace("tab-", "")));
  }

  start() {
    // The list loads on the first hello (or the first poll, if the socket
    // cannot open), so nothing falls between the page and the live frames.
    this.conn.connect();
  }

  show(view) {
    for (const v of ["alerts", "forecast", "admin"]) $(`#view-${v}`).hidden = v !== view;
    this.admin.active(view === "admin");
    if (view === "forecast") this.forecast.open();
  }

  frame(f) {
    switch (f.type) {
      case "hello":
        this.alerts.setUnread(f.unread);
        if (f.fresh) this.alerts.reload();
        break;
      case "alert": this.alerts.onAlertFrame(f); break;
      case "receipt": this.alerts.onReceipt(f); break;
      case "unread": this.alerts.setUnread(f.count); break;
      case "broadcast": banner(f.message, f.level || "info"); break;
      case "forecast": this.forecast.onFrame(f.data); break;
      case "error": banner(`The server refused a message: ${f.message}`, "error"); break;
      default: break;
    }
  }

  stop() {
    this.conn.stop();
    this.admin.active(false);
  }
}

async function signIn(token) {
  const who = claims(token);
  const api = new Api(token, () => {});
  try {
    await api.get("/api/alerts/unread/count");
  } catch (e) {
    if (e instanceof ApiError) {
      const why = e.status === 403 ? "this token lacks the alerts.read permission" : e.message;
      showSignin(`The server refused this token: ${why}`);
    } else {
      showSignin("The server cannot be reached.");
    }
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("#signin").hidden = true;
  $("#app").hidden = false;
  session = new Session(token, who);
  session.start();
  $("#main").focus();
}

window.addEventListener("DOMContentLoaded", () => {
  $("#signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const t = $("#token").value.trim().replace(/^Bearer\s+/i, "");
    $("#token").value = "";
    if (t) signIn(t);
  });
  $("#signout").addEventListener("click", () => signOut("Signed out."));
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved);
  else showSignin();
});
