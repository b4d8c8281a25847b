// The privacy-zone editor (admins): the rule editor's polygon drawing on the same canvas, for the
// camera's privacy-mask zones (windows, gardens, doorways). Zones are filled solid in every
// picture that leaves the camera, the clear view included; saving goes through
// setCameraPrivacy, which the server audits.

import { clear, h, toast } from "./dom.js";
import { drawShape } from "./overlay.js";
import { RuleEditor } from "./editor.js";

const ZONE_TYPE = {
  name: "privacy_zone",
  defaultClasses: [],
  paramsSchema: { properties: { zone: { description: "polygon [[x, y], ...]" } }, required: ["zone"] },
};
const ZONE_COLOUR = "#a855f7";

export class ZoneEditor extends RuleEditor {
  /** host: {api, camera ({id, privacyZones, viewMode}), canvas, errorsEl, requestDraw(), onSaved(camera), onClose()} */
  constructor(host) {
    super({ ...host, cameraId: host.camera.id, ruleTypes: [ZONE_TYPE] });
    this.zones = (host.camera.privacyZones || []).map((z) => z.map((p) => [...p]));
    this.viewMode = host.camera.viewMode || "";
  }

  render(root) {
    this.root = root;
    clear(root);
    this.list = h("ul.rule-list", { id: "zone-list", "aria-label": "Privacy zones of this camera" });
    this.viewSel = h("select", { id: "zone-view-mode" },
      [["", "Server default"], ["pixelated", "Pixelated"], ["background", "Background (empty scene, blobs)"]]
        .map(([v, text]) => h("option", { value: v, selected: v === this.viewMode }, text)));
    root.append(
      h("div.panel-head", {}, h("h2", {}, "Privacy zones")),
      h("p.muted.small", {}, "Click points on the picture, Enter or a double click closes a zone. Zones are masked in live views, snapshots and evidence, even for admins."),
      this.list,
      h("label", {}, "Viewers see ", this.viewSel),
      h("div.form-actions", {},
        h("button", { type: "button", id: "zone-add", onclick: () => this.startDrawing() }, "+ Zone"),
        h("button.primary", { type: "button", id: "zone-save", onclick: () => this.save() }, "Save zones"),
        h("button.ghost", { type: "button", id: "zone-cancel", onclick: () => this.host.onClose() }, "Close")),
    );
    this.renderList();
    if (!this.zones.length) this.startDrawing(false);
  }

  renderList() {
    clear(this.list);
    this.zones.forEach((z, i) => this.list.append(h("li.rule-item", { dataset: { zone: String(i) } },
      h("span.swatch", { style: `background:${ZONE_COLOUR}`, "aria-hidden": "true" }),
      h("div.rule-text", {}, h("strong", {}, `Zone ${i + 1}`), h("span.muted.small", {}, `${z.length} points`)),
      h("div.rule-actions", {}, h("button.small.ghost", { type: "button", "aria-label": `Delete zone ${i + 1}`,
        onclick: () => { this.zones.splice(i, 1); this.renderList(); this.host.requestDraw(); } }, "Delete")))));
    if (!this.zones.length) this.list.append(h("li.empty.muted", {}, "No privacy zone on this camera."));
  }

  syncGeoText() {}

  /** A drawn polygon closed: it becomes a zone, and the draft is free for the next one. */
  afterShape() {
    if (!this.mode && this.draft.polygon.length >= 3) {
      this.zones.push(this.draft.polygon);
      this.draft = { polygon: [], line: [], direction: null };
      this.renderList();
    }
    this.canvas.dataset.mode = this.mode || "";
    this.host.requestDraw();
  }

  draw(g, w, hgt, scale) {
    for (const [i, z] of this.zones.entries()) {
      drawShape(g, { polygon: z }, w, hgt, { colour: ZONE_COLOUR, scale, name: `zone ${i + 1}` });
    }
    const preview = this.mode === "polygon" && this.hover ? [...this.draft.polygon, this.hover] : this.draft.polygon;
    if (preview.length) drawShape(g, { polygon: preview }, w, hgt, { colour: ZONE_COLOUR, handles: true, scale, openPolygon: true });
  }

  async save() {
    const d = await this.host.api.gql(`mutation($id: ID!, $zones: JSON!, $mode: String) {
        r: setCameraPrivacy(cameraId: $id, zones: $zones, viewMode: $mode) {
          __typename ... on Camera { id privacyZones viewMode } ... on NotAuthorized { message }
          ... on ValidationError { message errors { field message } } } }`,
    { id: this.host.camera.id, zones: this.zones, mode: this.viewSel.value || null });
    if (d.r.__typename !== "Camera") {
      const text = (d.r.errors || []).map((e) => `${e.field}: ${e.message}`).join("; ") || d.r.message;
      this.host.errorsEl.hidden = false;
      this.host.errorsEl.textContent = text;
      toast(text, "error");
      return;
    }
    this.host.onSaved(d.r);
  }
}
