//! Customer service as a shop runs it (PROTOCOL.md §10): the requests agents and
//! consumers send, and the 202 conversation events.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{lenient, MAX_CHAT_ID};
use crate::error::ChatError;

/// An agent's status: routable when `Online` and connected; `Away` keeps its own
/// sessions but gets no new ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    Online,
    Away,
    #[default]
    Offline,
}

impl AgentStatus {
    /// From the stored columns `online` and `away`.
    pub fn from_flags(online: bool, away: bool) -> AgentStatus {
        match (online, away) {
            (false, _) => AgentStatus::Offline,
            (true, false) => AgentStatus::Online,
            (true, true) => AgentStatus::Away,
        }
    }

    /// The stored columns `(online, away)`.
    pub fn flags(self) -> (bool, bool) {
        match self {
            AgentStatus::Offline => (false, false),
            AgentStatus::Online => (true, false),
            AgentStatus::Away => (true, true),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AgentStatus::Online => "online",
            AgentStatus::Away => "away",
            AgentStatus::Offline => "offline",
        }
    }
}

/// Where a customer-service conversation (and each of its sessions) stands: its name on
/// the wire and its number in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Resolved, or (a conversation) never started.
    Resolved,
    /// In the shop's queue.
    Waiting,
    /// An agent has it.
    Open,
}

impl SessionState {
    pub fn code(self) -> i32 {
        match self {
            SessionState::Resolved => 0,
            SessionState::Waiting => 1,
            SessionState::Open => 2,
        }
    }

    pub fn from_code(code: i32) -> SessionState {
        match code {
            1 => SessionState::Waiting,
            2 => SessionState::Open,
            _ => SessionState::Resolved,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SessionState::Resolved => "resolved",
            SessionState::Waiting => "waiting",
            SessionState::Open => "open",
        }
    }

    pub fn from_name(name: &str) -> Option<SessionState> {
        [
            SessionState::Resolved,
            SessionState::Waiting,
            SessionState::Open,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// An agent's role in its shop: supervisors also block consumers and edit quick replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AgentRole {
    #[default]
    Agent,
    Supervisor,
}

impl AgentRole {
    pub fn from_supervisor(supervisor: bool) -> AgentRole {
        match supervisor {
            true => AgentRole::Supervisor,
            false => AgentRole::Agent,
        }
    }
}

/// `service.setStatus` content.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetStatus {
    pub status: AgentStatus,
}

/// A request naming one conversation: `service.resolve`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ChatIdRef {
    pub chat_id: String,
}

impl ChatIdRef {
    pub(super) fn checked(self) -> Result<ChatIdRef, ChatError> {
        check_chat_id(&self.chat_id)?;
        Ok(self)
    }
}

fn check_chat_id(chat_id: &str) -> Result<(), ChatError> {
    if chat_id.is_empty() || chat_id.len() > MAX_CHAT_ID {
        return Err(ChatError::bad("chat_id must be 1 to 64 bytes"));
    }
    Ok(())
}

/// A request naming a consumer: `service.customer`, `service.block`, `service.unblock`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ConsumerRef {
    #[serde(deserialize_with = "lenient::int")]
    pub consumer_uid: i64,
}

impl ConsumerRef {
    pub(super) fn checked(self) -> Result<ConsumerRef, ChatError> {
        if self.consumer_uid <= 0 {
            return Err(ChatError::bad("consumer_uid must be a positive id"));
        }
        Ok(self)
    }
}

/// `shop.info` content.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ShopRef {
    #[serde(deserialize_with = "lenient::int")]
    pub shop_id: i64,
}

impl ShopRef {
    pub(super) fn checked(self) -> Result<ShopRef, ChatError> {
        if self.shop_id <= 0 {
            return Err(ChatError::bad("shop_id must be a positive id"));
        }
        Ok(self)
    }
}

