// One camera: the WebRTC live view (privacy mode on by default, admins may turn it off), the
// rule shapes drawn over it, the camera's rules, and the rule editor on the same canvas.

import { askComment, clear, h, toast } from "./dom.js";
import { LiveView } from "./live.js";
import { RuleEditor } from "./editor.js";
import { ZoneEditor } from "./zones.js";
import { colourOf, drawShape, shapeOfRule } from "./overlay.js";
import { scheduleSummary } from "./schedule.js";

const RULE_FIELDS = "id cameraId type name enabled classes minConfidence cooldownS schedule params version updatedAt";

export class CameraView {
  constructor(ctx) {
    this.ctx = ctx;
    this.rules = [];
    this.editor = null;
    this.showRules = true;
    this.drawQueued = false;
  }

  async mount(root, { args }) {
    this.root = root;
    this.cameraId = args[0];
    const [d, types] = await Promise.all([
      this.ctx.api.gql(`query($id: ID!) { camera(id: $id) { id name group site snapshotUrl privacyZones viewMode
          status { state width height analysedFps message } } }`, { id: this.cameraId }),
      this.ctx.ruleTypes(),
    ]);
    this.types = types;
    this.camera = d.camera;
    if (!this.camera) {
      root.append(h("p.form-error", { role: "alert" }, `No camera “${this.cameraId}” in your scope.`), h("a", { href: "#/wall" }, "Back to the cameras"));
      return;
    }
    this.build(root);
    await this.loadRules();
    this.startLive();
  }

  unmount() {
    if (this.live) this.live.stop();
    if (this.editor) this.editor.destroy();
    if (this.resizeObs) this.resizeObs.disconnect();
  }

  build(root) {
    const cam = this.camera;
    const st = cam.status;
    this.snapshot = h("img.stage-poster", { alt: "", src: this.ctx.api.imageUrl(cam.snapshotUrl, { fresh: true }) });
    this.video = h("video.stage-video", { autoplay: true, muted: true, playsinline: true, id: "live-video",
      "aria-label": `Live video of ${cam.name || cam.id}` });
    this.canvas = h("canvas.stage-canvas", { id: "rule-canvas", tabindex: "0", role: "img",
      "aria-label": "Rule shapes over the picture. When drawing: click to add points, Enter closes a zone, Backspace removes the last point, Escape stops drawing." });
    this.badge = h("div.stage-badge", { role: "status" }, "connecting…");
    this.errors = h("div.rule-errors", { id: "rule-errors", role: "alert", hidden: true });
    this.stage = h("div.stage", {}, this.snapshot, this.video, this.canvas, this.badge, this.errors);
    if (st && st.width && st.height) this.setAspect(st.width, st.height);
    this.snapshot.addEventListener("load", () => {
      if (!st || !st.width) this.setAspect(this.snapshot.naturalWidth, this.snapshot.naturalHeight);
    });
    this.video.addEventListener("loadedmetadata", () => {
      if (this.video.videoWidth) this.setAspect(this.video.videoWidth, this.video.videoHeight);
      this.stage.classList.add("is-live");
    });
    this.playBtn = h("button.primary", { type: "button", id: "live-toggle", onclick: () => (this.live.state === "playing" || this.live.state === "connecting" ? this.stopLive() : this.startLive()) }, "Stop live");
    this.privacy = h("input", { type: "checkbox", id: "privacy", checked: true, disabled: !this.ctx.isAdmin,
      onchange: () => this.startLive() });
    this.rulesToggle = h("input", { type: "checkbox", id: "show-rules", checked: true, onchange: () => { this.showRules = this.rulesToggle.checked; this.draw(); } });
    this.stats = h("span.muted.small", { id: "live-stats" });
    this.side = h("div.side");
    root.append(
      h("div.view-head", {},
        h("a.back", { href: "#/wall" }, "← Cameras"),
        h("h1", {}, cam.name || cam.id),
        h("span.chip", { dataset: { state: st ? st.state : "unknown" } }, st ? st.state : "no report"),
        h("span.muted", {}, [cam.id, cam.group, cam.site].filter(Boolean).join(" · "))),
      h("div.camera-layout", {},
        h("div.stage-col", {},
          this.stage,
          h("div.stage-controls", {},
            this.playBtn,
            h("label.check", { title: this.ctx.isAdmin ? "Pixelate people in the live view" : "Only an administrator can turn privacy mode off" },
              this.privacy, "Privacy mode", this.ctx.isAdmin ? null : h("span.muted.small", {}, " (admin only)")),
            h("label.check", {}, this.rulesToggle, "Show rule shapes"),
            this.stats)),
        this.side),
    );
    this.live = new LiveView(this.ctx.api, this.video);
    this.live.addEventListener("state", (ev) => this.onLiveState(ev.detail));
    this.live.addEventListener("stats", (ev) => {
      const s = ev.detail;
      this.stats.textContent = `${s.codec || "?"} · ${s.width || "?"}×${s.height || "?"} · ${s.fps} fps`;
    });
    this.resizeObs = new ResizeObserver(() => this.draw());
    this.resizeObs.observe(this.stage);
  }

