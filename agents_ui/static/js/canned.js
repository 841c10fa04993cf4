// Canned responses in the composer: type "/" and a name (Tab or Enter takes the first match),
// or pick one from the list. The server fills the variables for this contact and answers plain
// text, which goes into the textarea's value: a customer's name is never markup.
import { api } from "./api.js";
import { h, replace } from "./dom.js";
import { t } from "./i18n.js";
import { loadCanned } from "./queues.js";

const SLASH = /(^|\s)\/([\w.-]*)$/u;

export class CannedPicker {
  constructor(contactId, textarea, onFilled) {
    this.contactId = contactId;
    this.textarea = textarea;
    this.onFilled = onFilled;
    this.matches = [];
    this.suggest = h("ul", { class: "canned-suggest", role: "listbox", hidden: true });
    this.select = h("select", { class: "canned", "aria-label": t("canned.pick"),
      onchange: () => { const c = this.byId(this.select.value); this.select.value = ""; if (c) this.fill(c, null); } });
    this.list = [];
    loadCanned().then((list) => { this.list = list; this.renderSelect(); }).catch(() => {});
  }

  byId(id) { return this.list.find((c) => String(c.id) === String(id)); }

  renderSelect() {
    replace(this.select, h("option", { value: "" }, t("canned.pick")),
      this.list.map((c) => h("option", { value: c.id }, `/${c.name}`)));
    this.select.hidden = this.list.length === 0;
  }

  // Called on every input: shows the names that start with what follows the "/".
  onInput() {
    const m = SLASH.exec(this.textarea.value);
    this.matches = m ? this.list.filter((c) => c.name.toLowerCase().startsWith(m[2].toLowerCase())) : [];
    replace(this.suggest, this.matches.map((c, i) => h("li", {
      role: "option", class: i === 0 ? "first" : "", dataset: { name: c.name },
      onmousedown: (ev) => { ev.preventDefault(); this.fill(c, m[0]); },
    }, h("strong", {}, `/${c.name}`), " ", h("span", { class: "muted" }, c.body))));
    this.suggest.hidden = this.matches.length === 0;
  }

  // Tab or Enter while suggestions show takes the first; returns whether the key was used.
  onKeydown(ev) {
    if (this.suggest.hidden || !this.matches.length) return false;
    if ((ev.key === "Tab" || ev.key === "Enter") && !ev.ctrlKey && !ev.metaKey && !ev.shiftKey) {
      ev.preventDefault();
      this.fill(this.matches[0], SLASH.exec(this.textarea.value)?.[0] ?? null);
      return true;
    }
    if (ev.key === "Escape") { this.suggest.hidden = true; return true; }
    return false;
  }

  async fill(canned, typed) {
    this.suggest.hidden = true;
    try {
      const { text } = await api.post(`/canned/${canned.id}/render`, { contact_id: this.contactId });
      const value = this.textarea.value;
      // Replace the "/name" just typed (keeping the space before it), else append.
      const head = typed === null ? value : value.slice(0, value.length - typed.length) + (typed.startsWith("/") ? "" : typed[0]);
      this.textarea.value = head + text;
      this.onFilled(null);
    } catch (e) {
      this.onFilled(e.message);
    }
    this.textarea.focus();
  }
}
