// shopchat's built-in web client. Plain JavaScript, no build step, nothing loaded from
// elsewhere; it speaks only the protocol of PROTOCOL.md (HTTP API §8, frames §2-§7).
"use strict";

// Everything is relative to where the page is served, so it works under any prefix.
const BASE = location.pathname.replace(/[^/]*$/, "");
const WS_URL = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + BASE;
const CHAT_TYPE = { DIRECT: 1, GROUP: 2, SYSTEM: 3, SERVICE: 4 };
const $ = (id) => document.getElementById(id);

// Languages: 简体中文 and English, from the browser and switchable; strings only, put in
// the page as text, never as HTML.
const STRINGS = {
  zh: {
    language: "语言", username: "用户名", password: "密码", login: "登录", register: "注册",
    logout: "退出", status: "状态", online: "在线", away: "离开", offline: "离线",
    user_id: "用户 ID", shop_id: "店铺 ID", chat_with_user: "发起聊天", contact_shop: "联系店铺",
    conversations: "会话", contacts: "联系人", older: "加载更早的消息", message: "输入消息",
    send: "发送", image: "图片", transfer_to: "转接给", transfer: "转接",
    connecting: "连接中…", connected: "已连接", disconnected: "连接已断开，正在重连…",
    image_short: "[图片]", unverified: "未验证", verified: "已验证", order: "订单", sessions_open: "会话",
    resolve: "结束会话", rate_prompt: "请为本次服务评分", comment: "评价", rate: "提交评价",
    thanks: "感谢您的评价", typing: "正在输入…", recall: "撤回", recalled: "[消息已撤回]",
    queue: "正在排队，您前面还有 {n} 位", read: "已读", unread: "未读",
    send_card: "发送商品", tab_queue: "排队", tab_mine: "我的", tab_resolved: "已结束",
    customer: "客户", past_sessions: "历史会话", their_cards: "发送过的卡片", waiting: "排队中", open: "进行中",
    resolved: "已结束", no_rating: "未评价", new_session: "新的客服会话",
  },
  en: {
    language: "Language", username: "Username", password: "Password", login: "Log in", register: "Register",
    logout: "Log out", status: "Status", online: "Online", away: "Away", offline: "Offline",
    user_id: "user id", shop_id: "shop id", chat_with_user: "Chat with user", contact_shop: "Contact shop",
    conversations: "Conversations", contacts: "Contacts", older: "Load older messages", message: "Message",
    send: "Send", image: "Image", transfer_to: "Transfer to", transfer: "Transfer",
    connecting: "connecting…", connected: "connected", disconnected: "disconnected, retrying…",
    image_short: "[image]", unverified: "unverified", verified: "verified", order: "Order", sessions_open: "sessions",
    resolve: "Resolve", rate_prompt: "How was the service?", comment: "Comment", rate: "Rate",
    thanks: "Thank you for rating", typing: "is typing…", recall: "Recall", recalled: "[message recalled]",
    queue: "You are in the queue: position {n}", read: "read", unread: "sent",
    send_card: "Send this product", tab_queue: "Queue", tab_mine: "Mine", tab_resolved: "Resolved",
    customer: "Customer", past_sessions: "Sessions", their_cards: "Cards sent", waiting: "waiting", open: "open",
    resolved: "resolved", no_rating: "not rated", new_session: "A new conversation",
  },
};
let lang = localStorage.getItem("shopchat.lang") || (/^zh\b/i.test(navigator.language || "") ? "zh" : "en");
const t = (key) => (STRINGS[lang] && STRINGS[lang][key]) || STRINGS.en[key] || key;

function applyLanguage() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  $("language").value = lang;
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  for (const e of document.querySelectorAll("[data-i18n-placeholder]")) {
    e.placeholder = t(e.dataset.i18nPlaceholder);
    e.setAttribute("aria-label", e.placeholder);
  }
  if (state.statusKey) setStatus(state.statusKey);
}

// The platform may open the page with `#token=…`: it is kept, and taken off the address bar.
const hashToken = new URLSearchParams(location.hash.slice(1)).get("token");
if (hashToken) {
  localStorage.setItem("shopchat.token", hashToken);
  history.replaceState(null, "", location.pathname + location.search);
}
// A "咨询商品" link: `?shop=3&product_id=881&title=…&price=…&image=…&sig=…`.
const linkParams = new URLSearchParams(location.search);
const deepLink = Number(linkParams.get("shop")) > 0 ? {
  shop: Number(linkParams.get("shop")),
  card: Object.fromEntries(["product_id", "title", "price", "image", "url", "sig"]
    .filter((k) => linkParams.get(k)).map((k) => [k, linkParams.get(k)])),
} : null;

