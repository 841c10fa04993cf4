// The "Visits" tab: the user's visits as a week calendar (Monday to Sunday, GET /visits), each
// placed in its day by start time; a chosen visit shows its details, its outcome form (done,
// customer absent, declined) and move / cancel; visits agreed with a customer are booked by
// hand below.
import { api } from "./api.js";
import { h, replace } from "./dom.js";
import { hourMinute, locale } from "./format.js";
import { byHandForm, field, moveCancel, nameNode, timeWindow, toIso } from "./followup-forms.js";
import { onLanguage, t } from "./i18n.js";
import { consoleViews } from "./panels.js";

const OUTCOMES = ["done", "customer-absent", "declined"]; // VISIT_OUTCOMES in rules/followups.py
const OPEN = new Set(["pending", "booked"]);

function mondayOf(date) {
  const d = new Date(date.getFullYear(), date.getMonth(), date.getDate());
  d.setDate(d.getDate() - ((d.getDay() + 6) % 7));
  return d;
}

function addDays(date, n) {
  const d = new Date(date);
  d.setDate(d.getDate() + n);
  return d;
}

// A local calendar date as the API's YYYY-MM-DD (days are the company's; we assume the
// browser is in the company's time zone, as the people booking visits are).
function isoDay(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

function dayLabel(d) {
  return new Intl.DateTimeFormat(locale(), { weekday: "short", day: "numeric", month: "short" }).format(d);
}

function weekLabel(monday) {
  const f = new Intl.DateTimeFormat(locale(), { dateStyle: "medium" });
  return f.formatRange ? f.formatRange(monday, addDays(monday, 6)) : `${f.format(monday)} – ${f.format(addDays(monday, 6))}`;
}

class VisitsView {
  constructor(root) {
    this.root = root;
    this.monday = mondayOf(new Date());
    this.visits = [];
    this.selected = null;
    onLanguage(() => this.build());
    window.addEventListener("hashchange", () => { if (this.root.isConnected) this.load(); });
    this.build();
    this.load();
  }

  build() {
    this.title = h("span", { class: "week-label", "aria-live": "polite" });
    this.grid = h("div", { class: "week", role: "grid", "aria-label": t("visits.title") });
    this.detail = h("div", { class: "visit-detail" });
    this.error = h("p", { class: "error", role: "alert" });
    replace(this.root,
      h("header", { class: "work-title" }, h("h2", {}, t("visits.title")), h("span", { class: "spacer" }),
        h("button", { class: "prev-week", "aria-label": t("visits.prev"), title: t("visits.prev"), onclick: () => this.shift(-7) }, "‹"),
        this.title,
        h("button", { class: "next-week", "aria-label": t("visits.next"), title: t("visits.next"), onclick: () => this.shift(7) }, "›"),
        h("button", { class: "this-week", onclick: () => { this.monday = mondayOf(new Date()); this.load(); } }, t("visits.this-week"))),
      this.error, this.grid, this.detail, this.byHand());
    this.render();
  }

  shift(days) {
    this.monday = addDays(this.monday, days);
    this.selected = null;
    this.load();
  }

  async load() {
    const start = isoDay(this.monday), end = isoDay(addDays(this.monday, 6));
    try {
      const data = await api.get(`/visits?start=${start}&end=${end}`);
      this.visits = data.visits;
      this.error.textContent = "";
    } catch (e) { this.error.textContent = e.message; }
    this.render();
  }

  render() {
    this.title.textContent = weekLabel(this.monday);
    const today = isoDay(new Date());
    replace(this.grid, Array.from({ length: 7 }, (_, i) => {
      const day = addDays(this.monday, i);
      const key = isoDay(day);
      const visits = this.visits.filter((v) => isoDay(new Date(v.due)) === key);
      return h("section", { class: `day${key === today ? " today" : ""}`, role: "gridcell", dataset: { day: key } },
        h("h3", {}, dayLabel(day)),
        visits.length ? h("ol", { class: "day-visits" }, visits.map((v) => this.card(v))) : null);
    }));
    const chosen = this.visits.find((v) => v.id === this.selected);
    if (chosen) this.showDetail(chosen);
    else replace(this.detail);
  }

  card(v) {
    return h("li", {}, h("button", {
      class: `visit state-${v.state}${v.id === this.selected ? " selected" : ""}`,
      dataset: { visitId: v.id }, "aria-pressed": v.id === this.selected ? "true" : "false",
      onclick: () => { this.selected = v.id; this.render(); this.detail.querySelector("summary, button")?.focus(); },
    }, h("span", { class: "visit-time" }, hourMinute(v.due), v.latest ? `–${hourMinute(v.latest)}` : ""),
    nameNode(v.customer_id, "span"),
    h("span", { class: `chip state state-${v.state}` }, t(`visit.state.${v.state}`))));
  }

  showDetail(v) {
    replace(this.detail, h("article", { class: "visit-card", dataset: { visitId: v.id } },
      h("header", {}, nameNode(v.customer_id), h("span", { class: `chip state state-${v.state}` }, t(`visit.state.${v.state}`)),
        h("span", { class: "spacer" }),
        h("button", { class: "link", onclick: () => { this.selected = null; this.render(); } }, t("visits.close"))),
      h("p", { class: "times muted" }, timeWindow(v)),
      v.notes ? h("p", { class: "notes" }, v.notes) : null,
      v.outcome ? h("p", { class: "visit-outcome" }, t("visits.outcome"), ": ", t(`visit.outcome.${v.outcome}`)) : null,
      OPEN.has(v.state) ? [this.outcomeForm(v), h("div", { class: "work-actions" }, moveCancel(`/visits/${v.id}`, v, () => this.load()))] : null));
  }

  outcomeForm(v) {
    const select = h("select", { name: "outcome", required: true, "aria-label": t("visits.outcome") },
      h("option", { value: "" }, t("wrapup.choose")), OUTCOMES.map((o) => h("option", { value: o }, t(`visit.outcome.${o}`))));
    const notes = h("input", { name: "notes", maxlength: 20000, placeholder: t("outcome.notes") });
    const error = h("span", { class: "error", role: "alert" });
    return h("form", { class: "visit-outcome-form", onsubmit: async (ev) => {
      ev.preventDefault();
      error.textContent = "";
      try {
        await api.post(`/visits/${v.id}/outcome`, { outcome: select.value, notes: notes.value || undefined });
        await this.load();
      } catch (e) { error.textContent = e.message; }
    } }, field(t("visits.outcome"), select), notes, h("button", { class: "primary", type: "submit" }, t("visits.record")), error);
  }

  byHand() {
    const due = h("input", { type: "datetime-local", name: "due", required: true });
    const latest = h("input", { type: "datetime-local", name: "latest" });
    const notes = h("input", { name: "notes", maxlength: 20000 });
    const reason = h("input", { name: "reason", maxlength: 2000 });
    return h("section", { class: "work-by-hand" }, byHandForm({
      label: t("visits.by-hand"),
      onDone: () => {
        const at = new Date(due.value);
        if (!Number.isNaN(at.getTime())) this.monday = mondayOf(at);
        this.load();
      },
      inputs: [field(t("work.due"), due), field(t("work.latest"), latest),
        field(t("visits.notes"), notes), field(t("work.reason-optional"), reason)],
      submit: (customer) => api.post(`/customers/${customer.id}/visits`, {
        due: toIso(due.value), latest: toIso(latest.value), notes: notes.value || undefined,
        reason: reason.value || undefined }),
    }));
  }
}

consoleViews.push({
  id: "visits", label: "nav.visits", roles: ["agent", "supervisor"],
  render(container) { new VisitsView(container); },
});