/// The most sessions one `service.sessions` (and admin listing) page holds.
pub const MAX_SESSIONS_PAGE: i64 = 100;

/// `service.sessions` content.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
pub struct SessionsRequest {
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub limit: Option<i64>,
}

impl SessionsRequest {
    /// The state code asked for (default open) and the page size.
    pub fn bounds(&self) -> Result<(i32, i64), ChatError> {
        let state = match self.state.as_deref() {
            None | Some("open") => SessionState::Open.code(),
            Some("resolved") => SessionState::Resolved.code(),
            Some(_) => return Err(ChatError::bad("state must be open or resolved")),
        };
        let limit = self.limit.unwrap_or(MAX_SESSIONS_PAGE);
        if !(1..=MAX_SESSIONS_PAGE).contains(&limit) {
            return Err(ChatError::bad("limit must be 1 to 100"));
        }
        Ok((state, limit))
    }
}

pub const MAX_SHORT_CODE_CHARS: usize = 32;
pub const MAX_QUICK_REPLY_CHARS: usize = 1000;
/// The most quick replies a shop keeps.
pub const MAX_QUICK_REPLIES: i64 = 500;

/// `service.saveQuickReply` content, and the admin API's body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuickReply {
    pub short_code: String,
    pub text: String,
}

impl QuickReply {
    pub fn checked(mut self) -> Result<QuickReply, ChatError> {
        self.short_code = check_short_code(&self.short_code)?;
        if self.text.trim().is_empty() || self.text.chars().count() > MAX_QUICK_REPLY_CHARS {
            return Err(ChatError::bad(format!(
                "text must be 1 to {MAX_QUICK_REPLY_CHARS} characters"
            )));
        }
        Ok(self)
    }
}

/// A short code: 1 to 32 characters, no spaces or control characters.
pub fn check_short_code(code: &str) -> Result<String, ChatError> {
    let n = code.chars().count();
    if n == 0
        || n > MAX_SHORT_CODE_CHARS
        || code.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ChatError::bad(format!(
            "short_code must be 1 to {MAX_SHORT_CODE_CHARS} characters without spaces"
        )));
    }
    Ok(code.to_string())
}

/// `service.deleteQuickReply` content.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ShortCode {
    pub short_code: String,
}

pub const MAX_RATING_COMMENT_CHARS: usize = 500;
/// How long after its resolution a session may be rated.
pub const RATING_WINDOW_SECS: i64 = 7 * 24 * 3600;

/// `chat.rate` content.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Rate {
    pub chat_id: String,
    #[serde(deserialize_with = "lenient::int")]
    pub score: i64,
    #[serde(default)]
    pub comment: Option<String>,
}

impl Rate {
    pub(super) fn checked(self) -> Result<Rate, ChatError> {
        check_chat_id(&self.chat_id)?;
        if !(1..=5).contains(&self.score) {
            return Err(ChatError::bad("score must be 1 to 5"));
        }
        if self
            .comment
            .as_ref()
            .is_some_and(|c| c.chars().count() > MAX_RATING_COMMENT_CHARS)
        {
            return Err(ChatError::bad(format!(
                "comment must be at most {MAX_RATING_COMMENT_CHARS} characters"
            )));
        }
        Ok(self)
    }
}

/// Push code 202: something happened to a customer-service conversation. Every event
/// names the conversation; `queue` and `status` concern the shop or an agent, and carry
/// an empty `chat_id` and `consumer_uid` 0.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConvEvent {
    pub event: &'static str,
    pub chat_id: String,
    pub shop_id: i64,
    pub consumer_uid: i64,
    #[serde(flatten)]
    pub detail: EventDetail,
    /// New (§17): for an event that is also stored as a row (`resolved`,
    /// `rating_request`), the row's own id and its seq in the conversation.
    #[serde(skip_serializing_if = "super::is_zero")]
    pub msg_id: i64,
    #[serde(skip_serializing_if = "super::is_zero")]
    pub seq: i64,
}