const state = {
  token: localStorage.getItem("shopchat.token"),
  me: null,          // {id, nickname, avatar}
  agent: false,      // whether service.me says this user is an agent
  desk: null,        // service.me's answer for an agent: shop_id, shop_name, role, status
  statusKey: null,   // the connection state shown
  recallSecs: 120,   // limits.recall_secs' default: how long the recall button stays
  quickReplies: null, // the shop's, once loaded (agents)
  tab: "mine",       // the workbench's list: queue, mine or resolved
  desk_lists: { queue: [], mine: [], resolved: [] }, // chat_ids in each tab, with rows for the queue
  picked: 0,         // the highlighted quick reply
  ws: null,
  pending: [],       // resolvers of requests, in order (replies come in request order)
  chat: null,        // the open conversation
  page: 1,           // history pages loaded
  held: new Map(),   // per conversation (PROTOCOL.md §15): the highest seq held with no hole below
  seen: new Set(),   // msg_ids shown or skipped, to drop a message that comes twice (push and range)
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
  setStatus("connecting");
  ws.onopen = async () => {
    setStatus("connected");
    await loadDesk();
    await catchUp();
    await refreshList();
    if (deepLink && !state.deepLinked) { state.deepLinked = true; await openDeepLink(); }
  };
  ws.onmessage = (ev) => {
    let f;
    try { f = JSON.parse(ev.data); } catch { return; }
    if (f.code === 200) { onPush(f.result || {}); return; }
    if (f.code === 202) { const e = f.result || {}; onEvent(e); noteSeq(e, e.seq); scheduleRefresh(); scheduleDesk(); return; }
    if (f.code === 203) { onTyping(f.result || {}); return; }
    if (f.code === 204) { onReceipt(f.result || {}); return; }
    if (f.code === 205) { const r = f.result || {}; onRecall(r); noteSeq(r, r.seq); return; }
    if (f.code === 206) { catchUp(); return; }
    if (f.code > 206) return;
    const resolve = state.pending.shift();
    if (resolve) resolve(f);
  };
  ws.onclose = () => {
    for (const resolve of state.pending.splice(0)) resolve({ code: 0, msg: "disconnected" });
    setStatus("disconnected");
    setTimeout(() => { if (state.token && state.ws === ws) connect(); }, 2000);
  };
}

function setStatus(key) { state.statusKey = key; $("status").textContent = t(key); $("status").dataset.state = key; }

// No silent gaps (PROTOCOL.md §15). A conversation is its chat_id, with shop_id in
// customer service; a notice to everyone counts its seq in system_0.
function seqKey(row) {
  if (row.broadcast) return "system_0|0";
  return row.chat_id + "|" + (row.chat_type === CHAT_TYPE.SERVICE ? row.shop_id || 0 : 0);
}

// A row with `seq` arrived (a push, an event that is a stored row): the next one moves
// `held` on; one further on means a hole, fetched with chat.range.
function noteSeq(row, seq) {
  if (!seq || !row.chat_id) return;
  const key = seqKey(row);
  const held = state.held.get(key);
  if (held === undefined || seq === held + 1) state.held.set(key, Math.max(held || 0, seq));
  else if (seq > held + 1) fill(key, row.broadcast ? "system_0" : row.chat_id);
}

// Fetches what conversation `key` lacks above `held`, each row shown once.
const filling = new Set();
async function fill(key, chatId) {
  if (filling.has(key)) return;
  filling.add(key);
  try {
    for (;;) {
      const after = state.held.get(key) || 0;
      const r = await request("chat", "range", { chat_id: chatId, after_seq: after, limit: 200 });
      if (r.code !== 201) return;
      for (const row of r.result.rows) {
        if (row.event === "recall") onRecall({ msg_id: row.recalled_msg_id, chat_id: row.chat_id });
        else if (!row.event) onPush(row, true);
      }
      state.held.set(key, Math.max(after, r.result.upto_seq));
      if (!r.result.has_more) return;
    }
  } finally {
    filling.delete(key);
  }
}

