// A websocket that comes back by itself. `AgentLink` adds the agent protocol's sequence
// numbers: it reconnects with ?last_seq=N, so the server replays exactly what was missed (or
// sends a snapshot), and drops any frame already processed.
import { api } from "./api.js";

const REPLACED = 4000; // another tab or device took over this agent's connection

export class ReconnectingSocket {
  // `ping`: a message the server answers (agent socket); `silenceMs`: with no frame for this
  // long the connection is taken for dead and replaced (a dropped network may not close it).
  constructor(path, { onFrame, onState, query = () => ({}), ping = null, silenceMs = 30_000 }) {
    this.path = path;
    this.ping = ping;
    this.silenceMs = silenceMs;
    this.lastFrameAt = 0;
    this.watchdog = null;
    this.onFrame = onFrame;
    this.onState = onState;
    this.query = query;
    this.ws = null;
    this.retry = 0;
    this.stopped = false;
    this.timer = null;
  }

  open() {
    this.stopped = false;
    if (this.ws) return; // already open or opening
    const params = new URLSearchParams({ token: api.token || "", ...this.query() });
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}${this.path}?${params}`);
    this.ws = ws;
    this.onState(this.retry ? "reconnecting" : "connecting");
    ws.onopen = () => {
      this.retry = 0;
      this.lastFrameAt = Date.now();
      this.onState("online");
    };
    ws.onmessage = (ev) => {
      this.lastFrameAt = Date.now();
      let frame;
      try { frame = JSON.parse(ev.data); } catch { return; }
      this.onFrame(frame);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      if (ev.code === REPLACED) { this.onState("replaced"); return; }
      this.reconnectLater();
    };
    clearInterval(this.watchdog);
    this.watchdog = setInterval(() => this.check(), Math.min(10_000, this.silenceMs / 3));
  }

  reconnectLater() {
    this.onState("reconnecting");
    // 0.5 s, 1 s, 2 s … up to 10 s, with jitter so a restarted server is not stampeded.
    const delay = Math.min(10_000, 500 * 2 ** this.retry) * (0.75 + Math.random() / 2);
    this.retry += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), delay);
  }

  check() {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastFrameAt > this.silenceMs) {
      this.ws = null;
      ws.onclose = null;
      ws.close();
      this.reconnectLater();
    } else if (this.ping) {
      ws.send(JSON.stringify(this.ping));
    }
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.watchdog);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
    this.onState("offline");
  }
}

export class AgentLink {
  constructor({ onFrame, onState }) {
    this.lastSeq = null;
    this.resyncing = false;
    this.socket = new ReconnectingSocket("/agent/ws", {
      onState,
      ping: { type: "ping" },
      query: () => (this.lastSeq === null ? {} : { last_seq: String(this.lastSeq) }),
      onFrame: (frame) => {
        if (typeof frame.seq === "number") {
          if (frame.type === "snapshot") {
            this.lastSeq = frame.seq;
          } else if (this.lastSeq !== null && frame.seq <= this.lastSeq) {
            return; // seen already
          } else if (this.lastSeq !== null && frame.seq > this.lastSeq + 1) {
            // A hole: ask for what is missing instead of acting out of order.
            if (!this.resyncing) this.send({ type: "resync", last_seq: this.lastSeq });
            this.resyncing = true;
            return;
          } else {
            this.lastSeq = frame.seq;
            this.resyncing = false;
          }
        }
        onFrame(frame);
      },
    });
  }
  open() { this.socket.open(); }
  close() { this.socket.close(); this.lastSeq = null; }
  send(message) { return this.socket.send(message); }
}
