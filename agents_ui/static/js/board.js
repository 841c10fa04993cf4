// The supervisor board: live queue tiles, last-hour charts, agents by state, alerts — all from
// the stats frame /supervisor/ws pushes about every second. The last hour is kept here in the
// browser from those frames (a reload starts the charts afresh).
import { h, replace } from "./dom.js";
import { lineChart, PALETTE } from "./chart.js";
import { duration, hourMinute, percent } from "./format.js";
import { t } from "./i18n.js";
import { boardSections } from "./panels.js";
import { ReconnectingSocket } from "./socket.js";
import { store } from "./store.js";
import { LiveContacts } from "./watch.js";

const HOUR = 3600;
const MIN_SPAN = 300; // a fresh board shows its first minutes across the chart, not as a sliver
// The board's service-level goal. Queues carry only the threshold (answered within N s), not
// the share to reach, so the goal is the supervisor's own setting, remembered per user.
const DEFAULT_TARGET = 0.8;

function targetKey() { return `cc.sl-target.${store.me?.id}`; }

export class BoardView {
  constructor() {
    this.history = new Map(); // queue id → [{ at, waiting, sl }]
    this.stats = null;
    this.target = Number(localStorage.getItem(targetKey())) || DEFAULT_TARGET;
    this.alerts = h("div", { class: "alerts", role: "alert", "aria-live": "assertive" });
    this.tiles = h("div", { class: "tiles" });
    this.charts = h("div", { class: "charts" });
    this.agents = h("section", { class: "agents-panel" });
    this.extra = h("div", { class: "board-extra" });
    this.live = new LiveContacts();
    this.conn = h("span", { class: "conn" });
    this.settings = h("label", { class: "target-setting" });
    this.root = h("div", { class: "board" },
      h("div", { class: "board-bar" }, h("h2", {}, t("board.title")), this.conn, h("span", { class: "spacer" }), this.settings),
      this.alerts, this.tiles, this.charts, this.agents, this.live.root, this.extra);
    this.socket = new ReconnectingSocket("/supervisor/ws", {
      onFrame: (frame) => this.onStats(frame),
      onState: (state) => { this.connState = state; this.renderConn(); },
    });
    this.renderSettings();
  }

  start() { this.socket.open(); }
  stop() { this.socket.close(); this.live.close(); }

  renderConn() {
    this.conn.className = `conn ${this.connState}`;
    this.conn.textContent = t(`conn.${this.connState || "offline"}`);
  }

  renderSettings() {
    const input = h("input", { type: "number", min: 1, max: 100, step: 1, value: Math.round(this.target * 100),
      onchange: () => {
        const v = Math.min(100, Math.max(1, Number(input.value) || 80)) / 100;
        this.target = v;
        localStorage.setItem(targetKey(), String(v));
        this.render();
      } });
    replace(this.settings, h("span", {}, t("board.target")), input, "%");
  }

  onStats(frame) {
    if (!Array.isArray(frame.queues)) return;
    this.stats = frame;
    for (const q of frame.queues) {
      const points = this.history.get(q.id) || [];
      points.push({ at: frame.at, waiting: q.waiting, sl: q.service_level });
      while (points.length && points[0].at < frame.at - HOUR) points.shift();
      this.history.set(q.id, points);
    }
    this.render();
    this.live.refresh(frame);
  }

  relabel() {
    this.root.querySelector(".board-bar h2").textContent = t("board.title");
    this.renderConn();
    this.renderSettings();
    this.render();
  }

  render() {
    const s = this.stats;
    if (!s) { replace(this.tiles, h("p", { class: "muted" }, t("board.waiting-for-data"))); return; }
    this.renderAlerts(s);
    replace(this.tiles, s.queues.map((q) => this.tile(q)));
    this.renderCharts(s);
    this.renderAgents(s);
    replace(this.extra, boardSections.map((section) => {
      const box = h("section", { class: "board-section", dataset: { section: section.id } });
      section.render(box, s);
      return box;
    }));
  }

