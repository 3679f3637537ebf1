// The admin view: scheduler jobs (pause / resume / run, last runs),
// deliveries and dead letters (retry), live WebSocket stats, broadcasts.
// Refreshed only while the view is open, well within the rate limit.

import { $, el, when, ApiError } from "./app.js";

const STATS_MS = 5000;
const JOBS_MS = 15000;

function schedule(s) {
  if (!s) return "";
  if (s.kind === "cron") return `cron ${s.expr}${s.timezone ? ` (${s.timezone})` : ""}`;
  if (s.kind === "interval") return `every ${s.every_secs} s`;
  return JSON.stringify(s);
}

function took(run) {
  if (!run || !run.started_at || !run.finished_at) return "";
  return `${((Date.parse(run.finished_at) - Date.parse(run.started_at)) / 1000).toFixed(1)} s`;
}

export class AdminView {
  constructor(api, can) {
    this.api = api;
    this.can = can;
    this.timers = [];
    this.runsOf = null;
    $("#jobs-box").hidden = !can.jobs;
    $("#deliveries-box").hidden = !can.manage;
    $("#stats-box").hidden = !can.manage;
    $("#broadcast-box").hidden = !can.broadcast;
    $("#delivery-status").addEventListener("change", () => this.deliveries());
    $("#broadcast").addEventListener("submit", (e) => { e.preventDefault(); this.broadcast(); });
  }

  /** Starts or stops the refreshes as the view opens or closes. */
  active(on) {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (!on) return;
    if (this.can.manage) {
      this.stats();
      this.deliveries();
      this.timers.push(setInterval(() => this.stats(), STATS_MS));
    }
    if (this.can.jobs) {
      this.jobs();
      this.timers.push(setInterval(() => this.jobs(), JOBS_MS));
    }
  }

  note(where, e) {
    const msg = e instanceof ApiError ? e.message : "The server cannot be reached.";
    where.replaceChildren(el("p", { class: "error", text: msg }));
  }

  async stats() {
    const box = $("#ws-stats");
    try {
      const s = (await this.api.get("/api/ws/stats")).data;
      const item = (k, v) => el("div", {}, el("dt", { text: k }), el("dd", { text: v }));
      box.replaceChildren(
        item("connections", s.connections),
        item("users", s.users),
        item("frames sent", s.messages_sent),
        item("frames/s", Number(s.messages_per_sec).toFixed(2)));
    } catch (e) {
      this.note(box, e);
    }
  }

  async jobs() {
    const body = $("#jobs tbody");
    try {
      const jobs = (await this.api.get("/api/scheduler/jobs")).data;
      body.replaceChildren(...jobs.map((j) => {
        const last = j.last_run;
        const state = j.running ? "running" : j.paused ? "paused" : last && last.status === "failed" ? "failed" : "active";
        const btn = (text, label, fn, why) => el("button", { type: "button", "aria-label": label, disabled: !!why || !this.can.control, title: why, onclick: fn, text });
        return el("tr", { "data-job": j.id },
          el("th", { scope: "row", title: j.description || "" }, j.id),
          el("td", { text: schedule(j.schedule) }),
          el("td", {}, when(j.next_run)),
          el("td", {}, last ? [when(last.started_at || last.scheduled_at), ` ${last.status}`] : "never"),
          el("td", { class: `state-${state}`, "data-state": state, text: state }),
          el("td", { class: "actions" },
            j.paused
              ? btn("Resume", `Resume ${j.id}`, () => this.jobAction(j.id, "resume"))
              : btn("Pause", `Pause ${j.id}`, () => this.jobAction(j.id, "pause"), j.protected ? "A protected job cannot be paused" : null),
            btn("Run now", `Run ${j.id} now`, () => this.jobAction(j.id, "run")),
            el("button", { type: "button", "aria-label": `Runs of ${j.id}`, onclick: () => this.runs(j.id), text: "Runs" })));
      }));
      if (this.runsOf) this.runs(this.runsOf);
    } catch (e) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: "6" }, e instanceof ApiError ? e.message : "The server cannot be reached.")));
    }
  }

  async jobAction(id, what) {
    const out = $("#jobs-status");
    try {
      await this.api.post(`/api/scheduler/jobs/${encodeURIComponent(id)}/${what}`);
      out.textContent = { pause: `Paused ${id}.`, resume: `Resumed ${id}.`, run: `Started a run of ${id}.` }[what];
    } catch (e) {
      out.textContent = e instanceof ApiError ? `${id}: ${e.message}` : "The server cannot be reached.";
    }
    this.runsOf = what === "run" ? id : this.runsOf;
    await this.jobs();
  }

  async runs(id) {
    this.runsOf = id;
    const box = $("#runs");
    box.hidden = false;
    $("#runs-title").textContent = `Last runs of ${id}`;
    const body = box.querySelector("tbody");
    try {
      const runs = (await this.api.get(`/api/scheduler/jobs/${encodeURIComponent(id)}/runs?limit=10`)).data;
      body.replaceChildren(...(runs.length ? runs.map((r) => el("tr", { "data-status": r.status },
        el("td", {}, when(r.scheduled_at)),
        el("td", { class: r.status === "failed" ? "state-failed" : "", text: r.status }),
        el("td", { text: r.attempt }),
        el("td", { text: took(r) }),
        el("td", { text: r.error || "" }))) : [el("tr", {}, el("td", { colspan: "5", text: "No runs yet." }))]));
    } catch (e) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: "5" }, e instanceof ApiError ? e.message : "The server cannot be reached.")));
    }
  }

  async deliveries() {
    const body = $("#deliveries tbody");
    const status = $("#delivery-status").value;
    try {
      const list = (await this.api.get(`/api/deliveries?status=${encodeURIComponent(status)}&limit=50`)).data;
      body.replaceChildren(...(list.length ? list.map((d) => el("tr", { "data-delivery": d.id },
        el("td", { text: d.channel }),
        el("td", { text: d.user_id }),
        el("td", { text: d.attempts }),
        el("td", { text: d.last_error || "" }),
        el("td", { class: "actions" }, d.status === "dead"
          ? el("button", { type: "button", "aria-label": `Retry delivery to ${d.user_id}`, onclick: () => this.retry(d.id), text: "Retry" })
          : ""))) : [el("tr", {}, el("td", { colspan: "5", text: `No ${status.replace("_", " ")} deliveries.` }))]));
    } catch (e) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: "5" }, e instanceof ApiError ? e.message : "The server cannot be reached.")));
    }
  }

  async retry(id) {
    try {
      await this.api.post(`/api/deliveries/${encodeURIComponent(id)}/retry`);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 409)) throw e;
    }
    await this.deliveries();
  }

  async broadcast() {
    const out = $("#broadcast-result");
    const message = $("#broadcast-message").value.trim();
    if (!message) return;
    try {
      await this.api.post("/api/ws/push/broadcast", { message, level: $("#broadcast-level").value });
      out.textContent = "Sent.";
      $("#broadcast-message").value = "";
    } catch (e) {
      out.textContent = e instanceof ApiError ? e.message : "The server cannot be reached.";
    }
  }
}
