// Customer search and edit. Every edit is audited by the server; the audit trail is shown
// under the card, beside the customer's history.
import { api } from "./api.js";
import { h, replace } from "./dom.js";
import { dateTime } from "./format.js";
import { t } from "./i18n.js";
import { loadDirectory } from "./queues.js";
import { customerCard, timeline } from "./screenpop.js";
import { store } from "./store.js";

// The fields an agent edits here; tiers stay with grading and supervisors.
const EDITABLE = [["name", "text"], ["honorific", "text"], ["employer", "text"], ["position", "text"],
  ["address", "text"], ["birthday", "date"], ["wechat_id", "text"], ["notes", "textarea"]];

function changes(entry) {
  const fields = Object.keys({ ...(entry.before || {}), ...(entry.after || {}) })
    .filter((k) => JSON.stringify(entry.before?.[k]) !== JSON.stringify(entry.after?.[k]));
  return fields.map((k) => h("li", {}, h("code", {}, k), ": ",
    h("span", { class: "before" }, JSON.stringify(entry.before?.[k] ?? null)), " → ",
    h("span", { class: "after" }, JSON.stringify(entry.after?.[k] ?? null))));
}

export class CustomersView {
  constructor() {
    this.query = h("input", { type: "search", name: "q", "aria-label": t("customers.search"), placeholder: t("customers.search") });
    this.results = h("ul", { class: "results" });
    this.detail = h("div", { class: "customer-detail" });
    this.root = h("div", { class: "customers" },
      h("form", { class: "search", onsubmit: (ev) => { ev.preventDefault(); this.search(); } },
        this.query, h("button", { type: "submit" }, t("customers.find"))),
      h("div", { class: "customers-body" }, this.results, this.detail));
  }

  relabel() {
    this.query.placeholder = t("customers.search");
    if (this.current) this.open(this.current);
  }

  async search() {
    const data = await api.get(`/customers?q=${encodeURIComponent(this.query.value)}&limit=30`);
    replace(this.results, data.customers.length ? data.customers.map((c) => h("li", {},
      h("button", { class: "link", onclick: () => this.open(c.id) }, c.name),
      " ", h("span", { class: "muted" }, c.phones?.[0]?.number || c.emails?.[0] || ""))) :
      h("li", { class: "muted" }, t("customers.none")));
  }

  async open(id) {
    this.current = id;
    const [data, audit] = await Promise.all([api.get(`/customers/${id}`), api.get(`/customers/${id}/audit`), loadDirectory()]);
    this.render(data.customer, data.history, audit.audit);
  }

  isSupervisor() { return store.me?.role === "supervisor" || store.me?.role === "admin"; }

  // Supervisors hand a customer to another agent; the server audits the change like any edit.
  ownerForm(customer) {
    const select = h("select", { name: "owner", "aria-label": t("owner.reassign") },
      h("option", { value: "" }, t("owner.none")));
    loadDirectory().then((users) => {
      for (const u of users.values()) if (u.role !== "admin") select.append(h("option", { value: u.id }, u.name));
      select.value = customer.owners?.[0] ?? "";
    }).catch(() => {});
    const error = h("span", { class: "error", role: "alert" });
    return h("form", { class: "owner-form", onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        await api.patch(`/customers/${customer.id}`, { owner_ids: select.value ? [Number(select.value)] : [] });
        await this.open(customer.id);
      } catch (e) { error.textContent = e.message; }
    } }, h("span", {}, t("owner.reassign")), select, h("button", { type: "submit" }, t("owner.set")), error);
  }

  render(customer, history, audit) {
    const inputs = {};
    const form = h("form", { class: "edit", onsubmit: async (ev) => {
      ev.preventDefault();
      const patch = {};
      for (const [field] of EDITABLE) {
        const value = inputs[field].value.trim() || null;
        if (value !== (customer[field] ?? null)) patch[field] = value;
      }
      if (!Object.keys(patch).length) return;
      try {
        await api.patch(`/customers/${customer.id}`, patch);
        await this.open(customer.id);
      } catch (e) { error.textContent = e.message; }
    } },
    EDITABLE.map(([field, type]) => {
      const input = type === "textarea" ? h("textarea", { name: field, rows: 2 }) : h("input", { name: field, type });
      input.value = customer[field] ?? "";
      inputs[field] = input;
      return h("label", {}, h("span", {}, t(`field.${field}`)), input);
    }),
    h("button", { class: "primary", type: "submit" }, t("customers.save")));
    const error = h("p", { class: "error", role: "alert" });
    replace(this.detail,
      customerCard(customer),
      this.isSupervisor() ? this.ownerForm(customer) : null,
      h("details", { class: "edit-box" }, h("summary", {}, t("customers.edit")), form, error),
      timeline(history),
      h("section", { class: "audit" }, h("h3", {}, t("customers.audit")),
        audit.length ? h("ol", {}, audit.map((a) => h("li", {},
          h("div", {}, h("strong", {}, a.actor || t("customers.system")), " · ", t(`audit.${a.action}`), " · ",
            h("span", { class: "muted" }, dateTime(a.at))),
          h("ul", { class: "diff" }, changes(a))))) : h("p", { class: "muted" }, t("customers.no-audit"))));
  }
}
