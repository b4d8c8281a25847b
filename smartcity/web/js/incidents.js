// Incidents: the live feed (store + subscriptions `incidents` and `alerts`) and the incidents
// view (list by state, detail with evidence snapshot, acknowledge / resolve / dismiss).

import { ago, askComment, clear, fmtDateTime, h, parseTime, toast } from "./dom.js";

export const INCIDENT_FIELDS = `id ruleId kind severity state cameraIds firstSeen lastSeen count eventIds
  acknowledgedBy acknowledgedAt resolvedBy resolvedAt comment`;

const ACTIONS = {
  acknowledge: { mutation: "acknowledgeIncident", label: "Acknowledge", done: "acknowledged", from: ["open"] },
  resolve: { mutation: "resolveIncident", label: "Resolve", done: "resolved", from: ["open", "acknowledged"] },
  dismiss: { mutation: "dismissIncident", label: "Dismiss", done: "dismissed", from: ["open", "acknowledged"] },
};

const STATES = ["open", "acknowledged", "resolved", "dismissed", "all"];

/** Kinds that call emergency services (fire, smoke, falls): they stand out and come first. */
export const EMERGENCY_KINDS = new Set(["fire", "smoke", "fall", "person_down"]);

export function isEmergency(inc) {
  return EMERGENCY_KINDS.has(inc.kind);
}

function activeEmergency(inc) {
  return isEmergency(inc) && (inc.state === "open" || inc.state === "acknowledged");
}

const OPERATOR_FIELDS = ["acknowledgedBy", "acknowledgedAt", "resolvedBy", "resolvedAt", "comment"];

/**
 * A live update over what is known: the subscription's payloads come from fusion and carry no
 * operator fields (who acknowledged, the comment), so those are kept from the known record.
 */
export function mergeIncident(known, update) {
  if (!known || update.state === "open") return update;
  const out = { ...update };
  for (const f of OPERATOR_FIELDS) if (out[f] == null && known[f] != null) out[f] = known[f];
  return out;
}

/** Incidents known to this console, kept current by the `incidents` subscription. */
export class IncidentFeed extends EventTarget {
  constructor(api) {
    super();
    this.api = api;
    this.byId = new Map();
    this.unsubs = [];
  }

  async start() {
    // after a reconnection, re-read what may have changed while the socket was down
    let down = false;
    const onConn = (ev) => {
      if (ev.detail === "reconnecting") down = true;
      else if (ev.detail === "live" && down) {
        down = false;
        this.load().catch(() => {});
      }
    };
    this.api.addEventListener("connection", onConn);
    this.unsubs.push(() => this.api.removeEventListener("connection", onConn));
    this.unsubs.push(
      this.api.subscribe(`subscription { incidents { ${INCIDENT_FIELDS} } }`, {}, (d) => this.upsert(d.incidents)),
      this.api.subscribe(
        "subscription { alerts { incidentId kind severity cameraIds sound at } }",
        {},
        (d) => this.dispatchEvent(new CustomEvent("alert", { detail: { alert: d.alerts } })),
      ),
    );
    await this.load();
  }

  async load() {
    const d = await this.api.gql(`{ incidents(state: "open", first: 200) { edges { node { ${INCIDENT_FIELDS} } } } }`);
    for (const e of d.incidents.edges) this.byId.set(e.node.id, mergeIncident(this.byId.get(e.node.id), e.node));
    this.dispatchEvent(new CustomEvent("change", { detail: null }));
  }

  stop() {
    for (const u of this.unsubs) u();
    this.unsubs = [];
  }

  upsert(update) {
    const inc = mergeIncident(this.byId.get(update.id), update);
    this.byId.set(inc.id, inc);
    this.dispatchEvent(new CustomEvent("change", { detail: inc }));
  }

  openCount() {
    let n = 0;
    for (const i of this.byId.values()) if (i.state === "open") n += 1;
    return n;
  }