// On every (re)connect and on resync: every conversation that moved, its holes filled.
// One seen for the first time counts as held: its history comes with the conversation.
async function catchUp() {
  let after = null;
  for (;;) {
    const r = await request("chat", "heads", after ? { after } : {});
    if (r.code !== 1) return;
    for (const h of r.result.rows) {
      const key = seqKey(h);
      const held = state.held.get(key);
      if (held === undefined) state.held.set(key, h.last_seq);
      else if (h.last_seq > held) await fill(key, h.chat_id);
    }
    if (!r.result.has_more) return;
    after = r.result.next;
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
  state.recent = r.result.rows;
  let rows = r.result.rows;
  if (state.agent) {
    const lists = state.desk_lists;
    const wanted = new Set(lists[state.tab].map((x) => x.chat_id));
    rows = rows.filter((row) => wanted.has(row.chat_id));
    // Waiting conversations may have no row of the shop's yet: the queue's own rows.
    for (const q of lists[state.tab]) {
      if (q.nickname !== undefined && !rows.some((row) => row.chat_id === q.chat_id)) {
        rows.push({ chat_id: q.chat_id, chat_type: CHAT_TYPE.SERVICE, friend_name: q.nickname, friend_avatar: q.avatar,
          friend_uid: q.consumer_uid, shop_id: state.desk.shop_id, last_msg: q.last_msg, unread_count: 0 });
      }
    }
  }
  for (const row of rows) {
    const li = el("li", { "data-chat": row.chat_id, onclick: () => openChat(chatFromRow(row)) },
      avatar(row.friend_avatar, row.friend_name),
      el("div", { class: "who" }, el("div", {}, row.friend_name),
        el("div", { class: "last" }, row.msg_type === 2 ? t("image_short") : row.last_msg)),
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
  document.body.classList.add("in-chat");
  $("chat-title").textContent = chat.title;
  $("chat-logo").hidden = true;
  const service = chat.chat_type === CHAT_TYPE.SERVICE;
  $("transfer-form").hidden = !(state.agent && service);
  if (state.agent && service) loadAgents();
  $("customer-cards").replaceChildren();
  loadCustomer(chat);
  if (!state.agent && service) loadShopHeader(chat);
  $("messages").replaceChildren();
  $("queue-banner").hidden = true;
  $("typing").hidden = true;
  $("rating-form").hidden = true;
  $("deeplink-card").hidden = true;
  $("quick-picker").hidden = true;
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
    list.insertBefore(messageItem({ mine: m.mine, nickname: m.nickname, msg_type: m.msg_type, msg: m.msg, msg_id: m.msg_id, card: m.card, read: m.read, recalled: m.recalled, createtime: m.createtime }), first);
  }
  $("older-button").hidden = state.page * 20 >= r.result.total;
  if (state.page === 1) list.scrollTop = list.scrollHeight;
}

// A product (3) or order (4) card, drawn from its fields as text. The server marks the
// ones the platform signed `verified`; others say they are not. (A card this page is
// about to send, with a signature, is neither until the server has checked it.)
function cardItem(card) {
  const img = card.image ? el("img", { src: card.image, alt: "" }) : null;
  const price = card.price || card.amount || "";
  const order = card.order_no ? [t("order") + " " + card.order_no, card.status].filter(Boolean).join(" · ") : "";
  return el("div", { class: "card" + (card.order_no ? " order" : "") }, img,
    el("div", {}, el("div", { class: "title" }, card.title || order),
      card.title && order ? el("div", { class: "order-no" }, order) : null,
      price ? el("div", { class: "price" }, price) : null,
      card.verified === true ? el("div", { class: "verified" }, "✓ " + t("verified"))
        : card.verified === null ? null : el("div", { class: "unverified" }, t("unverified"))));
}

function messageItem(m) {
  noteCard(m);
  const body = m.msg_type === 2
    ? el("img", { class: "picture", src: m.msg, alt: "image", onclick: () => showImage(m.msg) })
    : (m.msg_type === 3 || m.msg_type === 4) && m.card ? cardItem(m.card)
    : document.createTextNode(m.msg);
  const li = el("li", { class: m.mine ? "mine" : "theirs", "data-msg-id": m.msg_id || "" },
    el("div", { class: "from" }, m.nickname || ""), el("div", { class: "body" }, body));
  if (m.auto) li.classList.add("auto");
  if (m.recalled) { li.classList.add("recalled"); li.querySelector(".body").textContent = t("recalled"); return li; }
  if (m.mine && m.msg_id) {
    const tick = el("span", { class: "tick" }, m.read ? "✓✓" : "✓");
    tick.title = t(m.read ? "read" : "unread");
    li.querySelector(".body").after(tick);
    if (m.read) li.classList.add("read");
    const age = Date.now() / 1000 - (m.createtime || 0);
    if (age < state.recallSecs) {
      const button = el("button", { type: "button", class: "recall", onclick: () => recall(m.msg_id) }, t("recall"));
      tick.after(button);
      setTimeout(() => button.remove(), (state.recallSecs - age) * 1000);
    }
  }
  return li;
}

async function recall(msgId) {
  const r = await request("chat", "recall", { msg_id: msgId });
  if (r.code !== 1) { showError("chat-error", r.msg); return; }
  onRecall({ msg_id: msgId, chat_id: state.chat && state.chat.chat_id });
}

// 205: a message was recalled; it shows as the placeholder from now on.
function onRecall(r) {
  const li = document.querySelector(`#messages li[data-msg-id="${Number(r.msg_id)}"]`);
  if (!li) { scheduleRefresh(); return; }
  li.classList.add("recalled");
  li.querySelector(".body").textContent = t("recalled");
  for (const b of li.querySelectorAll(".recall, .tick")) b.remove();
  scheduleRefresh();
}

// 204: the other side read up to read_msg_id of the open chat: tick own messages.
function onReceipt(r) {
  if (!state.chat || r.chat_id !== state.chat.chat_id) return;
  for (const li of document.querySelectorAll("#messages li.mine[data-msg-id]")) {
    if (Number(li.dataset.msgId) <= r.read_msg_id && !li.classList.contains("read")) {
      li.classList.add("read");
      const tick = li.querySelector(".tick");
      if (tick) { tick.textContent = "✓✓"; tick.title = t("read"); }
    }
  }
}

// 203: someone types in the open chat.
let typingTimer = null;
function onTyping(r) {
  if (!state.chat || r.chat_id !== state.chat.chat_id) return;
  const p = $("typing");
  p.textContent = `${r.nickname || ""} ${t("typing")}`;
  p.hidden = false;
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => { p.hidden = true; }, 3000);
}

// Tells the other side this user types (the server lets one signal in 2 s through).
let typedAt = 0;
function typed() {
  const chat = state.chat;
  if (!chat || !chat.chat_id || Date.now() - typedAt < 2000) return;
  typedAt = Date.now();
  request("chat", "typing", { chat_id: chat.chat_id, role_type: chat.role });
}

// 202: a conversation event: the queue banner, the rating prompt.
function onEvent(e) {
  if (e.event === "assigned") alertHidden("shopchat", t("new_session"));
  const chat = state.chat;
  const here = chat && (e.chat_id === chat.chat_id || (!chat.chat_id && chat.shop_id === e.shop_id && !state.agent));
  if (e.event === "waiting" && here) {
    $("queue-banner").textContent = t("queue").replace("{n}", String(e.position));
    $("queue-banner").hidden = false;
  }
  if ((e.event === "served" || e.event === "resolved") && here) $("queue-banner").hidden = true;
  if (e.event === "rating_request" && here && !state.agent) {
    state.rating = e.chat_id;
    $("rating-form").hidden = false;
  }
}

async function rate() {
  const picked = document.querySelector("#rating-form input[name=score]:checked");
  if (!picked || !state.rating) return;
  const r = await request("chat", "rate", { chat_id: state.rating, score: Number(picked.value), comment: $("rating-comment").value.trim() });
  if (r.code !== 1) { showError("chat-error", r.msg); return; }
  $("rating-form").hidden = true;
  showError("chat-error", "");
  $("typing").textContent = t("thanks");
  $("typing").hidden = false;
}

async function resolve() {
  const chat = state.chat;
  if (!chat || !chat.chat_id) return;
  const r = await request("service", "resolve", { chat_id: chat.chat_id });
  showError("chat-error", r.code === 1 ? "" : r.msg);
  if (r.code === 1) await refreshList();
}

function appendMessage(m) {
  if (m.msg_id && document.querySelector(`#messages li[data-msg-id="${m.msg_id}"]`)) return;
  const list = $("messages");
  list.append(messageItem(m));
  list.scrollTop = list.scrollHeight;
}

// A message pushed (code 200) or caught up by chat.sync.
function onPush(p, fromSync) {
  // Stored events (a resolution, a rating request) are not messages.
  if (p.event) return;
  // At least once: a message may come by push and by chat.range.
  if (p.msg_id && state.seen.has(p.msg_id)) return;
  if (p.msg_id) {
    if (state.seen.size > 20000) state.seen.clear();
    state.seen.add(p.msg_id);
  }
  if (!fromSync) noteSeq(p, p.seq);
  const chat = state.chat;
  const mine = p.id === state.me?.id || (state.agent && p.chat_type === CHAT_TYPE.SERVICE && p.id === undefined);
  if (chat && (p.chat_id === chat.chat_id || (!chat.chat_id && matchesNew(chat, p)))) {
    if (!chat.chat_id) chat.chat_id = p.chat_id;
    appendMessage({ mine, nickname: p.service_nickname || p.nickname, msg_type: p.msg_type, msg: p.msg, msg_id: p.msg_id, card: p.card, recalled: p.recalled, createtime: p.createtime, auto: p.auto });
    state.readPending = true;
  }
  if (!fromSync) {
    if (!mine) alertHidden(p.service_nickname || p.nickname || "shopchat", p.msg_type === 2 ? t("image_short") : p.msg);
    scheduleRefresh();
  }
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
  state.seen.add(r.result.msg_id);
  noteSeq({ chat_id: r.result.chat_id, chat_type: chat.chat_type, shop_id: chat.shop_id }, r.result.seq);
  if (state.chat === chat) appendMessage({ mine: true, nickname: state.me.nickname, msg_type: msgType, msg: r.result.msg || msg, msg_id: r.result.msg_id, createtime: r.result.createtime });
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

// ---- while the tab is hidden: a count in the title, a desktop notification (once the
// user allowed them), a short sound ----

const TITLE = document.title;
let unseen = 0;
let audio = null;

function alertHidden(title, body) {
  if (!document.hidden) return;
  unseen += 1;
  document.title = `(${unseen}) ${TITLE}`;
  if (window.Notification && Notification.permission === "granted") {
    try { new Notification(title, { body, tag: "shopchat" }); } catch { /* some browsers allow them only from a service worker */ }
  }
  beep();
}

function beep() {
  try {
    audio = audio || new AudioContext();
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.value = 0.05;
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.15);
  } catch { /* no sound where audio is not allowed */ }
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) { unseen = 0; document.title = TITLE; }
});
// Permission is asked once, on the user's first click (browsers refuse it otherwise).
document.addEventListener("click", () => {
  if (window.Notification && Notification.permission === "default") Notification.requestPermission().catch(() => {});
}, { once: true });

