/*
 * The contact centre's web chat widget. Embed on any page:
 *
 *   <script src="https://support.example.com/chat/widget.js" async
 *           data-topic="billing" data-title="Chat with us" data-lang="en"></script>
 *
 * Plain JavaScript, no build step. It draws into its own shadow root, so the page's styles do
 * not leak in, and it only ever sets text with textContent: what agents and customers type is
 * data, never markup. The protocol is in docs/protocol.md ("Customer chat socket").
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.__contactCenterChat) return;
  window.__contactCenterChat = true;

  var server = new URL(script.src, location.href).origin;
  var wsUrl = server.replace(/^http/, "ws") + "/chat/ws";
  var config = {
    topic: script.getAttribute("data-topic") || "",
    title: script.getAttribute("data-title") || "",
    lang: script.getAttribute("data-lang") || navigator.language || "zh-CN",
    open: script.getAttribute("data-open") === "true"
  };
  var zh = /^zh/i.test(config.lang);
  var storageKey = "contactcenter-chat:" + server;
  var MAX_BODY = 4000;

  var TEXT = zh ? {
    title: "在线客服", open: "在线咨询", close: "关闭", name: "您的称呼",
    reach: "手机号或电子邮箱", topic: "咨询类型", message: "您的问题(可选)",
    leave: "请留言", start: "开始咨询", leaveSend: "提交留言", send: "发送",
    placeholder: "输入消息…", typing: "客服正在输入…", waiting: "正在为您接通客服…",
    connected: "客服已接入", closedByAgent: "本次会话已结束。如需继续咨询,请直接发送消息。",
    end: "结束会话", ended: "会话已结束。", again: "重新咨询", notSent: "未发送",
    needReach: "请填写手机号或电子邮箱", needMessage: "请填写留言内容",
    tooLong: "消息不能超过" + MAX_BODY + "字", offline: "连接中断,正在重连…",
    you: "我", agent: "客服"
  } : {
    title: "Chat with us", open: "Chat", close: "Close", name: "Your name",
    reach: "Phone or email", topic: "Topic", message: "Your question (optional)",
    leave: "Your message", start: "Start chat", leaveSend: "Leave message", send: "Send",
    placeholder: "Type a message…", typing: "Agent is typing…",
    waiting: "Waiting for an agent…", connected: "An agent has joined",
    closedByAgent: "This conversation is closed. Write again if you need more help.",
    end: "End chat", ended: "The chat has ended.", again: "New chat", notSent: "not sent",
    needReach: "Please give a phone number or an email address",
    needMessage: "Please write your message", tooLong: "At most " + MAX_BODY + " characters",
    offline: "Connection lost, reconnecting…", you: "You", agent: "Agent"
  };

  var CSS = [
    ":host { all: initial; }",
    ".ccw { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000;",
    "  font: 14px/1.4 system-ui, -apple-system, 'PingFang SC', 'Microsoft YaHei', sans-serif;",
    "  color: #1f2328; }",
    ".ccw-launch { border: 0; border-radius: 24px; padding: 12px 20px; background: #1a73e8;",
    "  color: #fff; font: inherit; cursor: pointer; box-shadow: 0 2px 8px rgba(0,0,0,.25); }",
    ".ccw-badge { display: inline-block; min-width: 8px; height: 8px; margin-left: 6px;",
    "  border-radius: 4px; background: #f44; vertical-align: middle; }",
    ".ccw-panel { width: 340px; max-width: calc(100vw - 40px); height: 480px;",
    "  max-height: calc(100vh - 40px); display: flex; flex-direction: column; background: #fff;",
    "  border-radius: 10px; overflow: hidden; box-shadow: 0 4px 24px rgba(0,0,0,.25); }",
    ".ccw-head { display: flex; align-items: center; gap: 8px; padding: 10px 12px;",
    "  background: #1a73e8; color: #fff; }",
    ".ccw-head strong { flex: 1; }",
    ".ccw-head small { display: block; font-weight: normal; opacity: .85; }",
    ".ccw-head button { border: 0; background: transparent; color: #fff; font: inherit;",
    "  cursor: pointer; padding: 2px 6px; }",
    ".ccw-body { flex: 1; overflow-y: auto; padding: 12px; background: #f6f8fa; }",
    ".ccw-form label { display: block; margin: 0 0 10px; font-size: 13px; }",
    ".ccw-form input, .ccw-form select, .ccw-form textarea, .ccw-compose textarea {",
    "  box-sizing: border-box; width: 100%; margin-top: 4px; padding: 7px 8px; font: inherit;",
    "  border: 1px solid #c8ccd0; border-radius: 6px; background: #fff; color: inherit; }",
    ".ccw-form textarea { height: 80px; resize: vertical; }",
    ".ccw-btn { border: 0; border-radius: 6px; padding: 8px 14px; background: #1a73e8;",
    "  color: #fff; font: inherit; cursor: pointer; }",
    ".ccw-btn[disabled] { opacity: .6; cursor: default; }",
    ".ccw-note { margin: 0 0 10px; padding: 8px; border-radius: 6px; background: #fff4ce; }",
    ".ccw-err { color: #c62828; margin: 6px 0; white-space: pre-wrap; }",
    ".ccw-msg { max-width: 80%; margin: 6px 0; padding: 7px 10px; border-radius: 10px;",
    "  white-space: pre-wrap; word-wrap: break-word; }",
    ".ccw-customer { margin-left: auto; background: #1a73e8; color: #fff; }",
    ".ccw-agent { background: #fff; border: 1px solid #e1e4e8; }",
    ".ccw-pending { opacity: .6; }",
    ".ccw-failed { background: #fdecea; color: #c62828; }",
    ".ccw-at { display: block; font-size: 11px; opacity: .7; margin-top: 2px; }",
    ".ccw-sys { text-align: center; font-size: 12px; color: #57606a; margin: 8px 0; }",
    ".ccw-typing { min-height: 18px; padding: 0 12px; font-size: 12px; color: #57606a;",
    "  background: #f6f8fa; }",
    ".ccw-compose { display: flex; gap: 6px; padding: 8px; border-top: 1px solid #e1e4e8; }",
    ".ccw-compose textarea { margin: 0; height: 40px; resize: none; }",
    ".ccw-hidden { display: none !important; }"
  ].join("\n");

  // -- small DOM helpers: every piece of text goes in with textContent -------------------------
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }
  function field(labelText, input) {
    var label = el("label", null, labelText);
    label.appendChild(input);
    return label;
  }
  function clientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
  }
  function timeOf(iso) {
    var d = iso ? new Date(iso) : new Date();
    return isNaN(d) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  function loadToken() {
    try { return localStorage.getItem(storageKey); } catch (e) { return null; }
  }
  function saveToken(token) {
    try {
      if (token) localStorage.setItem(storageKey, token);
      else localStorage.removeItem(storageKey);
    } catch (e) { /* private mode: the chat just does not survive a reload */ }
  }

  // -- state --------------------------------------------------------------------------------
  var state = {
    token: loadToken(),
    ws: null,
    session: false,       // the server has answered start/resume on the current socket
    wantSocket: false,    // reconnect when the socket drops
    retry: 0,
    shown: {},            // message id -> element
    pending: {},          // client id -> {body, node}
    status: null,
    typingTimer: null,
    lastTypingSent: 0,
    topics: null,
    onFormError: null,
    isOpen: false
  };

  // -- the frame ----------------------------------------------------------------------------
  var host = el("div");
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var style = el("style", null, CSS);
  var wrap = el("div", "ccw");
  var launch = el("button", "ccw-launch", config.title || TEXT.open);
  var badge = el("span", "ccw-badge ccw-hidden");
  launch.appendChild(badge);
  var panel = el("div", "ccw-panel ccw-hidden");
  var head = el("div", "ccw-head");
  var heading = el("strong", null, config.title || TEXT.title);
  var subtitle = el("small");
  heading.appendChild(subtitle);
  var endBtn = el("button", "ccw-hidden", TEXT.end);
  var closeBtn = el("button", null, "×");
  closeBtn.setAttribute("aria-label", TEXT.close);
  head.appendChild(heading);
  head.appendChild(endBtn);
  head.appendChild(closeBtn);
  var body = el("div", "ccw-body");
  var typing = el("div", "ccw-typing");
  var compose = el("form", "ccw-compose ccw-hidden");
  var input = el("textarea");
  input.setAttribute("placeholder", TEXT.placeholder);
  input.setAttribute("maxlength", String(MAX_BODY));
  var sendBtn = el("button", "ccw-btn", TEXT.send);
  sendBtn.type = "submit";
  compose.appendChild(input);
  compose.appendChild(sendBtn);
  panel.appendChild(head);
  panel.appendChild(body);
  panel.appendChild(typing);
  panel.appendChild(compose);
  wrap.appendChild(launch);
  wrap.appendChild(panel);
  root.appendChild(style);
  root.appendChild(wrap);

  function setOpen(open) {
    state.isOpen = open;
    panel.classList.toggle("ccw-hidden", !open);
    launch.classList.toggle("ccw-hidden", open);
    if (open) {
      badge.classList.add("ccw-hidden");
      if (!state.token && !state.session) showForm();
      body.scrollTop = body.scrollHeight;
    }
  }
  launch.addEventListener("click", function () { setOpen(true); });
  closeBtn.addEventListener("click", function () { setOpen(false); });
  endBtn.addEventListener("click", function () { send({ type: "end" }); });

  // -- pre-chat (or leave-a-message) form ----------------------------------------------------
  function showForm() {
    clear(body);
    compose.classList.add("ccw-hidden");
    endBtn.classList.add("ccw-hidden");
    subtitle.textContent = "";
    if (state.topics === null) {
      var req = new XMLHttpRequest();
      req.open("GET", server + "/chat/topics?lang=" + encodeURIComponent(config.lang));
      req.onload = function () {
        try { state.topics = JSON.parse(req.responseText); } catch (e) { state.topics = {}; }
        if (!state.session && !state.token) showForm();
      };
      req.onerror = function () { body.appendChild(el("p", "ccw-err", TEXT.offline)); };
      req.send();
      return;
    }
    var topics = (state.topics.topics || []).filter(function (t) {
      return !config.topic || t.topic === config.topic;
    });
    var form = el("form", "ccw-form");
    var note = el("p", "ccw-note ccw-hidden", state.topics.closed_text || "");
    var name = el("input");
    name.setAttribute("maxlength", "100");
    name.setAttribute("autocomplete", "name");
    var reach = el("input");
    reach.setAttribute("maxlength", "254");
    reach.setAttribute("autocomplete", "email");
    var select = el("select");
    topics.forEach(function (t) {
      var option = el("option", null, t.name);
      option.value = t.topic;
      select.appendChild(option);
    });
    var message = el("textarea");
    message.setAttribute("maxlength", String(MAX_BODY));
    var messageLabel = field(TEXT.message, message);
    var submit = el("button", "ccw-btn", TEXT.start);
    submit.type = "submit";
    var error = el("p", "ccw-err");

    function chosen() {
      var value = select.value;
      for (var i = 0; i < topics.length; i++) if (topics[i].topic === value) return topics[i];
      return topics[0] || { topic: config.topic || undefined, open: true };
    }
    function refresh() {
      var closed = chosen().open === false;
      note.classList.toggle("ccw-hidden", !closed);
      messageLabel.firstChild.textContent = closed ? TEXT.leave : TEXT.message;
      submit.textContent = closed ? TEXT.leaveSend : TEXT.start;
    }
    select.addEventListener("change", refresh);

    form.appendChild(note);
    form.appendChild(field(TEXT.name, name));
    form.appendChild(field(TEXT.reach, reach));
    if (topics.length > 1) form.appendChild(field(TEXT.topic, select));
    form.appendChild(messageLabel);
    form.appendChild(error);
    form.appendChild(submit);
    body.appendChild(form);
    refresh();

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var topic = chosen();
      var contact = reach.value.trim();
      var text = message.value.trim();
      if (!contact) { error.textContent = TEXT.needReach; return; }
      if (topic.open === false && !text) { error.textContent = TEXT.needMessage; return; }
      var start = {
        type: "start", name: name.value.trim(), topic: topic.topic,
        language: config.lang, page: location.href.slice(0, 500)
      };
      start[contact.indexOf("@") >= 0 ? "email" : "phone"] = contact;
      if (text) start.message = text;
      error.textContent = "";
      submit.disabled = true;
      state.onFormError = function (message) {
        error.textContent = message;
        submit.disabled = false;
      };
      connect(start);
    });
  }

  // -- the conversation ----------------------------------------------------------------------
  function showChat() {
    if (!body.querySelector(".ccw-log")) {
      clear(body);
      body.appendChild(el("div", "ccw-log"));
    }
    compose.classList.remove("ccw-hidden");
    endBtn.classList.remove("ccw-hidden");
  }
  function log() { return body.querySelector(".ccw-log") || body; }
  function scroll() { body.scrollTop = body.scrollHeight; }
  function system(text, cls) {
    log().appendChild(el("div", cls || "ccw-sys", text));
    scroll();
  }

  function render(message, live) {
    if (state.shown[message.id]) return;
    var mine = message.from === "customer";
    var pending = message.client_id && state.pending[message.client_id];
    var node = pending ? pending.node : el("div");
    node.className = "ccw-msg " + (mine ? "ccw-customer" : "ccw-agent");
    clear(node);
    node.appendChild(document.createTextNode(message.body));
    node.appendChild(el("span", "ccw-at", timeOf(message.at)));
    if (pending) delete state.pending[message.client_id];
    else log().appendChild(node);
    state.shown[message.id] = node;
    if (!mine) {
      hideTyping();
      if (live && !state.isOpen) badge.classList.remove("ccw-hidden");
    }
    scroll();
  }

  function setStatus(status, agent) {
    if (status === state.status) return;
    var before = state.status;
    state.status = status;
    subtitle.textContent = status === "waiting" ? TEXT.waiting
      : status === "connected" ? (agent || TEXT.agent) : "";
    if (before === null) return;  // the state on (re)connect, not news
    if (status === "connected") system(agent ? TEXT.connected + ": " + agent : TEXT.connected);
    else if (status === "closed") system(TEXT.closedByAgent);
    else if (status === "waiting") system(TEXT.waiting);
  }

  function showTyping() {
    typing.textContent = TEXT.typing;
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(hideTyping, 5000);
  }
  function hideTyping() {
    clearTimeout(state.typingTimer);
    typing.textContent = "";
  }

  compose.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    if (text.length > MAX_BODY) { system(TEXT.tooLong, "ccw-err"); return; }
    var id = clientId();
    var node = el("div", "ccw-msg ccw-customer ccw-pending", text);
    log().appendChild(node);
    state.pending[id] = { body: text, node: node };
    input.value = "";
    scroll();
    send({ type: "message", id: id, body: text });
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      compose.requestSubmit ? compose.requestSubmit() : sendBtn.click();
    }
  });
  input.addEventListener("input", function () {
    var now = Date.now();
    if (state.session && now - state.lastTypingSent > 3000) {
      state.lastTypingSent = now;
      send({ type: "typing" });
    }
  });

  // -- the socket ---------------------------------------------------------------------------
  function send(frame) {
    if (state.ws && state.ws.readyState === 1 && state.session) {
      state.ws.send(JSON.stringify(frame));
    }
    // Otherwise a line stays pending and goes out again once the chat is resumed.
  }

  function connect(first) {
    var ws = new WebSocket(wsUrl);
    state.ws = ws;
    state.session = false;
    state.wantSocket = true;
    ws.onopen = function () { ws.send(JSON.stringify(first)); };
    ws.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (ws === state.ws) onFrame(frame);
    };
    ws.onclose = function () {
      if (ws !== state.ws) return;
      state.session = false;
      if (!state.wantSocket || !state.token) {
        if (state.onFormError) state.onFormError(TEXT.offline);
        return;
      }
      var delay = Math.min(15000, 1000 * Math.pow(2, state.retry++));
      if (state.retry === 2) system(TEXT.offline);
      setTimeout(function () {
        if (state.wantSocket && state.token && ws === state.ws) resume();
      }, delay);
    };
  }

  function resume() {
    connect({ type: "resume", token: state.token, language: config.lang });
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "session":
        state.session = true;
        state.retry = 0;
        state.token = frame.token;
        state.onFormError = null;
        saveToken(frame.token);
        showChat();
        (frame.history || []).forEach(function (m) { render(m, false); });
        setStatus(frame.status);
        // Lines typed while the socket was down go out now; their ids make a resend harmless.
        Object.keys(state.pending).forEach(function (id) {
          state.ws.send(JSON.stringify({ type: "message", id: id, body: state.pending[id].body }));
        });
        if (config.open || state.isOpen) setOpen(true);
        break;
      case "message":
        render(frame.message, true);
        break;
      case "typing":
        showTyping();
        break;
      case "status":
        setStatus(frame.status, frame.agent);
        break;
      case "closed":
        system(frame.text, "ccw-note");
        break;
      case "ended":
        finish();
        break;
      case "error":
        onError(frame);
        break;
    }
  }

  function onError(frame) {
    if (frame.code === "unknown-session") {
      state.token = null;
      state.wantSocket = false;
      saveToken(null);
      showForm();
      return;
    }
    if (!state.session) {
      var showOnForm = state.onFormError;
      state.onFormError = null;  // the close that follows is expected, not "offline"
      state.wantSocket = false;
      if (state.ws) state.ws.close();
      if (showOnForm) showOnForm(frame.message);
      return;
    }
    if (frame.id && state.pending[frame.id]) {
      var node = state.pending[frame.id].node;
      node.classList.remove("ccw-pending");
      node.classList.add("ccw-failed");
      node.appendChild(el("span", "ccw-at", TEXT.notSent + ": " + frame.message));
      delete state.pending[frame.id];
      return;
    }
    system(frame.message, "ccw-err");
  }

  function finish() {
    state.wantSocket = false;
    state.token = null;
    state.session = false;
    state.status = null;
    state.pending = {};
    saveToken(null);
    hideTyping();
    system(TEXT.ended);
    compose.classList.add("ccw-hidden");
    endBtn.classList.add("ccw-hidden");
    subtitle.textContent = "";
    var again = el("button", "ccw-btn", TEXT.again);
    again.addEventListener("click", function () {
      state.shown = {};
      showForm();
    });
    log().appendChild(again);
    scroll();
  }

  function mount() {
    document.body.appendChild(host);
    if (state.token) resume();
    if (config.open) setOpen(true);
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
