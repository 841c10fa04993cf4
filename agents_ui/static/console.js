// A minimal console: log in, go available, see offers with the screen-pop, accept or reject,
// wrap up. Everything a customer typed is inserted with textContent, never as HTML.
"use strict";
const $ = (sel) => document.querySelector(sel);
let token = null, ws = null, lastSeq = null, wantStatus = "away";

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

$("#login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  const res = await fetch("/api/v1/auth/login", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({username: form.get("username"), password: form.get("password")}),
  });
  const data = await res.json();
  if (!res.ok) { $("#login-error").textContent = data.error.message; return; }
  token = data.token;
  $("#login").hidden = true; $("#console").hidden = false;
  connect();
});

function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const q = lastSeq === null ? "" : `&last_seq=${lastSeq}`;
  ws = new WebSocket(`${proto}://${location.host}/agent/ws?token=${encodeURIComponent(token)}${q}`);
  ws.onopen = () => {
    $("#conn").textContent = "connected"; $("#conn").className = "conn on";
    if (wantStatus === "available") send({type: "status", status: "available"});
  };
  ws.onclose = () => {
    $("#conn").textContent = "reconnecting…"; $("#conn").className = "conn off";
    setTimeout(connect, 1000);
  };
  ws.onmessage = (ev) => handle(JSON.parse(ev.data));
}

function send(m) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(m)); }

$("#status").addEventListener("change", (ev) => {
  wantStatus = ev.target.value; send({type: "status", status: wantStatus});
});

function handle(m) {
  if (typeof m.seq === "number") lastSeq = m.seq;
  if (m.type === "status") $("#status").value = m.status;
  if (m.type === "offer") showOffer(m);
  if (m.type === "offer_revoked") document.getElementById(`offer-${m.contact_id}`)?.remove();
  if (m.type === "contact") updateContact(m.contact);
}

function showOffer(m) {
  const c = m.contact, cust = m.customer;
  const card = el("div", undefined, "card"); card.id = `offer-${c.id}`;
  const head = el("div");
  head.append(el("strong", cust.name), " ", el("span", cust.tier || "–", "tier"), " ",
              el("span", `${c.channel} · ${c.queue || ""}`));
  card.append(head, el("p", c.body || c.subject || ""));
  const hist = el("ul", undefined, "history");
  for (const h of m.history || []) hist.append(el("li", `${h.created_at.slice(0, 10)} ${h.channel} ${h.disposition || h.state}`));
  card.append(hist);
  const accept = el("button", "Accept"), reject = el("button", "Reject");
  accept.onclick = () => send({type: "accept", contact_id: c.id});
  reject.onclick = () => send({type: "reject", contact_id: c.id});
  card.append(accept, " ", reject);
  $("#offers").append(card);
}

function updateContact(c) {
  const card = document.getElementById(`offer-${c.id}`);
  if (!card) return;
  if (c.state === "active") {
    card.querySelectorAll("button").forEach((b) => b.remove());
    const end = el("button", "End");
    end.onclick = () => send({type: "end", contact_id: c.id});
    card.append(end);
  } else if (c.state === "wrapup") {
    card.querySelectorAll("button").forEach((b) => b.remove());
    const code = el("input"); code.placeholder = "disposition";
    const done = el("button", "Wrap up");
    done.onclick = () => send({type: "wrapup", contact_id: c.id, disposition: code.value});
    card.append(code, done);
  } else if (["closed", "abandoned", "queued"].includes(c.state)) {
    card.remove();
  }
}
