// The rule editor: draws a rule's polygon / line / direction arrow on the camera canvas and edits
// its classes, parameters and schedule; saving goes through createRule / updateRule and the
// API's ValidationError messages are shown next to the drawing.

import { clear, h } from "./dom.js";
import { arrowLength, arrowOf, colourOf, drawShape, geometryOf, sideNormal } from "./overlay.js";
import { readSchedule, scheduleFieldset } from "./schedule.js";

export const CLASS_CHOICES = [
  ["person", "Person"], ["bicycle", "Bicycle"], ["car", "Car"], ["motorcycle", "Motorcycle"],
  ["bus", "Bus"], ["truck", "Truck"], ["backpack", "Backpack"], ["handbag", "Handbag"], ["suitcase", "Suitcase"],
];

const RULE_FIELDS = "id cameraId type name enabled classes minConfidence cooldownS schedule params version updatedAt";
const HIT_PX = 12;

function round4(v) {
  return Math.round(v * 10000) / 10000;
}

function clamp01(v) {
  return Math.min(1, Math.max(0, v));
}

function label(name) {
  return name.replaceAll("_", " ").replace(/\b(s)$/, "(s)").replace(/^./, (c) => c.toUpperCase());
}

export class RuleEditor {
  /**
   * host: {api, cameraId, ruleTypes, canvas, errorsEl, requestDraw(), onSaved(rule), onClose()}
   */
  constructor(host, rule = null) {
    this.host = host;
    this.rule = rule;
    this.typeName = rule ? rule.type : (host.ruleTypes.find((t) => t.name === "line_count") || host.ruleTypes[0]).name;
    this.draft = { polygon: [], line: [], direction: null };
    this.mode = null; // "polygon" | "line" | null (not drawing)
    this.drag = null;
    this.hover = null;
    this.errorFields = new Set();
    if (rule) this.loadRule(rule);
    this.bindCanvas();
  }

  get type() {
    return this.host.ruleTypes.find((t) => t.name === this.typeName);
  }

  get geo() {
    return geometryOf(this.type.paramsSchema);
  }

  loadRule(rule) {
    const g = geometryOf(this.host.ruleTypes.find((t) => t.name === rule.type).paramsSchema);
    const p = rule.params || {};
    this.draft = {
      polygon: g.polygon && Array.isArray(p[g.polygon]) ? p[g.polygon].map((q) => [...q]) : [],
      line: g.line && Array.isArray(p[g.line]) ? p[g.line].map((q) => [...q]) : [],
      direction: g.direction ? p[g.direction] ?? null : null,
    };
  }

  // ---- form ---------------------------------------------------------------------------------