  /** Run an operator action; resolves to the updated incident or throws with the API's message. */
  async act(id, action, comment) {
    const a = ACTIONS[action];
    const d = await this.api.gql(
      `mutation($id: ID!, $c: String) { r: ${a.mutation}(id: $id, comment: $c) {
         __typename
         ... on IncidentType { ${INCIDENT_FIELDS} }
         ... on ValidationError { message errors { field message } }
         ... on NotAuthorized { message }
         ... on NotFoundError { message } } }`,
      { id, c: comment || null },
    );
    if (d.r.__typename !== "IncidentType") throw new Error(d.r.message);
    const { __typename, ...inc } = d.r;
    void __typename;
    this.upsert(inc);
    return inc;
  }
}

function title(inc) {
  return inc.kind.replaceAll("_", " ");
}

export class IncidentsView {
  constructor(ctx) {
    this.ctx = ctx;
    this.state = "open";
    this.items = new Map();
    this.selected = null;
    this.onChange = (ev) => this.liveUpdate(ev.detail);
  }

  async mount(root, { args, query }) {
    this.root = root;
    this.state = STATES.includes(query.get("state")) ? query.get("state") : "open";
    this.selected = args[0] || null;
    this.filterBar = h("div.segmented", { role: "radiogroup", "aria-label": "Incident state" });
    this.list = h("ul.incident-list", { "aria-label": "Incidents", "aria-live": "polite" });
    this.detail = h("section.incident-detail", { "aria-label": "Incident detail", tabindex: "-1" });
    root.append(
      h("div.view-head", {}, h("h1", {}, "Incidents"), this.filterBar),
      h("div.incidents-layout", {}, h("div.panel.list-panel", {}, this.list), h("div.panel", {}, this.detail)),
    );
    this.renderFilter();
    this.ctx.feed.addEventListener("change", this.onChange);
    await this.load();
    if (this.selected && !this.items.has(this.selected)) {
      const inc = this.ctx.feed.byId.get(this.selected);
      if (inc) this.items.set(inc.id, inc);
    }
    this.renderList();
    this.renderDetail();
  }

  unmount() {
    this.ctx.feed.removeEventListener("change", this.onChange);
  }

  renderFilter() {
    clear(this.filterBar);
    for (const s of STATES) {
      const b = h("button", {
        type: "button", role: "radio", "aria-checked": String(s === this.state),
        tabindex: s === this.state ? "0" : "-1",
        onclick: () => this.setState(s),
        onkeydown: (ev) => {
          const i = STATES.indexOf(s);
          const next = ev.key === "ArrowRight" ? STATES[(i + 1) % STATES.length]
            : ev.key === "ArrowLeft" ? STATES[(i + STATES.length - 1) % STATES.length] : null;
          if (next) { ev.preventDefault(); this.setState(next).then(() => this.filterBar.querySelector("[aria-checked=true]").focus()); }
        },
      }, s[0].toUpperCase() + s.slice(1));
      this.filterBar.append(b);
    }
  }

  async setState(s) {
    this.state = s;
    this.renderFilter();
    await this.load();
    this.renderList();
  }

  async load() {
    const st = this.state === "all" ? null : this.state;
    const d = await this.ctx.api.gql(
      `query($s: String) { incidents(state: $s, first: 100) { edges { node { ${INCIDENT_FIELDS} } } } }`,
      { s: st },
    );
    this.items = new Map(d.incidents.edges.map((e) => [e.node.id, e.node]));
  }

  matches(inc) {
    return this.state === "all" || inc.state === this.state;
  }

  liveUpdate(update) {
    if (!update) return;
    const inc = mergeIncident(this.items.get(update.id), update);
    const known = this.items.has(inc.id);
    if (this.matches(inc) || known || inc.id === this.selected) this.items.set(inc.id, inc);
    this.renderList();
    if (inc.id === this.selected) this.renderDetail(false);
  }

  sorted() {
    // active emergencies on top of the feed, then the newest first
    return [...this.items.values()]
      .filter((i) => this.matches(i) || i.id === this.selected)
      .sort((a, b) => (activeEmergency(b) - activeEmergency(a)) || (parseTime(b.lastSeen) - parseTime(a.lastSeen)));
  }

