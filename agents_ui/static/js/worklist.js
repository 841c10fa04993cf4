// The "Callbacks" tab: the user's open callbacks for today, overdue first, then due now, then
// later today (GET /callbacks/worklist), with move / cancel (reason required) and a callback by
// hand for any customer.
import { api } from "./api.js";
import { h, replace } from "./dom.js";
import { dateTime } from "./format.js";
import { byHandForm, field, moveCancel, nameNode, toIso } from "./followup-forms.js";
import { onLanguage, t } from "./i18n.js";
import { consoleViews } from "./panels.js";

const GROUPS = ["overdue", "due", "today"];
const REFRESH_MS = 60_000;

class WorklistView {
  constructor(root) {
    this.root = root;
    this.data = null;
    onLanguage(() => this.build());
    window.addEventListener("hashchange", () => { if (this.shown()) this.load(); });
    setInterval(() => { if (this.shown()) this.load(); }, REFRESH_MS);
    this.build();
    this.load();
  }

  shown() { return this.root.isConnected; }

  // The lists are redrawn on every load; the by-hand form only with the language, so a
  // refresh never loses what the agent is typing there.
  build() {
    this.list = h("div", { class: "worklist" });
    this.categories = h("datalist", { id: "callback-categories" });
    replace(this.root,
      h("header", { class: "work-title" }, h("h2", {}, t("callbacks.title")), h("span", { class: "spacer" }),
        h("button", { class: "refresh", onclick: () => this.load() }, t("work.refresh"))),
      this.list, this.byHand(), this.categories);
    this.render();
  }

  async load() {
    try {
      this.data = await api.get("/callbacks/worklist?limit=500");
      this.error = null;
    } catch (e) { this.error = e.message; }
    this.render();
  }

  render() {
    if (this.error) { replace(this.list, h("p", { class: "error", role: "alert" }, this.error)); return; }
    if (!this.data) return;
    replace(this.list, GROUPS.map((g) => this.group(g, this.data[g])));
    const known = new Set(GROUPS.flatMap((g) => this.data[g]).map((c) => c.category).filter(Boolean));
    replace(this.categories, [...known].map((k) => h("option", { value: k })));
  }

  group(name, items) {
    return h("section", { class: `work-group group-${name}`, dataset: { group: name } },
      h("h3", {}, t(`callbacks.${name}`), h("span", { class: "count badge" }, String(items.length))),
      items.length ? h("ul", { class: "work-items" }, items.map((item) => this.item(item))) :
        h("p", { class: "muted" }, t("callbacks.none")));
  }

  item(c) {
    const queued = c.state !== "pending";
    return h("li", { class: "work-item", dataset: { callbackId: c.id } },
      h("div", { class: "work-line" }, nameNode(c.customer_id),
        c.category ? h("span", { class: "chip category" }, c.category) : null,
        c.attempt > 1 ? h("span", { class: "chip" }, t("callbacks.attempt", { n: c.attempt })) : null,
        queued ? h("span", { class: "chip queued" }, t("callbacks.queued")) : null),
      h("div", { class: "purpose" }, c.purpose || ""),
      h("div", { class: "times muted" },
        h("span", { class: "due" }, t("work.due"), " ", dateTime(c.due)),
        c.latest ? h("span", { class: "latest" }, " · ", t("work.latest"), " ", dateTime(c.latest)) : null),
      // A callback already released to the queue is the queue's business (409 on move).
      queued ? null : h("div", { class: "work-actions" }, moveCancel(`/callbacks/${c.id}`, c, () => this.load())));
  }

  byHand() {
    const due = h("input", { type: "datetime-local", name: "due", required: true });
    const latest = h("input", { type: "datetime-local", name: "latest" });
    const category = h("input", { name: "category", required: true, list: "callback-categories" });
    const purpose = h("input", { name: "purpose", required: true, maxlength: 500 });
    const reason = h("input", { name: "reason", maxlength: 2000 });
    return h("section", { class: "work-by-hand" }, byHandForm({
      label: t("callbacks.by-hand"), onDone: () => this.load(),
      inputs: [field(t("work.due"), due), field(t("work.latest"), latest),
        field(t("callbacks.category"), category),
        field(t("callbacks.purpose"), purpose), field(t("work.reason-optional"), reason)],
      submit: (customer) => api.post(`/customers/${customer.id}/callbacks`, {
        due: toIso(due.value), latest: toIso(latest.value), category: category.value,
        purpose: purpose.value, reason: reason.value || undefined }),
    }));
  }
}

consoleViews.push({
  id: "callbacks", label: "nav.callbacks", roles: ["agent", "supervisor"],
  render(container) { new WorklistView(container); },
});
