//! What a shop's router is told. All come from ChatServer (which hears them from
//! sessions and the admin API); the router answers through reply channels or by handing
//! writes back to ChatServer's queue (`writes::Enqueue`). Defined below both actors, so
//! that neither uses the other's module: ChatServer holds a [`RouterMail`] per shop, and
//! starts routers through a [`StartRouter`] given to it by whoever builds it.

use actix::{Message as ActixMessage, Recipient};

use crate::db::{NewMessage, Profile};
use crate::ids::{ConnId, ShopId, UserId};
use crate::protocol::service::{AgentRole, AgentStatus};
use crate::protocol::Role;
use crate::writes::{Enqueue, ReplyTx};

/// A customer-service message to route: from the consumer to whichever agent should
/// get it, or from an agent to the consumer. The router completes `message` (the agent)
/// and the push, then queues the write; `reply` gets the ack after commit, or the refusal.
#[derive(ActixMessage)]
#[rtype(result = "()")]
pub struct RouteSend {
    pub message: NewMessage,
    pub role: Role,
    /// The sender's profile (the consumer's; for an agent, its user profile).
    pub sender: Profile,
    pub conn: ConnId,
    pub reply: ReplyTx,
}

/// An agent's live connection count changed (0 = gone).
#[derive(ActixMessage)]
#[rtype(result = "()")]
pub struct AgentPresence {
    pub uid: UserId,
    pub conns: usize,
}

/// An agent's status changed (already stored).
#[derive(ActixMessage)]
#[rtype(result = "()")]
pub struct AgentStatusSet {
    pub uid: UserId,
    pub status: AgentStatus,
}

/// Resolve the conversation of `consumer`: `service.resolve` by agent `by` (the reply
/// says how it went), or the sweep (`by` 0) for a conversation quiet since before
/// `idle_before`.
#[derive(ActixMessage)]
#[rtype(result = "()")]
pub struct ResolveChat {
    pub by: UserId,
    pub chat_id: String,
    pub idle_before: Option<i64>,
    pub reply: Option<ReplyTx>,
}

/// The shop or its agents changed in the database (admin API): read them again.
#[derive(ActixMessage)]
#[rtype(result = "()")]
pub struct ReloadAgents;

/// `service.transfer` by agent `by`: give the conversation `chat_id` to agent `to`.
#[derive(ActixMessage)]
#[rtype(result = "()")]
pub struct TransferChat {
    pub by: UserId,
    pub chat_id: String,
    pub to: UserId,
    pub reply: ReplyTx,
}

/// One agent as its router sees it (the admin listing, `service.agents`, the stats).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentReport {
    pub uid: i64,
    /// As consumers see it: the shop's name for it, else its nickname.
    pub name: String,
    pub avatar: String,
    pub role: AgentRole,
    pub status: AgentStatus,
    /// Status online or away (the original's online flag).
    pub online: bool,
    pub connected: bool,
    pub open_sessions: usize,
}

/// For `GET /admin/shops/{id}/agents` and `service.agents`: the shop's agents, or `None`
/// if there is no such shop.
#[derive(ActixMessage)]
#[rtype(result = "Option<Vec<AgentReport>>")]
pub struct ReportAgents;

/// For typing signals and read receipts: who has `consumer`'s conversation now (if an
/// agent does), and the shop's name (an agent types as the shop).
#[derive(ActixMessage)]
#[rtype(result = "Option<(Option<UserId>, String)>")]
pub struct SessionAgent {
    pub consumer: UserId,
}

/// A running router's mailboxes, one per message it takes.
#[derive(Clone)]
pub struct RouterMail {
    pub route: Recipient<RouteSend>,
    pub presence: Recipient<AgentPresence>,
    pub status: Recipient<AgentStatusSet>,
    pub resolve: Recipient<ResolveChat>,
    pub reload: Recipient<ReloadAgents>,
    pub transfer: Recipient<TransferChat>,
    pub report: Recipient<ReportAgents>,
    pub session_agent: Recipient<SessionAgent>,
}

impl RouterMail {
    /// Whether the router still runs (it stops if its shop cannot be loaded).
    pub fn connected(&self) -> bool {
        self.route.connected()
    }
}

/// Starts the router of a shop, whose writes go to the given queue.
pub type StartRouter = Box<dyn Fn(ShopId, Recipient<Enqueue>) -> RouterMail>;
