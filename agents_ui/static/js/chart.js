// A small SVG line chart: a few series over a time range, y from 0, optional target line.
const NS = "http://www.w3.org/2000/svg";
export const PALETTE = ["#2f6fb0", "#d9822b", "#3b9c6e", "#a34fb5", "#c0483e", "#5b6b7c"];

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

// series: [{ label, points: [[t, y], …] }]; from/to: epoch seconds; yMax: top of the scale
// (at least the largest value); formatY/formatX turn numbers into axis labels.
export function lineChart({ series, from, to, yMax, formatY, formatX, target, title }) {
  const W = 560, H = 180, L = 44, R = 10, T = 10, B = 24;
  const top = Math.max(yMax, ...series.flatMap((s) => s.points.map((p) => p[1] ?? 0)), target ?? 0) || 1;
  const x = (v) => L + ((v - from) / Math.max(1, to - from)) * (W - L - R);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img" });
  if (title) root.append(svg("title", {}, title));
  for (const frac of [0, 0.5, 1]) {
    const v = top * frac;
    root.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    root.append(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, formatY(v)));
  }
  for (const frac of [0, 0.5, 1]) {
    const v = from + (to - from) * frac;
    const anchor = frac === 0 ? "start" : frac === 1 ? "end" : "middle";
    root.append(svg("text", { x: x(v), y: H - 6, "text-anchor": anchor, class: "axis" }, formatX(v)));
  }
  if (target !== undefined && target !== null) {
    root.append(svg("line", { x1: L, x2: W - R, y1: y(target), y2: y(target), class: "target" }));
  }
  series.forEach((s, i) => {
    // A gap (null) in the data breaks the line instead of drawing a false slope across it.
    let d = "", pen = false;
    for (const [t, v] of s.points) {
      if (v === null || v === undefined) { pen = false; continue; }
      d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    }
    root.append(svg("path", { d, fill: "none", stroke: PALETTE[i % PALETTE.length], "stroke-width": 2, class: "series" }));
  });
  return root;
}