  /** One click, no dialog: confirm (acknowledge: the dispatch goes out) or cancel (dismiss). */
  async quick(inc, key) {
    const a = ACTIONS[key];
    try {
      const updated = await this.ctx.feed.act(inc.id, key, key === "dismiss" ? "cancelled from the feed" : null);
      this.items.set(updated.id, updated);
      this.renderList();
      if (updated.id === this.selected) this.renderDetail(false);
      toast(`Emergency ${key === "dismiss" ? "cancelled" : "confirmed"}.`);
    } catch (err) {
      toast(`${a.label} refused: ${err.message}`, "error");
    }
  }

  emergencyButtons(inc) {
    if (!activeEmergency(inc) || !this.ctx.canOperate) return null;
    const row = h("div.emergency-actions");
    if (inc.state === "open") {
      row.append(h("button.primary.confirm", { type: "button", dataset: { quick: "acknowledge" },
        onclick: () => this.quick(inc, "acknowledge") }, "Confirm"));
    }
    row.append(h("button.danger.cancel", { type: "button", dataset: { quick: "dismiss" },
      onclick: () => this.quick(inc, "dismiss") }, "Cancel"));
    return row;
  }

  renderList() {
    clear(this.list);
    const items = this.sorted();
    if (!items.length) {
      this.list.append(h("li.empty", {}, this.state === "open" ? "No open incident. All quiet." : "Nothing here."));
      return;
    }
    for (const inc of items) {
      const b = h("button.incident-item", {
        type: "button",
        "aria-current": inc.id === this.selected ? "true" : null,
        dataset: { severity: inc.severity, state: inc.state, id: inc.id, emergency: String(activeEmergency(inc)) },
        onclick: () => this.select(inc.id),
      },
      h("span.sev", { "aria-label": `severity ${inc.severity}` }, inc.severity),
      h("span.incident-title", {}, title(inc)),
      h("span.incident-meta", {}, `${inc.cameraIds.join(", ")} · ${inc.count} event${inc.count === 1 ? "" : "s"} · ${ago(inc.lastSeen)}`),
      h("span.state-pill", { dataset: { state: inc.state } }, inc.state));
      const quick = this.emergencyButtons(inc);
      this.list.append(quick ? h("li.emergency", {}, b, quick) : h("li", {}, b));
    }
  }

  select(id) {
    this.selected = id;
    history.replaceState(null, "", `#/incidents/${encodeURIComponent(id)}?state=${this.state}`);
    this.renderList();
    this.renderDetail();
    this.detail.focus({ preventScroll: true });
  }

