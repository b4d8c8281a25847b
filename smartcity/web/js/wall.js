// The camera wall: one tile per camera with its state colour, health and latest (pixelated)
// snapshot, kept live by the cameraStatus subscription; arrow keys move between tiles.

import { ago, clear, h } from "./dom.js";

const SNAPSHOT_EVERY_MS = 5000;
// snapshot URLs carry picture tokens that expire (server.image_token_ttl_s, at least 60 s):
// ask the API for fresh ones well before
const URLS_EVERY_MS = 30000;
const STATE_LABEL = { online: "Online", degraded: "Degraded", offline: "Offline", starting: "Starting", unknown: "No report" };

export class WallView {
  constructor(ctx) {
    this.ctx = ctx;
    this.tiles = new Map();
    this.cameras = [];
    this.unsub = null;
    this.timer = null;
    this.onFeed = () => this.updateIncidentMarks();
  }

  async mount(root) {
    this.root = root;
    this.search = h("input", { type: "search", id: "wall-search", placeholder: "Filter cameras", "aria-label": "Filter cameras by name, id or group",
      oninput: () => this.applyFilter() });
    this.groupSel = h("select", { id: "wall-group", "aria-label": "Camera group", onchange: () => this.applyFilter() });
    this.summary = h("p.wall-summary", { role: "status" });
    this.grid = h("div.wall", { role: "list", "aria-label": "Cameras", onkeydown: (ev) => this.onKey(ev) });
    root.append(
      h("div.view-head", {}, h("h1", {}, "Cameras"), this.summary,
        h("div.filters", {}, this.search, this.groupSel)),
      this.grid,
    );
    this.cameras = await this.ctx.cameras();
    this.urlsAt = Date.now();
    const groups = [...new Set(this.cameras.map((c) => c.group))].sort();
    this.groupSel.append(h("option", { value: "" }, "All groups"), ...groups.map((g) => h("option", { value: g }, g)));
    // only tiles on screen fetch pictures: a wall of hundreds of cameras stays light
    this.visible = new Set();
    this.io = new IntersectionObserver((entries) => {
      for (const e of entries) {
        const id = e.target.dataset.camera;
        if (e.isIntersecting) {
          if (!this.visible.has(id)) { this.visible.add(id); this.setSnapshot(id); }
        } else this.visible.delete(id);
      }
    });
    for (const cam of this.cameras) {
      const el = this.tile(cam);
      this.grid.append(el);
      this.io.observe(el);
    }
    if (!this.cameras.length) this.grid.append(h("p.muted", {}, "No camera in your scope."));
    this.updateSummary();
    this.updateIncidentMarks();
    this.ctx.feed.addEventListener("change", this.onFeed);
    this.unsub = this.ctx.api.subscribe(
      `subscription { cameraStatus { cameraId state at inputFps analysedFps lastFrameAt width height message decodeErrors reconnects } }`,
      {},
      (d) => this.onStatus(d.cameraStatus),
    );
    this.timer = setInterval(() => this.refreshSnapshots(), SNAPSHOT_EVERY_MS);
  }

  unmount() {
    if (this.unsub) this.unsub();
    if (this.io) this.io.disconnect();
    clearInterval(this.timer);
    this.ctx.feed.removeEventListener("change", this.onFeed);
  }

  tile(cam) {
    const img = h("img", { alt: `Latest picture of ${cam.name || cam.id}, people pixelated`, decoding: "async" });
    img.addEventListener("load", () => { img.closest(".tile").classList.add("has-picture"); });
    img.addEventListener("error", () => { img.closest(".tile").classList.remove("has-picture"); });
    const el = h("button.tile", {
      type: "button",
      role: "listitem",
      dataset: { camera: cam.id, group: cam.group },
      onclick: () => { location.hash = `#/camera/${encodeURIComponent(cam.id)}`; },
    },
    h("span.tile-media", {}, img, h("span.tile-noimg.muted", {}, "no picture yet"),
      h("span.chip.state-chip"), h("span.chip.incident-chip", { hidden: true })),
    h("span.tile-body", {},
      h("span.tile-name", {}, cam.name || cam.id),
      h("span.tile-sub.muted", {}, [cam.id, cam.group, cam.site].filter(Boolean).join(" · ")),
      h("span.tile-health")));
    this.tiles.set(cam.id, { el, img, cam });
    this.render(cam.id, cam.status);
    return el;
  }

