//! `WsSession`: one actor per WebSocket. It parses frames into requests, answers
//! heartbeats, enforces frame limits, and writes replies (in request order) and pushes.
//! It knows nothing of routing. This is the only module that uses actix-web-actors.
//!
//! Memory per connection is bounded in bytes: frames by `limits.max_frame_bytes` (refused
//! from their header, [`wire`]), and what waits in the server for the socket (pushes in
//! the mailbox, replies held for request order, and the largest reply each request in
//! flight may bring) by `limits.max_pending_bytes`.

mod refused;
mod typing;
mod wire;

pub use refused::try_again_later;

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_http::ws::Item;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws::{self, CloseCode, CloseReason, ProtocolError};
use tokio::sync::oneshot;

use crate::db::Profile;
use crate::error::ChatError;
use crate::ids::{ConnId, ShopId, UserId};
use crate::metrics::Metrics;
use crate::protocol::{self, Frame, Request};
use crate::server::{ChatServer, ClientRequest, Close, Connect, Disconnect, ToSession, Typing};
use crate::watch::{frame_len, Watch};

/// Pushes that may wait for a connection that is not reading; past this it is
/// disconnected (1008). With the socket's buffers this bounds a slow reader's memory.
const MAILBOX_CAPACITY: usize = 1024;

/// How long a session told to close waits for the replies it still owes.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Requests of one connection that may await their replies at once; a client past this
/// is not reading its replies, and is disconnected rather than queued without bound.
const MAX_IN_FLIGHT: usize = 4096;

/// A connection's request budget (token bucket).
type Limiter = governor::DefaultDirectRateLimiter;

/// The limiter for `limits.msgs_per_sec` and `limits.burst`; none when the rate is 0.
pub fn limiter(per_sec: u32, burst: u32) -> Option<Limiter> {
    let rate = std::num::NonZeroU32::new(per_sec)?;
    let burst = std::num::NonZeroU32::new(burst.max(1)).unwrap_or(rate);
    Some(governor::RateLimiter::direct(
        governor::Quota::per_second(rate).allow_burst(burst),
    ))
}

/// What a session needs to start.
pub struct SessionParams {
    pub uid: UserId,
    pub profile: Profile,
    /// The shop this user serves, if an agent.
    pub agent_shop: Option<ShopId>,
    pub server: Addr<ChatServer>,
    pub max_frame_bytes: usize,
    pub msgs_per_sec: u32,
    pub burst: u32,
    pub max_pending_bytes: usize,
    pub metrics: Arc<Metrics>,
}

/// Completes the upgrade of `req` and starts a session on it.
pub fn upgrade(
    req: &HttpRequest,
    stream: web::Payload,
    params: SessionParams,
) -> Result<HttpResponse, actix_web::Error> {
    let max_frame = params.max_frame_bytes;
    let watch = Watch::new();
    let session = WsSession {
        conn: ConnId::next(),
        uid: params.uid,
        registration: Some(Box::new((params.profile, params.agent_shop))),
        server: params.server,
        watch: watch.clone(),
        max_frame_bytes: max_frame,
        max_pending_bytes: params.max_pending_bytes,
        reserved: 0,
        replies: ReplyQueue::default(),
        fragments: None,
        limiter: limiter(params.msgs_per_sec, params.burst),
        typing: None,
        closing: None,
        metrics: params.metrics,
    };
    let stream = wire::GuardedPayload::new(stream, max_frame, watch);
    ws::WsResponseBuilder::new(session, req, stream)
        .frame_size(max_frame)
        .start()
}

/// Replies held until every earlier request of the connection has been answered.
#[derive(Default)]
struct ReplyQueue {
    head: u64,
    slots: VecDeque<Option<String>>,
}

impl ReplyQueue {
    fn reserve(&mut self) -> u64 {
        self.slots.push_back(None);
        self.head + self.slots.len() as u64 - 1
    }

