// The alert list: filters, live updates, the unread badge, mark-read,
// dismiss, mark-all-read and infinite scroll over the API's cursors.

import { $, el, when, ApiError, banner } from "./app.js";

const RANK = { info: 0, low: 1, medium: 2, high: 3, critical: 4 };
const PAGE = 30;

/** Newest first by (created_at, id), as the API orders pages. */
function newer(a, b) {
  if (a.created_at !== b.created_at) return a.created_at > b.created_at;
  return a.id > b.id;
}

export class AlertsView {
  constructor(api, announce) {
    this.api = api;
    this.announce = announce;
    this.alerts = new Map(); // id → alert view
    this.items = new Map(); // id → <li>
    this.next = null; // next_cursor of the last page read
    this.loaded = false;
    this.loading = false;
    this.etag = null;
    this.unread = 0;
    this.generation = 0; // bumps on reload: late pages of an old filter are dropped
    this.list = $("#alerts");
    this.form = $("#filters");
    this.form.addEventListener("change", () => this.reload());
    this.form.addEventListener("submit", (e) => { e.preventDefault(); this.reload(); });
    let typing = null;
    this.form.addEventListener("input", (e) => {
      if (e.target.tagName !== "INPUT" || e.target.type === "checkbox") return;
      clearTimeout(typing);
      typing = setTimeout(() => this.reload(), 400);
    });
    $("#mark-all").addEventListener("click", () => this.markAll());
    this.list.addEventListener("keydown", (e) => this.keys(e));
    new IntersectionObserver((entries) => {
      if (entries.some((x) => x.isIntersecting)) this.more();
    }, { rootMargin: "300px" }).observe($("#more"));
  }

  /** The filters as API query parameters. */
  query() {
    const q = new URLSearchParams();
    const f = new FormData(this.form);
    for (const k of ["min_severity", "alert_type", "tag"]) {
      const v = String(f.get(k) || "").trim();
      if (v) q.set(k, v);
    }
    if (f.get("unread_only")) q.set("unread_only", "true");
    return q;
  }

  /** Whether a live alert belongs in the list under the current filters. */
  matches(a) {
    const q = this.query();
    if (a.dismissed) return false;
    if (q.has("min_severity") && RANK[a.severity] < RANK[q.get("min_severity")]) return false;
    if (q.has("alert_type") && !q.get("alert_type").split(",").map((s) => s.trim()).includes(a.alert_type)) return false;
    if (q.has("tag")) {
      const tags = q.get("tag").split(",").map((s) => s.trim());
      if (!a.tags.some((t) => tags.includes(t))) return false;
    }
    if (q.has("unread_only") && a.read) return false;
    return true;
  }

  status(text) { $("#list-status").textContent = text; }

  /** Reads the first page again (filters changed, or a fresh connection). */
  async reload(rethrow = false) {
    const gen = ++this.generation;
    const q = this.query();
    q.set("limit", String(PAGE));
    this.loading = true;
    try {
      const r = await this.api.get(`/api/alerts?${q}`);
      if (gen !== this.generation) return;
      this.etag = r.headers.get("ETag");
      this.alerts.clear();
      this.items.clear();
      this.list.replaceChildren();
      this.page(r.data);
      this.loaded = true;
      this.status(r.data.total === 0 ? "No alerts." : "");
    } catch (e) {
      if (gen === this.generation) this.fail(e);
      if (rethrow) throw e;
    } finally {
      if (gen === this.generation) this.loading = false;
    }
  }

  page(p) {
    for (const a of p.alerts) this.upsert(a, false);
    this.next = p.has_more ? p.next_cursor : null;
  }

  /** Infinite scroll: the next page, when the end of the list comes into view. */
  async more() {
    if (!this.loaded || this.loading || !this.next) return;
    const gen = this.generation;
    const q = this.query();
    q.set("limit", String(PAGE));
    q.set("cursor", this.next);
    this.loading = true;
    this.status("Loading more…");
    try {
      const r = await this.api.get(`/api/alerts?${q}`);
      if (gen !== this.generation) return;
      this.page(r.data);
      this.status(this.next ? "" : `All ${this.alerts.size} alerts shown.`);
    } catch (e) {
      this.fail(e);
    } finally {
      if (gen === this.generation) this.loading = false;
    }
  }

  /**
   * One poll while the socket is down: the first page, if it changed
   * (ETag), merged into the list, and the unread count. Throws what the
   * network throws, so the connection can tell polling from offline.
   */
  async poll() {
    if (!this.loaded) {
      await this.reload(true);
    } else {
      const q = this.query();
      q.set("limit", String(PAGE));
      const gen = this.generation;
      const r = await this.api.get(`/api/alerts?${q}`, { etag: this.etag });
      if (r.status === 304 || gen !== this.generation) return;
      this.etag = r.headers.get("ETag");
      const seen = new Set(r.data.alerts.map((a) => a.id));
      const oldest = r.data.alerts[r.data.alerts.length - 1];
      // Gone from the page's span (dismissed elsewhere, deleted): drop it.
      for (const a of [...this.alerts.values()]) {
        if (!seen.has(a.id) && (!oldest || newer(a, oldest) || !r.data.has_more)) this.remove(a.id);
      }
      for (const a of r.data.alerts) this.upsert(a, !this.alerts.has(a.id));
    }
    const c = await this.api.get("/api/alerts/unread/count");
    this.setUnread(c.data.unread);
  }

