// Rule geometry on a canvas: which params are shapes (from each rule type's JSON schema) and
// how a rule's zones, lines and direction arrows are drawn over the camera picture.

// Each rule type's colour comes with its metadata (the `ruleTypes` query); a type not seen yet
// is drawn in a neutral colour.
const typeColours = new Map();

export function setRuleTypes(types) {
  for (const t of types) if (t.colour) typeColours.set(t.name, t.colour);
}

export function colourOf(type) {
  return typeColours.get(type) || "#e2e8f0";
}

function allows(prop, type) {
  if (!prop) return false;
  if (prop.type === type) return true;
  return Array.isArray(prop.anyOf) && prop.anyOf.some((p) => p.type === type);
}

/**
 * The drawable parameters of a rule type: {polygon, line, direction} names (or null) and
 * whether the polygon may be left out. Everything else is edited as a form field.
 */
export function geometryOf(schema) {
  const props = (schema && schema.properties) || {};
  const required = new Set((schema && schema.required) || []);
  const geo = { polygon: null, line: null, direction: null, polygonOptional: false, directionSides: false };
  for (const [name, p] of Object.entries(props)) {
    const desc = (p.description || "").toLowerCase();
    if (!geo.polygon && (name === "zone" || desc.includes("polygon"))) {
      geo.polygon = name;
      geo.polygonOptional = !required.has(name);
    } else if (!geo.line && (name === "line" || name.endsWith("_line") || desc.includes("line [[x, y]"))) {
      geo.line = name;
    } else if (!geo.direction && (name === "direction" || name === "in_direction") && allows(p, "array")) {
      geo.direction = name;
      geo.directionSides = Array.isArray(p.anyOf) && p.anyOf.some((q) => Array.isArray(q.enum));
    }
  }
  return geo;
}

/** Unit normal on the `side` of a->b as seen on screen (y down), as the server defines it. */
export function sideNormal(a, b, side) {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const n = Math.hypot(dx, dy) || 1;
  return side === "left" ? [dy / n, -dx / n] : [-dy / n, dx / n];
}

export function centroid(points) {
  const n = points.length || 1;
  return [points.reduce((s, p) => s + p[0], 0) / n, points.reduce((s, p) => s + p[1], 0) / n];
}

/** The arrow of a direction parameter: its base and unit vector in normalised coordinates. */
export function arrowOf(shape) {
  const { line, polygon, direction } = shape;
  if (!direction) return null;
  let base;
  if (line && line.length === 2) base = [(line[0][0] + line[1][0]) / 2, (line[0][1] + line[1][1]) / 2];
  else if (polygon && polygon.length) base = centroid(polygon);
  else return null;
  let v = direction;
  if (typeof direction === "string") {
    if (!line || line.length !== 2) return null;
    v = sideNormal(line[0], line[1], direction);
  }
  const n = Math.hypot(v[0], v[1]);
  if (!n) return null;
  return { base, v: [v[0] / n, v[1] / n] };
}

/** A rule's shape from its params and type schema. */
export function shapeOfRule(rule, schema) {
  const geo = geometryOf(schema);
  const p = rule.params || {};
  return {
    polygon: geo.polygon ? p[geo.polygon] || null : null,
    line: geo.line ? p[geo.line] || null : null,
    direction: geo.direction ? p[geo.direction] || null : null,
    inName: p.in_name || "in",
    outName: p.out_name || "out",
  };
}

function px(pt, w, h) {
  return [pt[0] * w, pt[1] * h];
}

function drawArrow(g, from, to, colour, width) {
  const ang = Math.atan2(to[1] - from[1], to[0] - from[0]);
  const head = Math.max(10, width * 4);
  g.strokeStyle = colour;
  g.fillStyle = colour;
  g.lineWidth = width;
  g.beginPath();
  g.moveTo(from[0], from[1]);
  g.lineTo(to[0], to[1]);
  g.stroke();
  g.beginPath();
  g.moveTo(to[0], to[1]);
  g.lineTo(to[0] - head * Math.cos(ang - 0.45), to[1] - head * Math.sin(ang - 0.45));
  g.lineTo(to[0] - head * Math.cos(ang + 0.45), to[1] - head * Math.sin(ang + 0.45));
  g.closePath();
  g.fill();
}

