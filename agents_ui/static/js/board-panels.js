// The supervisor board's sections from the REST views (they are not on the live socket):
// callbacks due today and overdue, callback compliance, complaints by step and escalation,
// A/B coverage gaps, greeting runs and SMS providers, tiers now and their movements. Read
// together every 30 s while the board is on screen; each section redraws only when its data
// or the language changed, so the live board's redraw every second costs nothing here.
import { api } from "./api.js";
import { columns, legend, stackedBar } from "./bars.js";
import { h, replace } from "./dom.js";
import { dateTime, duration, percent } from "./format.js";
import { language, t } from "./i18n.js";
import { boardSections } from "./panels.js";

const REFRESH_MS = 30_000;
const LISTED = 5; // customers and callbacks named in a section; the count says how many more
const STEPS = ["verify", "review", "rectify", "callback", "archive"];

const SOURCES = {
  due: "/supervisor/callbacks/due?limit=1",
  overdue: `/supervisor/callbacks/overdue?limit=${LISTED}`,
  compliance: "/supervisor/callbacks/compliance",
  complaints: "/supervisor/complaints",
  gaps: `/supervisor/coverage-gaps?limit=${LISTED}`,
  greetings: "/supervisor/greetings",
  providers: "/supervisor/sms-providers",
  tiers: "/supervisor/tiers?months=6",
};

const names = new Map(); // customer id → name, for the few customers the sections list

async function customerNames(ids) {
  await Promise.all(ids.filter((id) => !names.has(id)).map(async (id) => {
    try { names.set(id, (await api.get(`/customers/${id}`)).customer.name); } catch { names.set(id, null); }
  }));
}

function customerLink(id) {
  const name = names.get(id);
  return h("a", { href: `#customers/${id}`, class: "customer-link" }, name || t("panels.customer", { id }));
}

const data = {}; // source → answer or { error }
let loadedAt = 0, loading = null, timer = null;
const sections = [];

async function refresh() {
  if (loading) return loading;
  loading = (async () => {
    await Promise.all(Object.entries(SOURCES).map(async ([key, path]) => {
      try { data[key] = await api.get(path); } catch (e) { data[key] = { error: e.message }; }
    }));
    await customerNames([...(data.overdue?.callbacks || []).map((c) => c.customer_id),
      ...(data.gaps?.customers || []).map((c) => c.customer_id)]);
    loadedAt = Date.now();
  })();
  try { await loading; } finally { loading = null; }
  for (const s of sections) s.draw();
}

function onScreen() { return sections.some((s) => s.node.isConnected); }

function ensurePolling() {
  if (timer) return;
  timer = setInterval(() => { if (onScreen()) refresh(); }, REFRESH_MS);
}

function stat(key, label, value, extra = "") {
  return h("div", { class: `stat stat-${key}` }, h("span", { class: "label" }, label), h("span", { class: `value ${extra}` }, String(value)));
}

function failed(...keys) {
  const bad = keys.find((k) => data[k]?.error);
  return bad ? h("p", { class: "error" }, t("panels.failed", { error: data[bad].error })) : null;
}

// One board section: a titled card drawn from `data` by `body`, kept across the live board's
// redraws and redrawn only when something it shows changed.
function section(id, titleKey, keys, body) {
  const node = h("div", { class: "panel-card" });
  const s = {
    id, node, drawn: null,
    draw() {
      const stamp = `${language()}|${loadedAt}`;
      if (stamp === s.drawn) return;
      s.drawn = stamp;
      const ready = keys.every((k) => data[k]);
      replace(node, h("h3", {}, t(titleKey)),
        ready ? (failed(...keys) || body()) : h("p", { class: "muted" }, t("panels.loading")));
    },
    render(container) {
      container.append(node);
      ensurePolling();
      if (!loadedAt && !loading) refresh();
      s.draw();
    },
  };
  sections.push(s);
  boardSections.push(s);
}