  renderAlerts(s) {
    const alerts = [];
    for (const q of s.queues) {
      if (q.service_level !== null && q.service_level < this.target) {
        alerts.push(t("alert.sl", { queue: q.name, sl: percent(q.service_level), target: percent(this.target) }));
      }
      if (q.waiting && q.longest_wait > q.threshold) {
        alerts.push(t("alert.wait", { queue: q.name, wait: duration(q.longest_wait), threshold: duration(q.threshold) }));
      }
    }
    replace(this.alerts, alerts.map((text) => h("div", { class: "alert" }, text)));
    this.alerts.hidden = !alerts.length;
  }

  tile(q) {
    const stat = (key, value, extra = "") => h("div", { class: `stat stat-${key}` },
      h("span", { class: "label" }, t(`board.${key}`)), h("span", { class: `value ${extra}` }, value));
    const slBad = q.service_level !== null && q.service_level < this.target;
    const waitBad = q.waiting && q.longest_wait > q.threshold;
    return h("article", { class: `tile${slBad || waitBad ? " warn" : ""}`, dataset: { queue: q.name } },
      h("h3", {}, q.name),
      h("div", { class: "headline" },
        stat("waiting", String(q.waiting), waitBad ? "bad" : ""),
        stat("longest", duration(q.longest_wait), waitBad ? "bad" : ""),
        stat("sl", percent(q.service_level), slBad ? "bad" : "")),
      h("div", { class: "secondary" },
        h("span", { class: "muted" }, t("board.within", { s: q.threshold })),
        stat("entered", String(q.entered)),
        stat("answered", String(q.answered)),
        stat("abandoned", String(q.abandoned)),
        stat("abandonment", percent(q.abandonment_rate)),
        stat("asa", duration(q.asa))));
  }

  renderCharts(s) {
    const first = Math.min(...s.queues.map((q) => this.history.get(q.id)?.[0]?.at ?? s.at));
    const from = Math.max(s.at - HOUR, Math.min(first, s.at - MIN_SPAN)), to = s.at;
    const series = (field) => s.queues.map((q) => ({ label: q.name,
      points: (this.history.get(q.id) || []).map((p) => [p.at, p[field]]) }));
    const legend = h("div", { class: "legend" }, s.queues.map((q, i) =>
      h("span", {}, h("i", { style: `background:${PALETTE[i % PALETTE.length]}` }), q.name)));
    const formatX = (v) => hourMinute(v * 1000);
    replace(this.charts,
      h("figure", {}, h("figcaption", {}, t("board.chart-waiting")),
        lineChart({ series: series("waiting"), from, to, yMax: 4, formatX, title: t("board.chart-waiting"),
          formatY: (v) => String(Math.round(v)) })),
      h("figure", {}, h("figcaption", {}, t("board.chart-sl")),
        lineChart({ series: series("sl"), from, to, yMax: 1, target: this.target, formatX, title: t("board.chart-sl"),
          formatY: (v) => percent(v) })),
      legend);
  }

  renderAgents(s) {
    const counts = s.agent_counts || {};
    const order = { available: 0, busy: 1, away: 2, offline: 3 };
    const agents = [...(s.agents || [])].sort((a, b) => (order[a.status] ?? 9) - (order[b.status] ?? 9) || a.name.localeCompare(b.name));
    replace(this.agents,
      h("h3", {}, t("board.agents")),
      h("div", { class: "counts" }, ["available", "busy", "away", "offline"].map((k) =>
        h("span", { class: `count status-${k}` }, t(`status.${k}`), " ", h("strong", {}, String(counts[k] ?? 0))))),
      h("table", { class: "agents" },
        h("thead", {}, h("tr", {}, h("th", {}, t("board.agent")), h("th", {}, t("board.status")),
          h("th", {}, t("board.load")), h("th", {}, t("board.occupancy")))),
        h("tbody", {}, agents.map((a) => h("tr", {},
          h("td", {}, a.name),
          h("td", {}, h("span", { class: `dot status-${a.status}` }), t(`status.${a.status}`)),
          h("td", {}, Object.entries(a.load || {}).map(([ch, n]) => `${t(`channel.${ch}`)} ${n}`).join(", ") || "–"),
          h("td", {}, h("span", { class: "bar" }, h("i", { style: `width:${Math.round((a.occupancy || 0) * 100)}%` })),
            " ", percent(a.occupancy)))))));
  }
}