    fn fill(&mut self, seq: u64, text: String) {
        if let Some(slot) = seq
            .checked_sub(self.head)
            .and_then(|i| self.slots.get_mut(i as usize))
        {
            *slot = Some(text);
        }
    }

    fn waiting(&self) -> usize {
        self.slots.len()
    }

    fn pop_ready(&mut self) -> Option<String> {
        if !matches!(self.slots.front(), Some(Some(_))) {
            return None;
        }
        self.head += 1;
        self.slots.pop_front().flatten()
    }
}

pub struct WsSession {
    conn: ConnId,
    uid: UserId,
    /// Profile and agent's shop, handed to ChatServer at registration (boxed: the
    /// session lives as long as its socket, these only until it starts).
    registration: Option<Box<(Profile, Option<ShopId>)>>,
    server: Addr<ChatServer>,
    /// Shared with ChatServer: when the client last sent anything (it closes the
    /// connection after `server.client_timeout_secs` of silence), and the bytes waiting
    /// in the server for this socket: pushes in the mailbox, replies held for order.
    watch: Watch,
    max_frame_bytes: usize,
    max_pending_bytes: usize,
    /// The largest replies the requests in flight may still bring, in bytes.
    reserved: usize,
    replies: ReplyQueue,
    /// A fragmented message being reassembled: (is text, bytes so far).
    fragments: Option<(bool, Vec<u8>)>,
    limiter: Option<Limiter>,
    /// The typing gate, made on the first typing signal (most connections never send one).
    typing: Option<Box<typing::TypingGate>>,
    /// Set when the server asked to close: the close goes out once every reply owed has.
    closing: Option<(CloseCode, &'static str)>,
    metrics: Arc<Metrics>,
}

impl WsSession {
    fn reply_now(&mut self, text: String, ctx: &mut ws::WebsocketContext<Self>) {
        self.watch.queued(frame_len(text.len()));
        let seq = self.replies.reserve();
        self.replies.fill(seq, text);
        self.flush_replies(ctx);
    }

    fn flush_replies(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        while let Some(text) = self.replies.pop_ready() {
            self.watch.drained(frame_len(text.len()));
            ctx.text(text);
        }
        if let Some((code, why)) = self.closing {
            if self.replies.waiting() == 0 {
                self.close(ctx, code, why);
            }
        }
    }

    fn close(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: CloseCode, why: &str) {
        self.closing = None;
        log::debug!("conn {} uid {}: closing ({why})", self.conn, self.uid);
        ctx.close(Some(CloseReason {
            code,
            description: Some(why.to_string()),
        }));
        ctx.stop();
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        match protocol::parse_frame(text) {
            Ok(Frame::Heartbeat) => self.reply_now(protocol::PONG.to_string(), ctx),
            Ok(Frame::Request(_)) if self.closing.is_some() => {
                self.reply_now(protocol::error_reply(&ChatError::ShuttingDown), ctx);
            }
            Err(e) => {
                log::debug!("conn {} uid {}: refused frame: {e}", self.conn, self.uid);
                self.metrics.reject(e.wire().1);
                self.reply_now(protocol::error_reply(&e), ctx);
            }
            Ok(Frame::Request(_)) if self.watch.backlog() > self.max_pending_bytes => {
                self.metrics.reject("backlog");
                self.close(ctx, CloseCode::Policy, "not reading replies")
            }
            // Typing has a budget of its own, and what it holds back is answered and dropped.
            Ok(Frame::Request(Request::Typing(chat))) => {
                let gate = self
                    .typing
                    .get_or_insert_with(|| Box::new(typing::TypingGate::new()));
                if gate.admit(&chat.chat_id, std::time::Instant::now()) {
                    self.server.do_send(Typing {
                        uid: self.uid,
                        chat,
                    });
                }
                self.reply_now(protocol::ok(&()), ctx);
            }
            Ok(Frame::Request(request)) if !self.within_rate(&request) => {
                log::debug!("conn {} uid {}: rate limited", self.conn, self.uid);
                self.metrics.reject("rate_limited");
                self.reply_now(protocol::error_reply(&ChatError::RateLimited), ctx);
            }
            Ok(Frame::Request(request))
                if self.watch.backlog() + self.reserved + request.reply_reserve()
                    > self.max_pending_bytes =>
            {
                // Pipelined heavy requests: the replies already owed would pass the bound.
                self.metrics.reject("too_many_in_flight");
                self.reply_now(protocol::error_reply(&ChatError::RateLimited), ctx);
            }
            Ok(Frame::Request(request)) => {
                if self.replies.waiting() >= MAX_IN_FLIGHT {
                    self.metrics.reject("too_many_in_flight");
                    return self.close(ctx, CloseCode::Policy, "too many requests in flight");
                }
                let reserve = request.reply_reserve();
                self.reserved += reserve;
                let seq = self.replies.reserve();
                let (reply, answer) = oneshot::channel();
                self.server.do_send(ClientRequest {
                    conn: self.conn,
                    uid: self.uid,
                    request,
                    reply,
                    watch: self.watch.clone(),
                });
                answer
                    .into_actor(self)
                    .map(move |res, act, ctx| {
                        let text = match res {
                            Ok(Ok(text)) => text,
                            Ok(Err(e)) => protocol::error_reply(&e),
                            // Nobody answered: the server lost the request on its way.
                            Err(_) => protocol::error_reply(&ChatError::StorageUnavailable),
                        };
                        act.reserved -= reserve;
                        act.watch.queued(frame_len(text.len()));
                        act.replies.fill(seq, text);
                        act.flush_replies(ctx);
                    })
                    .spawn(ctx);
            }
        }
    }