function label(g, text, at, colour, scale) {
  g.font = `600 ${Math.round(12 * scale)}px system-ui, sans-serif`;
  const w = g.measureText(text).width + 8 * scale;
  const hgt = 18 * scale;
  g.fillStyle = "rgba(2, 6, 23, 0.78)";
  g.fillRect(at[0], at[1] - hgt, w, hgt);
  g.fillStyle = colour;
  g.fillText(text, at[0] + 4 * scale, at[1] - 5 * scale);
}

/** Arrow length on screen, pixels, for a canvas of width w (CSS pixels times dpr). */
export function arrowLength(w, h) {
  return Math.max(40, Math.min(w, h) * 0.14);
}

/**
 * Draw one shape. opts: {colour, name, dashed, handles, error, scale, openPolygon}
 * Canvas units are device pixels; `scale` is the device pixel ratio.
 */
export function drawShape(g, shape, w, h, opts = {}) {
  const scale = opts.scale || 1;
  const colour = opts.error ? "#f87171" : opts.colour || "#38bdf8";
  const width = (opts.handles ? 3 : 2) * scale;
  g.save();
  g.lineJoin = "round";
  g.lineCap = "round";
  g.setLineDash(opts.dashed ? [8 * scale, 6 * scale] : []);
  let anchor = null;
  if (shape.polygon && shape.polygon.length) {
    const pts = shape.polygon.map((p) => px(p, w, h));
    g.beginPath();
    g.moveTo(pts[0][0], pts[0][1]);
    for (const p of pts.slice(1)) g.lineTo(p[0], p[1]);
    if (!opts.openPolygon) g.closePath();
    g.strokeStyle = colour;
    g.lineWidth = width;
    g.fillStyle = `${colour}26`;
    if (!opts.openPolygon && pts.length >= 3) g.fill();
    g.stroke();
    anchor = pts[0];
    if (opts.handles) for (const p of pts) handle(g, p, colour, scale);
  }
  if (shape.line && shape.line.length) {
    const pts = shape.line.map((p) => px(p, w, h));
    g.beginPath();
    g.moveTo(pts[0][0], pts[0][1]);
    if (pts[1]) g.lineTo(pts[1][0], pts[1][1]);
    g.strokeStyle = colour;
    g.lineWidth = width + scale;
    g.stroke();
    anchor = anchor || pts[0];
    if (opts.handles) for (const p of pts) handle(g, p, colour, scale);
  }
  g.setLineDash([]);
  const arrow = arrowOf(shape);
  if (arrow) {
    const len = arrowLength(w / scale, h / scale) * scale;
    const base = px(arrow.base, w, h);
    // the vector is in normalised image coordinates: on screen it is scaled by the frame's size
    const d = [arrow.v[0] * w, arrow.v[1] * h];
    const dn = Math.hypot(d[0], d[1]) || 1;
    const u = [d[0] / dn, d[1] / dn];
    const tip = [base[0] + u[0] * len, base[1] + u[1] * len];
    drawArrow(g, base, tip, colour, width);
    if (shape.line) {
      label(g, shape.inName, [tip[0] + 6 * scale, tip[1] + 6 * scale], colour, scale);
      const back = [base[0] - u[0] * len * 0.6, base[1] - u[1] * len * 0.6];
      label(g, shape.outName, [back[0] + 6 * scale, back[1] + 6 * scale], "#cbd5e1", scale);
    }
    if (opts.handles) handle(g, tip, "#ffffff", scale, true);
  }
  if (opts.name && anchor) label(g, opts.name, [anchor[0] + 6 * scale, anchor[1] - 6 * scale], colour, scale);
  g.restore();
}

function handle(g, p, colour, scale, round = false) {
  const r = 6 * scale;
  g.fillStyle = "#0f172a";
  g.strokeStyle = colour;
  g.lineWidth = 2 * scale;
  g.beginPath();
  if (round) g.arc(p[0], p[1], r, 0, Math.PI * 2);
  else g.rect(p[0] - r, p[1] - r, 2 * r, 2 * r);
  g.fill();
  g.stroke();
}
