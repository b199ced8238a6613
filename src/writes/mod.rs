//! Each kind of write in one place: what it stores (inside the batch transaction of
//! `db::store::apply_batch`) and what follows its commit (acks, pushes), declared
//! together as one type implementing [`Write`]. A write carries its own outcome from
//! the database back to its follow-up, so no result is ever paired with the wrong write.
//!
//! ChatServer's queue applies them; ShopRouters hand theirs over with [`Enqueue`]. Both
//! actors use this module, neither uses the other's.

mod message;
mod notice;
mod outbox;
mod recall;
mod routing;
mod service;

use std::sync::Arc;
use std::time::Instant;

use actix::Message as ActixMessage;
use tokio::sync::oneshot;

pub use message::StoreMessage;
pub use notice::StoreNotice;
pub use outbox::{OutboxDone, OutboxOp, OutboxWork};
pub use recall::RecallMessage;
pub use routing::ReadRouting;
pub use service::ServiceTurn;

use crate::db::outbox::NewEvent;
use crate::db::{Apply, NewMessage, Touches};
use crate::domain::Presenter;
use crate::error::ChatError;
use crate::ids::{ConnId, MsgId, UserId};
use crate::metrics::Metrics;
use crate::protocol::webhook;
use crate::protocol::ChatPush;

/// Adds `message.offline`'s outbox row for stored message `id` (if webhooks want it):
/// the message and its candidate receivers, all but the sender. Who of them is offline
/// is decided when the dispatcher takes the row (PROTOCOL.md §13).
fn offline_event(
    touches: &mut Touches<'_>,
    m: &NewMessage,
    id: MsgId,
    push: &ChatPush,
    receivers: &[UserId],
) {
    if !touches.wants(webhook::MESSAGE_OFFLINE) {
        return;
    }
    let to: Vec<i64> = receivers
        .iter()
        .filter(|u| **u != m.from_uid)
        .map(|u| u.0)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if to.is_empty() {
        return;
    }
    let sender_name = match (m.from_agent, &push.service_nickname) {
        (true, Some(name)) => name.clone(),
        _ => push.nickname.clone(),
    };
    let data = webhook::OfflineData {
        msg_id: id.0,
        chat_id: m.chat_id.clone(),
        chat_type: m.chat_type,
        shop_id: m.shop_id.0,
        from_uid: m.from_uid.0,
        sender_name,
        preview: webhook::preview(&m.msg),
        to_uids: Vec::new(),
        count: 1,
    };
    let mut event = NewEvent::new(webhook::MESSAGE_OFFLINE, &m.chat_id, &data);
    event.receivers = serde_json::to_string(&to).ok();
    touches.emit(event);
}

/// Where the answer to one request goes: the reply text, or the error to report.
pub type ReplyTx = oneshot::Sender<Result<String, ChatError>>;

/// Where the id of a stored notice goes.
pub type NoticeTx = oneshot::Sender<Result<MsgId, ChatError>>;

/// What a committed write may do to the world: the registry's side of it. ChatServer
/// implements it.
pub trait Effects {
    /// Pushes `text` to every connection of `uids` but `except`, on every node.
    fn fan_out(&mut self, uids: &[UserId], text: &Arc<str>, except: Option<ConnId>);
    /// Pushes a notice stored once for everyone to every connected user, on every node.
    fn notice_all(&mut self, push: ChatPush);
    fn presenter(&self) -> &Presenter;
    fn metrics(&self) -> &Metrics;
    /// Sets a recalled image's upload aside, so it is no longer served.
    fn retire_upload(&mut self, name: &str);
}

/// One kind of write: [`Apply`] stores it, then exactly one of `committed` or `failed`
/// follows.
pub trait Write: Apply {
    /// After its batch committed; `queued_at` is when it entered the queue.
    fn committed(self: Box<Self>, fx: &mut dyn Effects, queued_at: Instant);
    /// Its batch was undone (or never reached the database): tell whoever waits.
    fn failed(self: Box<Self>);
}

/// From a ShopRouter: writes it decided on, for ChatServer's queue, applied in this order.
#[derive(ActixMessage)]
#[rtype(result = "()")]
pub struct Enqueue(pub Vec<Box<dyn Write>>);