// ---- the workbench (§5): queue, own sessions, resolved ones; the customer ----

// Reads the three lists and their counts (on events, not on every message).
async function refreshDesk() {
  if (!state.agent) return;
  const [queue, open, done] = [await request("service", "queue", {}),
    await request("service", "sessions", { state: "open", limit: 100 }),
    await request("service", "sessions", { state: "resolved", limit: 100 })];
  const lists = state.desk_lists;
  if (queue.code === 1) lists.queue = queue.result.rows;
  if (open.code === 1) lists.mine = open.result.rows.filter((x) => x.agent_uid === state.me?.id);
  if (done.code === 1) lists.resolved = done.result.rows;
  for (const tab of ["queue", "mine", "resolved"]) $("count-" + tab).textContent = String(lists[tab].length);
  await refreshList();
}

function showTab(tab) {
  state.tab = tab;
  for (const b of document.querySelectorAll("#desk-tabs button")) b.setAttribute("aria-selected", String(b.dataset.tab === tab));
  refreshList();
}

let deskTimer = null;
function scheduleDesk() {
  if (deskTimer) return;
  deskTimer = setTimeout(() => { deskTimer = null; refreshDesk(); }, 150);
}

// The right column: who the customer is, their sessions with ratings, the cards they sent.
async function loadCustomer(chat) {
  const consumer = Number(String(chat.chat_id || "").split("____")[1]);
  $("customer").hidden = !(state.agent && consumer > 0);
  if (!state.agent || !(consumer > 0)) return;
  const r = await request("service", "customer", { consumer_uid: consumer });
  if (r.code !== 1 || state.chat !== chat) return;
  $("customer-profile").replaceChildren(avatar(r.result.avatar, r.result.nickname),
    el("div", {}, el("strong", {}, r.result.nickname), el("div", { class: "last" }, "uid " + r.result.uid)));
  $("customer-sessions").replaceChildren(...r.result.sessions.map((x) => el("li", { "data-session": x.session_id },
    new Date(x.started_at * 1000).toLocaleString(), " · ", t(x.state), " · ",
    x.rating ? "★".repeat(x.rating.score) + (x.rating.comment ? " " + x.rating.comment : "") : t("no_rating"))));
}