// -- the sections -----------------------------------------------------------------------------
section("callbacks", "panels.callbacks", ["due", "overdue"], () => {
  const c = data.due.counts;
  const o = data.overdue;
  return [
    h("div", { class: "headline" },
      stat("due", t("panels.due-today"), data.due.total),
      stat("pending", t("panels.cb.pending"), c.pending),
      stat("open", t("panels.cb.open"), c.open),
      stat("done", t("panels.cb.done"), c.done),
      stat("overdue", t("panels.overdue"), o.total, o.total ? "bad" : "")),
    o.callbacks.length ? h("ul", { class: "panel-list overdue-list" }, o.callbacks.map((cb) => h("li", {},
      customerLink(cb.customer_id), " ",
      h("span", { class: "chip" }, cb.rule),
      h("span", { class: "muted" }, " ", t("panels.due-by", { at: dateTime(cb.latest_at) })),
      cb.agent_id ? h("span", { class: "muted" }, " · ", t("owner.agent", { id: cb.agent_id })) : null))) : null,
    o.total > o.callbacks.length ? h("p", { class: "muted" }, t("panels.more", { n: o.total - o.callbacks.length })) : null,
  ];
});

section("compliance", "panels.compliance", ["compliance"], () => {
  const d = data.compliance;
  const parts = (r) => [
    { key: "good", value: r.in_window, label: t("panels.in-window") },
    { key: "warn", value: r.late, label: t("panels.late") },
    { key: "bad", value: r.not_done, label: t("panels.not-done") }];
  const row = (label, r, cls = "") => h("div", { class: `bar-row ${cls}`, dataset: { rule: label } },
    h("span", { class: "bar-label" }, label),
    stackedBar(parts(r), r.total, { title: `${label}: ${percent(r.compliance)}` }),
    h("span", { class: "bar-value" }, percent(r.compliance)),
    h("span", { class: "muted bar-count" }, String(r.total)));
  return [
    h("p", { class: "muted range" }, t("panels.range", { from: d.from, to: d.to })),
    d.total ? [row(t("panels.all-rules"), d, "overall"), d.rules.map((r) => row(r.rule, r)),
      legend(parts(d).map(({ key, label }) => ({ key, label })))] : h("p", { class: "muted" }, t("panels.none-ended")),
  ];
});

section("complaints", "panels.complaints", ["complaints"], () => {
  const d = data.complaints;
  const levels = [...new Set([1, ...d.groups.map((g) => g.level)])].sort((a, b) => a - b);
  const levelName = new Map(d.groups.map((g) => [g.level, g.level_name]));
  const cell = new Map(d.groups.map((g) => [`${g.step}|${g.level}`, g]));
  const top = Math.max(1, ...d.groups.map((g) => g.count));
  return [
    h("div", { class: "headline" },
      stat("open", t("panels.open"), d.open), stat("late", t("panels.overdue"), d.overdue, d.overdue ? "bad" : ""),
      stat("archived", t("panels.archived"), d.archived)),
    h("table", { class: "heat" },
      h("thead", {}, h("tr", {}, h("th", {}, t("panels.step")),
        levels.map((lv) => h("th", {}, t("tl.level", { n: lv }),
          levelName.get(lv) ? h("small", { class: "muted level-name" }, levelName.get(lv)) : null)))),
      h("tbody", {}, STEPS.map((step) => h("tr", {},
        h("th", {}, t(`tl.step.${step}`)),
        levels.map((lv) => {
          const g = cell.get(`${step}|${lv}`);
          const n = g?.count || 0;
          return h("td", { dataset: { step, level: lv }, style: n ? `background:rgba(192,72,62,${(0.12 + 0.55 * n / top).toFixed(2)})` : null },
            n ? String(n) : "·", g?.overdue ? h("small", { class: "late" }, " ", t("panels.n-late", { n: g.overdue })) : null);
        }))))),
  ];
});

section("coverage", "panels.coverage", ["gaps"], () => {
  const d = data.gaps;
  return [
    h("div", { class: "headline" }, stat("gaps", t("panels.gaps"), d.total, d.total ? "bad" : "")),
    d.customers.length ? h("ul", { class: "panel-list gap-list" }, d.customers.map((c) => h("li", {},
      customerLink(c.customer_id), " ", h("span", { class: `tier tier-${c.tier}` }, c.tier), " ",
      h("span", { class: "muted" }, t("panels.owners-of", { n: c.owners, min: c.min_owners }))))) :
      h("p", { class: "muted" }, t("panels.no-gaps")),
    d.total > d.customers.length ? h("p", { class: "muted" }, t("panels.more", { n: d.total - d.customers.length })) : null,
  ];
});

