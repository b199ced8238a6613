//! One benchmark connection: a real WebSocket speaking PROTOCOL.md, which sends its
//! messages (closed loop with a bounded window, or open loop at a fixed rate) and counts
//! acks, errors and pushes, timing each push from the timestamp its sender put in it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::stats::{histogram, now_micros, Sending, Stats};

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
    /// The frame this target sends, split around the place of the message text:
    /// the text goes between the two parts (after [`STAMP`], which ends the first).
    fn frame_parts(self) -> Option<(String, String)> {
        const MARK: &str = "\u{1}";
        let frame = self.frame(MARK)?;
        let at = frame.find("\\u0001")?;
        Some((
            format!("{}{STAMP}", &frame[..at]),
            frame[at + "\\u0001".len()..].to_string(),
        ))
    }

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
struct Frame<'a> {
    code: i64,
    #[serde(default, borrow)]
    result: Option<PushBody<'a>>,
}

#[derive(Deserialize)]
struct PushBody<'a> {
    /// Borrowed when it has no escapes (the run's own stamps have none).
    #[serde(default, borrow)]
    msg: Option<std::borrow::Cow<'a, str>>,
}

/// Runs one connection: sends per `plan`, counts everything into `stats`, and keeps
/// reading after its sending phase until `done` turns true. Returns its latencies.
///
/// The loop is kept lean, so that one core of load can drive a fast server: the frame
/// is built from a fixed prefix and suffix, the stop timer is made once, and frames are
/// read in a burst before the next select.
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
    let frame = plan.target.frame_parts();
    let mut sending = frame.is_some() && Instant::now() < plan.until;
    let mut phase = Sending::start(&stats, sending);
    let stop = tokio::time::sleep_until(plan.until);
    tokio::pin!(stop);
    loop {
        // Closed loop: fill the window before reading, with one flush for all of it.
        if let (None, true, Some(parts)) = (&tick, sending, &frame) {
            if outstanding < plan.window {
                while outstanding < plan.window {
                    if !feed_one(&mut sink, parts, &stats).await {
                        return latency;
                    }
                    outstanding += 1;
                }
                if sink.flush().await.is_err() {
                    Stats::add(&stats.errors, outstanding as u64);
                    return latency;
                }
            }
        }
        tokio::select! {
            biased;
            frame = stream.next() => {
                let mut next = frame;
                loop {
                    match next {
                        Some(Ok(Message::Text(text))) => {
                            count(&text, &stats, &mut latency, &mut outstanding)
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => {
                            Stats::add(&stats.errors, outstanding as u64);
                            return latency;
                        }
                    }
                    // Whatever else has arrived, before sending more.
                    match stream.next().now_or_never() {
                        Some(more) => next = more,
                        None => break,
                    }
                }
            }
            _ = next_tick(&mut tick), if sending => {
                // A burst of late ticks never sends past the run's end.
                if Instant::now() >= plan.until {
                    sending = false;
                    phase.end();
                } else if let Some(parts) = &frame {
                    if outstanding < plan.window {
                        if !feed_one(&mut sink, parts, &stats).await
                            || sink.flush().await.is_err()
                        {
                            return latency;
                        }
                        outstanding += 1;
                    }
                }
            }
            _ = &mut stop, if sending => {
                sending = false;
                phase.end();
            }
            changed = done.changed(), if !sending => {
                if changed.is_err() || *done.borrow() {
                    let _ = sink.send(Message::Close(None)).await;
                    return latency;
                }
            }
        }
    }
}

/// The open loop's next tick (never, for a closed loop).
async fn next_tick(tick: &mut Option<tokio::time::Interval>) {
    match tick {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Queues one message on `sink` (written at its next flush, or when its buffer fills),
/// stamped with the time now.
async fn feed_one(
    sink: &mut futures_util::stream::SplitSink<Ws, Message>,
    (head, tail): &(String, String),
    stats: &Stats,
) -> bool {
    let mut frame = String::with_capacity(head.len() + tail.len() + 20);
    frame.push_str(head);
    frame.push_str(&now_micros().to_string());
    frame.push_str(tail);
    match sink.feed(Message::text(frame)).await {
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

/// Counts one frame from the server: an ack, an error, or a push (timed by its stamp).
fn count(text: &str, stats: &Stats, latency: &mut Histogram<u64>, outstanding: &mut usize) {
    let Ok(f) = serde_json::from_str::<Frame>(text) else {
        Stats::add(&stats.errors, 1);
        return;
    };
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
                let micros = now_micros().saturating_sub(sent_at).max(1);
                let _ = latency.record(micros);
                if let Some(periods) = &stats.periods {
                    periods.record(micros);
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_from_its_parts_is_the_frame_with_the_text() {
        for target in [Target::Direct(7), Target::Group(3), Target::Shop(5)] {
            let (head, tail) = target.frame_parts().unwrap();
            let text = format!("{STAMP}123");
            assert_eq!(format!("{head}123{tail}"), target.frame(&text).unwrap());
        }
        assert!(Target::Nothing.frame_parts().is_none());
    }
}
