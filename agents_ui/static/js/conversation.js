// One contact being worked: the conversation on its channel, the reply composer, and the
// actions (end, transfer, wrap-up). Built once per contact and updated in place, so a redraw
// never loses what the agent is typing.
import { api } from "./api.js";
import { attachmentList, listAttachments } from "./attachments.js";
import { CannedPicker } from "./canned.js";
import { h, replace } from "./dom.js";
import { contactPanels } from "./panels.js";
import { dateTime, duration, time } from "./format.js";
import { t } from "./i18n.js";
import { smsSegments } from "./sms.js";
import { store } from "./store.js";
import { channelLabel, customerCard, extraHistory, timeline, tierBadge } from "./screenpop.js";
import { transferForm } from "./transfer.js";
import { wrapupForm } from "./wrapup.js";

const TYPING_SHOWN_MS = 4000;
const TYPING_SENT_EVERY_MS = 3000;

function messageText(contact, message) {
  // An email's own words are shown; the quoted earlier mail below them folds away.
  const visible = message.meta?.visible;
  if (contact.channel === "email" && visible !== undefined && visible !== message.body) {
    return [h("div", { class: "body" }, visible),
      h("details", { class: "quoted" }, h("summary", {}, t("email.quoted")), h("div", { class: "body" }, message.body))];
  }
  return h("div", { class: "body" }, message.body);
}

export function messageItem(contact, message) {
  const mine = message.direction === "outbound";
  const status = mine && message.status ? t(`delivery.${message.status}`) : "";
  return h("li", { class: `msg ${mine ? "out" : "in"}${message.private ? " private" : ""}`, dataset: { messageId: message.id } },
    message.private ? h("div", { class: "note-label" }, t("note.label")) : null,
    message.meta?.subject && contact.channel === "email" ? h("div", { class: "subject" }, message.meta.subject) : null,
    messageText(contact, message),
    h("div", { class: "meta" }, time(message.created_at),
      status ? h("span", { class: `delivery ${message.status}` }, " · ", status) : null,
      message.error ? h("span", { class: "delivery failed" }, " · ", message.error) : null));
}

export class Workspace {
  constructor(entry, send) {
    this.id = entry.contact.id;
    this.send = send;
    this.lastTypingSent = 0;
    this.draft = "";
    this.root = h("section", { class: "workspace", dataset: { contactId: this.id } });
    this.build(entry);
  }

  build(entry) {
    const c = entry.contact;
    this.thread = h("ol", { class: "thread", "aria-live": "polite", "aria-label": t("conversation.title") });
    this.typing = h("div", { class: "typing", hidden: true }, t("chat.typing"));
    this.actions = h("div", { class: "actions" });
    this.header = h("header", { class: "work-head" });
    this.composer = c.channel === "voice" || c.channel === "callback" ? this.voicePanel(entry) : this.replyComposer(entry);
    this.side = h("aside", { class: "side" });
    replace(this.root,
      this.header,
      h("div", { class: "work-body" },
        h("div", { class: "work-main" }, this.thread, this.typing,
          contactPanels.filter((p) => p.channel === c.channel).map((p) => p.render(entry)),
          this.composer, this.actions),
        this.side));
    this.renderedMessages = new Set();
    this.update(entry);
  }

