// Wrap-up: the queue's disposition codes (one is required) and optional notes.
import { h } from "./dom.js";
import { t } from "./i18n.js";
import { queueById } from "./queues.js";

export function wrapupForm(entry, send) {
  const c = entry.contact;
  const codes = queueById(c.queue_id)?.dispositions || [];
  const select = h("select", { name: "disposition", required: true, "aria-label": t("wrapup.disposition") },
    h("option", { value: "" }, t("wrapup.choose")),
    codes.map((code) => h("option", { value: code }, code)));
  const notes = h("textarea", { name: "notes", rows: 2, maxlength: 2000, placeholder: t("wrapup.notes") });
  const form = h("form", { class: "wrapup", onsubmit: (ev) => {
    ev.preventDefault();
    if (!select.value) { select.focus(); return; }
    send({ type: "wrapup", contact_id: c.id, disposition: select.value, notes: notes.value || undefined });
  } },
  h("label", {}, h("span", {}, t("wrapup.disposition")), select),
  notes,
  h("button", { class: "primary", type: "submit", title: "Alt+W" }, t("wrapup.submit")));
  return form;
}
