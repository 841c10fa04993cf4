// The screen-pop: the customer's card and the timeline of what happened with them before.
import { h } from "./dom.js";
import { calendarDate, dateTime } from "./format.js";
import { t } from "./i18n.js";
import { timelineSources } from "./panels.js";
import { loadDirectory, userName } from "./queues.js";
import { store } from "./store.js";

export function tierBadge(tier) {
  return h("span", { class: `tier tier-${tier || "none"}`, title: t("tier") }, tier || "–");
}

export function channelLabel(channel) { return t(`channel.${channel}`); }

function ownerText(id) {
  if (id === store.me?.id) return t("owner.you");
  return userName(id) ?? t("owner.agent", { id });
}

// A name when the directory is known; else "agent #7", renamed once the directory arrives.
function ownerLabel(id) {
  const node = h("span", { class: "owner", dataset: { userId: id } }, ownerText(id));
  if (userName(id) === null) loadDirectory().then(() => { node.textContent = ownerText(id); }).catch(() => {});
  return node;
}

export function customerCard(customer, { compact = false } = {}) {
  const rows = [];
  const row = (label, ...value) => rows.push(h("dt", {}, label), h("dd", {}, ...value));
  if (customer.phones?.length) {
    row(t("card.phones"), customer.phones.map((p, i) => [i ? ", " : "", p.number, p.label ? ` (${p.label})` : ""]));
  }
  if (customer.emails?.length) row(t("card.emails"), customer.emails.join(", "));
  if (!compact) {
    if (customer.wechat_id) row(t("card.wechat"), customer.wechat_id);
    if (customer.employer || customer.position) {
      row(t("card.employer"), [customer.employer, customer.position].filter(Boolean).join(" · "));
    }
    if (customer.address) row(t("card.address"), customer.address);
  }
  if (customer.birthday) row(t("card.birthday"), calendarDate(customer.birthday));
  if (customer.owners?.length) row(t("card.owners"), customer.owners.map((id, i) => [i ? ", " : "", ownerLabel(id)]));
  if (customer.language) row(t("card.language"), customer.language);
  return h("section", { class: "customer-card", "aria-label": t("card.title") },
    h("div", { class: "customer-head" },
      h("strong", { class: "customer-name" }, customer.honorific ? `${customer.name} ${customer.honorific}` : customer.name),
      " ", tierBadge(customer.tier),
      customer.is_new ? h("span", { class: "badge new" }, t("card.new")) : null),
    customer.tags?.length ? h("div", { class: "tags" }, customer.tags.map((tag) => h("span", { class: "tag" }, tag))) : null,
    h("dl", { class: "facts" }, rows),
    !compact && customer.notes ? h("p", { class: "customer-notes" }, customer.notes) : null);
}

// One line per past contact; the summary shows channel, state and when, the rest unfolds.
function historyItem(item) {
  const outcome = item.disposition ? t("history.disposition", { code: item.disposition }) : t(`state.${item.state}`);
  return h("li", { class: `timeline-item channel-${item.channel}` },
    h("div", { class: "timeline-head" },
      h("span", { class: "chip" }, channelLabel(item.channel)),
      h("span", { class: "when" }, dateTime(item.created_at)),
      h("span", { class: "outcome" }, outcome)),
    item.subject ? h("div", { class: "subject" }, item.subject) : null,
    item.body ? h("div", { class: "excerpt" }, item.body) : null,
    item.notes ? h("div", { class: "note" }, t("history.notes"), ": ", item.notes) : null,
    item.agent ? h("div", { class: "who" }, t("history.agent", { name: item.agent })) : null);
}

export function timeline(history, { limit = 20 } = {}) {
  const items = (history || []).slice(0, limit);
  return h("section", { class: "timeline", "aria-label": t("history.title") },
    h("h3", {}, t("history.title")),
    items.length ? h("ol", {}, items.map(historyItem)) : h("p", { class: "muted" }, t("history.none")));
}

// Other kinds of history (purchases, repairs, complaints…) come from sources registered in
// panels.js; each gives a titled list for the customer, from the screen-pop (`pop`, when
// there is one) or its own API.
export async function extraHistory(customerId, pop = null) {
  const sections = [];
  for (const source of timelineSources) {
    try { sections.push(await source(customerId, pop)); } catch { /* one source failing hides only itself */ }
  }
  return sections.filter(Boolean);
}

export function screenPop(entry) {
  return h("div", { class: "screenpop" }, customerCard(entry.customer), timeline(entry.history));
}
