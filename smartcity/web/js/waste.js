// The waste collection view (the `waste` extension): the latest plan's routes and the bins,
// coloured by fill level, drawn as SVG in the city's own coordinates (no map tiles), with the
// routes' table; refreshed when a new plan is made; operators can plan now.

import { clear, fmtDateTime, h, toast } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const ROUTE_COLOURS = ["#38bdf8", "#a78bfa", "#f472b6", "#facc15", "#34d399", "#fb923c", "#60a5fa", "#e879f9"];
const W = 1000;
const H = 640;
const PAD = 30;

const QUERY = `{
  wasteBins { id lat lon stream capacityL threshold level levelAt crossesAt }
  wastePlans(limit: 1) { id day trigger createdAt km missedDue
    routes { truckId stream depotId depotLat depotLon km loadL start end stops { binId lat lon arrive litres due } }
    unvisited { binId due reason } }
}`;

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** How full a bin is, as the class that colours it. */
export function levelClass(bin) {
  if (bin.level === null || bin.level === undefined) return "unknown";
  if (bin.level >= bin.threshold) return "full";
  if (bin.level >= bin.threshold * 0.6) return "filling";
  return "low";
}

// equirectangular around the middle latitude: distances come out right at city scale
function projector(points) {
  const lats = points.map((p) => p.lat);
  const lons = points.map((p) => p.lon);
  const [lat0, lat1, lon0, lon1] = [Math.min(...lats), Math.max(...lats), Math.min(...lons), Math.max(...lons)];
  const k = Math.cos(((lat0 + lat1) / 2) * Math.PI / 180);
  const spanX = Math.max((lon1 - lon0) * k, 1e-6);
  const spanY = Math.max(lat1 - lat0, 1e-6);
  const scale = Math.min((W - 2 * PAD) / spanX, (H - 2 * PAD) / spanY);
  const offX = (W - spanX * scale) / 2;
  const offY = (H - spanY * scale) / 2;
  return (lat, lon) => [offX + (lon - lon0) * k * scale, H - offY - (lat - lat0) * scale];
}

export class WasteView {
  constructor(ctx) {
    this.ctx = ctx;
    this.unsub = null;
  }

  async mount(root) {
    this.root = root;
    this.summary = h("p.muted", { id: "waste-summary", role: "status" });
    this.planBtn = this.ctx.canOperate
      ? h("button.primary", { id: "waste-plan-now", type: "button", onclick: () => this.planNow() }, "Plan now")
      : null;
    this.map = h("div.waste-map", { id: "waste-map" });
    this.table = h("div.table-wrap", { id: "waste-routes" });
    root.append(
      h("div.view-head", {}, h("h1", {}, "Waste collection"), this.summary, this.planBtn),
      h("div.waste-layout", {},
        h("section.panel", { "aria-label": "Map of the routes and bins" }, this.map, this.legend()),
        h("section.panel", { "aria-labelledby": "waste-routes-title" }, h("h2", { id: "waste-routes-title" }, "Routes"), this.table)),
    );
    await this.load();
    try {
      this.unsub = this.ctx.api.subscribe("subscription { wastePlanMade { id } }", {}, () => { void this.load(); });
    } catch (err) {
      toast(`Live plan updates unavailable: ${err.message}`, "error");
    }
  }

  unmount() {
    if (this.unsub) this.unsub();
    this.unsub = null;
  }

  legend() {
    const item = (cls, text) => h("li", {}, h(`span.waste-swatch.${cls}`, { "aria-hidden": "true" }), text);
    return h("ul.waste-legend", {}, item("full", "full"), item("filling", "filling"), item("low", "low"), item("unknown", "no reading"));
  }

  async load() {
    const d = await this.ctx.api.gql(QUERY);
    this.render(d.wasteBins, d.wastePlans[0] || null);
  }

  async planNow() {
    this.planBtn.disabled = true;
    try {
      const d = await this.ctx.api.gql("mutation { planWasteRound { id km } }");
      toast(`Plan ${d.planWasteRound.id}: ${d.planWasteRound.km.toFixed(1)} km`);
      await this.load();
    } catch (err) {
      toast(`Planning failed: ${err.message}`, "error");
    } finally {
      this.planBtn.disabled = false;
    }
  }