  replyComposer(entry) {
    const c = entry.contact;
    this.textarea = h("textarea", {
      class: "reply", rows: 3, maxlength: 20000, "aria-label": t("reply.label"),
      placeholder: t("reply.placeholder"),
      oninput: () => { this.onInput(); this.canned.onInput(); },
      onkeydown: (ev) => {
        if (this.canned.onKeydown(ev)) return;
        if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); this.submitReply(); }
      },
    });
    this.textarea.value = this.draft;
    this.counter = h("span", { class: "counter", "aria-live": "polite" });
    this.composerError = h("span", { class: "composer-error", role: "alert" });
    this.canned = new CannedPicker(this.id, this.textarea, (error) => {
      this.composerError.textContent = error || "";
      this.onInput();
    });
    const form = h("form", { class: "composer", onsubmit: (ev) => { ev.preventDefault(); this.submitReply(); } },
      c.channel === "email" && c.subject ? h("div", { class: "subject-line" }, t("email.re", { subject: c.subject })) : null,
      h("div", { class: "compose-box" }, this.canned.suggest, this.textarea),
      h("div", { class: "composer-foot" }, this.counter, this.composerError, h("span", { class: "spacer" }), this.canned.select,
        h("button", { class: "add-note", type: "button", title: t("note.hint"), onclick: () => this.submitNote() }, t("note.add")),
        h("button", { class: "primary", type: "submit", title: "Ctrl+Enter" }, t("reply.send"))));
    this.onInput();
    return form;
  }

  voicePanel(entry) {
    const c = entry.contact;
    this.callState = h("span", { class: "call-state" });
    return h("div", { class: "voice" },
      h("div", {}, h("span", { class: "muted" }, t("voice.caller")), " ", h("strong", {}, c.from || "–")),
      h("div", {}, this.callState));
  }

  onInput() {
    if (!this.textarea) return;
    this.draft = this.textarea.value;
    const entry = this.entry;
    if (entry?.contact.channel === "sms") {
      const info = smsSegments(this.draft);
      this.counter.textContent = t("sms.counter", { chars: [...this.draft].length, segments: info.segments, encoding: info.encoding });
    } else if (this.counter) {
      this.counter.textContent = this.draft ? t("reply.chars", { n: [...this.draft].length }) : "";
    }
    if (entry?.contact.channel === "chat" && this.draft && Date.now() - this.lastTypingSent > TYPING_SENT_EVERY_MS) {
      this.lastTypingSent = Date.now();
      this.send({ type: "typing", contact_id: this.id });
    }
  }

  submitReply() {
    const body = this.textarea.value;
    if (!body.trim()) return;
    if (this.send({ type: "reply", contact_id: this.id, body })) {
      this.textarea.value = "";
      this.onInput();
    }
  }

  // A private note goes over REST, not the agent socket: it is stored, never sent.
  async submitNote() {
    const body = this.textarea.value;
    if (!body.trim()) return;
    this.composerError.textContent = "";
    try {
      const { message } = await api.post(`/contacts/${this.id}/notes`, { body });
      this.textarea.value = "";
      this.onInput();
      store.addMessage(this.id, message);
      store.changed("messages");
    } catch (e) {
      this.composerError.textContent = e.message;
    }
  }

  update(entry) {
    this.entry = entry;
    const c = entry.contact;
    replace(this.header,
      h("strong", { class: "customer-name" }, entry.customer.name), " ", tierBadge(entry.customer.tier),
      h("span", { class: "chip" }, channelLabel(c.channel)),
      c.queue ? h("span", { class: "chip" }, c.queue) : null,
      h("span", { class: `chip state-${c.state}` }, t(`state.${c.state}`)),
      h("span", { class: "spacer" }),
      h("span", { class: "timer", dataset: { since: entry.since } }, duration((Date.now() - entry.since) / 1000)));
    // A reply is taken while active or in wrap-up; the composer goes only when the contact does.
    for (const message of [...entry.messages.values()].sort((a, b) => a.id - b.id)) {
      const key = `${message.status}|${message.error}`;
      const existing = this.thread.querySelector(`[data-message-id="${message.id}"]`);
      if (existing?.dataset.key === key) continue;
      const item = messageItem(c, message);
      item.dataset.key = key;
      if (existing) existing.replaceWith(item);
      else this.thread.append(item);
    }
    if (c.channel === "email") this.showAttachments(entry);
    this.thread.scrollTop = this.thread.scrollHeight;
    if (this.callState) {
      this.callState.textContent = c.state === "active" ? t("voice.in-call") : t("voice.ended");
    }
    if (this.actionsFor !== c.state) {
      this.actionsFor = c.state;
      this.renderActions(entry);
    }
    this.updateTyping();
    if (!this.sideBuilt) {
      const recent = timeline(entry.history);
      replace(this.side, customerCard(entry.customer), recent);
      this.sideBuilt = true;
      // The offer carries the latest few contacts; the whole history comes with the card.
      if (entry.customer?.id) {
        api.get(`/customers/${entry.customer.id}`)
          .then((data) => recent.replaceWith(timeline(data.history.filter((h) => h.contact_id !== c.id))))
          .catch(() => { /* the offer's few stay */ });
      }
      extraHistory(entry.customer?.id, entry).then((sections) => this.side.append(...sections));
    }
  }

  // Listed again only when an inbound mail arrives that was not asked about yet.
  async showAttachments(entry) {
    const inbound = [...entry.messages.values()].filter((m) => m.direction === "inbound").map((m) => m.id);
    const newest = Math.max(0, ...inbound);
    if (newest > (this.attachmentsFor ?? 0)) {
      this.attachmentsFor = newest;
      try { this.attachments = await listAttachments(this.id); } catch { return; }
    }
    for (const a of this.attachments || []) {
      const item = this.thread.querySelector(`[data-message-id="${a.message_id}"]`);
      if (!item || item.querySelector(".attachments")) continue;
      item.append(attachmentList(this.attachments.filter((b) => b.message_id === a.message_id)));
    }
  }

  renderActions(entry) {
    const c = entry.contact;
    if (this.transferring) return;
    if (c.state === "wrapup") {
      replace(this.actions,
        entry.endedReason ? h("p", { class: "muted" }, t(`ended.${entry.endedReason}`)) : null,
        entry.wrapupDeadline ? h("p", { class: "muted" }, t("wrapup.deadline", { at: dateTime(entry.wrapupDeadline * 1000) })) : null,
        wrapupForm(entry, this.send));
      return;
    }
    const voice = c.channel === "voice" || c.channel === "callback";
    replace(this.actions,
      h("button", { class: "end", onclick: () => this.send({ type: "end", contact_id: c.id }) },
        voice ? t("voice.hangup") : t("action.end")),
      h("button", { onclick: async () => {
        this.transferring = true;
        const form = await transferForm(entry, this.send, () => { this.transferring = false; this.renderActions(this.entry); });
        replace(this.actions, form);
      } }, t("action.transfer")),
      h("details", { class: "inline-wrapup" }, h("summary", {}, t("wrapup.now")), wrapupForm(entry, this.send)));
  }

  updateTyping() {
    const shown = this.entry && Date.now() - this.entry.typingAt < TYPING_SHOWN_MS;
    this.typing.hidden = !shown;
  }

  tick() {
    const timer = this.header.querySelector(".timer");
    if (timer) timer.textContent = duration((Date.now() - Number(timer.dataset.since)) / 1000);
    this.updateTyping();
  }

  focusPrimary() {
    const wrap = this.actions.querySelector(".wrapup select");
    if (this.entry.contact.state === "wrapup" && wrap) wrap.focus();
    else if (this.textarea) this.textarea.focus();
  }
}