function noteCard(m) {
  if (!state.agent || m.mine || !m.card) return;
  $("customer-cards").append(el("li", {}, cardItem(m.card)));
}

function showImage(src) {
  $("viewer-img").src = src;
  $("viewer").hidden = false;
}

// ---- agent mode (§5): service.me decides it ----

async function loadDesk() {
  const r = await request("service", "me", {});
  const desk = r.code === 1 && r.result && r.result.agent ? r.result : null;
  const was = state.agent;
  state.agent = !!desk;
  state.desk = desk;
  $("agent-box").hidden = !desk;
  if (desk) { $("agent-status").value = desk.status; $("agent-status").dataset.status = desk.status; }
  for (const id of ["new-user-chat", "new-shop-chat", "contacts", "contacts-title", "list-title"]) $(id).hidden = state.agent;
  $("desk-tabs").hidden = !state.agent;
  if (state.agent) await refreshDesk();
  if (was !== state.agent) { state.chat = null; $("chat").hidden = true; }
}

async function setAgentStatus(status) {
  const r = await request("service", "setStatus", { status });
  if (r.code !== 1) { showError("chat-error", r.msg); $("agent-status").value = $("agent-status").dataset.status || "offline"; return; }
  $("agent-status").dataset.status = status;
}

// The transfer picker: the shop's other agents, with their status and load.
async function loadAgents() {
  const r = await request("service", "agents", {});
  const select = $("transfer-to");
  select.replaceChildren();
  if (r.code !== 1) return;
  for (const a of r.result.rows) {
    if (a.uid === state.me?.id) continue;
    const label = `${a.name} · ${t(a.status)} · ${a.open_sessions} ${t("sessions_open")}`;
    select.append(el("option", { value: String(a.uid) }, label));
  }
}

