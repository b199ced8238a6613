//! The least a server can do for this protocol's 1:1 and group messages, as the yardstick
//! of shopchat-bench: one thread, plain tokio-tungstenite, no storage. Per connection it
//! reads the token's uid once; per message it parses the frame (borrowing the text,
//! copying `msg` verbatim), acks it and pushes it to every connection of the receiver
//! (and the sender's other ones), serialized once. Each connection's writer sends all
//! that is queued for it per wake-up and flushes once, so a busy socket costs one write
//! per wake-up, not one per frame.
//!
//!     cargo run --release -p shopchat-bench --bin reference_relay -- --port 9600
//!
//! shopchat-bench's `pairs` and `idle` scenarios run against it unchanged. It has no
//! admin API: for `group`, give the bench `--group-id 1`; every chat_type 2 message
//! goes to the `--group-members` users from `--uid-base` on (the bench's uids).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::rc::Rc;

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use shopchat::auth::Authenticator;
use shopchat::config::AuthConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 9600)]
    port: u16,
    #[arg(long, default_value = shopchat::config::DEV_JWT_SECRET)]
    secret: String,
    /// Members of the one group (users uid_base, uid_base + 1, ...).
    #[arg(long, default_value_t = 0)]
    group_members: i64,
    #[arg(long, default_value_t = 1_000_000)]
    uid_base: i64,
}

type Outbox = mpsc::UnboundedSender<Message>;

#[derive(Default)]
struct Relay {
    group: Vec<i64>,
    conns: RefCell<HashMap<i64, Vec<(u64, Outbox)>>>,
    next_conn: Cell<u64>,
    next_msg: Cell<i64>,
}

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow)]
    class: &'a str,
    #[serde(borrow)]
    action: &'a str,
    #[serde(borrow)]
    content: Option<Content<'a>>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(default)]
    chat_type: i64,
    #[serde(default)]
    to_uid: i64,
    #[serde(borrow)]
    msg_type: Option<&'a RawValue>,
    #[serde(borrow)]
    msg: Option<&'a RawValue>,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let auth = Rc::new(Authenticator::new(&AuthConfig {
            jwt_secret: args.secret.clone(),
            ..AuthConfig::default()
        }));
        let relay = Rc::new(Relay {
            group: (0..args.group_members).map(|i| args.uid_base + i).collect(),
            ..Relay::default()
        });
        let listener = TcpListener::bind(("127.0.0.1", args.port)).await?;
        println!("reference relay listening on {}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::task::spawn_local(serve(stream, auth.clone(), relay.clone()));
        }
    })
}

// The handshake callback's Result type is tungstenite's.
#[allow(clippy::result_large_err)]
async fn serve(stream: TcpStream, auth: Rc<Authenticator>, relay: Rc<Relay>) {
    let mut uid = None;
    let check = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let token = req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("token=")));
        match token.and_then(|t| auth.verify(t).ok()) {
            Some(u) => {
                uid = Some(u.0);
                Ok(resp)
            }
            None => Err(Response::builder()
                .status(401)
                .body(Some(r#"{"code":-200,"msg":"请登录"}"#.into()))
                .expect("a static response is valid")),
        }
    };
    // Small buffers, as a lean server would size them (the defaults are 128 KiB each):
    // frames queue in the write buffer until the writer flushes them together.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(16 * 1024);
    let Ok(ws) = tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(config)).await
    else {
        return;
    };
    let Some(uid) = uid else { return };
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let conn = relay.next_conn.get();
    relay.next_conn.set(conn + 1);
    relay
        .conns
        .borrow_mut()
        .entry(uid)
        .or_default()
        .push((conn, tx.clone()));
    let writer = tokio::task::spawn_local(async move {
        while let Some(first) = rx.recv().await {
            // Everything queued by now goes out with one flush.
            let mut next = Some(first);
            while let Some(m) = next {
                if sink.feed(m).await.is_err() {
                    return;
                }
                next = rx.try_recv().ok();
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(msg)) = stream.next().await {
        let Message::Text(text) = msg else { continue };
        let reply = match serde_json::from_str::<Frame>(&text) {
            Ok(Frame {
                class,
                action: "sendMsg",
                content: Some(c),
            }) if class.eq_ignore_ascii_case("chat") => relay.send(uid, conn, &c),
            Ok(_) => r#"{"code":0,"msg":"unknown action"}"#.to_string(),
            Err(_) => r#"{"code":-1,"msg":"PONG"}"#.to_string(),
        };
        let _ = tx.send(Message::text(reply));
    }
    if let Some(list) = relay.conns.borrow_mut().get_mut(&uid) {
        list.retain(|(c, _)| *c != conn);
    }
    drop(tx);
    let _ = writer.await;
}

impl Relay {
    /// Pushes a message to the receiver's (or the group's) connections and the sender's
    /// others, serialized once; returns the ack.
    fn send(&self, from: i64, conn: u64, c: &Content) -> String {
        let (to, chat_type) = (c.to_uid, c.chat_type);
        let mut chat_id = String::with_capacity(24);
        let direct = [to, from];
        let audience: &[i64] = match chat_type {
            1 if to > 0 => {
                let _ = write!(chat_id, "{}_{}", from.min(to), from.max(to));
                &direct
            }
            2 => {
                let _ = write!(chat_id, "{to}__");
                &self.group
            }
            _ => return r#"{"code":0,"msg":"chat_type 1 or 2 only"}"#.to_string(),
        };
        let id = self.next_msg.get() + 1;
        self.next_msg.set(id);
        let createtime = shopchat::auth::unix_now();
        let (msg_type, msg) = (raw(c.msg_type), raw(c.msg));
        let mut push = String::with_capacity(160 + msg.len());
        let _ = write!(
            push,
            r#"{{"code":200,"msg":null,"result":{{"nickname":"user{from}","avatar":"","id":{from},"chat_id":"{chat_id}","chat_type":{chat_type},"msg_type":{msg_type},"msg":{msg},"createtime":{createtime},"msg_id":{id}}}}}"#
        );
        let push = Message::text(push);
        let conns = self.conns.borrow();
        for uid in audience {
            for (c, out) in conns.get(uid).into_iter().flatten() {
                if *c != conn {
                    let _ = out.send(push.clone());
                }
            }
        }
        format!(
            r#"{{"code":1,"msg":null,"result":{{"msg_id":{id},"chat_id":"{chat_id}","createtime":{createtime}}}}}"#
        )
    }
}

/// A JSON value as it came (absent: null).
fn raw(v: Option<&RawValue>) -> &str {
    v.map_or("null", RawValue::get)
}