  render(bins, plan) {
    const full = bins.filter((b) => levelClass(b) === "full").length;
    this.summary.textContent = plan
      ? `${bins.length} bins, ${full} full · plan ${plan.id} for ${plan.day}: ${plan.routes.length} routes, ${plan.km.toFixed(1)} km`
        + (plan.missedDue.length ? `, ${plan.missedDue.length} due bins left out` : "")
      : `${bins.length} bins, ${full} full · no plan yet`;
    this.root.dataset.planId = plan ? String(plan.id) : "";
    const routes = plan ? plan.routes : [];
    const points = [...bins, ...routes.map((r) => ({ lat: r.depotLat, lon: r.depotLon }))];
    const map = clear(this.map);
    if (!points.length) {
      map.append(h("p.muted", {}, "No bins configured."));
      return;
    }
    const at = projector(points);
    const drawing = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": this.summary.textContent, class: "waste-svg" });
    routes.forEach((r, n) => {
      const line = [[r.depotLat, r.depotLon], ...r.stops.map((s) => [s.lat, s.lon]), [r.depotLat, r.depotLon]];
      const path = svg("polyline", {
        class: "waste-route", "data-truck": r.truckId, "data-stops": r.stops.length,
        points: line.map(([la, lo]) => at(la, lo).map((v) => v.toFixed(1)).join(",")).join(" "),
        stroke: ROUTE_COLOURS[n % ROUTE_COLOURS.length], fill: "none", "stroke-width": 3, "stroke-linejoin": "round",
      }, svg("title", {}, `${r.truckId} (${r.stream}): ${r.stops.length} stops, ${r.km.toFixed(1)} km, ${r.loadL} l`));
      drawing.append(path);
    });
    const order = new Map();
    for (const r of routes) r.stops.forEach((s, k) => order.set(s.binId, k + 1));
    for (const b of bins) {
      const [x, y] = at(b.lat, b.lon);
      const pct = b.level === null ? "no reading" : `${Math.round(b.level * 100)} %`;
      const when = b.crossesAt ? `, full ${fmtDateTime(b.crossesAt)}` : "";
      drawing.append(svg("circle", {
        class: `waste-bin ${levelClass(b)}`, "data-bin": b.id, "data-level": b.level ?? "", "data-stop": order.get(b.id) ?? "",
        cx: x.toFixed(1), cy: y.toFixed(1), r: 7,
      }, svg("title", {}, `${b.id} (${b.stream}, ${b.capacityL} l): ${pct}${when}`)));
    }
    const depots = new Map(routes.map((r) => [r.depotId, r]));
    for (const [id, r] of depots) {
      const [x, y] = at(r.depotLat, r.depotLon);
      drawing.append(svg("rect", { class: "waste-depot", "data-depot": id, x: (x - 8).toFixed(1), y: (y - 8).toFixed(1), width: 16, height: 16 },
        svg("title", {}, `depot ${id}`)));
    }
    map.append(drawing);

    const table = clear(this.table);
    if (!routes.length) {
      table.append(h("p.muted", {}, plan ? "The plan has no route (no bin is due)." : "No plan yet."));
      return;
    }
    table.append(h("table.data", {},
      h("thead", {}, h("tr", {}, ["Truck", "Stops", "km", "Load (l)", "Start", "End"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, routes.map((r, n) => h("tr", { dataset: { truck: r.truckId } },
        h("td", {}, h("span.waste-swatch", { style: `background:${ROUTE_COLOURS[n % ROUTE_COLOURS.length]}`, "aria-hidden": "true" }), ` ${r.truckId}`),
        h("td.num", {}, r.stops.length), h("td.num", {}, r.km.toFixed(1)), h("td.num", {}, r.loadL),
        h("td", {}, fmtDateTime(r.start)), h("td", {}, fmtDateTime(r.end))))),
    ));
  }
}