// A consumer's chat with a shop is headed by the shop's name and logo (shop.info).
async function loadShopHeader(chat) {
  const r = await request("shop", "info", { shop_id: chat.shop_id });
  if (r.code !== 1 || state.chat !== chat) return;
  chat.title = r.result.name || chat.title;
  $("chat-title").textContent = chat.title;
  if (r.result.logo) { $("chat-logo").src = r.result.logo; $("chat-logo").hidden = false; }
}

async function transfer(to) {
  if (!to) return;
  const r = await request("service", "transfer", { chat_id: state.chat.chat_id, to_uid: Number(to) });
  showError("chat-error", r.code === 1 ? "" : r.msg);
  if (r.code === 1) await refreshList();
}

// ---- wiring ----

async function start() {
  $("login").hidden = true;
  $("main").hidden = false;
  await loadContacts();
  connect();
}

// Opens the chat with the deep link's shop, offering its product card, once connected.
async function openDeepLink() {
  if (!deepLink || state.agent) return;
  await openChat({ chat_type: CHAT_TYPE.SERVICE, to: deepLink.shop, shop_id: deepLink.shop, title: String(deepLink.shop), role: 0 });
  if (deepLink.card.product_id && deepLink.card.title) {
    const card = Object.assign({ verified: deepLink.card.sig ? null : false }, deepLink.card);
    $("deeplink-preview").replaceChildren(cardItem(card));
    $("deeplink-card").hidden = false;
  }
}

async function sendDeepLinkCard() {
  const chat = state.chat;
  if (!chat || !deepLink) return;
  const content = { chat_type: CHAT_TYPE.SERVICE, msg_type: 3, to_uid: chat.to, shop_id: chat.shop_id, role_type: 0,
    chat_id: chat.chat_id || null, card: deepLink.card, client_msg_id: "web-card-" + Date.now() };
  const r = await request("chat", "sendMsg", content);
  if (r.code !== 1) { showError("chat-error", r.msg); return; }
  $("deeplink-card").hidden = true;
  chat.chat_id = r.result.chat_id;
  const card = Object.assign({ verified: deepLink.card.sig ? null : false }, deepLink.card);
  appendMessage({ mine: true, nickname: state.me.nickname, msg_type: 3, msg: "", msg_id: r.result.msg_id, card, createtime: r.result.createtime });
  scheduleRefresh();
}

