// The app: log in, then the console (agents), the customers view and, for supervisors, the
// board. The top bar carries status, connection, language and who is logged in.
import { api } from "./api.js";
import { BoardView } from "./board.js";
import { ConsoleView } from "./console-view.js";
import { CustomersView } from "./customers.js";
import { $, h, replace } from "./dom.js";
import { LANGUAGES, language, onLanguage, setLanguage, supported, t, translateTree } from "./i18n.js";
import { consoleViews } from "./panels.js";
import { forgetDirectory, loadQueues } from "./queues.js";
import { notify, prime, ring } from "./ringer.js";
import { AgentLink } from "./socket.js";
// Views and workspace panels that register through panels.js.
import "./callback-workspace.js";
import "./worklist.js";
import "./visits-calendar.js";
import { store } from "./store.js";
import "./timeline-parts.js"; // registers in panels.js
import "./board-panels.js"; // registers in panels.js

const LANG_KEY = "cc.lang"; // the login screen's language, before we know who is there
const app = {
  link: null, views: {}, current: null, wantStatus: "away",
};

// -- frames from the agent socket -----------------------------------------------------------
function onAgentFrame(frame) {
  switch (frame.type) {
    case "snapshot": {
      store.me = { ...store.me, ...frame.agent };
      store.reset();
      store.status = frame.status;
      for (const pop of frame.contacts) {
        store.upsert(pop);
        if (pop.contact.state !== "offered") app.views.console.loadMessages(pop.contact.id);
      }
      break;
    }
    case "status":
      store.status = frame.status;
      store.statusReason = frame.reason;
      if (frame.reason === "missed-offers" || frame.reason === "requested") app.wantStatus = frame.status;
      break;
    case "offer": {
      const entry = store.upsert({ contact: frame.contact, customer: frame.customer, history: frame.history, timeline: frame.timeline });
      notify(t("offer.incoming", { channel: t(`channel.${frame.contact.channel}`) }),
        `${entry.customer.name} — ${frame.contact.subject || frame.contact.body || ""}`.slice(0, 140),
        `offer-${frame.contact.id}`);
      break;
    }
    case "offer_revoked":
      store.remove(frame.contact_id);
      break;
    case "contact":
      store.setState(frame.contact);
      if (frame.contact.state === "active") {
        store.selected = frame.contact.id;
        app.views.console.loadMessages(frame.contact.id);
      }
      break;
    case "message":
      store.addMessage(frame.contact_id, frame.message);
      break;
    case "message_status": {
      const entry = store.contacts.get(frame.contact_id);
      if (entry?.messages.has(frame.message_id)) {
        store.addMessage(frame.contact_id, { id: frame.message_id, status: frame.status, error: frame.error });
      }
      break;
    }
    case "customer_typing": {
      const entry = store.contacts.get(frame.contact_id);
      if (entry) entry.typingAt = Date.now();
      break;
    }
    case "error":
      toast(frame.message);
      break;
    default:
      return;
  }
  store.changed(frame.type);
}

function send(message) {
  if (!app.link) app.link = connectAgent();
  const ok = app.link.send(message);
  if (!ok) toast(t("conn.not-sent"));
  return ok;
}

function connectAgent() {
  const link = new AgentLink({
    onFrame: onAgentFrame,
    onState: (state) => {
      store.connection = state;
      // Every new connection starts away: say again what the agent had chosen.
      if (state === "online" && app.wantStatus === "available") link.send({ type: "status", status: "available" });
      if (state !== "online") store.status = "offline";
      store.changed("connection");
    },
  });
  link.open();
  return link;
}

// -- top bar ----------------------------------------------------------------------------------
function toast(text) {
  const box = $("#toasts");
  const node = h("div", { class: "toast", role: "status" }, text);
  box.append(node);
  setTimeout(() => node.remove(), 6000);
}

function renderStatus() {
  const holder = $("#status-holder");
  if (!app.link) { replace(holder); return; }
  const online = store.connection === "online";
  const select = h("select", { id: "status", "aria-label": t("status.label"), disabled: !online,
    onchange: (ev) => { app.wantStatus = ev.target.value; send({ type: "status", status: ev.target.value }); } },
  ["available", "away"].map((s) => h("option", { value: s }, t(`status.${s}`))));
  select.value = store.status === "available" ? "available" : "away";
  const wrapups = store.working().filter((e) => e.contact.state === "wrapup").length;
  replace(holder, h("span", { class: `dot status-${online ? store.status : "offline"}` }), select,
    wrapups ? h("span", { class: "badge wrapup" }, t("status.wrapup")) : null,
    h("span", { id: "conn", class: `conn ${store.connection}` }, t(`conn.${store.connection}`)));
}

