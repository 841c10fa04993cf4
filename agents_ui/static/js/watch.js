// The board's live conversations (chat and SMS being worked now) and a read-only view of one:
// its messages refresh every 2 s over REST; there is no composer, so watching never speaks.
import { api } from "./api.js";
import { messageItem } from "./conversation.js";
import { h, replace } from "./dom.js";
import { time } from "./format.js";
import { t } from "./i18n.js";
import { loadDirectory, userName } from "./queues.js";
import { channelLabel } from "./screenpop.js";
import { transferForm } from "./transfer.js";

const WATCHED = new Set(["chat", "sms"]);
const LIST_EVERY_MS = 5000;
const WATCH_EVERY_MS = 2000;

export class LiveContacts {
  constructor() {
    this.listed = 0;
    this.loadKey = null;
    this.list = h("div", { class: "live-list" });
    this.panel = h("div", { class: "watch-panel", hidden: true });
    this.root = h("section", { class: "live-contacts" }, h("h3", {}, t("watch.title")), this.list, this.panel);
    this.timer = null;
    this.watching = null;
  }

  // From each stats frame: list again when the agents' loads changed, or every few seconds.
  async refresh(stats) {
    const key = JSON.stringify((stats.agents || []).map((a) => [a.id, a.load]));
    if (key === this.loadKey && Date.now() - this.listed < LIST_EVERY_MS) return;
    this.loadKey = key;
    this.listed = Date.now();
    try {
      const [{ contacts }] = await Promise.all([api.get("/contacts?state=active&limit=100"), loadDirectory()]);
      this.render(contacts.filter((c) => WATCHED.has(c.channel)));
    } catch { /* the next frame tries again */ }
  }

  render(contacts) {
    replace(this.list, contacts.length ? h("table", { class: "live" },
      h("tbody", {}, contacts.map((c) => h("tr", { dataset: { contactId: c.id } },
        h("td", {}, channelLabel(c.channel)),
        h("td", {}, c.from || "–"),
        h("td", {}, userName(c.agent_id) ?? t("owner.agent", { id: c.agent_id })),
        h("td", {}, time(c.created_at)),
        h("td", {}, h("button", { class: "watch", onclick: () => this.watch(c.id) }, t("watch.open"))))))) :
      h("p", { class: "muted" }, t("watch.none")));
  }

  watch(id) {
    this.close();
    this.watching = id;
    this.thread = h("ol", { class: "thread", "aria-live": "polite" });
    this.head = h("div", { class: "watch-head" });
    this.notice = h("p", { class: "muted", role: "status" });
    this.actions = h("div", { class: "watch-actions" },
      h("button", { class: "reassign", onclick: () => this.reassign() }, t("watch.reassign")),
      h("button", { class: "close-watch", onclick: () => this.close() }, t("watch.close")));
    replace(this.panel, this.head, this.thread, this.notice, this.actions);
    this.panel.hidden = false;
    this.poll();
    this.timer = setInterval(() => this.poll(), WATCH_EVERY_MS);
  }

  async poll() {
    const id = this.watching;
    let data;
    try { data = await api.get(`/contacts/${id}`); } catch { return; }
    if (id !== this.watching) return;
    const c = data.contact;
    this.contact = c;
    replace(this.head, h("strong", {}, c.from || "–"), " ", h("span", { class: "chip" }, channelLabel(c.channel)),
      " ", h("span", { class: `chip state-${c.state}` }, t(`state.${c.state}`)),
      " ", h("span", { class: "muted" }, t("watch.read-only")));
    for (const m of data.messages) {
      if (this.thread.querySelector(`[data-message-id="${m.id}"]`)) continue;
      this.thread.append(messageItem(c, m));
    }
    this.thread.scrollTop = this.thread.scrollHeight;
  }

  // The transfer form an agent uses, sent as the supervisor's reassign request.
  async reassign() {
    const id = this.watching;
    const shown = () => replace(this.actions,
      h("button", { class: "reassign", onclick: () => this.reassign() }, t("watch.reassign")),
      h("button", { class: "close-watch", onclick: () => this.close() }, t("watch.close")));
    const form = await transferForm({ contact: this.contact }, async ({ type: _type, contact_id: _id, ...target }) => {
      try {
        await api.post(`/contacts/${id}/reassign`, target);
        this.notice.textContent = t("watch.reassigned");
      } catch (e) {
        this.notice.textContent = e.message;
      }
    }, shown);
    if (id === this.watching) replace(this.actions, form);
  }

  close() {
    clearInterval(this.timer);
    this.timer = null;
    this.watching = null;
    this.panel.hidden = true;
    replace(this.panel);
  }
}