section("messages", "panels.greetings", ["greetings", "providers"], () => {
  const byRule = new Map();
  for (const r of data.greetings.runs) {
    const sum = byRule.get(r.rule) || { rule: r.rule, planned: 0, sent: 0, delivered: 0, failed: 0, skipped: 0, pending: 0 };
    for (const k of ["planned", "sent", "delivered", "failed", "skipped", "pending"]) sum[k] += r[k];
    byRule.set(r.rule, sum);
  }
  const rate = (got, sent) => (sent ? got / sent : null);
  // Delivered green, failed red, and grey for what has no report yet (it may still arrive).
  const rateBar = (got, lost, sent) => [stackedBar([{ key: "good", value: got, label: t("panels.delivered") },
    { key: "bad", value: lost, label: t("panels.not-delivered") },
    { key: "first", value: Math.max(0, sent - got - lost), label: t("panels.no-report") }], sent),
  h("span", { class: "bar-value" }, percent(rate(got, sent)))];
  return [
    h("p", { class: "muted range" }, t("panels.range", { from: data.greetings.from, to: data.greetings.to })),
    byRule.size ? h("table", { class: "panel-table greetings" },
      h("thead", {}, h("tr", {}, [t("panels.rule"), t("panels.planned"), t("panels.sent"), t("panels.failed-n"), t("panels.delivery")].map((x) => h("th", {}, x)))),
      h("tbody", {}, [...byRule.values()].map((r) => h("tr", { dataset: { rule: r.rule } },
        h("td", {}, r.rule), h("td", { class: "num" }, String(r.planned)), h("td", { class: "num" }, String(r.sent)),
        h("td", { class: "num" }, String(r.failed)), h("td", { class: "rate" }, rateBar(r.delivered, r.failed, r.sent)))))) :
      h("p", { class: "muted" }, t("panels.no-greetings")),
    h("h4", {}, t("panels.providers")),
    data.providers.providers.length ? h("table", { class: "panel-table providers" },
      h("thead", {}, h("tr", {}, [t("panels.provider"), t("panels.sent"), t("panels.delivery"), "p50", "p95"].map((x) => h("th", {}, x)))),
      h("tbody", {}, data.providers.providers.map((p) => h("tr", { dataset: { provider: p.provider } },
        h("td", {}, p.provider), h("td", { class: "num" }, String(p.sent)),
        h("td", { class: "rate" }, rateBar(p.delivered, p.failed, p.sent)),
        h("td", { class: "num p50" }, duration(p.latency_p50_seconds)), h("td", { class: "num p95" }, duration(p.latency_p95_seconds)))))) :
      h("p", { class: "muted" }, t("panels.no-sms")),
  ];
});

section("tiers", "panels.tiers", ["tiers"], () => {
  const d = data.tiers;
  const keys = [...d.tiers, "none"];
  const monthLabel = (m) => new Intl.DateTimeFormat(language(), { month: "short" }).format(new Date(`${m}-15T00:00:00Z`));
  const moves = [{ key: "up", label: t("panels.up") }, { key: "down", label: t("panels.down") }, { key: "first", label: t("panels.first") }];
  return h("div", { class: "tier-charts" },
    h("figure", { class: "tier-now" }, h("figcaption", {}, t("panels.tiers-now")),
      // The ungraded column is a dash under the bars (its name is the bar's tooltip) so the
      // narrow column never cuts a word.
      columns(keys.map((k) => ({ label: k === "none" ? "–" : k,
        values: [{ key: `tier-${k}`, value: d.distribution[k] ?? 0, label: k === "none" ? t("panels.ungraded") : k }] })),
      { title: t("panels.tiers-now") })),
    h("figure", { class: "tier-moves" }, h("figcaption", {}, t("panels.movements")),
      columns(d.months.map((m) => ({ label: monthLabel(m.month),
        values: moves.map((mv) => ({ key: mv.key, value: m[mv.key], label: mv.label })) })), { title: t("panels.movements") }),
      legend(moves)));
});
