// The agent's console: offers on top, the contacts being worked as tabs, the selected one's
// workspace below.
import { api } from "./api.js";
import { h, replace } from "./dom.js";
import { t } from "./i18n.js";
import { offerCard, tickCountdowns } from "./offer.js";
import { channelLabel } from "./screenpop.js";
import { store } from "./store.js";
import { Workspace } from "./conversation.js";

export class ConsoleView {
  constructor(send) {
    this.send = send;
    this.workspaces = new Map();
    this.offers = h("div", { class: "offers" });
    this.tabs = h("nav", { class: "tabs", role: "tablist", "aria-label": t("tabs.label") });
    this.stage = h("div", { class: "stage" });
    this.root = h("div", { class: "console" }, this.offers, this.tabs, this.stage);
    this.render();
  }

  accept(id) { this.send({ type: "accept", contact_id: id }); }
  reject(id) { this.send({ type: "reject", contact_id: id }); }

  // Messages of a contact the agent has just taken (or still holds after a reload).
  async loadMessages(id) {
    try {
      const data = await api.get(`/contacts/${id}`);
      for (const m of data.messages) store.addMessage(id, m);
      store.changed("messages");
    } catch { /* not ours any more; the socket will say so */ }
  }

  relabel() {
    for (const ws of this.workspaces.values()) ws.build(store.contacts.get(ws.id));
    this.render();
  }

  render() {
    replace(this.offers, store.offers().map((e) => offerCard(e, {
      accept: (id) => this.accept(id), reject: (id) => this.reject(id),
    })));
    const working = store.working();
    for (const id of this.workspaces.keys()) {
      if (!store.contacts.has(id) || store.contacts.get(id).contact.state === "offered") this.workspaces.delete(id);
    }
    replace(this.tabs, working.map((e, i) => {
      const c = e.contact;
      const selected = c.id === store.selected;
      return h("button", {
        role: "tab", class: `tab state-${c.state}${selected ? " selected" : ""}`,
        "aria-selected": selected ? "true" : "false", title: `Alt+${i + 1}`,
        onclick: () => { store.selected = c.id; this.render(); },
      }, h("span", { class: "chip" }, channelLabel(c.channel)), " ", e.customer.name,
      c.state === "wrapup" ? h("span", { class: "tab-state" }, t("state.wrapup")) : null);
    }), working.length ? h("span", { class: "capacity muted" }, t("tabs.count", { n: working.length })) : null);
    const entry = store.selected !== null ? store.contacts.get(store.selected) : null;
    if (!entry || entry.contact.state === "offered") {
      replace(this.stage, store.offers().length ? null : h("div", { class: "empty" },
        h("p", {}, store.status === "available" ? t("console.waiting") : t("console.away")),
        h("p", { class: "muted" }, t("console.shortcuts"))));
      return;
    }
    let ws = this.workspaces.get(entry.contact.id);
    if (!ws) {
      ws = new Workspace(entry, this.send);
      this.workspaces.set(entry.contact.id, ws);
    } else {
      ws.update(entry);
    }
    if (this.stage.firstChild !== ws.root) replace(this.stage, ws.root);
  }

  tick() {
    tickCountdowns(this.offers);
    for (const ws of this.workspaces.values()) ws.tick();
  }

  // Keyboard: Alt+A accept, Alt+R reject the first offer; Alt+W wrap-up; Alt+1…9 tabs.
  onKey(ev) {
    if (!ev.altKey || ev.ctrlKey || ev.metaKey) return false;
    const offer = store.offers()[0];
    const key = ev.code.startsWith("Key") ? ev.code.slice(3).toLowerCase() : "";
    const digit = ev.code.startsWith("Digit") ? ev.code.slice(5) : "";
    if (key === "a" && offer) { this.accept(offer.contact.id); return true; }
    if (key === "r" && offer) { this.reject(offer.contact.id); return true; }
    const ws = this.workspaces.get(store.selected);
    if (key === "w" && ws) {
      const form = ws.actions.querySelector("form.wrapup");
      const details = ws.actions.querySelector("details.inline-wrapup");
      if (details) details.open = true;
      form?.querySelector("select")?.focus();
      return true;
    }
    if (/^[1-9]$/.test(digit)) {
      const target = store.working()[Number(digit) - 1];
      if (target) { store.selected = target.contact.id; this.render(); this.workspaces.get(target.contact.id)?.focusPrimary(); }
      return true;
    }
    return false;
  }
}