    /// Takes the request's cost (a page of history costs more than a ping) from the budget.
    fn within_rate(&self, request: &protocol::Request) -> bool {
        let Some(limiter) = &self.limiter else {
            return true;
        };
        let cost = NonZeroU32::new(request.cost()).unwrap_or(NonZeroU32::MIN);
        // A cost above the whole burst could never pass: it is charged the burst instead.
        match limiter.check_n(cost) {
            Ok(res) => res.is_ok(),
            Err(governor::InsufficientCapacity(max)) => NonZeroU32::new(max)
                .and_then(|max| limiter.check_n(max).ok())
                .is_some_and(|r| r.is_ok()),
        }
    }

    fn on_binary(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        self.metrics.reject("binary_frame");
        self.reply_now(protocol::error_reply(&ChatError::BinaryFrame), ctx);
    }

    /// Reassembles a fragmented message, holding it to the same size limit as a frame.
    fn on_fragment(&mut self, item: Item, ctx: &mut ws::WebsocketContext<Self>) {
        let (first, bytes, last) = match item {
            Item::FirstText(b) => (Some(true), b, false),
            Item::FirstBinary(b) => (Some(false), b, false),
            Item::Continue(b) => (None, b, false),
            Item::Last(b) => (None, b, true),
        };
        match (first, self.fragments.as_mut()) {
            (Some(is_text), _) => self.fragments = Some((is_text, bytes.to_vec())),
            (None, Some((_, buf))) => buf.extend_from_slice(&bytes),
            (None, None) => {
                return self.close(
                    ctx,
                    CloseCode::Protocol,
                    "continuation without a first frame",
                )
            }
        }
        if self
            .fragments
            .as_ref()
            .is_some_and(|(_, b)| b.len() > self.max_frame_bytes)
        {
            self.metrics.reject("too_large");
            return self.close(ctx, CloseCode::Size, "message too large");
        }
        if !last {
            return;
        }
        match self.fragments.take() {
            Some((true, buf)) => match String::from_utf8(buf) {
                Ok(text) => self.on_text(&text, ctx),
                Err(_) => self.close(ctx, CloseCode::Invalid, "text is not UTF-8"),
            },
            Some((false, _)) => self.on_binary(ctx),
            None => {}
        }
    }
}

impl Actor for WsSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.metrics.connections.inc();
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        let (profile, agent_shop) = self
            .registration
            .take()
            .map_or_else(|| (Profile::placeholder(self.uid), None), |r| *r);
        let me = ctx.address();
        self.server
            .send(Connect {
                conn: self.conn,
                uid: self.uid,
                profile,
                agent_shop,
                session: me.recipient(),
                seen: self.watch.clone(),
            })
            .into_actor(self)
            .map(|res, act, ctx| {
                if res.is_err() {
                    act.close(ctx, CloseCode::Away, "server unavailable");
                }
            })
            .wait(ctx);
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        self.metrics.connections.dec();
        // Reads queued for this connection are skipped from now on; its sends are not.
        self.watch.set_gone();
        self.server.do_send(Disconnect {
            conn: self.conn,
            uid: self.uid,
        });
        Running::Stop
    }
}

