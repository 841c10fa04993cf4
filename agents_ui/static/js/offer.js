// Incoming offers: who, on what channel, with a countdown to the deadline; accept or reject.
import { api } from "./api.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";
import { channelLabel, customerCard, timeline } from "./screenpop.js";

export function remaining(contact) {
  if (!contact.expires_at) return null;
  return Math.max(0, contact.expires_at - api.serverNow() / 1000);
}

export function offerCard(entry, { accept, reject }) {
  const c = entry.contact;
  const left = remaining(c);
  const preview = c.subject || c.body || "";
  return h("article", { class: "offer", id: `offer-${c.id}`, "aria-live": "assertive", dataset: { contactId: c.id } },
    h("header", { class: "offer-head" },
      h("span", { class: "ring-dot", "aria-hidden": "true" }),
      h("strong", {}, t("offer.incoming", { channel: channelLabel(c.channel) })),
      c.queue ? h("span", { class: "chip" }, c.queue) : null,
      h("span", { class: "spacer" }),
      left === null ? null : h("span", { class: "countdown", dataset: { expires: c.expires_at } },
        t("offer.countdown", { n: Math.ceil(left) }))),
    customerCard(entry.customer, { compact: true }),
    preview ? h("blockquote", { class: "preview" }, preview) : null,
    timeline(entry.history, { limit: 5 }),
    h("footer", { class: "offer-actions" },
      h("button", { class: "primary accept", onclick: () => accept(c.id), title: "Alt+A" }, t("offer.accept")),
      h("button", { class: "reject", onclick: () => reject(c.id), title: "Alt+R" }, t("offer.reject"))));
}

// Countdowns tick without redrawing the cards (which would steal focus from the buttons).
export function tickCountdowns(root) {
  for (const node of root.querySelectorAll(".countdown[data-expires]")) {
    const left = Math.max(0, Number(node.dataset.expires) - api.serverNow() / 1000);
    node.textContent = t("offer.countdown", { n: Math.ceil(left) });
    node.classList.toggle("urgent", left <= 5);
  }
}
