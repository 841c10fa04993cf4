// Pieces the callback worklist and the visits calendar share: customer names by id, a customer
// picker for work booked by hand, and the move / cancel forms that need a reason.
import { api } from "./api.js";
import { h, replace } from "./dom.js";
import { dateTime } from "./format.js";
import { t } from "./i18n.js";

// Worklist items and visits carry only the customer's id; names are read once per id.
const names = new Map();
export function customerName(id) {
  if (!names.has(id)) {
    names.set(id, api.get(`/customers/${id}`).then((d) => d.customer.name).catch(() => t("work.customer", { id })));
  }
  return names.get(id);
}

// A text node that fills in with the customer's name when it is known (textContent only).
export function nameNode(id, tag = "strong") {
  const node = h(tag, { class: "customer-name" }, "…");
  customerName(id).then((name) => { node.textContent = name; });
  return node;
}

// <input type=datetime-local> holds the browser's local wall time; the API wants an offset.
export function toIso(localValue) {
  if (!localValue) return undefined;
  const d = new Date(localValue);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

export function toLocalInput(value) {
  const d = new Date(value);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function timeWindow(item) {
  return item.latest ? t("work.window", { due: dateTime(item.due), latest: dateTime(item.latest) }) : dateTime(item.due);
}

export function field(label, input) {
  return h("label", { class: "field" }, h("span", {}, label), input);
}

// A form in a <details>: its summary is the action, its body the inputs; errors inline.
function actionForm({ label, cls, inputs, submit, onDone }) {
  const error = h("span", { class: "error", role: "alert" });
  const form = h("form", { class: `work-form ${cls}`, onsubmit: async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    try {
      await submit();
      onDone();
    } catch (e) { error.textContent = e.message; }
  } }, inputs, h("div", { class: "form-foot" }, h("button", { class: "primary", type: "submit" }, label), error));
  return h("details", { class: `work-action ${cls}` }, h("summary", {}, label), form);
}

// Move (new time, optional latest, reason) and cancel (reason) of a callback or a visit.
export function moveCancel(path, item, onDone) {
  const due = h("input", { type: "datetime-local", name: "due", required: true, value: toLocalInput(item.due) });
  const latest = h("input", { type: "datetime-local", name: "latest" });
  const moveReason = h("input", { name: "reason", required: true, maxlength: 2000 });
  const cancelReason = h("input", { name: "reason", required: true, maxlength: 2000 });
  return [
    actionForm({ label: t("work.move"), cls: "move", onDone,
      inputs: [field(t("work.due"), due), field(t("work.latest"), latest), field(t("work.reason"), moveReason)],
      submit: () => api.post(`${path}/move`, { due: toIso(due.value), latest: toIso(latest.value), reason: moveReason.value }) }),
    actionForm({ label: t("work.cancel"), cls: "cancel", onDone,
      inputs: [field(t("work.reason"), cancelReason)],
      submit: () => api.post(`${path}/cancel`, { reason: cancelReason.value }) }),
  ];
}

// Search a customer by name, phone or email and pick one; `picked` gets {id, name}.
export function customerPicker(picked) {
  const query = h("input", { type: "search", name: "customer-q", placeholder: t("customers.search"), "aria-label": t("work.customer-search") });
  const results = h("ul", { class: "picker-results" });
  const chosen = h("span", { class: "picked" });
  const find = async () => {
    const data = await api.get(`/customers?q=${encodeURIComponent(query.value)}&limit=10`);
    replace(results, data.customers.length ? data.customers.map((c) => h("li", {},
      h("button", { type: "button", class: "link", onclick: () => {
        picked({ id: c.id, name: c.name });
        names.set(c.id, Promise.resolve(c.name));
        chosen.textContent = c.name;
        replace(results);
      } }, c.name), " ", h("span", { class: "muted" }, c.phones?.[0]?.number || c.emails?.[0] || ""))) :
      h("li", { class: "muted" }, t("customers.none")));
  };
  query.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); find(); } });
  return h("div", { class: "picker" }, field(t("work.customer-search"), query),
    h("button", { type: "button", onclick: find }, t("customers.find")), chosen, results);
}

// Work booked by hand for a customer: the picker, then the inputs the caller gives.
export function byHandForm({ label, inputs, submit, onDone }) {
  let customer = null;
  const picker = customerPicker((c) => { customer = c; });
  return actionForm({ label, cls: "by-hand", onDone, inputs: [picker, inputs], submit: () => {
    if (!customer) throw new Error(t("work.pick-customer"));
    return submit(customer);
  } });
}