  setSnapshot(id) {
    const t = this.tiles.get(id);
    if (!t || t.el.hidden) return;
    const url = this.ctx.api.imageUrl(t.cam.snapshotUrl, { fresh: true });
    // swap only once the next picture is loaded: no flicker on a wall screen
    const next = new Image();
    next.onload = () => { t.img.src = next.src; };
    next.onerror = () => { if (!t.img.src) t.img.removeAttribute("src"); };
    next.src = url;
  }

  async refreshUrls() {
    this.urlsAt = Date.now();
    try {
      const d = await this.ctx.api.gql("{ cameras { id snapshotUrl } }");
      for (const c of d.cameras) {
        const t = this.tiles.get(c.id);
        if (t) t.cam.snapshotUrl = c.snapshotUrl;
      }
    } catch (err) {
      void err; // the next round tries again; the tiles keep their last picture meanwhile
    }
  }

  async refreshSnapshots() {
    if (document.hidden) return;
    if (Date.now() - this.urlsAt > URLS_EVERY_MS) await this.refreshUrls();
    for (const id of this.visible) this.setSnapshot(id);
    for (const [id, t] of this.tiles) this.render(id, t.cam.status);
  }

  onStatus(s) {
    const t = this.tiles.get(s.cameraId);
    if (!t) return;
    const before = t.cam.status && t.cam.status.state;
    t.cam.status = s;
    this.render(s.cameraId, s);
    if (before !== s.state) this.updateSummary();
  }

  render(id, s) {
    const t = this.tiles.get(id);
    const state = s ? s.state : "unknown";
    t.el.dataset.state = state;
    const chip = t.el.querySelector(".state-chip");
    chip.textContent = STATE_LABEL[state] || state;
    const health = t.el.querySelector(".tile-health");
    health.textContent = s
      ? `${s.analysedFps.toFixed(1)} fps analysed · frame ${ago(s.lastFrameAt)}${s.message ? ` · ${s.message}` : ""}`
      : "waiting for the first health report";
    t.el.setAttribute("aria-label", `${t.cam.name || t.cam.id}, ${STATE_LABEL[state] || state}. ${health.textContent}. Open live view`);
  }

  updateIncidentMarks() {
    const open = new Map();
    for (const inc of this.ctx.feed.byId.values()) {
      if (inc.state !== "open") continue;
      for (const c of inc.cameraIds) open.set(c, (open.get(c) || 0) + 1);
    }
    for (const [id, t] of this.tiles) {
      const n = open.get(id) || 0;
      const chip = t.el.querySelector(".incident-chip");
      chip.hidden = n === 0;
      chip.textContent = `⚠ ${n} open`;
      t.el.classList.toggle("alerting", n > 0);
    }
  }

  updateSummary() {
    const counts = {};
    for (const c of this.cameras) {
      const st = c.status ? c.status.state : "unknown";
      counts[st] = (counts[st] || 0) + 1;
    }
    clear(this.summary);
    for (const st of ["online", "degraded", "offline", "starting", "unknown"]) {
      if (counts[st]) this.summary.append(h("span.sum", { dataset: { state: st } }, `${counts[st]} ${STATE_LABEL[st].toLowerCase()}`));
    }
  }

  applyFilter() {
    const q = this.search.value.trim().toLowerCase();
    const g = this.groupSel.value;
    for (const t of this.tiles.values()) {
      const text = `${t.cam.id} ${t.cam.name} ${t.cam.group} ${t.cam.site}`.toLowerCase();
      t.el.hidden = (g && t.cam.group !== g) || (q && !text.includes(q));
    }
  }

  /** Arrow keys move focus across the grid (Home/End to the first/last tile). */
  onKey(ev) {
    const tiles = [...this.grid.querySelectorAll(".tile:not([hidden])")];
    const i = tiles.indexOf(document.activeElement);
    if (i < 0) return;
    const cols = getComputedStyle(this.grid).gridTemplateColumns.split(" ").length;
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: cols, ArrowUp: -cols, Home: -i, End: tiles.length - 1 - i };
    if (!(ev.key in moves)) return;
    const j = i + moves[ev.key];
    if (j >= 0 && j < tiles.length) {
      ev.preventDefault();
      tiles[j].focus();
    }
  }
}
