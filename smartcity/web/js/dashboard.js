// The counts dashboard: crossings per counting line, class and direction by minute, hour or day,
// a mirrored bar chart and a totals table, refreshed live by countBuckets, with CSV export.

import { clear, downloadText, h } from "./dom.js";
import { classColour, mirroredBars } from "./chart.js";

// A DateTime of the API as epoch milliseconds (one without a zone is UTC).
function utcMs(text) {
  return Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`);
}

const RANGES = {
  "1h": { label: "Last hour, by minute", bucketS: 60, spanS: 3600 },
  "24h": { label: "Last 24 hours, by hour", bucketS: 3600, spanS: 86400 },
  "24h15": { label: "Last 24 hours, by 15 min", bucketS: 900, spanS: 86400 },
  "7d": { label: "Last 7 days, by hour", bucketS: 3600, spanS: 7 * 86400 },
  "30d": { label: "Last 30 days, by day", bucketS: 86400, spanS: 30 * 86400 },
};

function fmtBucket(t, bucketS) {
  const d = new Date(t * 1000);
  if (bucketS >= 86400) return d.toLocaleDateString(undefined, { day: "2-digit", month: "short" });
  return d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

function csvCell(v) {
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export class DashboardView {
  constructor(ctx) {
    this.ctx = ctx;
    this.points = [];
    this.unsub = null;
    this.refreshTimer = null;
    this.pollTimer = null;
    this.hiddenClasses = new Set();
  }

  async mount(root, { query }) {
    this.root = root;
    const [cameras, rulesData, types] = await Promise.all([
      this.ctx.cameras(),
      this.ctx.api.gql("{ rules { id cameraId type name enabled params } }"),
      this.ctx.ruleTypes(),
    ]);
    this.cameras = cameras;
    const counting = new Set(types.filter((t) => t.producesCounts).map((t) => t.name));
    this.allRules = rulesData.rules.filter((r) => counting.has(r.type));
    const withLines = new Set(this.allRules.map((r) => r.cameraId));
    const wanted = query.get("camera");
    const firstCam = wanted || (cameras.find((c) => withLines.has(c.id)) || cameras[0] || {}).id;
    this.camSel = h("select", { id: "dash-camera", onchange: () => { this.fillRules(); this.changed(); } },
      cameras.map((c) => h("option", { value: c.id, selected: c.id === firstCam }, `${c.name || c.id}${withLines.has(c.id) ? "" : " (no counting line)"}`)));
    this.ruleSel = h("select", { id: "dash-rule", onchange: () => this.changed() });
    this.rangeSel = h("select", { id: "dash-range", onchange: () => this.changed() },
      Object.entries(RANGES).map(([k, r]) => h("option", { value: k, selected: k === (query.get("range") || "24h") }, r.label)));
    this.live = h("span.live-dot", { id: "dash-live", role: "status" }, "waiting for live counts");
    this.total = h("output.big-number", { id: "count-total", "aria-live": "polite" }, "0");
    this.totalsTable = h("div.table-wrap");
    this.chartHost = h("div.chart-host", { id: "dash-chart" });
    this.legend = h("div.legend", { role: "group", "aria-label": "Classes shown" });
    this.perRule = h("div.table-wrap");
    root.append(
      h("div.view-head", {}, h("h1", {}, "Counts"),
        h("div.filters", {},
          h("div.field", {}, h("label", { for: "dash-camera" }, "Camera"), this.camSel),
          h("div.field", {}, h("label", { for: "dash-rule" }, "Counting line"), this.ruleSel),
          h("div.field", {}, h("label", { for: "dash-range" }, "Period"), this.rangeSel),
          h("button", { type: "button", id: "dash-csv", onclick: () => this.exportCsv() }, "⬇ Export CSV"))),
      h("div.dash-grid", {},
        h("div.dash-col", {},
          h("section.panel.kpi", { "aria-labelledby": "kpi-title" },
            h("h2", { id: "kpi-title" }, "Crossings in the period"), this.total, this.live,
            this.totalsTable),
          h("section.panel", { "aria-labelledby": "lines-title" }, h("h2", { id: "lines-title" }, "Per counting line"), this.perRule)),
        h("section.panel.chart-panel", { "aria-labelledby": "chart-title" },
          h("h2", { id: "chart-title" }, "Crossings over time"), this.legend, this.chartHost,
          h("p.muted.small", {}, "Bars above the axis: first direction; below: the other. Hover a bar for its figures; the table gives the same totals."))),
    );
    this.fillRules(query.get("rule"));
    this.resizeObs = new ResizeObserver(() => this.renderChart());
    this.resizeObs.observe(this.chartHost);
    this.pollTimer = setInterval(() => this.refresh(), 30000);
    await this.changed();
  }

  unmount() {
    if (this.unsub) this.unsub();
    clearTimeout(this.refreshTimer);
    clearInterval(this.pollTimer);
    if (this.resizeObs) this.resizeObs.disconnect();
  }

  fillRules(selected) {
    clear(this.ruleSel);
    const rules = this.allRules.filter((r) => r.cameraId === this.camSel.value);
    this.ruleSel.append(h("option", { value: "" }, rules.length ? "All lines" : "No counting line"));
    for (const r of rules) this.ruleSel.append(h("option", { value: r.id, selected: r.id === selected }, r.name || r.id));
  }

  get range() {
    return RANGES[this.rangeSel.value];
  }

  async changed() {
    if (this.unsub) this.unsub();
    const cam = this.camSel.value;
    const rule = this.ruleSel.value || null;
    history.replaceState(null, "", `#/counts?camera=${encodeURIComponent(cam)}${rule ? `&rule=${encodeURIComponent(rule)}` : ""}&range=${this.rangeSel.value}`);
    if (cam) {
      this.unsub = this.ctx.api.subscribe(
        "subscription($cam: ID, $rule: String) { countBuckets(cameraId: $cam, ruleId: $rule) { ruleId objectClass direction bucketStart n } }",
        { cam, rule },
        (d) => this.onLive(d.countBuckets),
      );
    }
    await this.refresh();
  }

  onLive(b) {
    // b.n is the running total of one part of a bucket (a late crossing opens a new part): the
    // totals come from the counts query, which sums the parts
    const minute = new Date(utcMs(b.bucketStart)).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    this.live.textContent = `live ${new Date().toLocaleTimeString()}: ${b.objectClass} ${b.direction} counted (minute ${minute})`;
    this.live.classList.remove("pulse");
    void this.live.offsetWidth;
    this.live.classList.add("pulse");
    // the live bucket is a running total: re-read the rolled-up series (debounced)
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.refresh(), 800);
  }

  async refresh() {
    const cam = this.camSel.value;
    if (!cam) return;
    const { bucketS, spanS } = this.range;
    const until = Date.now() / 1000 + bucketS;
    const since = Math.floor((until - spanS - bucketS) / bucketS) * bucketS;
    this.since = since;
    this.until = until;
    const d = await this.ctx.api.gql(
      `query($cam: ID!, $since: Float!, $until: Float!, $b: Int!, $rule: String) {
         counts(cameraId: $cam, since: $since, until: $until, bucketS: $b, ruleId: $rule) { bucketStart ruleId objectClass direction n } }`,
      { cam, since, until, b: bucketS, rule: this.ruleSel.value || null },
    );
    this.points = d.counts.map((p) => ({ ...p, t: utcMs(p.bucketStart) / 1000 }));
    this.render();
  }

  dimensions() {
    const classes = [...new Set(this.points.map((p) => p.objectClass))].sort();
    // the lines' own direction names, "in" first, even before anything crossed that way
    const rules = this.allRules.filter((r) => r.cameraId === this.camSel.value && (!this.ruleSel.value || r.id === this.ruleSel.value));
    const ins = new Set(rules.map((r) => r.params.in_name || "in"));
    const dirs = [...new Set([...ins, ...rules.map((r) => r.params.out_name || "out"), ...this.points.map((p) => p.direction)])];
    if (!dirs.length) dirs.push("in", "out");
    dirs.sort((a, b) => (ins.has(a) === ins.has(b) ? a.localeCompare(b) : ins.has(a) ? -1 : 1));
    return { classes, dirs };
  }

  render() {
    const { classes, dirs } = this.dimensions();
    const shown = this.points.filter((p) => !this.hiddenClasses.has(p.objectClass));
    const total = shown.reduce((s, p) => s + p.n, 0);
    this.total.textContent = total.toLocaleString();
    this.total.dataset.value = String(total);

    clear(this.legend);
    for (const [i, cls] of classes.entries()) {
      const on = !this.hiddenClasses.has(cls);
      this.legend.append(h("button.legend-item", { type: "button", "aria-pressed": String(on), onclick: () => {
        if (on) this.hiddenClasses.add(cls); else this.hiddenClasses.delete(cls);
        this.render();
      } }, h("span.swatch", { style: `background:${classColour(cls, i)}`, "aria-hidden": "true" }), cls));
    }
    if (!classes.length) this.legend.append(h("span.muted.small", {}, "No crossing in this period yet."));

    const sum = (f) => shown.filter(f).reduce((s, p) => s + p.n, 0);
    const table = h("table.data", {},
      h("caption.sr-only", {}, "Crossings by class and direction"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Class"), dirs.map((d) => h("th.num", { scope: "col" }, d)), h("th.num", { scope: "col" }, "Total"))),
      h("tbody", {}, classes.filter((c) => !this.hiddenClasses.has(c)).map((c) => h("tr", {},
        h("th", { scope: "row" }, c),
        dirs.map((d) => h("td.num", {}, sum((p) => p.objectClass === c && p.direction === d).toLocaleString())),
        h("td.num", {}, sum((p) => p.objectClass === c).toLocaleString())))),
      h("tfoot", {}, h("tr", {}, h("th", { scope: "row" }, "All"),
        dirs.map((d) => h("td.num", {}, sum((p) => p.direction === d).toLocaleString())),
        h("td.num", {}, total.toLocaleString()))));
    this.totalsTable.replaceChildren(table);

    const byRule = new Map();
    for (const p of shown) byRule.set(p.ruleId, (byRule.get(p.ruleId) || 0) + p.n);
    const name = (id) => (this.allRules.find((r) => r.id === id) || {}).name || id;
    this.perRule.replaceChildren(byRule.size
      ? h("table.data", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Line"), h("th.num", { scope: "col" }, "Crossings"))),
        h("tbody", {}, [...byRule].map(([id, n]) => h("tr", {}, h("th", { scope: "row" }, name(id)), h("td.num", {}, n.toLocaleString())))))
      : h("p.muted", {}, "No counts for this selection."));
    this.renderChart();
  }

  renderChart() {
    if (!this.range || this.since === undefined) return;
    const { bucketS } = this.range;
    const { classes, dirs } = this.dimensions();
    const visible = classes.filter((c) => !this.hiddenClasses.has(c));
    const cells = new Map();
    for (const p of this.points) {
      const t = Math.floor(p.t / bucketS) * bucketS;
      const k = `${t}|${p.objectClass}|${p.direction}`;
      cells.set(k, (cells.get(k) || 0) + p.n);
    }
    const buckets = [];
    for (let t = Math.floor(this.since / bucketS) * bucketS + bucketS; t < this.until; t += bucketS) buckets.push(t);
    const fontPx = parseFloat(getComputedStyle(document.documentElement).fontSize) * 0.8;
    const svg = mirroredBars(this.chartHost, {
      buckets,
      classes: visible,
      directions: dirs.slice(0, 2),
      value: (t, c, d) => cells.get(`${t}|${c}|${d}`) || 0,
      label: (t) => fmtBucket(t, bucketS),
      tooltip: (t) => `${new Date(t * 1000).toLocaleString()}: ${visible.map((c) => dirs.slice(0, 2).map((d) => `${c} ${d} ${cells.get(`${t}|${c}|${d}`) || 0}`).join(", ")).join("; ")}`,
    }, { height: Math.round(fontPx * 24), fontPx });
    svg.setAttribute("aria-label", `Bar chart of crossings, ${this.range.label.toLowerCase()}; the totals are in the table.`);
  }

  exportCsv() {
    const { bucketS } = this.range;
    const rows = [["bucket_start_utc", "bucket_s", "camera_id", "rule_id", "rule_name", "class", "direction", "n"]];
    const name = (id) => (this.allRules.find((r) => r.id === id) || {}).name || "";
    const sorted = [...this.points].sort((a, b) => a.t - b.t || a.ruleId.localeCompare(b.ruleId) || a.objectClass.localeCompare(b.objectClass));
    for (const p of sorted) {
      rows.push([new Date(p.t * 1000).toISOString(), bucketS, this.camSel.value, p.ruleId, name(p.ruleId), p.objectClass, p.direction, p.n]);
    }
    const csv = rows.map((r) => r.map(csvCell).join(",")).join("\n") + "\n";
    const stamp = new Date().toISOString().slice(0, 16).replace(/[:T]/g, "-");
    downloadText(`counts-${this.camSel.value}-${this.ruleSel.value || "all"}-${stamp}.csv`, csv);
  }
}