  setAspect(w, hgt) {
    if (!w || !hgt) return;
    this.stage.style.aspectRatio = `${w} / ${hgt}`;
    this.stage.style.setProperty("--ar", String(w / hgt));
  }

  startLive() {
    this.live.start(this.cameraId, { unpixelated: this.ctx.isAdmin && !this.privacy.checked });
  }

  stopLive() {
    this.live.stop();
    this.stage.classList.remove("is-live");
  }

  onLiveState({ state, message, pixelated }) {
    const text = {
      connecting: message || "connecting…",
      playing: `● LIVE${pixelated === false ? " · privacy OFF" : " · people pixelated"}`,
      failed: `live view failed: ${message || "no connection"}`,
      stopped: "live view stopped — showing the latest snapshot",
    }[state] || state;
    this.badge.textContent = text;
    this.badge.dataset.state = state;
    this.playBtn.textContent = state === "playing" || state === "connecting" ? "Stop live" : "Play live";
    if (state === "failed") {
      this.playBtn.textContent = "Retry live";
      this.stage.classList.remove("is-live");
    }
  }

  // ---- rules -----------------------------------------------------------------------------------

  schemaOf(type) {
    const t = this.types.find((x) => x.name === type);
    return t ? t.paramsSchema : {};
  }

  async loadRules() {
    const d = await this.ctx.api.gql(`query($id: ID) { rules(cameraId: $id) { ${RULE_FIELDS} } }`, { id: this.cameraId });
    this.rules = d.rules;
    if (!this.editor) this.renderRules();
    this.draw();
  }

  renderRules() {
    clear(this.side);
    const list = h("ul.rule-list", { "aria-label": "Rules of this camera" });
    for (const r of this.rules) {
      const counts = this.types.some((t) => t.name === r.type && t.producesCounts)
        ? h("a.btn.small", { href: `#/counts?camera=${encodeURIComponent(r.cameraId)}&rule=${encodeURIComponent(r.id)}` }, "Counts") : null;
      list.append(h("li.rule-item", { dataset: { rule: r.id, enabled: String(r.enabled) } },
        h("span.swatch", { style: `background:${colourOf(r.type)}`, "aria-hidden": "true" }),
        h("div.rule-text", {},
          h("strong", {}, r.name || r.id),
          h("span.muted.small", {}, `${r.type.replaceAll("_", " ")} · ${r.classes.join(", ") || "all classes"}`),
          h("span.muted.small", {}, `${r.enabled ? "enabled" : "paused"} · ${scheduleSummary(r.schedule)} · v${r.version}`)),
        h("div.rule-actions", {},
          counts,
          this.ctx.canOperate ? h("button.small", { type: "button", "aria-pressed": String(r.enabled), onclick: () => this.toggle(r),
            "aria-label": `${r.enabled ? "Pause" : "Resume"} rule ${r.name || r.id}` }, r.enabled ? "Pause" : "Resume") : null,
          this.ctx.canOperate ? h("button.small", { type: "button", onclick: () => this.edit(r), "aria-label": `Edit rule ${r.name || r.id}` }, "Edit") : null,
          this.ctx.canOperate ? h("button.small.ghost", { type: "button", onclick: () => this.remove(r), "aria-label": `Delete rule ${r.name || r.id}` }, "Delete") : null)));
    }
    if (!this.rules.length) list.append(h("li.empty.muted", {}, "No rule on this camera yet."));
    this.side.append(...[
      h("div.panel-head", {}, h("h2", {}, "Rules"),
        this.ctx.isAdmin ? h("button", { type: "button", id: "edit-zones", onclick: () => this.editZones() },
          `Privacy zones (${(this.camera.privacyZones || []).length})`) : null,
        this.ctx.canOperate ? h("button.primary", { type: "button", id: "new-rule", onclick: () => this.edit(null) }, "+ New rule") : null),
      list,
      this.ctx.canOperate ? null : h("p.muted.small", {}, "Viewers cannot change rules."),
    ].filter(Boolean));
  }