function navItems() {
  const role = store.me.role;
  const items = [["console", "nav.console"], ["customers", "nav.customers"]];
  if (role !== "agent") items.push(["board", "nav.board"]);
  for (const v of consoleViews) if (!v.roles || v.roles.includes(role)) items.push([v.id, v.label]);
  return items;
}

function renderNav() {
  replace($("#nav"), navItems().map(([id, key]) => h("a", {
    href: `#${id}`, class: app.current === id ? "active" : "", "aria-current": app.current === id ? "page" : null,
  }, t(key))));
}

function renderUser() {
  replace($("#who"), store.me ? h("span", {}, store.me.display_name || store.me.username) : null,
    store.me ? h("button", { class: "link", onclick: logout }, t("logout")) : null);
}

function languagePicker() {
  const select = h("select", { class: "lang", "aria-label": t("language"), onchange: async (ev) => {
    setLanguage(ev.target.value);
    localStorage.setItem(LANG_KEY, language());
    if (store.me) {
      try { store.me = { ...store.me, ...(await api.patch("/me", { language: language() })) }; }
      catch (e) { toast(e.message); }
    }
  } }, LANGUAGES.map(([code, name]) => h("option", { value: code }, name)));
  select.value = language();
  return select;
}

// -- views --------------------------------------------------------------------------------------
// `#customers/42` opens that customer (the board links its lists there).
function show(hash) {
  let [id, arg] = hash.split("/");
  const ids = navItems().map(([v]) => v);
  if (!ids.includes(id)) id = store.me.role === "agent" ? "console" : "board";
  app.current = id;
  if (id === "console" && !app.link) app.link = connectAgent();
  if (id === "board") app.views.board.start();
  else app.views.board?.stop();
  let view = app.views[id];
  if (!view) {
    const extra = consoleViews.find((v) => v.id === id);
    const box = h("div", { class: `view-${id}` });
    extra.render(box);
    view = app.views[id] = { root: box };
  }
  replace($("#view"), view.root);
  if (id === "customers" && Number(arg) > 0) view.open(Number(arg));
  renderNav();
  renderStatus();
}

async function enter(user) {
  store.me = user;
  setLanguage(supported(user.language));
  localStorage.setItem(LANG_KEY, language());
  app.views.console = new ConsoleView(send);
  app.views.customers = new CustomersView();
  if (user.role !== "agent") app.views.board = new BoardView();
  $("#login").hidden = true;
  $("#shell").hidden = false;
  replace($("#lang-holder"), languagePicker());
  renderUser();
  loadQueues().catch(() => {});
  show(location.hash.slice(1));
}

async function logout() {
  app.link?.close();
  app.link = null;
  app.views.board?.stop();
  app.views = {};
  await api.logout();
  forgetDirectory();
  store.me = null;
  store.reset();
  ring(false);
  $("#shell").hidden = true;
  $("#login").hidden = false;
}

function boot() {
  setLanguage(localStorage.getItem(LANG_KEY) || navigator.language);
  translateTree(document);
  replace($("#login-lang"), languagePicker());
  api.onUnauthorized = () => { if (store.me) logout(); };
  $("#login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    prime();
    const form = new FormData(ev.target);
    $("#login-error").textContent = "";
    try {
      await enter(await api.login(form.get("username"), form.get("password")));
    } catch (e) {
      $("#login-error").textContent = e.status === 401 ? t("login.wrong") : e.message;
    }
  });
  window.addEventListener("hashchange", () => { if (store.me) show(location.hash.slice(1)); });
  document.addEventListener("keydown", (ev) => {
    if (store.me && app.current === "console" && app.views.console.onKey(ev)) ev.preventDefault();
  });
  store.subscribe(() => {
    if (!store.me) return;
    ring(store.offers().length > 0);
    renderStatus();
    app.views.console?.render();
  });
  onLanguage(() => {
    if (!store.me) return;
    renderNav(); renderStatus(); renderUser();
    replace($("#lang-holder"), languagePicker());
    for (const view of Object.values(app.views)) view.relabel?.();
  });
  setInterval(() => { if (app.current === "console") app.views.console?.tick(); }, 500);
  if (api.token) {
    api.get("/me").then(enter).catch(() => api.forget());
  }
}

boot();
