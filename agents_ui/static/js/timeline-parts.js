// The rest of the customer's story in the screen-pop, under the contact history: the parts of
// the offer's `timeline` (purchases, repairs, complaints; callbacks, visits and satisfaction
// when the server adds them). Each known part is a titled list; a part this console does not
// know is left out rather than shown raw. Everything the customer or an agent typed is text.
import { h } from "./dom.js";
import { dateTime, locale } from "./format.js";
import { t } from "./i18n.js";
import { timelineSources } from "./panels.js";

const when = (value) => h("span", { class: "when" }, dateTime(value));
// A kind this console has no label for is shown as the server named it.
function kindChip(kind) {
  const key = `tl.kind.${kind}`, label = t(key);
  return h("span", { class: "chip" }, label === key ? kind : label);
}

function amount(value) {
  const n = Number(value);
  return Number.isFinite(n) ? new Intl.NumberFormat(locale(), { maximumFractionDigits: 2 }).format(n) : null;
}

function purchase(item) {
  const d = item.data || {};
  const product = d.product ?? d.item ?? d.model ?? null;
  const sum = d.amount !== undefined ? amount(d.amount) : null;
  return h("li", { class: "timeline-item part-item" },
    h("div", { class: "timeline-head" }, kindChip(item.kind), when(item.at)),
    product || sum ? h("div", { class: "subject" },
      product ? String(product) : null, product && sum ? " · " : null,
      sum ? h("span", { class: "amount" }, t("tl.amount", { amount: sum })) : null) : null);
}

function repair(item) {
  const d = item.data || {};
  return h("li", { class: "timeline-item part-item" },
    h("div", { class: "timeline-head" }, kindChip(item.kind), when(item.at)),
    d.promised_duration ? h("div", { class: "muted" }, t("tl.promised", { duration: String(d.promised_duration) })) : null,
    d.repair_id ? h("div", { class: "muted" }, t("tl.repair-id", { id: String(d.repair_id) })) : null);
}

function complaint(item) {
  const overdue = !item.archived_at && item.deadline_at && Date.parse(item.deadline_at) < Date.now();
  const step = item.archived_at ? "archived" : item.step;
  return h("li", { class: "timeline-item part-item" },
    h("div", { class: "timeline-head" },
      h("span", { class: `step-badge step-${step}` }, t(`tl.step.${step}`)),
      item.level > 1 ? h("span", { class: "level-badge", title: t("tl.level-title") }, t("tl.level", { n: item.level })) : null,
      when(item.created_at)),
    h("div", { class: "subject" }, item.summary || ""),
    item.deadline_at && !item.archived_at ? h("div", { class: overdue ? "deadline overdue" : "deadline muted" },
      t(overdue ? "tl.deadline-passed" : "tl.deadline", { at: dateTime(item.deadline_at) })) : null);
}

// Parts the server will add later: a readable line from the fields such entries usually carry.
function generic(item) {
  const at = item.at ?? item.due_at ?? item.created_at ?? null;
  const label = item.kind ?? item.state ?? item.outcome ?? null;
  const text = item.summary ?? item.notes ?? (item.score !== undefined ? t("tl.score", { score: item.score }) : null);
  return h("li", { class: "timeline-item part-item" },
    h("div", { class: "timeline-head" }, label ? kindChip(label) : null, at ? when(at) : null),
    text !== null ? h("div", { class: "subject" }, String(text)) : null);
}

const PARTS = [
  ["purchases", purchase], ["repairs", repair], ["complaints", complaint],
  ["callbacks", generic], ["visits", generic], ["satisfaction", generic],
];

// Empty parts are left out: the side panel stays short for a customer with little history.
export function timelineParts(parts) {
  return PARTS.filter(([name]) => Array.isArray(parts?.[name]) && parts[name].length)
    .map(([name, item]) => h("section", { class: `timeline timeline-part part-${name}`, dataset: { part: name } },
      h("h3", {}, t(`tl.${name}`)), h("ol", {}, parts[name].map(item))));
}

timelineSources.push((_customerId, pop) => {
  const sections = timelineParts(pop?.timeline);
  return sections.length ? h("div", { class: "timeline-parts" }, sections) : null;
});