  edit(rule) {
    if (this.editor) this.editor.destroy();
    this.editor = new RuleEditor({
      api: this.ctx.api,
      cameraId: this.cameraId,
      ruleTypes: this.types,
      canvas: this.canvas,
      errorsEl: this.errors,
      requestDraw: () => this.draw(),
      onSaved: (saved) => this.closeEditor(`Rule “${saved.name || saved.id}” saved — running on the camera now.`),
      onClose: () => this.closeEditor(null),
    }, rule);
    clear(this.side);
    this.editor.render(this.side);
    this.draw();
    const first = this.side.querySelector("select:not([disabled]), input");
    if (first) first.focus();
  }

  editZones() {
    if (this.editor) this.editor.destroy();
    this.editor = new ZoneEditor({
      api: this.ctx.api,
      camera: this.camera,
      canvas: this.canvas,
      errorsEl: this.errors,
      requestDraw: () => this.draw(),
      onSaved: (saved) => {
        this.camera = { ...this.camera, privacyZones: saved.privacyZones, viewMode: saved.viewMode };
        this.closeEditor(`Privacy zones saved (${saved.privacyZones.length}) — masked on the camera now.`);
      },
      onClose: () => this.closeEditor(null),
    });
    clear(this.side);
    this.editor.render(this.side);
    this.draw();
  }

  async closeEditor(message) {
    if (this.editor) this.editor.destroy();
    this.editor = null;
    if (message) toast(message);
    await this.loadRules();
    this.renderRules();
    const btn = this.side.querySelector("#new-rule");
    if (btn) btn.focus();
  }

  async toggle(r) {
    const d = await this.ctx.api.gql(`mutation($id: ID!, $on: Boolean!) { r: setRuleEnabled(id: $id, enabled: $on) {
        __typename ... on Rule { id } ... on NotAuthorized { message } ... on NotFoundError { message } ... on ValidationError { message } } }`,
    { id: r.id, on: !r.enabled });
    if (d.r.__typename !== "Rule") toast(d.r.message, "error");
    await this.loadRules();
  }

  async remove(r) {
    const ok = await askComment({ title: `Delete rule “${r.name || r.id}”?`, label: "Note for the audit log (optional)", confirm: "Delete", danger: true });
    if (ok === null) return;
    const d = await this.ctx.api.gql(`mutation($id: ID!) { r: deleteRule(id: $id) { __typename ... on NotAuthorized { message } ... on NotFoundError { message } } }`, { id: r.id });
    if (d.r.__typename !== "Deleted") toast(d.r.message, "error");
    else toast("Rule deleted.");
    await this.loadRules();
  }

  // ---- drawing -------------------------------------------------------------------------------

  draw() {
    if (this.drawQueued) return;
    this.drawQueued = true;
    requestAnimationFrame(() => {
      this.drawQueued = false;
      this.paint();
    });
  }

  paint() {
    const c = this.canvas;
    if (!c) return;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(c.clientWidth * dpr);
    const hgt = Math.round(c.clientHeight * dpr);
    if (c.width !== w || c.height !== hgt) { c.width = w; c.height = hgt; }
    const g = c.getContext("2d");
    g.clearRect(0, 0, w, hgt);
    const editing = this.editor && this.editor.rule ? this.editor.rule.id : null;
    if (this.showRules) {
      for (const r of this.rules) {
        if (r.id === editing) continue;
        drawShape(g, shapeOfRule(r, this.schemaOf(r.type)), w, hgt, {
          colour: colourOf(r.type), dashed: !r.enabled, name: r.name || r.id, scale: dpr,
        });
      }
    }
    if (this.editor) this.editor.draw(g, w, hgt, dpr);
  }
}