/// What each kind of event adds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EventDetail {
    Assigned {
        agent_uid: i64,
        session_id: i64,
        reason: &'static str,
    },
    Transfer {
        from_uid: i64,
        to_uid: i64,
    },
    Waiting {
        position: usize,
    },
    Served {
        session_id: i64,
        service_nickname: String,
        service_avatar: String,
    },
    Queue {
        length: usize,
    },
    Resolved {
        session_id: i64,
        by_uid: i64,
    },
    RatingRequest {
        session_id: i64,
    },
    Status {
        agent_uid: i64,
        status: AgentStatus,
    },
}

impl EventDetail {
    /// The `event` word.
    pub fn name(&self) -> &'static str {
        match self {
            EventDetail::Assigned { .. } => "assigned",
            EventDetail::Transfer { .. } => "transfer",
            EventDetail::Waiting { .. } => "waiting",
            EventDetail::Served { .. } => "served",
            EventDetail::Queue { .. } => "queue",
            EventDetail::Resolved { .. } => "resolved",
            EventDetail::RatingRequest { .. } => "rating_request",
            EventDetail::Status { .. } => "status",
        }
    }
}

impl ConvEvent {
    pub fn new(chat_id: String, shop_id: i64, consumer_uid: i64, detail: EventDetail) -> ConvEvent {
        ConvEvent {
            event: detail.name(),
            chat_id,
            shop_id,
            consumer_uid,
            detail,
            msg_id: 0,
            seq: 0,
        }
    }

    /// The event as it was stored: row `msg_id`, `seq` in the conversation.
    pub fn stored_as(mut self, row: (i64, i64)) -> ConvEvent {
        (self.msg_id, self.seq) = row;
        self
    }

    /// The whole push frame.
    pub fn push_text(&self) -> String {
        super::reply_with(super::code::SERVICE_EVENT, self)
    }
}