  render(root) {
    this.root = root;
    clear(root);
    const rule = this.rule;
    const t = this.type;
    const typeSel = h("select", { id: "rule-type", disabled: Boolean(rule), onchange: () => this.changeType(typeSel.value) },
      this.host.ruleTypes.map((rt) => h("option", { value: rt.name, selected: rt.name === this.typeName }, label(rt.name))));
    this.nameInput = h("input", { id: "rule-name", maxlength: 200, value: rule ? rule.name : "", placeholder: `${label(this.typeName)} on ${this.host.cameraId}` });
    const classes = new Set(rule ? rule.classes : t.defaultClasses);
    this.classBoxes = CLASS_CHOICES.map(([value, text]) =>
      h("label.check", {}, h("input", { type: "checkbox", name: "rule-class", value, checked: classes.has(value) }), text));
    this.paramInputs = new Map();
    const params = h("div.param-grid");
    const more = h("div.param-grid");
    const props = t.paramsSchema.properties || {};
    const required = new Set(t.paramsSchema.required || []);
    const geoNames = new Set([this.geo.polygon, this.geo.line, this.geo.direction].filter(Boolean));
    for (const [name, schema] of Object.entries(props)) {
      if (geoNames.has(name)) continue;
      const field = this.paramField(name, schema, rule ? rule.params[name] : undefined);
      (required.has(name) || !("default" in schema) ? params : more).append(field);
    }
    this.minConf = h("input", { id: "rule-minconf", type: "number", min: 0, max: 1, step: 0.05, value: rule ? rule.minConfidence : 0.3 });
    this.cooldown = h("input", { id: "rule-cooldown", type: "number", min: 0, max: 86400, step: 1, value: rule ? rule.cooldownS : 0 });
    this.enabled = h("input", { id: "rule-enabled", type: "checkbox", checked: rule ? rule.enabled : true });
    this.schedule = scheduleFieldset(rule ? rule.schedule : null);
    this.geoText = h("textarea.mono", { id: "rule-geometry", rows: 3, spellcheck: false, "aria-describedby": "rule-geometry-help",
      onchange: () => this.readGeoText() });
    const drawHelp = this.geo.line
      ? "Click the two ends of the line on the picture, then drag the round arrow handle to the side counted as “in”."
      : this.geo.polygon
        ? "Click the corners of the zone on the picture; click the first corner, double-click or press Enter to close it. Drag corners to adjust."
        : "This rule type has no shape to draw.";
    const tools = h("div.toolbar", { role: "toolbar", "aria-label": "Drawing tools" },
      h("button", { type: "button", id: "rule-draw", onclick: () => this.startDrawing() }, this.geo.line ? "Draw line" : "Draw zone"),
      this.geo.direction ? h("button", { type: "button", id: "rule-flip", onclick: () => this.flipDirection() }, "Flip arrow") : null,
      this.geo.polygon ? h("button", { type: "button", id: "rule-whole", onclick: () => this.wholeImage() }, "Whole image") : null,
      h("button", { type: "button", onclick: () => this.clearShape() }, "Clear"));
    this.form = h("form.rule-form", { "aria-label": rule ? `Edit rule ${rule.name || rule.id}` : "New rule",
      onsubmit: (ev) => { ev.preventDefault(); this.save(); },
      onkeydown: (ev) => { if (ev.key === "Escape" && !this.mode) { ev.preventDefault(); this.host.onClose(); } } },
    h("h2", {}, rule ? `Edit rule “${rule.name || rule.id}”` : "New rule"),
    h("div.field-row", {},
      h("div.field", {}, h("label", { for: "rule-type" }, "Type"), typeSel),
      h("div.field.grow", {}, h("label", { for: "rule-name" }, "Name"), this.nameInput)),
    h("fieldset.shape", { dataset: { field: "params" } }, h("legend", {}, "Shape on the picture"),
      h("p.muted.small", { id: "rule-geometry-help" }, drawHelp), tools,
      h("label", { for: "rule-geometry" }, "Coordinates (normalised 0–1, editable)"), this.geoText),
    h("fieldset.classes", { dataset: { field: "classes" } }, h("legend", {}, "Object classes"), h("div.checks", {}, this.classBoxes)),
    params.childElementCount || more.childElementCount ? h("fieldset", {}, h("legend", {}, "Parameters"), params,
      more.childElementCount ? h("details.more", { id: "rule-more" }, h("summary", {}, "More parameters (defaults are fine)"), more) : null) : null,
    this.schedule.el,
    h("fieldset", {}, h("legend", {}, "Alerting"),
      h("div.field-row", {},
        h("div.field", { dataset: { field: "minConfidence" } }, h("label", { for: "rule-minconf" }, "Min. confidence"), this.minConf),
        h("div.field", { dataset: { field: "cooldownS" } }, h("label", { for: "rule-cooldown" }, "Cooldown (s)"), this.cooldown),
        h("label.check", {}, this.enabled, "Enabled"))),
    h("div.form-actions", {},
      h("button.primary", { type: "submit", id: "rule-save" }, rule ? "Save changes" : "Save rule"),
      h("button", { type: "button", onclick: () => this.host.onClose() }, "Cancel")));
    root.append(this.form);
    this.syncGeoText();
    if (!rule && (this.geo.line || this.geo.polygon)) this.startDrawing(false);
  }

