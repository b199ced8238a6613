//! One benchmark connection: a real WebSocket speaking PROTOCOL.md, which sends its
//! messages (closed loop with a bounded window, or open loop at a fixed rate) and counts
//! acks, errors and pushes, timing each push from the timestamp its sender put in it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::stats::{histogram, now_micros, Stats};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Prefix of every message text, followed by the sender's clock in microseconds.
const STAMP: &str = "bench:";

pub async fn connect(base: &str, token: &str) -> anyhow::Result<Ws> {
    // Nagle off, as on the servers: a load generator must not add its own delays.
    let (ws, _) =
        tokio_tungstenite::connect_async_with_config(format!("{base}/?token={token}"), None, true)
            .await?;
    Ok(ws)
}

/// Where a connection's messages go.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// chat_type 1 to this user.
    Direct(i64),
    /// chat_type 2 to this group.
    Group(i64),
    /// chat_type 4 to this shop, as a consumer.
    Shop(i64),
    /// Sends nothing; only receives.
    Nothing,
}

impl Target {
    fn frame(self, text: &str) -> Option<String> {
        let (chat_type, to, extra) = match self {
            Target::Direct(u) => (1, u, json!(null)),
            Target::Group(g) => (2, g, json!(null)),
            Target::Shop(s) => (4, s, json!("user")),
            Target::Nothing => return None,
        };
        let mut content = json!({"chat_type": chat_type, "msg_type": 1, "msg": text, "to_uid": to});
        if !extra.is_null() {
            content["role_type"] = extra;
        }
        Some(json!({"class": "chat", "action": "sendMsg", "content": content}).to_string())
    }
}

/// How one connection sends until `until`.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub target: Target,
    /// The most messages awaiting their ack (closed loop; open loop caps at this too,
    /// so an overloaded server cannot make the load generator grow without bound).
    pub window: usize,
    /// Open loop: one message every this long; `None` is flat out within the window.
    pub every: Option<Duration>,
    pub until: Instant,
}

#[derive(Deserialize)]
struct Frame {
    code: i64,
    #[serde(default)]
    result: Option<PushBody>,
}

#[derive(Deserialize)]
struct PushBody {
    #[serde(default)]
    msg: Option<String>,
}

/// Runs one connection: sends per `plan`, counts everything into `stats`, and keeps
/// reading after its sending phase until `done` turns true. Returns its latencies.
pub async fn drive(
    ws: Ws,
    plan: Plan,
    stats: Arc<Stats>,
    mut done: watch::Receiver<bool>,
) -> Histogram<u64> {
    let mut latency = histogram();
    let (mut sink, mut stream) = ws.split();
    let mut outstanding = 0usize;
    let mut tick = plan.every.map(|every| {
        let mut t = tokio::time::interval(every);
        t.set_missed_tick_behavior(MissedTickBehavior::Burst);
        t
    });
    let sending = |now: Instant| now < plan.until && !matches!(plan.target, Target::Nothing);
    loop {
        // Closed loop: fill the window before reading.
        if tick.is_none() {
            while sending(Instant::now()) && outstanding < plan.window {
                if !send_one(&mut sink, plan.target, &stats).await {
                    return latency;
                }
                outstanding += 1;
            }
        }
        let due = async {
            match tick.as_mut() {
                Some(t) if sending(Instant::now()) => {
                    t.tick().await;
                }
                _ => std::future::pending().await,
            }
        };
        let stop_at = async {
            if sending(Instant::now()) {
                tokio::time::sleep_until(plan.until).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = due => {
                if outstanding < plan.window {
                    if !send_one(&mut sink, plan.target, &stats).await {
                        return latency;
                    }
                    outstanding += 1;
                }
            }
            _ = stop_at => {}
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    match serde_json::from_str::<Frame>(&text) {
                        Ok(f) => count(f, &stats, &mut latency, &mut outstanding),
                        Err(_) => Stats::add(&stats.errors, 1),
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    Stats::add(&stats.errors, outstanding as u64);
                    return latency;
                }
            },
            changed = done.changed() => {
                if changed.is_err() || *done.borrow() {
                    let _ = sink.send(Message::Close(None)).await;
                    return latency;
                }
            }
        }
    }
}

async fn send_one(
    sink: &mut futures_util::stream::SplitSink<Ws, Message>,
    target: Target,
    stats: &Stats,
) -> bool {
    let Some(frame) = target.frame(&format!("{STAMP}{}", now_micros())) else {
        return false;
    };
    match sink.send(Message::text(frame)).await {
        Ok(()) => {
            Stats::add(&stats.sent, 1);
            true
        }
        Err(_) => {
            Stats::add(&stats.errors, 1);
            false
        }
    }
}

fn count(f: Frame, stats: &Stats, latency: &mut Histogram<u64>, outstanding: &mut usize) {
    match f.code {
        1 => {
            Stats::add(&stats.acked, 1);
            *outstanding = outstanding.saturating_sub(1);
        }
        0 => {
            Stats::add(&stats.errors, 1);
            *outstanding = outstanding.saturating_sub(1);
        }
        200 => {
            Stats::add(&stats.received, 1);
            let sent_at = f
                .result
                .and_then(|r| r.msg)
                .and_then(|m| m.strip_prefix(STAMP).and_then(|t| t.parse::<u64>().ok()));
            if let Some(sent_at) = sent_at {
                let _ = latency.record(now_micros().saturating_sub(sent_at).max(1));
            }
        }
        // Other pushes (e.g. 202 service events) are not messages of the run.
        _ => {}
    }
}

/// Sends one request and waits for its reply (set-up steps such as going online).
pub async fn request(
    ws: &mut Ws,
    class: &str,
    action: &str,
    content: serde_json::Value,
) -> anyhow::Result<()> {
    let frame = json!({"class": class, "action": action, "content": content}).to_string();
    ws.send(Message::text(frame)).await?;
    while let Some(msg) = ws.next().await {
        if let Message::Text(text) = msg? {
            let f: Frame = serde_json::from_str(&text)?;
            return match f.code {
                1 => Ok(()),
                // Pushes (events such as the agent's own status) are not the reply.
                200.. => continue,
                other => Err(anyhow::anyhow!(
                    "{class}.{action} answered code {other}: {text}"
                )),
            };
        }
    }
    Err(anyhow::anyhow!("connection closed during {class}.{action}"))
}
