// shopchat's built-in web client. Plain JavaScript, no build step, nothing loaded from
// elsewhere; it speaks only the protocol of PROTOCOL.md (HTTP API §8, frames §2-§7).
"use strict";

// Everything is relative to where the page is served, so it works under any prefix.
const BASE = location.pathname.replace(/[^/]*$/, "");
const WS_URL = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + BASE;
const CHAT_TYPE = { DIRECT: 1, GROUP: 2, SYSTEM: 3, SERVICE: 4 };
const $ = (id) => document.getElementById(id);

const state = {
  token: localStorage.getItem("shopchat.token"),
  me: null,          // {id, nickname, avatar}
  agent: localStorage.getItem("shopchat.agent") === "1",
  online: false,     // the agent's flag, as this page last set it
  ws: null,
  pending: [],       // resolvers of requests, in order (replies come in request order)
  chat: null,        // the open conversation
  page: 1,           // history pages loaded
  lastMsgId: 0,      // for chat.sync after a reconnect
  readPending: false, // messages shown in the open chat since the last read mark
};

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

// A picture when there is one, else the name's first letter.
function avatar(url, name) {
  if (url) return el("img", { class: "avatar", src: url, alt: "" });
  return el("span", { class: "avatar" }, (name || "?").slice(0, 1).toUpperCase());
}

function showError(where, text) { $(where).textContent = text || ""; }

// ---- HTTP API (§8) ----

async function api(path, body) {
  const res = await fetch(BASE + path, {
    method: "POST",
    headers: Object.assign({ "Content-Type": "application/json" },
      state.token ? { authorizations: "bear " + state.token } : {}),
    body: JSON.stringify(body || {}),
  });
  const json = await res.json();
  if (json.code === 401) { logout(); throw new Error(json.msg); }
  return json;
}

async function login(register) {
  showError("login-error", "");
  const body = { username: $("username").value.trim(), password: $("password").value };
  const r = await api(register ? "login/register" : "login", body);
  if (r.code !== 1) { showError("login-error", r.msg); return; }
  state.token = r.result.token;
  localStorage.setItem("shopchat.token", state.token);
  await start();
}

function logout() {
  localStorage.removeItem("shopchat.token");
  state.token = null;
  if (state.ws) { state.ws.onclose = null; state.ws.close(); state.ws = null; }
  $("main").hidden = true;
  $("login").hidden = false;
}

// ---- WebSocket (§1, §2) ----

function request(cls, action, content) {
  return new Promise((resolve) => {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
      resolve({ code: 0, msg: "not connected" });
      return;
    }
    state.pending.push(resolve);
    state.ws.send(JSON.stringify({ class: cls, action, content: content || {} }));
  });
}

function connect() {
  const ws = new WebSocket(WS_URL + "?token=" + encodeURIComponent(state.token));
  state.ws = ws;
  setStatus("connecting…");
  ws.onopen = async () => {
    setStatus("connected");
    if (state.agent && state.online) await request("service", "setOnline", { online: true });
    await catchUp();
    await refreshList();
  };
  ws.onmessage = (ev) => {
    let f;
    try { f = JSON.parse(ev.data); } catch { return; }
    if (f.code === 200) { onPush(f.result || {}); return; }
    // Conversation events (202: assigned, queue, resolved…) change the lists, not the chat.
    if (f.code >= 202) { scheduleRefresh(); return; }
    const resolve = state.pending.shift();
    if (resolve) resolve(f);
  };
  ws.onclose = () => {
    for (const resolve of state.pending.splice(0)) resolve({ code: 0, msg: "disconnected" });
    setStatus("disconnected, retrying…");
    setTimeout(() => { if (state.token && state.ws === ws) connect(); }, 2000);
  };
}

function setStatus(text) { $("status").textContent = text; }

// Messages that arrived while disconnected (§7 chat.sync); pushes resume after.
async function catchUp() {
  if (!state.lastMsgId) return;
  for (;;) {
    const r = await request("chat", "sync", { since_msg_id: state.lastMsgId, limit: 500 });
    if (r.code !== 201) return;
    for (const m of r.result.rows) onPush(m, true);
    if (!r.result.has_more) return;
  }
}

// ---- conversations ----

// What sendMsg needs for a conversation, from a recent-chat row or a push.
function chatFromRow(row) {
  const chat = { chat_id: row.chat_id, chat_type: row.chat_type, title: row.friend_name, shop_id: row.shop_id || 0 };
  chat.to = row.friend_uid;
  chat.role = state.agent && row.chat_type === CHAT_TYPE.SERVICE ? 1 : 0;
  return chat;
}