  setUnread(n) {
    this.unread = Math.max(0, n);
    const b = $("#badge");
    b.textContent = this.unread > 999 ? "999+" : String(this.unread);
    b.dataset.count = String(this.unread);
    b.setAttribute("aria-label", `${this.unread} unread`);
    document.title = this.unread ? `(${this.unread}) alertkit` : "alertkit";
  }

  /** A live `alert` frame. */
  onAlertFrame(f) {
    if (f.event === "deleted") {
      const a = this.alerts.get(f.alert_id);
      if (a && !a.read && !a.dismissed) this.setUnread(this.unread - 1);
      this.remove(f.alert_id);
      return;
    }
    const a = f.alert;
    const known = this.alerts.get(a.id);
    if (f.event === "created" && !known && !a.read && !a.dismissed) {
      this.setUnread(this.unread + 1);
    }
    if (this.matches(a)) {
      this.upsert(a, !known);
      if (!known && f.event !== "resolved") this.announce(`New ${a.severity} alert: ${a.title}`);
    } else {
      this.remove(a.id);
    }
  }

  /** A `receipt` frame: read or dismissed on this or another device. */
  onReceipt(f) {
    for (const id of f.alert_ids || []) {
      const a = this.alerts.get(id);
      if (!a) continue;
      const next = { ...a };
      if (f.read_at) { next.read = true; next.read_at = f.read_at; }
      if (f.dismissed_at) { next.dismissed = true; next.dismissed_at = f.dismissed_at; }
      this.transition(a, next);
    }
  }

  /** Applies a local change of read/dismiss state, keeping the badge in step. */
  transition(before, after) {
    const counted = (a) => !a.read && !a.dismissed;
    if (counted(before) && !counted(after)) this.setUnread(this.unread - 1);
    if (this.matches(after)) this.upsert(after, false);
    else this.remove(after.id);
  }

  upsert(a, fresh) {
    this.alerts.set(a.id, a);
    const li = this.render(a);
    const old = this.items.get(a.id);
    if (old) {
      if (old.contains(document.activeElement)) {
        // Keep keyboard focus where it was.
        old.replaceChildren(...li.childNodes);
        for (const k of ["data-severity", "data-read", "aria-label"]) old.setAttribute(k, li.getAttribute(k));
        return;
      }
      old.remove();
    }
    if (fresh) li.classList.add("fresh");
    this.items.set(a.id, li);
    let before = null;
    for (const other of this.list.children) {
      const o = this.alerts.get(other.dataset.id);
      if (o && newer(a, o)) { before = other; break; }
    }
    this.list.insertBefore(li, before);
  }

  remove(id) {
    this.alerts.delete(id);
    const li = this.items.get(id);
    if (li) li.remove();
    this.items.delete(id);
  }

  render(a) {
    const tags = a.tags.map((t) => el("span", { class: "tag", text: t }));
    const actions = el("div", { class: "actions" },
      a.read ? null : el("button", { type: "button", onclick: () => this.act(a.id, "mark-read"), "aria-label": `Mark read: ${a.title}`, text: "Mark read" }),
      el("button", { type: "button", onclick: () => this.act(a.id, "dismiss"), "aria-label": `Dismiss: ${a.title}`, text: "Dismiss" }));
    return el("li", {
      class: "alert", "data-id": a.id, "data-severity": a.severity, "data-read": String(a.read),
      tabindex: "-1", "aria-label": `${a.severity} ${a.read ? "" : "unread "}alert: ${a.title}`,
    },
    el("span", { class: "bar", "aria-hidden": "true" }),
    el("h3", {}, el("span", { class: "sev", text: a.severity }), a.title),
    a.message ? el("p", { class: "message", text: a.message }) : el("p", { class: "message" }),
    el("p", { class: "meta" },
      when(a.created_at),
      el("span", { text: a.alert_type }),
      a.occurrences > 1 ? el("span", { text: `×${a.occurrences}` }) : null,
      a.status === "resolved" ? el("span", { text: "resolved" }) : null,
      ...tags),
    actions);
  }

  async act(id, what) {
    const a = this.alerts.get(id);
    if (!a) return;
    try {
      const r = await this.api.post(`/api/alerts/${encodeURIComponent(id)}/${what}`);
      const cur = this.alerts.get(id) || a;
      this.transition(cur, {
        ...cur,
        read: cur.read || !!r.data.read_at, read_at: r.data.read_at,
        dismissed: cur.dismissed || !!r.data.dismissed_at, dismissed_at: r.data.dismissed_at,
      });
      const li = this.items.get(id);
      (li || this.list.firstElementChild || $("#main")).focus();
    } catch (e) {
      this.fail(e);
    }
  }

  async markAll() {
    try {
      const r = await this.api.req("POST", `/api/alerts/mark-all-read?${this.query()}`);
      this.status(`Marked ${r.data.marked} read.`);
      await this.reload();
      const c = await this.api.get("/api/alerts/unread/count");
      this.setUnread(c.data.unread);
    } catch (e) {
      this.fail(e);
    }
  }

  /** Arrow keys move between alerts; Home/End jump. */
  keys(e) {
    const li = e.target.closest("li.alert");
    if (!li) return;
    const all = [...this.list.children];
    const i = all.indexOf(li);
    const to = { ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: all.length - 1 }[e.key];
    if (to === undefined || !all[to]) return;
    e.preventDefault();
    all[to].focus();
  }

  fail(e) {
    if (e instanceof ApiError) {
      if (e.status === 401) return;
      const wait = e.retryAfter ? ` (retry in ${e.retryAfter} s)` : "";
      banner(`${e.message}${wait}`, "error", 8000);
    } else {
      this.status("The server cannot be reached.");
    }
  }
}
