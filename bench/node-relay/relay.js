// The Node.js peer of the reference relay (bench/src/bin/reference_relay.rs): the `ws`
// library, one process, no storage. It reads the uid from the token (not verifying it),
// acks each chat.sendMsg and pushes it to the receiver's connections (chat_type 1) or to
// every member of the one group (chat_type 2, GROUP_MEMBERS users from UID_BASE).
//
//     npm ci --prefix bench/node-relay && node bench/node-relay/relay.js 9601
'use strict';
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 9601);
const uidBase = Number(process.env.UID_BASE || 1000000);
const group = Array.from({ length: Number(process.env.GROUP_MEMBERS || 0) }, (_, i) => uidBase + i);
const conns = new Map(); // uid -> Set of sockets
let nextMsg = 0;

const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });
wss.on('connection', (ws, req) => {
  let uid;
  try {
    const token = new URL(req.url, 'http://relay').searchParams.get('token');
    uid = JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).data.id;
  } catch {
    ws.close(1008, 'token');
    return;
  }
  if (!conns.has(uid)) conns.set(uid, new Set());
  conns.get(uid).add(ws);
  ws.on('close', () => conns.get(uid).delete(ws));
  ws.on('message', (data) => {
    let frame;
    try { frame = JSON.parse(data); } catch { ws.send('{"code":-1,"msg":"PONG"}'); return; }
    const c = frame.content || {};
    if (String(frame.class).toLowerCase() !== 'chat' || frame.action !== 'sendMsg') {
      ws.send('{"code":0,"msg":"unknown action"}');
      return;
    }
    let chatId, audience;
    if (c.chat_type === 1 && c.to_uid > 0) {
      chatId = `${Math.min(uid, c.to_uid)}_${Math.max(uid, c.to_uid)}`;
      audience = [c.to_uid, uid];
    } else if (c.chat_type === 2) {
      chatId = `${c.to_uid}__`;
      audience = group;
    } else {
      ws.send('{"code":0,"msg":"chat_type 1 or 2 only"}');
      return;
    }
    const id = ++nextMsg;
    const createtime = Math.floor(Date.now() / 1000);
    const push = JSON.stringify({ code: 200, msg: null, result: {
      nickname: `user${uid}`, avatar: '', id: uid, chat_id: chatId, chat_type: c.chat_type,
      msg_type: c.msg_type, msg: c.msg, createtime, msg_id: id } });
    for (const u of audience) {
      for (const other of conns.get(u) || []) if (other !== ws) other.send(push);
    }
    ws.send(JSON.stringify({ code: 1, msg: null, result: { msg_id: id, chat_id: chatId, createtime } }));
  });
});
wss.on('listening', () => console.log(`node ws relay listening on 127.0.0.1:${port}`));
