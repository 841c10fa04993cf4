// A `callback` contact's workspace panel: the script with the agent's name filled in, the
// callback's purpose and category, and the outcome form (POST /contacts/{id}/callback-outcome).
// The wrap-up below it stays the usual one: the outcome is a record of its own, not a
// disposition.
import { api } from "./api.js";
import { h, replace } from "./dom.js";
import { dateTime } from "./format.js";
import { field, toIso } from "./followup-forms.js";
import { t } from "./i18n.js";
import { contactPanels } from "./panels.js";
import { store } from "./store.js";

const OUTCOMES = ["reached", "no-answer", "wrong-number", "call-back"];
// What was recorded per contact, so a redrawn workspace shows it instead of a second form.
const recorded = new Map();

// The server leaves `{agent}` in the script for the person who takes the call. Split/join, not
// a template: the rest of the script holds the customer's own honorific, kept as typed.
function script(meta) {
  const me = store.me?.display_name || store.me?.username || "";
  return (meta.script || "").split("{agent}").join(me);
}

async function nextCall(customerId, key) {
  if (!key) return null;
  const data = await api.get(`/customers/${customerId}/callbacks?limit=50`);
  return data.callbacks.find((c) => c.key === key) || null;
}

function result(box, outcome, next) {
  replace(box, h("p", { class: "outcome-done", role: "status" },
    t("outcome.recorded", { outcome: t(`outcome.${outcome.outcome}`) }),
    next ? h("span", { class: "next-call" }, " ", t("outcome.next", { at: dateTime(next.due) })) : null,
    outcome.closed_as ? h("span", {}, " ", t(`outcome.closed.${outcome.closed_as}`)) : null));
}

function outcomeForm(entry, box) {
  const c = entry.contact;
  const booking = c.meta?.rule === "visit-booking";
  const callBackAt = h("input", { type: "datetime-local", name: "call_back_at" });
  const visitAt = h("input", { type: "datetime-local", name: "visit_at" });
  const notes = h("textarea", { name: "notes", rows: 2, maxlength: 20000, placeholder: t("outcome.notes") });
  const error = h("span", { class: "error", role: "alert" });
  const when = field(t("outcome.call-back-at"), callBackAt);
  const visitWhen = booking ? field(t("outcome.visit-at"), visitAt) : null;
  const show = (value) => {
    when.hidden = value !== "call-back";
    callBackAt.required = value === "call-back";
    if (visitWhen) visitWhen.hidden = value !== "reached";
  };
  const radios = OUTCOMES.map((o) => h("label", { class: "radio" },
    h("input", { type: "radio", name: `outcome-${c.id}`, value: o, required: true, onchange: () => show(o) }),
    " ", t(`outcome.${o}`)));
  show(null);
  return h("form", { class: "callback-outcome", onsubmit: async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    const chosen = ev.target.querySelector("input[type=radio]:checked")?.value;
    if (!chosen) return;
    try {
      const { outcome } = await api.post(`/contacts/${c.id}/callback-outcome`, {
        outcome: chosen, notes: notes.value || undefined,
        call_back_at: chosen === "call-back" ? toIso(callBackAt.value) : undefined,
        visit_at: booking && chosen === "reached" ? toIso(visitAt.value) : undefined,
      });
      const next = await nextCall(entry.customer.id, outcome.next_key).catch(() => null);
      recorded.set(c.id, { outcome, next });
      result(box, outcome, next);
    } catch (e) { error.textContent = e.message; }
  } },
  h("fieldset", {}, h("legend", {}, t("outcome.title")), radios),
  when, visitWhen, notes,
  h("div", { class: "form-foot" }, h("button", { class: "primary", type: "submit" }, t("outcome.submit")), error));
}

function callbackPanel(entry) {
  const meta = entry.contact.meta || {};
  const box = h("div", { class: "outcome-box" });
  const done = recorded.get(entry.contact.id);
  if (done) result(box, done.outcome, done.next);
  else box.append(outcomeForm(entry, box));
  return h("section", { class: "callback-panel", "aria-label": t("callbacks.script") },
    h("div", { class: "callback-facts" },
      h("span", { class: "purpose" }, meta.purpose || entry.contact.subject || ""),
      meta.category ? h("span", { class: "chip category" }, meta.category) : null,
      meta.latest_at ? h("span", { class: "muted latest" }, " ", t("work.latest"), " ", dateTime(meta.latest_at)) : null),
    h("blockquote", { class: "script" }, script(meta)),
    box);
}

contactPanels.push({ channel: "callback", render: callbackPanel });
