// The agent's work as the server last told it: status and the contacts held (offered, active,
// wrap-up), each with its screen-pop and conversation. Views subscribe and redraw from here.
const LIVE = new Set(["offered", "active", "wrapup"]);

export const store = {
  me: null,
  status: "offline",
  statusReason: null,
  connection: "offline",
  contacts: new Map(), // id → { contact, customer, history, messages: Map, typingAt, endedReason }
  selected: null,
  errors: [],
  listeners: new Set(),

  subscribe(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); },
  changed(what) { for (const fn of this.listeners) fn(what); },

  reset() {
    this.contacts.clear();
    this.selected = null;
    this.status = "offline";
  },

  upsert(pop) {
    const id = pop.contact.id;
    const known = this.contacts.get(id);
    const entry = known || { messages: new Map(), typingAt: 0, endedReason: null, since: Date.now() };
    entry.contact = { ...(known?.contact || {}), ...pop.contact };
    entry.customer = pop.customer || entry.customer;
    entry.history = pop.history || entry.history || [];
    entry.timeline = pop.timeline || entry.timeline || {};
    this.contacts.set(id, entry);
    if (this.selected === null && entry.contact.state !== "offered") this.selected = id;
    return entry;
  },

  setState(change) {
    const entry = this.contacts.get(change.id);
    if (!entry) return null;
    if (!LIVE.has(change.state)) {
      this.contacts.delete(change.id);
      if (this.selected === change.id) this.selected = this.firstWorking();
      return null;
    }
    entry.contact = { ...entry.contact, state: change.state };
    if (change.state === "active") {
      entry.since = Date.now();
      if (this.selected === null) this.selected = change.id;
    }
    if (change.state === "wrapup") {
      entry.endedReason = change.reason || null;
      entry.wrapupDeadline = change.wrapup_deadline || null;
    }
    return entry;
  },

  remove(id) {
    this.contacts.delete(id);
    if (this.selected === id) this.selected = this.firstWorking();
  },

  firstWorking() {
    for (const [id, e] of this.contacts) if (e.contact.state !== "offered") return id;
    return null;
  },

  offers() { return [...this.contacts.values()].filter((e) => e.contact.state === "offered"); },
  working() { return [...this.contacts.values()].filter((e) => e.contact.state !== "offered"); },

  addMessage(contactId, message) {
    const entry = this.contacts.get(contactId);
    if (!entry) return null;
    entry.messages.set(message.id, { ...(entry.messages.get(message.id) || {}), ...message });
    return entry;
  },
};