  renderDetail(withEvidence = true) {
    const inc = this.selected ? this.items.get(this.selected) || this.ctx.feed.byId.get(this.selected) : null;
    const keepImg = withEvidence ? null : this.detail.querySelector(".evidence");
    clear(this.detail);
    if (!inc) {
      this.detail.append(h("p.muted", {}, "Select an incident to see its evidence and act on it."));
      return;
    }
    const actions = h("div.actions");
    for (const [key, a] of Object.entries(ACTIONS)) {
      if (!a.from.includes(inc.state)) continue;
      actions.append(h(`button.${key === "acknowledge" ? "primary" : key === "dismiss" ? "ghost" : ""}`, {
        type: "button",
        disabled: !this.ctx.canOperate,
        dataset: { action: key },
        onclick: () => this.run(inc, key),
      }, a.label));
    }
    if (!this.ctx.canOperate) actions.append(h("p.muted.small", {}, "Viewers cannot act on incidents."));
    const rows = [
      ["State", h("span.state-pill", { dataset: { state: inc.state }, id: "incident-state" }, inc.state)],
      ["Severity", inc.severity],
      ["Cameras", inc.cameraIds.join(", ")],
      ["Rule", inc.ruleId || "—"],
      ["First seen", fmtDateTime(inc.firstSeen)],
      ["Last seen", `${fmtDateTime(inc.lastSeen)} (${ago(inc.lastSeen)})`],
      ["Events", String(inc.count)],
    ];
    if (inc.acknowledgedBy) rows.push(["Acknowledged", `${inc.acknowledgedBy}, ${fmtDateTime(inc.acknowledgedAt)}`]);
    if (inc.resolvedBy) rows.push([inc.state === "dismissed" ? "Dismissed" : "Resolved", `${inc.resolvedBy}, ${fmtDateTime(inc.resolvedAt)}`]);
    if (inc.comment) rows.push(["Comment", inc.comment]);
    const evidence = keepImg || h("figure.evidence", {}, h("div.evidence-empty.muted", {}, "Loading evidence…"));
    this.detail.append(
      h("h2", { dataset: { severity: inc.severity } }, title(inc)),
      evidence,
      h("dl.facts", {}, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      actions,
    );
    if (withEvidence) this.loadEvidence(inc, evidence);
  }

  async evidenceOf(inc) {
    try {
      const d = await this.ctx.api.gql(`query($id: ID!) { incident(id: $id) { id evidenceUrl evidenceClipUrl } }`, { id: inc.id });
      return { url: d.incident ? d.incident.evidenceUrl : null, clipUrl: d.incident ? d.incident.evidenceClipUrl : null };
    } catch (err) {
      void err;
      return { url: null, clipUrl: null };
    }
  }

  async loadEvidence(inc, fig) {
    // the incident's own snapshot (the first of its events that has one) and its clip, read
    // fresh: the copy shown may predate them (a clip is recorded seconds after the event)
    const ev = await this.evidenceOf(inc);
    if (!fig.isConnected) return; // another incident is shown now
    clear(fig);
    if (!ev.url) {
      fig.append(h("div.evidence-empty.muted", {}, "No evidence snapshot for this incident."));
      return;
    }
    if (ev.clipUrl) {
      this.showClip(inc, fig, ev);
      return;
    }
    fig.append(
      h("img", { src: this.ctx.api.imageUrl(ev.url), alt: `Evidence snapshot of ${title(inc)} (people pixelated)` }),
      h("figcaption.muted.small", {}, "Evidence snapshot — people pixelated"),
    );
    if (isEmergency(inc)) this.awaitClip(inc, fig, 4);
  }

  /** An emergency's clip is recorded seconds after its event: while its incident is shown and
   * recent, look again now and then, and play the clip in place of the still once it is there. */
  async awaitClip(inc, fig, tries) {
    if (tries <= 0 || Date.now() - parseTime(inc.lastSeen) > 60_000) return;
    await new Promise((ok) => setTimeout(ok, 4000));
    if (!fig.isConnected) return;
    const ev = await this.evidenceOf(inc);
    if (!fig.isConnected) return;
    if (ev.url && ev.clipUrl) {
      clear(fig);
      this.showClip(inc, fig, ev);
    } else {
      this.awaitClip(inc, fig, tries - 1);
    }
  }

  showClip(inc, fig, ev) {
    fig.append(
      h("video.evidence-clip", {
        src: this.ctx.api.imageUrl(ev.clipUrl), poster: this.ctx.api.imageUrl(ev.url), controls: true, muted: true,
        loop: true, autoplay: true, playsInline: true, preload: "auto",
        "aria-label": `Evidence clip of ${title(inc)}, seconds before and after (people pixelated)`,
      }),
      h("figcaption.muted.small", {}, "Evidence clip, seconds before and after — people pixelated"),
    );
  }

  async run(inc, key) {
    const a = ACTIONS[key];
    const comment = await askComment({
      title: `${a.label} “${title(inc)}”`,
      confirm: a.label,
      danger: key === "dismiss",
      label: key === "dismiss" ? "Why is this a false alarm? (optional)" : "Comment (optional)",
    });
    if (comment === null) return;
    try {
      const updated = await this.ctx.feed.act(inc.id, key, comment);
      this.items.set(updated.id, updated);
      this.renderList();
      this.renderDetail(false);
      toast(`Incident ${a.done}.`);
      const next = this.detail.querySelector(".actions button:not([disabled])");
      if (next) next.focus();
      else this.detail.focus({ preventScroll: true });
    } catch (err) {
      toast(`${a.label} refused: ${err.message}`, "error");
    }
  }
}
