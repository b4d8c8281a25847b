// A mirrored stacked bar chart in plain SVG: one bar per time bucket, the first direction
// stacked upwards by class, the second downwards; every bar has a <title> tooltip.

const NS = "http://www.w3.org/2000/svg";

export const CLASS_COLOURS = {
  person: "#38bdf8", bicycle: "#a3e635", car: "#facc15", motorcycle: "#fb923c",
  bus: "#f472b6", truck: "#c084fc", backpack: "#2dd4bf", handbag: "#94a3b8", suitcase: "#e879f9",
};
const FALLBACK = ["#60a5fa", "#34d399", "#fbbf24", "#f87171", "#a78bfa", "#f472b6"];

export function classColour(cls, i = 0) {
  return CLASS_COLOURS[cls] || FALLBACK[i % FALLBACK.length];
}

function el(name, attrs = {}, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function niceStep(max, ticks = 4) {
  if (max <= 0) return 1;
  const raw = max / ticks;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return Math.max(1, (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p); // counts are whole numbers
}

/**
 * series: {buckets: [t0, t1, ...] (unix s), classes: [...], directions: [up, down?],
 *          value(t, cls, dir) -> n, label(t) -> string, tooltip(t) -> string}
 */
export function mirroredBars(svgHost, series, { height = 320, fontPx = 12 } = {}) {
  const width = Math.max(320, svgHost.clientWidth || 640);
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "chart", role: "img" });
  const padL = fontPx * 4;
  const padR = fontPx * 2.5;
  const padT = fontPx * 1.5;
  const padB = fontPx * 2.5;
  const [up, down] = series.directions;
  const n = series.buckets.length;
  const totals = (t, dir) => series.classes.reduce((s, c) => s + series.value(t, c, dir), 0);
  const maxUp = Math.max(0, ...series.buckets.map((t) => totals(t, up)));
  const maxDown = down ? Math.max(0, ...series.buckets.map((t) => totals(t, down))) : 0;
  const span = Math.max(1, maxUp + maxDown);
  const plotH = height - padT - padB;
  const zeroY = padT + (down ? plotH * (maxUp / span || 0.5) : plotH);
  const scale = plotH / (down ? span : Math.max(1, maxUp));
  const plotW = width - padL - padR;
  const bw = plotW / Math.max(1, n);
  const gap = Math.min(4, bw * 0.2);

  const step = niceStep(Math.max(maxUp, maxDown));
  const grid = el("g", { class: "grid" });
  for (let v = 0; v <= maxUp; v += step) {
    const y = zeroY - v * scale;
    grid.append(el("line", { x1: padL, x2: width - padR, y1: y, y2: y }));
    grid.append(el("text", { x: padL - 6, y: y + fontPx / 3, "text-anchor": "end", "font-size": fontPx }, String(v)));
  }
  if (down) {
    for (let v = step; v <= maxDown; v += step) {
      const y = zeroY + v * scale;
      grid.append(el("line", { x1: padL, x2: width - padR, y1: y, y2: y }));
      grid.append(el("text", { x: padL - 6, y: y + fontPx / 3, "text-anchor": "end", "font-size": fontPx }, String(v)));
    }
    grid.append(el("text", { x: padL + 4, y: padT - 4, "font-size": fontPx, class: "dir-label" }, `▲ ${up}`));
  }
  svg.append(grid);

  const bars = el("g", { class: "bars" });
  series.buckets.forEach((t, i) => {
    const x = padL + i * bw + gap / 2;
    const w = Math.max(1, bw - gap);
    let yUp = zeroY;
    let yDown = zeroY;
    const tip = series.tooltip(t);
    series.classes.forEach((cls, ci) => {
      const a = series.value(t, cls, up);
      if (a > 0) {
        const hgt = a * scale;
        yUp -= hgt;
        const r = el("rect", { x, y: yUp, width: w, height: hgt, fill: classColour(cls, ci) });
        r.append(el("title", {}, tip));
        bars.append(r);
      }
      if (down) {
        const b = series.value(t, cls, down);
        if (b > 0) {
          const hgt = b * scale;
          const r = el("rect", { x, y: yDown, width: w, height: hgt, fill: classColour(cls, ci), "fill-opacity": 0.6 });
          yDown += hgt;
          r.append(el("title", {}, tip));
          bars.append(r);
        }
      }
    });
  });
  svg.append(bars);
  svg.append(el("line", { x1: padL, x2: width - padR, y1: zeroY, y2: zeroY, class: "axis" }));
  if (down) svg.append(el("text", { x: padL + 4, y: height - padB - 4, "font-size": fontPx, class: "dir-label" }, `▼ ${down}`));

  const labels = el("g", { class: "xlabels" });
  const every = Math.max(1, Math.ceil((n * fontPx * 5) / plotW));
  series.buckets.forEach((t, i) => {
    if (i % every) return;
    labels.append(el("text", { x: padL + i * bw + bw / 2, y: height - fontPx * 0.8, "text-anchor": "middle", "font-size": fontPx }, series.label(t)));
  });
  svg.append(labels);
  svgHost.replaceChildren(svg);
  return svg;
}