impl StreamHandler<Result<ws::Message, ProtocolError>> for WsSession {
    fn handle(&mut self, item: Result<ws::Message, ProtocolError>, ctx: &mut Self::Context) {
        self.watch.touch();
        if item.is_err() && self.watch.is_oversize() {
            self.metrics.reject("too_large");
            return self.close(ctx, CloseCode::Size, "frame too large");
        }
        match item {
            Ok(ws::Message::Text(text)) => self.on_text(&text, ctx),
            Ok(ws::Message::Binary(_)) => self.on_binary(ctx),
            Ok(ws::Message::Continuation(item)) => self.on_fragment(item, ctx),
            Ok(ws::Message::Ping(bytes)) => ctx.pong(&bytes),
            Ok(ws::Message::Pong(_)) | Ok(ws::Message::Nop) => {}
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Err(ProtocolError::Overflow) => {
                self.metrics.reject("too_large");
                self.close(ctx, CloseCode::Size, "frame too large");
            }
            // actix-web-actors reports a text frame that is not UTF-8 as an I/O error
            // carrying the Utf8Error text; RFC 6455 answers it with 1007.
            Err(ProtocolError::Io(e)) if e.to_string().contains("utf-8") => {
                self.metrics.reject("invalid_utf8");
                self.close(ctx, CloseCode::Invalid, "text is not UTF-8")
            }
            Err(e) => {
                log::debug!("conn {} uid {}: protocol error: {e}", self.conn, self.uid);
                self.close(ctx, CloseCode::Protocol, "protocol error");
            }
        }
    }
}

impl Handler<ToSession> for WsSession {
    type Result = ();

    fn handle(&mut self, msg: ToSession, ctx: &mut Self::Context) {
        match msg {
            ToSession::Deliver(text) => {
                self.watch.drained(frame_len(text.len()));
                ctx.text(&*text)
            }
            ToSession::Close(close) => self.close_when_answered(close, ctx),
        }
    }
}

impl WsSession {
    fn close_when_answered(&mut self, msg: Close, ctx: &mut ws::WebsocketContext<Self>) {
        // Acks for stored messages may still be on their way here: an ack promised is
        // an ack written, so the close waits for them (briefly, should one never come).
        self.closing = Some((CloseCode::from(msg.code), msg.reason));
        self.flush_replies(ctx);
        ctx.run_later(CLOSE_GRACE, |act, ctx| {
            if let Some((code, why)) = act.closing {
                act.close(ctx, code, why);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::ReplyQueue;

    #[test]
    fn replies_leave_in_request_order() {
        let mut q = ReplyQueue::default();
        let a = q.reserve();
        let b = q.reserve();
        let c = q.reserve();
        q.fill(c, "c".into());
        q.fill(b, "b".into());
        assert_eq!(q.pop_ready(), None, "a is not answered yet");
        q.fill(a, "a".into());
        assert_eq!(q.pop_ready().as_deref(), Some("a"));
        assert_eq!(q.pop_ready().as_deref(), Some("b"));
        assert_eq!(q.pop_ready().as_deref(), Some("c"));
        assert_eq!(q.pop_ready(), None);
        let d = q.reserve();
        q.fill(d, "d".into());
        assert_eq!(q.pop_ready().as_deref(), Some("d"));
    }
}