// ---- quick replies: "/" in the composer opens the shop's, filtered as one types ----

async function quickMatches(prefix) {
  if (!state.quickReplies) {
    const r = await request("service", "quickReplies", {});
    state.quickReplies = r.code === 1 ? r.result.rows : [];
  }
  const p = prefix.toLowerCase();
  return state.quickReplies.filter((q) => q.short_code.toLowerCase().startsWith(p));
}

async function updatePicker() {
  const text = $("text").value;
  const picker = $("quick-picker");
  if (!state.agent || !text.startsWith("/") || text.includes(" ")) { picker.hidden = true; return; }
  const matches = await quickMatches(text.slice(1));
  picker.replaceChildren(...matches.map((q, i) => el("li", { role: "option", class: i === 0 ? "active" : "", "data-code": q.short_code,
    onclick: () => insertQuickReply(q) }, el("span", { class: "code" }, "/" + q.short_code), q.text)));
  state.picked = 0;
  picker.hidden = matches.length === 0;
}

function insertQuickReply(q) {
  $("text").value = q.text;
  $("quick-picker").hidden = true;
  $("text").focus();
}

// Enter sends (or takes the highlighted quick reply), Shift+Enter is a new line, Esc
// closes the picker, arrows move in it.
function composerKey(e) {
  const picker = $("quick-picker");
  const items = [...picker.querySelectorAll("li")];
  if (!picker.hidden && items.length) {
    if (e.key === "Escape") { e.preventDefault(); picker.hidden = true; return; }
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      state.picked = (state.picked + (e.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
      items.forEach((li, i) => li.classList.toggle("active", i === state.picked));
      return;
    }
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      const code = items[state.picked].dataset.code;
      const q = state.quickReplies.find((r) => r.short_code === code);
      if (q) insertQuickReply(q);
      return;
    }
  }
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("composer").requestSubmit(); }
}

function on(id, event, handler) {
  $(id).addEventListener(event, (e) => { e.preventDefault(); handler(e); });
}

on("login-form", "submit", () => login(false));
on("register-button", "click", () => login(true));
on("logout-button", "click", logout);
on("agent-status", "change", (e) => setAgentStatus(e.target.value));
on("language", "change", (e) => { lang = e.target.value; localStorage.setItem("shopchat.lang", lang); applyLanguage(); });
on("older-button", "click", loadOlder);
on("rating-form", "submit", rate);
on("resolve-button", "click", resolve);
$("text").addEventListener("input", () => { typed(); updatePicker(); });
$("text").addEventListener("keydown", composerKey);
on("deeplink-send", "click", sendDeepLinkCard);
for (const b of document.querySelectorAll("#desk-tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
on("viewer", "click", () => { $("viewer").hidden = true; });
document.addEventListener("keydown", (e) => { if (e.key === "Escape") $("viewer").hidden = true; });
on("back-button", "click", () => { document.body.classList.remove("in-chat"); refreshList(); });
on("transfer-form", "submit", () => transfer($("transfer-to").value));
on("composer", "submit", async () => { const box = $("text"); const msg = box.value; box.value = ""; $("quick-picker").hidden = true; await send(1, msg.trim()); });
$("image").addEventListener("change", async (e) => { const f = e.target.files[0]; e.target.value = ""; if (f) await upload(f); });
on("new-user-chat", "submit", () => {
  const uid = Number($("new-user").value);
  if (uid > 0) openChat({ chat_type: CHAT_TYPE.DIRECT, to: uid, title: "user " + uid, role: 0, shop_id: 0 });
});
on("new-shop-chat", "submit", () => {
  const shop = Number($("new-shop").value);
  if (shop > 0) openChat({ chat_type: CHAT_TYPE.SERVICE, to: shop, shop_id: shop, title: String(shop), role: 0 });
});
// Keep-alive: the original client's bare "ping" (answered with code -1) before the server's idle timeout.
setInterval(() => {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) { state.pending.push(() => {}); state.ws.send("ping"); }
}, 50000);

applyLanguage();
if (state.token) start(); else $("login").hidden = false;