  paramField(name, schema, value) {
    const id = `param-${name}`;
    const desc = schema.description || "";
    const dflt = value !== undefined ? value : schema.default;
    let input;
    let kind;
    if (schema.type === "boolean") {
      kind = "bool";
      input = h("input", { id, type: "checkbox", checked: Boolean(dflt) });
      return h("div.field", { dataset: { field: `params.${name}` } }, h("label.check", { title: desc }, input, label(name)), this.keep(name, kind, input));
    }
    if (schema.type === "number" || schema.type === "integer") {
      kind = schema.type;
      input = h("input", { id, type: "number", step: schema.type === "integer" ? 1 : "any",
        min: schema.minimum ?? schema.exclusiveMinimum, max: schema.maximum, value: dflt ?? "" });
    } else if (schema.type === "string" && !schema.enum) {
      kind = "string";
      input = h("input", { id, value: dflt ?? "", maxlength: schema.maxLength });
    } else if (schema.type === "array" && schema.items && ["integer", "number", "string"].includes(schema.items.type)) {
      kind = `list-${schema.items.type}`;
      input = h("input", { id, value: Array.isArray(dflt) ? dflt.join(", ") : "", placeholder: "comma-separated" });
    } else {
      kind = "json";
      input = h("textarea.mono", { id, rows: 3, spellcheck: false }, dflt !== undefined ? JSON.stringify(dflt) : "");
    }
    this.keep(name, kind, input);
    return h("div.field", { dataset: { field: `params.${name}` } }, h("label", { for: id, title: desc }, label(name)), input,
      h("small.muted", {}, desc));
  }

  keep(name, kind, input) {
    this.paramInputs.set(name, { kind, input });
    return null;
  }

  changeType(name) {
    this.typeName = name;
    this.draft = { polygon: [], line: [], direction: null };
    this.mode = null;
    this.render(this.root);
    this.host.requestDraw();
  }

  readParams() {
    const out = {};
    for (const [name, { kind, input }] of this.paramInputs) {
      const raw = kind === "bool" ? input.checked : input.value.trim();
      if (kind === "bool") out[name] = raw;
      else if (raw === "") continue;
      else if (kind === "number" || kind === "integer") out[name] = Number(raw);
      else if (kind === "string") out[name] = raw;
      else if (kind.startsWith("list-")) {
        const parts = raw.split(",").map((s) => s.trim()).filter(Boolean);
        out[name] = kind === "list-string" ? parts : parts.map(Number);
      } else {
        try { out[name] = JSON.parse(raw); } catch { out[name] = raw; }
      }
    }
    const g = this.geo;
    if (g.polygon && (this.draft.polygon.length || !g.polygonOptional)) out[g.polygon] = this.draft.polygon;
    if (g.line) out[g.line] = this.draft.line;
    if (g.direction && this.draft.direction !== null) out[g.direction] = this.draft.direction;
    return out;
  }

  input() {
    return {
      cameraId: this.host.cameraId,
      type: this.typeName,
      name: this.nameInput.value.trim(),
      enabled: this.enabled.checked,
      classes: this.classBoxes.map((l) => l.querySelector("input")).filter((i) => i.checked).map((i) => i.value),
      minConfidence: Number(this.minConf.value || 0),
      cooldownS: Number(this.cooldown.value || 0),
      schedule: readSchedule(this.schedule, this.rule ? this.rule.schedule : null),
      params: this.readParams(),
    };
  }