/// A stored event row as `chat.sync` gives it: the event's fields with the row's own
/// `msg_id`, time and seq (and the chat_type of customer service's own events; a recall
/// keeps the one of its conversation).
pub fn event_row(stored: &str, msg_id: i64, createtime: i64, seq: i64) -> Value {
    let mut v: Value = serde_json::from_str(stored).unwrap_or(Value::Null);
    if let Some(map) = v.as_object_mut() {
        map.insert("msg_id".into(), msg_id.into());
        map.insert("createtime".into(), createtime.into());
        map.entry("chat_type").or_insert(4.into());
        if seq > 0 {
            map.insert("seq".into(), seq.into());
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_have_the_shapes_of_the_protocol() {
        let e = ConvEvent::new(
            "3____12".into(),
            3,
            12,
            EventDetail::Assigned {
                agent_uid: 100,
                session_id: 9,
                reason: "sticky",
            },
        );
        let v: Value = serde_json::from_str(&e.push_text()).unwrap();
        assert_eq!(
            v,
            json!({"code": 202, "msg": null, "result": {"event": "assigned", "chat_id": "3____12",
                "shop_id": 3, "consumer_uid": 12, "agent_uid": 100, "session_id": 9, "reason": "sticky"}})
        );
        let e = ConvEvent::new(
            String::new(),
            3,
            0,
            EventDetail::Status {
                agent_uid: 100,
                status: AgentStatus::Away,
            },
        );
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"event": "status", "chat_id": "", "shop_id": 3, "consumer_uid": 0, "agent_uid": 100, "status": "away"})
        );
        assert_eq!(
            event_row(r#"{"event":"resolved","chat_id":"3____12"}"#, 5, 77, 0),
            json!({"event": "resolved", "chat_id": "3____12", "msg_id": 5, "createtime": 77, "chat_type": 4})
        );
    }

    #[test]
    fn requests_are_checked() {
        let s: SetStatus = serde_json::from_value(json!({"status": "away"})).unwrap();
        assert_eq!(s.status, AgentStatus::Away);
        assert!(serde_json::from_value::<SetStatus>(json!({"status": "busy"})).is_err());
        assert_eq!(AgentStatus::from_flags(true, true), AgentStatus::Away);
        for st in [AgentStatus::Online, AgentStatus::Away, AgentStatus::Offline] {
            let (o, a) = st.flags();
            assert_eq!(AgentStatus::from_flags(o, a), st);
        }
        let rate = |v| serde_json::from_value::<Rate>(v).unwrap().checked();
        assert!(rate(json!({"chat_id": "3____12", "score": 5})).is_ok());
        assert!(rate(json!({"chat_id": "3____12", "score": "4", "comment": "ok"})).is_ok());
        assert!(rate(json!({"chat_id": "3____12", "score": 6})).is_err());
        assert!(rate(json!({"chat_id": "3____12", "score": 0})).is_err());
        assert!(
            rate(json!({"chat_id": "3____12", "score": 3, "comment": "x".repeat(501)})).is_err()
        );
        let qr = |c: &str, t: &str| {
            QuickReply {
                short_code: c.into(),
                text: t.into(),
            }
            .checked()
        };
        assert!(qr("hi", "Hello!").is_ok());
        assert!(qr("", "Hello!").is_err());
        assert!(qr("a b", "Hello!").is_err());
        assert!(qr(&"x".repeat(33), "Hello!").is_err());
        assert!(qr("hi", &"x".repeat(1001)).is_err());
        assert!(qr("hi", "  ").is_err());
        let sessions = |v| {
            serde_json::from_value::<SessionsRequest>(v)
                .unwrap()
                .bounds()
        };
        assert_eq!(sessions(json!({})), Ok((2, 100)));
        assert_eq!(
            sessions(json!({"state": "resolved", "limit": 5})),
            Ok((0, 5))
        );
        assert!(sessions(json!({"state": "waiting"})).is_err());
        assert!(sessions(json!({"limit": 101})).is_err());
    }
}

/// A session's rating as listings show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RatingView {
    pub score: i32,
    pub comment: Option<String>,
}

/// One session in a listing (`service.sessions`, `service.customer`, the admin API).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionView {
    pub session_id: i64,
    pub chat_id: String,
    pub consumer_uid: i64,
    /// Null while it waits.
    pub agent_uid: Option<i64>,
    pub state: &'static str,
    pub started_at: i64,
    pub first_response_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub last_time: i64,
    pub messages: i32,
    pub rating: Option<RatingView>,
    /// `service.sessions`: the shop side's unread count of the conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread_count: Option<i32>,
}

/// One consumer in `service.queue`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueRow {
    pub chat_id: String,
    pub consumer_uid: i64,
    pub nickname: String,
    pub avatar: String,
    pub waiting_since: i64,
    pub last_msg: String,
}

/// `service.me`: for an agent, its shop, role and status; for anyone else `agent:false` alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Me {
    pub agent: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub desk: Option<MeDesk>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeDesk {
    pub shop_id: i64,
    pub shop_name: String,
    pub role: AgentRole,
    pub status: AgentStatus,
}

/// One agent in `service.agents` (the transfer picker).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentRow {
    pub uid: i64,
    pub name: String,
    pub avatar: String,
    pub role: AgentRole,
    pub status: AgentStatus,
    pub connected: bool,
    pub open_sessions: usize,
}

/// `service.customer`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Customer {
    pub uid: i64,
    pub nickname: String,
    pub avatar: String,
    pub sessions: Vec<SessionView>,
}

/// `shop.info`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShopInfoView {
    pub shop_id: i64,
    pub name: String,
    pub logo: String,
    pub open_now: bool,
    pub agents_online: usize,
}

/// A `{"rows":[..]}` result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rows<T: Serialize> {
    pub rows: Vec<T>,
}