async function refreshList() {
  const r = await request("user", "recentChat", { is_service: state.agent });
  const ul = $("conversations");
  ul.replaceChildren();
  if (r.code !== 102) { showError("chat-error", r.msg); return; }
  for (const row of r.result.rows) {
    const li = el("li", { "data-chat": row.chat_id, onclick: () => openChat(chatFromRow(row)) },
      avatar(row.friend_avatar, row.friend_name),
      el("div", { class: "who" }, el("div", {}, row.friend_name),
        el("div", { class: "last" }, row.msg_type === 2 ? "[image]" : row.last_msg)),
      row.unread_count > 0 ? el("span", { class: "badge unread" }, String(row.unread_count)) : null);
    if (state.chat && state.chat.chat_id === row.chat_id) li.classList.add("current");
    ul.append(li);
  }
  const total = $("total-unread");
  total.hidden = !(r.result.unread_count > 0);
  total.textContent = String(r.result.unread_count);
}

async function loadContacts() {
  const r = await api("user/index");
  if (r.code !== 1) return;
  state.me = r.result.mine;
  $("me").textContent = `${state.me.nickname} (uid ${state.me.id})`;
  $("me").dataset.uid = state.me.id;
  const ul = $("contacts");
  ul.replaceChildren();
  for (const group of r.result.friend) {
    for (const f of group.list) {
      ul.append(el("li", { "data-uid": f.id, onclick: () => openChat({ chat_type: CHAT_TYPE.DIRECT, to: f.id, title: f.username, role: 0, shop_id: 0 }) },
        avatar(f.avatar, f.username), el("div", { class: "who" }, f.username)));
    }
  }
}

async function openChat(chat) {
  state.chat = chat;
  state.page = 0;
  $("chat").hidden = false;
  $("chat-title").textContent = chat.title;
  $("transfer-form").hidden = !(state.agent && chat.chat_type === CHAT_TYPE.SERVICE);
  $("messages").replaceChildren();
  showError("chat-error", "");
  for (const li of document.querySelectorAll("#conversations li")) li.classList.toggle("current", li.dataset.chat === chat.chat_id);
  await loadOlder();
  if (chat.chat_id) {
    await request("chat", "setChatRead", { chat_id: chat.chat_id, role_type: chat.role });
    await refreshList();
  }
}

// History (§8 /user/getChatRecord): 20 a page, newest first; older pages go on top.
async function loadOlder() {
  const chat = state.chat;
  const body = chat.chat_id ? { chat_id: chat.chat_id } : { to_uid: chat.to, chat_type: chat.chat_type };
  body.page = state.page + 1;
  if (chat.chat_type === CHAT_TYPE.SERVICE) { body.shop_id = chat.shop_id; body.role_type = chat.role; }
  const r = await api("user/getChatRecord", body);
  if (state.chat !== chat) return;
  if (r.code !== 1) { showError("chat-error", r.msg); return; }
  state.page += 1;
  const list = $("messages");
  const first = list.firstChild;
  for (const m of r.result.rows.slice().reverse()) {
    list.insertBefore(messageItem({ mine: m.mine, nickname: m.nickname, msg_type: m.msg_type, msg: m.msg, msg_id: m.msg_id }), first);
  }
  $("older-button").hidden = state.page * 20 >= r.result.total;
  if (state.page === 1) list.scrollTop = list.scrollHeight;
}

function messageItem(m) {
  const body = m.msg_type === 2
    ? el("img", { class: "picture", src: m.msg, alt: "image" })
    : document.createTextNode(m.msg);
  return el("li", { class: m.mine ? "mine" : "theirs", "data-msg-id": m.msg_id || "" },
    el("div", { class: "from" }, m.nickname || ""), el("div", { class: "body" }, body));
}

function appendMessage(m) {
  if (m.msg_id && document.querySelector(`#messages li[data-msg-id="${m.msg_id}"]`)) return;
  const list = $("messages");
  list.append(messageItem(m));
  list.scrollTop = list.scrollHeight;
}

// A message pushed (code 200) or caught up by chat.sync.
function onPush(p, fromSync) {
  if (p.msg_id) state.lastMsgId = Math.max(state.lastMsgId, p.msg_id);
  // chat.sync also returns stored events (a resolution, a rating request): not messages.
  if (p.event) return;
  const chat = state.chat;
  const mine = p.id === state.me?.id || (state.agent && p.chat_type === CHAT_TYPE.SERVICE && p.id === undefined);
  if (chat && (p.chat_id === chat.chat_id || (!chat.chat_id && matchesNew(chat, p)))) {
    if (!chat.chat_id) chat.chat_id = p.chat_id;
    appendMessage({ mine, nickname: p.service_nickname || p.nickname, msg_type: p.msg_type, msg: p.msg, msg_id: p.msg_id });
    state.readPending = true;
  }
  if (!fromSync) scheduleRefresh();
}

