// The traffic-signals view (the `signals` extension): each junction's current phase, the aspect
// of each signal group, the queue per lane group, the estimated delay, the mode, and (advisory
// mode) the phase the controller recommends; operators switch mode or force the fixed plan
// (both audited by the server). Refreshed every 2 s.

import { clear, h, toast } from "./dom.js";

const QUERY = `{ signalJunctions { id name mode adapter controller forcedFixed fallback phase recommendation greenS
  estimatedDelayS phases fixedPlanGreens signalGroups { id kind state } laneGroups { id queue flowVph fresh } } }`;
const REFRESH_MS = 2000;

export class SignalsView {
  constructor(ctx) {
    this.ctx = ctx;
    this.timer = null;
  }

  async mount(root) {
    this.root = root;
    this.list = h("div.signals-list", { id: "signals-list" });
    root.append(h("div.view-head", {}, h("h1", {}, "Traffic signals")), this.list);
    await this.load();
    this.timer = setInterval(() => { void this.load().catch(() => {}); }, REFRESH_MS);
  }

  unmount() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async load() {
    const d = await this.ctx.api.gql(QUERY);
    this.render(d.signalJunctions);
  }

  async act(mutation, variables, done) {
    try {
      await this.ctx.api.gql(mutation, variables);
      toast(done);
      await this.load();
    } catch (err) {
      toast(`Refused: ${err.message}`, "error");
    }
  }

  card(j) {
    const advisory = j.mode === "advisory";
    const head = h("div.signals-head", {},
      h("h2", {}, j.name),
      h(`span.signals-mode.${j.mode}`, { dataset: { mode: j.mode } }, j.mode),
      h("span.muted", {}, ` ${j.controller}${j.forcedFixed ? " (fixed plan forced)" : ""}`));
    const state = h("p.signals-state", { role: "status" },
      `Phase ${j.phase ?? "changing"}${j.phase ? ` for ${j.greenS.toFixed(0)} s` : ""} · estimated delay ${j.estimatedDelayS.toFixed(0)} s`);
    const advice = advisory
      ? h("p.signals-advice", { dataset: { recommendation: j.recommendation } },
        `Recommended now: phase ${j.recommendation} · fixed plan greens `
          + j.phases.map((p, k) => `${p} ${j.fixedPlanGreens[k].toFixed(0)} s`).join(", "))
      : null;
    const fallback = j.fallback ? h("p.signals-fallback", {}, `Fixed plan: ${j.fallback}`) : null;
    const groups = h("ul.signals-groups", { "aria-label": "Signal groups" },
      j.signalGroups.map((g) => h(`li.signals-group.${g.state}`, { dataset: { group: g.id, state: g.state } },
        h("span.signals-lamp", { "aria-hidden": "true" }), ` ${g.id} (${g.kind}): ${g.state}`)));
    const lanes = h("table.data.signals-lanes", {},
      h("thead", {}, h("tr", {}, ["Lane group", "Queue", "Flow (veh/h)", "Camera"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, j.laneGroups.map((lg) => h("tr", { dataset: { lane: lg.id } },
        h("td", {}, lg.id), h("td.num", {}, lg.queue.toFixed(1)),
        h("td.num", {}, lg.flowVph === null ? "–" : lg.flowVph.toFixed(0)), h("td", {}, lg.fresh ? "live" : "stale")))));
    const buttons = this.ctx.canOperate ? h("div.signals-actions", {},
      j.adapter !== "none" ? h("button", {
        type: "button", class: "signals-mode-btn",
        onclick: () => this.act("mutation($j: String!, $m: String!) { setSignalMode(junction: $j, mode: $m) { mode } }",
          { j: j.id, m: advisory ? "active" : "advisory" }, `${j.name}: ${advisory ? "active" : "advisory"}`),
      }, advisory ? "Switch to active" : "Switch to advisory") : null,
      h("button", {
        type: "button", class: "signals-fixed-btn",
        onclick: () => this.act("mutation($j: String!, $on: Boolean!) { forceSignalFixedPlan(junction: $j, on: $on) { forcedFixed } }",
          { j: j.id, on: !j.forcedFixed }, `${j.name}: fixed plan ${j.forcedFixed ? "released" : "forced"}`),
      }, j.forcedFixed ? "Release fixed plan" : "Force fixed plan")) : null;
    return h("section.panel.signals-junction", { dataset: { junction: j.id, mode: j.mode } },
      head, state, advice, fallback, groups, lanes, buttons);
  }

  render(junctions) {
    const list = clear(this.list);
    if (!junctions.length) {
      list.append(h("p.muted", {}, "No junction configured."));
      return;
    }
    for (const j of junctions) list.append(this.card(j));
  }
}
