// Small bar charts in plain elements (widths and heights as percentages), readable on a laptop
// and in both languages: a stacked horizontal bar per row, and columns in groups.
import { h } from "./dom.js";

// parts: [{ key, value, label }]; total: the whole the widths are shares of.
export function stackedBar(parts, total, { title } = {}) {
  return h("span", { class: "sbar", role: "img", "aria-label": title || "", title: title || null },
    total ? parts.filter((p) => p.value > 0).map((p) => h("i", {
      class: `seg seg-${p.key}`, style: `width:${(100 * p.value / total).toFixed(2)}%`, title: `${p.label}: ${p.value}`,
    })) : null);
}

// groups: [{ label, values: [{ key, value, label }] }] → columns from one baseline, the value
// above each column, the group's label below.
export function columns(groups, { title, height = 120 } = {}) {
  const top = Math.max(1, ...groups.flatMap((g) => g.values.map((v) => v.value)));
  return h("div", { class: "columns", role: "img", "aria-label": title || "" },
    groups.map((g) => h("div", { class: "col-group" },
      h("div", { class: "col-bars", style: `height:${height}px` }, g.values.map((v) => h("div", { class: "col", title: `${v.label}: ${v.value}` },
        h("span", { class: "col-value" }, String(v.value)),
        h("i", { class: `seg seg-${v.key}`, style: `height:${(100 * v.value / top).toFixed(2)}%` })))),
      h("div", { class: "col-label" }, g.label))));
}

export function legend(items) {
  return h("div", { class: "bar-legend" }, items.map((i) => h("span", {}, h("i", { class: `seg seg-${i.key}` }), i.label)));
}