  async save() {
    const btn = this.form.querySelector("#rule-save");
    btn.disabled = true;
    this.showErrors([]);
    try {
      const sel = `__typename ... on Rule { ${RULE_FIELDS} } ... on ValidationError { message errors { field message } }
                   ... on NotAuthorized { message } ... on NotFoundError { message }`;
      const d = this.rule
        ? await this.host.api.gql(`mutation($id: ID!, $in: RuleInput!) { r: updateRule(id: $id, input: $in) { ${sel} } }`, { id: this.rule.id, in: this.input() })
        : await this.host.api.gql(`mutation($in: RuleInput!) { r: createRule(input: $in) { ${sel} } }`, { in: this.input() });
      const r = d.r;
      if (r.__typename === "Rule") {
        this.mode = null;
        this.host.onSaved(r);
      } else if (r.__typename === "ValidationError") {
        this.showErrors(r.errors.length ? r.errors : [{ field: "", message: r.message }]);
      } else {
        this.showErrors([{ field: "", message: r.message }]);
      }
    } catch (err) {
      this.showErrors([{ field: "", message: err.message }]);
    } finally {
      btn.disabled = false;
    }
  }

  /** API errors: all listed next to the drawing, each also marked on its own form field. */
  showErrors(raw) {
    // pydantic names the branches of a union in the path (function-after[...], literal[...]):
    // keep the parameter's own path, and one message per path
    const seen = new Set();
    const errors = [];
    for (const e of raw) {
      const field = (e.field || "").split(".").filter((seg) => !/[[(]/.test(seg)).join(".");
      const key = `${field}|${e.message}`;
      if (!seen.has(key)) { seen.add(key); errors.push({ field, message: e.message }); }
    }
    const box = this.host.errorsEl;
    clear(box);
    this.errorFields = new Set(errors.map((e) => e.field));
    for (const el of this.form.querySelectorAll("[data-field]")) {
      el.classList.remove("invalid");
      const old = el.querySelector(":scope > .field-error");
      if (old) old.remove();
    }
    this.geoText.removeAttribute("aria-invalid");
    box.hidden = errors.length === 0;
    if (errors.length) {
      box.append(h("strong", {}, "The server refused this rule:"),
        h("ul", {}, errors.map((e) => h("li", { dataset: { field: e.field } }, e.field ? h("code", {}, e.field) : null, e.field ? " — " : "", e.message))));
    }
    const g = this.geo;
    for (const e of errors) {
      const f = e.field || "";
      if ([g.polygon, g.line, g.direction].some((n) => n && f.startsWith(`params.${n}`))) {
        this.geoText.setAttribute("aria-invalid", "true");
        continue;
      }
      const target = [...this.form.querySelectorAll("[data-field]")]
        .filter((el) => f === el.dataset.field || f.startsWith(`${el.dataset.field}.`))
        .sort((a, b) => b.dataset.field.length - a.dataset.field.length)[0];
      if (target) {
        target.classList.add("invalid");
        target.append(h("p.field-error", {}, e.message));
      }
    }
    this.host.requestDraw();
  }

  // ---- geometry ------------------------------------------------------------------------------

  syncGeoText() {
    const g = this.geo;
    const shape = {};
    if (g.polygon) shape[g.polygon] = this.draft.polygon;
    if (g.line) shape[g.line] = this.draft.line;
    if (g.direction) shape[g.direction] = this.draft.direction;
    this.geoText.value = JSON.stringify(shape);
  }

  readGeoText() {
    let obj;
    try {
      obj = JSON.parse(this.geoText.value || "{}");
    } catch (err) {
      this.showErrors([{ field: `params.${this.geo.polygon || this.geo.line}`, message: `not valid JSON: ${err.message}` }]);
      return;
    }
    const g = this.geo;
    if (g.polygon && Array.isArray(obj[g.polygon])) this.draft.polygon = obj[g.polygon];
    if (g.line && Array.isArray(obj[g.line])) this.draft.line = obj[g.line];
    if (g.direction && g.direction in obj) this.draft.direction = obj[g.direction];
    this.host.requestDraw();
  }

  startDrawing(focus = true) {
    const g = this.geo;
    if (g.line) { this.mode = "line"; this.draft.line = []; this.draft.direction = null; }
    else if (g.polygon) { this.mode = "polygon"; this.draft.polygon = []; }
    this.canvas.dataset.mode = this.mode || "";
    this.syncGeoText();
    this.host.requestDraw();
    if (focus) this.canvas.focus();
  }

  wholeImage() {
    this.draft.polygon = [[0, 0], [1, 0], [1, 1], [0, 1]];
    this.mode = null;
    this.afterShape();
  }

  clearShape() {
    this.draft = { polygon: [], line: [], direction: null };
    this.startDrawing();
  }

  flipDirection() {
    const d = this.draft.direction;
    if (d === "left" || d === "right") this.draft.direction = d === "left" ? "right" : "left";
    else if (Array.isArray(d)) this.draft.direction = [round4(-d[0]) || 0, round4(-d[1]) || 0];
    this.afterShape();
  }

  /** A shape was completed or changed: give it a default direction, then redraw. */
  afterShape() {
    const g = this.geo;
    const d = this.draft.direction;
    const unset = d === null || (Array.isArray(d) && !(Math.hypot(d[0], d[1]) > 0));
    if (g.direction && unset) {
      this.draft.direction = null;
      const [a, b] = this.draft.line;
      if (g.line && a && b && (a[0] !== b[0] || a[1] !== b[1])) {
        const n = sideNormal(a, b, "left");
        this.draft.direction = [round4(n[0]), round4(n[1])];
      } else if (g.polygon && this.draft.polygon.length >= 3) {
        this.draft.direction = [1, 0];
      }
    }
    this.canvas.dataset.mode = this.mode || "";
    this.syncGeoText();
    this.host.requestDraw();
  }

  shape() {
    return {
      polygon: this.geo.polygon ? this.draft.polygon : null,
      line: this.geo.line ? this.draft.line : null,
      direction: this.draft.direction,
      inName: (this.paramInputs?.get("in_name")?.input.value) || "in",
      outName: (this.paramInputs?.get("out_name")?.input.value) || "out",
    };
  }

  /** Draw the draft (called by the camera view after the other rules). */
  draw(g, w, hgt, scale) {
    const shape = this.shape();
    const bad = [...this.errorFields].some((f) => f.startsWith("params.") && [this.geo.polygon, this.geo.line, this.geo.direction].some((n) => n && f.startsWith(`params.${n}`)));
    const preview = { ...shape };
    if (this.mode === "polygon" && this.hover && shape.polygon) preview.polygon = [...shape.polygon, this.hover];
    if (this.mode === "line" && this.hover && shape.line && shape.line.length === 1) preview.line = [...shape.line, this.hover];
    drawShape(g, preview, w, hgt, {
      colour: colourOf(this.typeName), handles: true, error: bad, scale,
      openPolygon: this.mode === "polygon", name: this.nameInput?.value || "new rule",
    });
  }

  // ---- canvas interaction --------------------------------------------------------------------

  bindCanvas() {
    const c = this.host.canvas;
    this.canvas = c;
    this.handlers = {
      pointerdown: (ev) => this.onDown(ev),
      pointermove: (ev) => this.onMove(ev),
      pointerup: (ev) => this.onUp(ev),
      pointerleave: () => { this.hover = null; this.host.requestDraw(); },
      dblclick: (ev) => { ev.preventDefault(); this.closePolygon(); },
      keydown: (ev) => this.onKey(ev),
    };
    for (const [k, f] of Object.entries(this.handlers)) c.addEventListener(k, f);
    c.classList.add("editing");
  }

  destroy() {
    for (const [k, f] of Object.entries(this.handlers)) this.canvas.removeEventListener(k, f);
    this.canvas.classList.remove("editing");
    this.canvas.dataset.mode = "";
    clear(this.host.errorsEl);
    this.host.errorsEl.hidden = true;
  }

  norm(ev) {
    const r = this.canvas.getBoundingClientRect();
    return [round4(clamp01((ev.clientX - r.left) / r.width)), round4(clamp01((ev.clientY - r.top) / r.height))];
  }

  hit(ev) {
    const r = this.canvas.getBoundingClientRect();
    const x = ev.clientX - r.left;
    const y = ev.clientY - r.top;
    const near = (p) => Math.hypot(p[0] * r.width - x, p[1] * r.height - y) <= HIT_PX;
    const arrow = arrowOf(this.shape());
    if (arrow) {
      const len = arrowLength(r.width, r.height);
      const d = [arrow.v[0] * r.width, arrow.v[1] * r.height];
      const n = Math.hypot(d[0], d[1]) || 1;
      const tip = [(arrow.base[0] * r.width + (d[0] / n) * len) / r.width, (arrow.base[1] * r.height + (d[1] / n) * len) / r.height];
      if (near(tip)) return { kind: "arrow", base: arrow.base };
    }
    for (const key of ["line", "polygon"]) {
      const pts = this.draft[key];
      for (let i = 0; i < pts.length; i += 1) if (near(pts[i])) return { kind: "vertex", key, i };
    }
    return null;
  }

  onDown(ev) {
    if (ev.button !== 0) return;
    const p = this.norm(ev);
    const hit = this.mode ? null : this.hit(ev);
    if (hit) {
      this.drag = hit;
      this.canvas.setPointerCapture(ev.pointerId);
      ev.preventDefault();
      return;
    }
    if (this.mode === "line") {
      this.draft.line.push(p);
      if (this.draft.line.length === 2) { this.mode = null; this.afterShape(); }
      else this.host.requestDraw();
    } else if (this.mode === "polygon") {
      const pts = this.draft.polygon;
      const r = this.canvas.getBoundingClientRect();
      if (pts.length >= 3 && Math.hypot((pts[0][0] - p[0]) * r.width, (pts[0][1] - p[1]) * r.height) <= HIT_PX) this.closePolygon();
      else { pts.push(p); this.syncGeoText(); this.host.requestDraw(); }
    }
  }

  onMove(ev) {
    const p = this.norm(ev);
    if (this.drag) {
      if (this.drag.kind === "vertex") this.draft[this.drag.key][this.drag.i] = p;
      else {
        const dx = p[0] - this.drag.base[0];
        const dy = p[1] - this.drag.base[1];
        if (Math.hypot(dx, dy) > 0.005) this.draft.direction = [round4(dx), round4(dy)];
      }
      this.syncGeoText();
      this.host.requestDraw();
    } else if (this.mode) {
      this.hover = p;
      this.host.requestDraw();
    } else {
      this.canvas.style.cursor = this.hit(ev) ? "grab" : "";
    }
  }

  onUp(ev) {
    if (this.drag) {
      this.drag = null;
      if (this.canvas.hasPointerCapture(ev.pointerId)) this.canvas.releasePointerCapture(ev.pointerId);
      this.afterShape();
    }
  }

  closePolygon() {
    if (this.mode !== "polygon" || this.draft.polygon.length < 3) return;
    this.mode = null;
    this.hover = null;
    this.afterShape();
  }

  onKey(ev) {
    if (ev.key === "Enter" && this.mode === "polygon") { ev.preventDefault(); this.closePolygon(); }
    else if ((ev.key === "Backspace" || ev.key === "Delete") && this.mode) {
      ev.preventDefault();
      this.draft[this.mode].pop();
      this.syncGeoText();
      this.host.requestDraw();
    } else if (ev.key === "Escape" && this.mode) {
      ev.preventDefault();
      ev.stopPropagation();
      this.mode = null;
      this.hover = null;
      this.afterShape();
    }
  }
}
