//! What ChatServer is told, and what it tells sessions. Sessions are reached only
//! through these `Recipient`s, so the server does not know how a socket is driven.

use std::sync::Arc;

use actix::{Message as ActixMessage, Recipient};

use crate::cluster::ClusterEvent;
use crate::db::Profile;
use crate::error::ChatError;
use crate::ids::{ConnId, MsgId, ShopId, UserId};
use crate::protocol::Request;
use crate::routing::AgentReport;
pub use crate::writes::{Enqueue, NoticeTx, ReplyTx};

/// To a session: one message type, so a connection is registered with one recipient.
#[derive(ActixMessage, Clone)]
#[rtype(result = "()")]
pub enum ToSession {
    /// Write this already-serialized push (shared by every receiving connection).
    Deliver(Arc<str>),
    Close(Close),
}

impl ToSession {
    pub fn close(code: u16, reason: &'static str) -> ToSession {
        ToSession::Close(Close { code, reason })
    }
}

/// Close the socket with this WebSocket close code.
#[derive(Clone, Copy, Debug)]
pub struct Close {
    pub code: u16,
    pub reason: &'static str,
}

/// From a session as it starts: register this connection of `uid`.
#[derive(ActixMessage)]
#[rtype(result = "()")]
pub struct Connect {
    pub conn: ConnId,
    pub uid: UserId,
    pub profile: Profile,
    /// The shop this user serves, if an agent.
    pub agent_shop: Option<ShopId>,
    pub session: Recipient<ToSession>,
    /// Stamped by the session on every frame (read by the idle sweep); counts the bytes
    /// waiting for the socket (pushes past `limits.max_pending_bytes` close it).
    pub seen: crate::watch::Watch,
}

/// From a session as it stops: forget this connection.
#[derive(ActixMessage)]
#[rtype(result = "()")]
pub struct Disconnect {
    pub conn: ConnId,
    pub uid: UserId,
}

/// From a session: one parsed request, answered on `reply`; a send is answered only
/// after its message is committed. Sessions use `do_send`, which keeps a connection's
/// requests in order (parked `send` futures could overtake one another).
#[derive(ActixMessage)]
#[rtype(result = "()")]
pub struct ClientRequest {
    pub conn: ConnId,
    pub uid: UserId,
    pub request: Request,
    pub reply: ReplyTx,
    /// The connection's shared state: reads for a connection that is gone are skipped.
    pub watch: crate::watch::Watch,
}

/// From `/user/index` and the embedding handle: which of `uids` have a live connection.
#[derive(ActixMessage)]
#[rtype(result = "Vec<UserId>")]
pub struct OnlineAmong {
    pub uids: Vec<UserId>,
}

/// From the admin operations (and `service.setOnline`) once a change is stored: apply
/// it on this node, then on every other (a profile, a shop, an agent moved or flagged).
#[derive(ActixMessage)]
#[rtype(result = "()")]
pub struct Changed(pub ClusterEvent);

/// After an agent's status is stored (`service.setStatus`, `service.setOnline`, the admin
/// API): push 202 `status` to its connections but `except` (the one that asked).
#[derive(ActixMessage)]
#[rtype(result = "()")]
pub struct TellStatus {
    pub shop: ShopId,
    pub uid: UserId,
    pub status: crate::protocol::service::AgentStatus,
    pub except: Option<ConnId>,
}

/// From a session whose typing gate let a signal through (`chat.typing`): tell the
/// other side of `chat`. Nothing is stored and nobody answers.
#[derive(ActixMessage)]
#[rtype(result = "()")]
pub struct Typing {
    pub uid: UserId,
    pub chat: crate::protocol::ChatRef,
}

/// From `POST /admin/messages/{id}/recall`: the platform recalls a message, at any time.
/// Answers with the reply text, or why not.
#[derive(ActixMessage)]
#[rtype(result = "Result<String, ChatError>")]
pub struct RecallByPlatform {
    pub msg_id: MsgId,
}

/// From `run` on shutdown: refuse new sends, finish stored work, close every socket
/// with 1001. Returns once that is done.
#[derive(ActixMessage)]
#[rtype(result = "()")]
pub struct Shutdown;

/// From `GET /admin/shops/{id}/agents`: the agents as the shop's router sees them, or
/// `None` if there is no such shop.
#[derive(ActixMessage)]
#[rtype(result = "Option<Vec<AgentReport>>")]
pub struct ShopAgents {
    pub shop: ShopId,
}

/// From `POST /admin/notify`: a system notice to some users, or to everyone (`to` None).
/// Returns the stored ids (one per user, or one for a broadcast).
#[derive(ActixMessage)]
#[rtype(result = "Result<Vec<MsgId>, ChatError>")]
pub struct Notify {
    pub to: Option<Vec<UserId>>,
    pub msg_type: crate::protocol::MsgType,
    pub msg: String,
}
