// The forecast view: actual vs predicted per series with the prediction
// interval (uPlot, vendored), 1H/6H/24H/7D ranges, and the upload form.

import { $, el, ApiError, tablist } from "./app.js";

/* global uPlot */

export class ForecastView {
  constructor(api, canUpload) {
    this.api = api;
    this.range = "24h";
    this.series = null;
    this.plot = null;
    this.opened = false;
    this.refreshTimer = null;
    $("#upload").hidden = !canUpload;
    $("#series").addEventListener("change", (e) => { this.series = e.target.value; this.load(); });
    tablist($("#ranges"), (tab) => { this.range = tab.dataset.range; this.load(); });
    $("#upload").addEventListener("submit", (e) => { e.preventDefault(); this.upload(); });
    new ResizeObserver(() => {
      if (this.plot) this.plot.setSize(this.size());
    }).observe($("#chart"));
  }

  status(t) { $("#forecast-status").textContent = t; }

  size() {
    const w = Math.max(280, $("#chart").clientWidth);
    return { width: w, height: w < 500 ? 240 : 320 };
  }

  /** First visit: the series list. */
  async open() {
    if (this.opened) return;
    this.opened = true;
    try {
      const r = await this.api.get("/api/forecast/series");
      const sel = $("#series");
      sel.replaceChildren(...r.data.series.map((s) => el("option", { value: s.name, text: s.unit ? `${s.name} (${s.unit})` : s.name })));
      if (!r.data.series.length) {
        this.status("No series yet: upload actuals below, or start the server with --demo.");
        return;
      }
      this.series = r.data.series[0].name;
      await this.load();
    } catch (e) {
      this.opened = false;
      this.status(e instanceof ApiError && e.status === 403 ? "This token may not read forecasts (forecast.read)." : `Cannot load the series: ${e.message}`);
    }
  }

  async load() {
    if (!this.series) return;
    try {
      const q = new URLSearchParams({ series: this.series, range: this.range });
      const r = await this.api.get(`/api/forecast/history?${q}`);
      this.draw(r.data);
      this.status("");
    } catch (e) {
      this.status(`Cannot load the history: ${e.message}`);
    }
  }

  draw(h) {
    // One x axis (seconds) for actuals and predictions; gaps are null.
    const xs = [...new Set([...h.actual.map((p) => p.at), ...h.predicted.map((p) => p.at)])].sort();
    const at = new Map(xs.map((x, i) => [x, i]));
    const blank = () => new Array(xs.length).fill(null);
    const actual = blank(), predicted = blank(), lower = blank(), upper = blank();
    for (const p of h.actual) actual[at.get(p.at)] = p.value;
    for (const p of h.predicted) {
      const i = at.get(p.at);
      predicted[i] = p.value;
      lower[i] = p.lower;
      upper[i] = p.upper;
    }
    const data = [xs.map((x) => Date.parse(x) / 1000), actual, predicted, lower, upper];
    const series = [
      {},
      { label: "actual", stroke: "#1f5fbf", width: 2 },
      { label: "predicted", stroke: "#c2410c", width: 2, dash: [6, 4] },
      { label: "lower", stroke: "rgba(194,65,12,.35)", width: 1 },
      { label: "upper", stroke: "rgba(194,65,12,.35)", width: 1 },
    ];
    if (h.capacity) {
      data.push(xs.map(() => h.capacity));
      series.push({ label: "capacity", stroke: "#b4132b", width: 1, dash: [2, 3] });
    }
    const opts = {
      ...this.size(),
      series,
      bands: [{ series: [4, 3], fill: "rgba(194,65,12,.12)" }],
      axes: [{}, { label: h.unit || "" }],
      scales: { x: { time: true } },
    };
    if (this.plot) this.plot.destroy();
    $("#chart").replaceChildren();
    this.plot = new uPlot(opts, data, $("#chart"));
    const last = h.actual[h.actual.length - 1];
    $("#chart").setAttribute("aria-label",
      `${h.series}: ${h.actual.length} actual points${last ? `, latest ${last.value}` : ""}; ${h.predicted.length} predicted points`);
    $("#chart-caption").textContent = `${h.series}, ${this.range.toUpperCase()} to ${new Date(h.to).toLocaleString()}; shaded: prediction interval` +
      (h.capacity ? `; dotted: capacity ${h.capacity}` : "");
  }

  /** A live `forecast` frame: new predictions or actuals for some series. */
  onFrame(d) {
    if (!this.opened || !d) return;
    const touched = d.kind === "predictions" ? d.series === this.series : d.series && this.series in d.series;
    if (!touched) return;
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.load(), 500);
  }

  async upload() {
    const file = $("#upload-file").files[0];
    const out = $("#upload-result");
    if (!file) return;
    const parquet = /\.parquet$/i.test(file.name);
    out.replaceChildren(el("p", { text: `Uploading ${file.name}…` }));
    try {
      const r = await this.api.req("POST", "/api/forecast/upload", {
        body: file,
        headers: { "Content-Type": parquet ? "application/vnd.apache.parquet" : "text/csv" },
      });
      const per = Object.entries(r.data.series).map(([k, v]) => `${k}: ${v}`).join(", ");
      out.replaceChildren(el("p", { text: `Stored ${r.data.rows} rows (${per}).` }));
      this.opened = false;
      await this.open();
    } catch (e) {
      const lines = [];
      if (e instanceof ApiError) {
        lines.push(el("p", { class: "error", text: e.message }));
        const rows = (e.body && e.body.errors) || [];
        if (rows.length) lines.push(el("pre", { text: rows.map((r) => `line ${r.line}: ${r.message}`).join("\n") }));
      } else {
        lines.push(el("p", { class: "error", text: "The server cannot be reached." }));
      }
      out.replaceChildren(...lines);
    }
  }
}