// A burst of pushes costs one read mark and one list reload, not one per message.
let refreshTimer = null;
function scheduleRefresh() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(async () => {
    refreshTimer = null;
    const chat = state.chat;
    if (state.readPending && chat && chat.chat_id) {
      state.readPending = false;
      await request("chat", "setChatRead", { chat_id: chat.chat_id, role_type: chat.role });
    }
    await refreshList();
  }, 100);
}

function matchesNew(chat, p) {
  if (chat.chat_type !== p.chat_type) return false;
  if (chat.chat_type === CHAT_TYPE.SERVICE) return p.shop_id === chat.shop_id;
  return p.id === chat.to;
}

async function send(msgType, msg) {
  const chat = state.chat;
  if (!chat || !msg) return;
  const content = {
    chat_type: chat.chat_type, msg_type: msgType, msg, to_uid: chat.to,
    chat_id: chat.chat_id || null, client_msg_id: "web-" + Date.now() + "-" + Math.random().toString(36).slice(2, 10),
  };
  if (chat.chat_type === CHAT_TYPE.SERVICE) { content.shop_id = chat.shop_id; content.role_type = chat.role; }
  const r = await request("chat", "sendMsg", content);
  if (r.code !== 1) { showError("chat-error", r.msg); return; }
  showError("chat-error", "");
  chat.chat_id = r.result.chat_id;
  state.lastMsgId = Math.max(state.lastMsgId, r.result.msg_id);
  if (state.chat === chat) appendMessage({ mine: true, nickname: state.me.nickname, msg_type: msgType, msg, msg_id: r.result.msg_id });
  scheduleRefresh();
}

async function upload(file) {
  const form = new FormData();
  form.append("file", file);
  const res = await fetch(BASE + "user/upload", { method: "POST", headers: { authorizations: "bear " + state.token }, body: form });
  const json = await res.json();
  if (json.code !== 0 || !json.data) { showError("chat-error", json.msg || "upload failed"); return; }
  await send(2, json.data.src);
}

// ---- agent mode (§5, §7) ----

async function setAgentMode(on) {
  state.agent = on;
  localStorage.setItem("shopchat.agent", on ? "1" : "0");
  $("agent-mode").checked = on;
  $("online-button").hidden = !on;
  $("new-user-chat").hidden = on;
  $("new-shop-chat").hidden = on;
  $("contacts").hidden = on;
  $("contacts-title").hidden = on;
  state.chat = null;
  $("chat").hidden = true;
  await refreshList();
}

async function toggleOnline() {
  const r = await request("service", "setOnline", { online: !state.online });
  if (r.code !== 1) { showError("chat-error", r.msg); return; }
  state.online = !state.online;
  $("online-button").textContent = state.online ? "Go offline" : "Go online";
  $("online-button").dataset.online = state.online ? "1" : "0";
}

async function transfer(to) {
  const r = await request("service", "transfer", { chat_id: state.chat.chat_id, to_uid: Number(to) });
  showError("chat-error", r.code === 1 ? "" : r.msg);
  if (r.code === 1) { $("transfer-to").value = ""; await refreshList(); }
}

// ---- wiring ----

async function start() {
  $("login").hidden = true;
  $("main").hidden = false;
  await loadContacts();
  connect();
  await setAgentMode(state.agent);
}

function on(id, event, handler) {
  $(id).addEventListener(event, (e) => { e.preventDefault(); handler(e); });
}

on("login-form", "submit", () => login(false));
on("register-button", "click", () => login(true));
on("logout-button", "click", logout);
on("agent-mode", "change", (e) => setAgentMode(e.target.checked));
on("online-button", "click", toggleOnline);
on("older-button", "click", loadOlder);
on("transfer-form", "submit", () => transfer($("transfer-to").value));
on("composer", "submit", async () => { const t = $("text"); const msg = t.value; t.value = ""; await send(1, msg.trim()); });
$("image").addEventListener("change", async (e) => { const f = e.target.files[0]; e.target.value = ""; if (f) await upload(f); });
on("new-user-chat", "submit", () => {
  const uid = Number($("new-user").value);
  if (uid > 0) openChat({ chat_type: CHAT_TYPE.DIRECT, to: uid, title: "user " + uid, role: 0, shop_id: 0 });
});
on("new-shop-chat", "submit", () => {
  const shop = Number($("new-shop").value);
  if (shop > 0) openChat({ chat_type: CHAT_TYPE.SERVICE, to: shop, shop_id: shop, title: "shop " + shop, role: 0 });
});
// Keep-alive: the original client's bare "ping" (answered with code -1) before the server's idle timeout.
setInterval(() => {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) { state.pending.push(() => {}); state.ws.send("ping"); }
}, 50000);

if (state.token) start(); else $("login").hidden = false;
