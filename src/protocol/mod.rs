//! The wire contract of PROTOCOL.md as plain serde types: client requests, replies and
//! pushes. No I/O and no actix here, so every shape is unit-tested against the JSON
//! the document gives.

pub mod card;
pub mod gaps;
pub mod lenient;
pub mod service;
pub mod webhook;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::ChatError;
use crate::ids::{GroupId, ShopId, UserId};

/// Reply codes (PROTOCOL.md §2).
pub mod code {
    pub const OK: i32 = 1;
    pub const FAIL: i32 = 0;
    pub const PONG: i32 = -1;
    pub const NOT_LOGGED_IN: i32 = -200;
    pub const FRIEND_LIST: i32 = 100;
    pub const GROUP_MEMBERS: i32 = 101;
    pub const RECENT_CHATS: i32 = 102;
    pub const RECORDS: i32 = 201;
    pub const CHAT_PUSH: i32 = 200;
    /// New (§10): a customer-service conversation event.
    pub const SERVICE_EVENT: i32 = 202;
    /// New (§11): the other side is typing.
    pub const TYPING: i32 = 203;
    /// New (§11): the other side has read up to a message.
    pub const RECEIPT: i32 = 204;
    /// New (§11): a message was recalled.
    pub const RECALL: i32 = 205;
    /// New (§17): pushes may have been lost; ask `chat.heads` and fill the holes.
    pub const RESYNC: i32 = 206;
}

/// Declares a wire enum: its number on the wire (serde) and in the database (a Diesel
/// `Integer`), and the numbers that name it.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $n:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(
            Copy, Clone, Debug, PartialEq, Eq, Hash, diesel::expression::AsExpression,
            diesel::deserialize::FromSqlRow,
        )]
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pub enum $name {
            $($(#[$vdoc])* $variant = $n),*
        }

        impl $name {
            /// Its number.
            pub fn code(self) -> i32 {
                self as i32
            }

            /// The variant a number names, if any.
            pub fn from_code(n: i64) -> Option<$name> {
                match n {
                    $($n => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_i32(self.code())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let n = i64::deserialize(d)?;
                $name::from_code(n).ok_or_else(|| {
                    serde::de::Error::custom(format!("{} {n} is unknown", stringify!($name)))
                })
            }
        }

        impl<DB: diesel::backend::Backend> diesel::serialize::ToSql<diesel::sql_types::Integer, DB>
            for $name
        where
            i32: diesel::serialize::ToSql<diesel::sql_types::Integer, DB>,
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, DB>,
            ) -> diesel::serialize::Result {
                // Each number is a constant, so it outlives the statement being built.
                match self {
                    $($name::$variant => <i32 as diesel::serialize::ToSql<
                        diesel::sql_types::Integer,
                        DB,
                    >>::to_sql(&$n, out),)*
                }
            }
        }

        impl<DB: diesel::backend::Backend> diesel::deserialize::FromSql<diesel::sql_types::Integer, DB>
            for $name
        where
            i32: diesel::deserialize::FromSql<diesel::sql_types::Integer, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                let n = i32::from_sql(bytes)?;
                $name::from_code(i64::from(n))
                    .ok_or_else(|| format!("{} {n} is unknown", stringify!($name)).into())
            }
        }
    };
}

wire_enum! {
    /// What kind of conversation a message is in (PROTOCOL.md §4).
    ChatType {
        Direct = 1,
        Group = 2,
        /// System notices from the platform.
        System = 3,
        /// Customer service between a consumer and a shop.
        Service = 4,
    }
}

wire_enum! {
    /// What a message holds.
    MsgType {
        Text = 1,
        /// An image URL.
        Image = 2,
        /// New (§12): a product card (`card`), with a text fallback in `msg`.
        Product = 3,
        /// New (§12): an order card.
        Order = 4,
    }
}

impl MsgType {
    /// A product or order card (§12).
    pub fn is_card(self) -> bool {
        matches!(self, MsgType::Product | MsgType::Order)
    }
}

pub const PONG: &str = r#"{"code":-1,"msg":"PONG"}"#;
pub const NOT_LOGGED_IN: &str = r#"{"code":-200,"msg":"请登录"}"#;

/// A client text frame, decoded.
#[derive(Debug, PartialEq)]
// Made and consumed once per frame, never stored in bulk: boxing the request would cost
// an allocation per frame to save bytes on the rare heartbeat.
#[allow(clippy::large_enum_variant)]
pub enum Frame {
    /// Anything that is not JSON: the original client's bare `ping`.
    Heartbeat,
    Request(Request),
}

/// Every action a client may ask for.
#[derive(Debug, PartialEq)]
pub enum Request {
    SendMsg(SendMsg),
    Sync(SyncRequest),
    SetChatRead(ChatRef),
    DelChat(ChatRef),
    RecentChat(RecentChatRequest),
    SetOnline(SetOnline),
    Transfer(Transfer),
    GroupCreate(GroupCreate),
    GroupJoin(GroupRef),
    GroupLeave(GroupRef),
    GroupMembers(GroupRef),
    GroupList,
    /// New (§15): the owner adds a member.
    GroupAdd(GroupAdd),
    /// New (§11): the caller is typing in `chat_id` (never stored).
    Typing(ChatRef),
    /// New (§11): recall a message.
    Recall(MsgRef),
    /// New (§10): customer service as a shop runs it.
    SetStatus(service::SetStatus),
    Resolve(service::ChatIdRef),
    ServiceQueue,
    ServiceSessions(service::SessionsRequest),
    QuickReplies,
    SaveQuickReply(service::QuickReply),
    DeleteQuickReply(service::ShortCode),
    ServiceMe,
    ServiceAgents,
    ServiceCustomer(service::ConsumerRef),
    Block(service::ConsumerRef),
    Unblock(service::ConsumerRef),
    ShopInfo(service::ShopRef),
    Rate(service::Rate),
    /// New (§17): one conversation's rows after a seq.
    Range(gaps::RangeRequest),
    /// New (§17): the caller's conversations that moved since a time.
    Heads(gaps::HeadsRequest),
}

/// A frame as it arrives: `content` stays the frame's own text until the action says
/// what it holds, so it is parsed once, straight into its type.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    class: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    action: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
}

/// Decodes one text frame. Text that is not JSON is a heartbeat (the original client
/// sends a bare `ping`), except text that starts like a JSON object or array: that is a
/// broken request, and the client is told so.
pub fn parse_frame(text: &str) -> Result<Frame, ChatError> {
    let env: Envelope = match serde_json::from_str(text) {
        Ok(env) => env,
        // JSON, but not a request: a number, a string, an object without `class`...
        Err(e) if e.is_data() => return Err(bad_json(&e)),
        Err(e) if text.trim_start().starts_with(['{', '[']) => {
            return Err(ChatError::bad(format!("invalid JSON: {e}")))
        }
        Err(e) if e.is_syntax() || e.is_eof() => return Ok(Frame::Heartbeat),
        Err(e) => return Err(ChatError::bad(e.to_string())),
    };
    let class = ucfirst(&env.class);
    let action = env.action.to_ascii_lowercase();
    let request = match (class.as_str(), action.as_str()) {
        ("Chat", "sendmsg") => Request::SendMsg(content(env.content)?),
        ("Chat", "sync") => Request::Sync(content_or_default(env.content)?),
        ("Chat", "setchatread") => {
            Request::SetChatRead(content::<ChatRef>(env.content)?.checked()?)
        }
        ("Chat", "delchat") => Request::DelChat(content::<ChatRef>(env.content)?.checked()?),
        ("Chat", "typing") => Request::Typing(content::<ChatRef>(env.content)?.checked()?),
        ("Chat", "recall") => Request::Recall(content::<MsgRef>(env.content)?.checked()?),
        ("User", "recentchat") => Request::RecentChat(content_or_default(env.content)?),
        ("Service", "setonline") => Request::SetOnline(content(env.content)?),
        ("Service", "transfer") => Request::Transfer(content::<Transfer>(env.content)?.checked()?),
        ("Group", "create") => {
            Request::GroupCreate(content::<GroupCreate>(env.content)?.checked()?)
        }
        ("Group", "join") => Request::GroupJoin(content::<GroupRef>(env.content)?.checked()?),
        ("Group", "leave") => Request::GroupLeave(content::<GroupRef>(env.content)?.checked()?),
        ("Group", "add") => Request::GroupAdd(content::<GroupAdd>(env.content)?.checked()?),
        ("Group", "members") => Request::GroupMembers(content::<GroupRef>(env.content)?.checked()?),
        ("Group", "list") => Request::GroupList,
        ("Service", "setstatus") => Request::SetStatus(content(env.content)?),
        ("Service", "resolve") => {
            Request::Resolve(content::<service::ChatIdRef>(env.content)?.checked()?)
        }
        ("Service", "queue") => Request::ServiceQueue,
        ("Service", "sessions") => Request::ServiceSessions(content_or_default(env.content)?),
        ("Service", "quickreplies") => Request::QuickReplies,
        ("Service", "savequickreply") => {
            Request::SaveQuickReply(content::<service::QuickReply>(env.content)?.checked()?)
        }
        ("Service", "deletequickreply") => {
            let code: service::ShortCode = content(env.content)?;
            service::check_short_code(&code.short_code)?;
            Request::DeleteQuickReply(code)
        }
        ("Service", "me") => Request::ServiceMe,
        ("Service", "agents") => Request::ServiceAgents,
        ("Service", "customer") => {
            Request::ServiceCustomer(content::<service::ConsumerRef>(env.content)?.checked()?)
        }
        ("Service", "block") => {
            Request::Block(content::<service::ConsumerRef>(env.content)?.checked()?)
        }
        ("Service", "unblock") => {
            Request::Unblock(content::<service::ConsumerRef>(env.content)?.checked()?)
        }
        ("Shop", "info") => Request::ShopInfo(content::<service::ShopRef>(env.content)?.checked()?),
        ("Chat", "rate") => Request::Rate(content::<service::Rate>(env.content)?.checked()?),
        ("Chat", "range") => Request::Range(content::<gaps::RangeRequest>(env.content)?.checked()?),
        ("Chat", "heads") => {
            Request::Heads(content_or_default::<gaps::HeadsRequest>(env.content)?.checked()?)
        }
        _ => return Err(ChatError::UnknownAction),
    };
    Ok(Frame::Request(request))
}

/// The original dispatched on `ucfirst($class)`, so only the first letter's case is free.
fn ucfirst(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn content<T: serde::de::DeserializeOwned>(raw: Option<&RawValue>) -> Result<T, ChatError> {
    match raw.map(RawValue::get) {
        Some(text) if text.starts_with('{') => serde_json::from_str(text).map_err(|e| bad_json(&e)),
        _ => Err(ChatError::bad("content must be an object")),
    }
}

/// `content` that may be left out, null or `[]` (PHP's empty array) for the defaults.
fn content_or_default<T: serde::de::DeserializeOwned + Default>(
    raw: Option<&RawValue>,
) -> Result<T, ChatError> {
    match raw.map(RawValue::get) {
        None | Some("null") => Ok(T::default()),
        Some(text)
            if text
                .strip_prefix('[')
                .is_some_and(|r| r.trim_start() == "]") =>
        {
            Ok(T::default())
        }
        _ => content(raw),
    }
}

/// A request whose JSON does not fit its type, told without serde's position (which
/// would count from wherever in the frame the part parsed began).
fn bad_json(e: &serde_json::Error) -> ChatError {
    let text = e.to_string();
    let message = match text.rsplit_once(" at line ") {
        Some((message, _)) if e.line() > 0 => message,
        _ => text.as_str(),
    };
    ChatError::bad(message)
}

/// Sender's role in a customer-service message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Consumer,
    Agent,
}

/// `chat.sendMsg` content (PROTOCOL.md §4). Fields that only some chat types use are
/// kept raw and decoded by whoever handles that type, since the original client sends
/// `shop_id: 0, role_type: 0` with every 1:1 message and they must not be judged there.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SendMsg {
    #[serde(deserialize_with = "lenient::int")]
    pub chat_type: i64,
    #[serde(deserialize_with = "lenient::int")]
    pub msg_type: i64,
    /// Required but for cards, whose text fallback the server writes when it is empty.
    #[serde(default)]
    pub msg: String,
    #[serde(deserialize_with = "lenient::int")]
    pub to_uid: i64,
    #[serde(default)]
    pub chat_id: Value,
    #[serde(default)]
    pub shop_id: Value,
    #[serde(default)]
    pub role_type: Value,
    #[serde(default)]
    pub client_msg_id: Value,
    /// New (§12): the card of `msg_type` 3 and 4.
    #[serde(default)]
    pub card: Value,
    /// The card once checked (`card::check`): what is stored.
    #[serde(skip)]
    pub checked_card: Option<String>,
    /// The sensitive-word list masked its text or card title (§14).
    #[serde(skip)]
    pub masked: bool,
}

pub const MAX_CLIENT_MSG_ID: usize = 64;

impl SendMsg {
    /// The message type, if it is one.
    pub fn kind(&self) -> Result<MsgType, ChatError> {
        MsgType::from_code(self.msg_type).ok_or_else(|| {
            ChatError::bad("msg_type must be 1 (text), 2 (image), 3 (product) or 4 (order)")
        })
    }

    /// Checks a card (`msg_type` 3 and 4) and keeps it; an empty `msg` becomes the card's
    /// text fallback. Other message types must not carry one.
    pub fn check_card(&mut self, hosts: &ImageHosts, secret: &[u8]) -> Result<(), ChatError> {
        let kind = self.kind()?;
        if !kind.is_card() {
            return match self.card {
                Value::Null => Ok(()),
                _ => Err(ChatError::bad("only msg_type 3 and 4 carry a card")),
            };
        }
        let checked = card::check(kind, &self.card, hosts, secret)?;
        if self.msg.is_empty() {
            self.msg = checked.fallback;
        }
        self.checked_card = Some(checked.json);
        Ok(())
    }

    /// Checks the fields every chat type shares; returns the client_msg_id, if any.
    pub fn validate_common(&self, max_msg_chars: usize) -> Result<Option<String>, ChatError> {
        let kind = self.kind()?;
        if kind.is_card() != self.checked_card.is_some() {
            return Err(ChatError::bad(
                "msg_type 3 and 4, and only they, carry a card",
            ));
        }
        if self.msg.is_empty() {
            return Err(ChatError::bad("msg is empty"));
        }
        if self.msg.chars().count() > max_msg_chars {
            return Err(ChatError::MsgTooLong);
        }
        if self.to_uid <= 0 {
            return Err(ChatError::bad("to_uid must be a positive id"));
        }
        let client_msg_id = match &self.client_msg_id {
            Value::Null => None,
            Value::String(s) if s.is_empty() => None,
            Value::String(s) if s.len() <= MAX_CLIENT_MSG_ID => Some(s.clone()),
            _ => {
                return Err(ChatError::bad(
                    "client_msg_id must be a string of at most 64 bytes",
                ))
            }
        };
        Ok(client_msg_id)
    }

    /// role_type for chat_type 4: 0/"user" or 1/"service".
    pub fn role(&self) -> Result<Role, ChatError> {
        role_of(&self.role_type)
    }
}

fn role_of(v: &Value) -> Result<Role, ChatError> {
    match v {
        Value::String(s) if s == "user" || s == "0" => Ok(Role::Consumer),
        Value::String(s) if s == "service" || s == "1" => Ok(Role::Agent),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(Role::Consumer),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(Role::Agent),
        _ => Err(ChatError::bad(
            "role_type must be 0/\"user\" or 1/\"service\"",
        )),
    }
}

/// Longest chat_id any conversation has.
pub const MAX_CHAT_ID: usize = 64;

/// `chat.setChatRead` / `chat.delChat` content (PROTOCOL.md §6).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ChatRef {
    pub chat_id: String,
    #[serde(default)]
    pub role_type: Value,
    /// New (§11), `chat.setChatRead`: read up to this message (default: the latest).
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub msg_id: Option<i64>,
}

impl ChatRef {
    fn checked(self) -> Result<ChatRef, ChatError> {
        if self.chat_id.is_empty() || self.chat_id.len() > MAX_CHAT_ID {
            return Err(ChatError::bad("chat_id must be 1 to 64 bytes"));
        }
        if self.msg_id.is_some_and(|id| id <= 0) {
            return Err(ChatError::bad("msg_id must be a positive id"));
        }
        Ok(self)
    }

    /// The caller's side: absent or 0/"user" is their own, 1/"service" their shop's.
    pub fn role(&self) -> Result<Role, ChatError> {
        if self.role_type.is_null() {
            return Ok(Role::Consumer);
        }
        role_of(&self.role_type)
    }
}

/// `user.recentChat` content.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RecentChatRequest {
    /// Wire name `is_service`: the caller's shop's list, as its agent.
    #[serde(default, rename = "is_service", deserialize_with = "lenient::opt_bool")]
    pub as_agent: Option<bool>,
}

/// `service.setOnline` content.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SetOnline {
    #[serde(deserialize_with = "lenient::req_bool")]
    pub online: bool,
}

/// `service.transfer` content.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Transfer {
    pub chat_id: String,
    #[serde(deserialize_with = "lenient::int")]
    pub to_uid: i64,
}

impl Transfer {
    fn checked(self) -> Result<Transfer, ChatError> {
        if self.chat_id.is_empty() || self.chat_id.len() > MAX_CHAT_ID {
            return Err(ChatError::bad("chat_id must be 1 to 64 bytes"));
        }
        if self.to_uid <= 0 {
            return Err(ChatError::bad("to_uid must be a positive id"));
        }
        Ok(self)
    }
}

/// The longest name of a group, a profile or a shop.
pub const MAX_NAME_CHARS: usize = 64;
/// The longest avatar or logo URL.
pub const MAX_URL_BYTES: usize = 1024;
/// The most members a user's `group.create` may name.
pub const MAX_GROUP_CREATE_MEMBERS: usize = 500;
/// The most members the platform may create a group with (admin API, embedding handle).
pub const MAX_PLATFORM_GROUP_MEMBERS: usize = 2000;

/// `group.create` content.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct GroupCreate {
    pub name: String,
    #[serde(default, deserialize_with = "lenient::int_list")]
    pub member_uids: Vec<i64>,
    /// New (§15): anyone may `group.join` an open group; default private.
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub open: Option<bool>,
}

impl GroupCreate {
    fn checked(mut self) -> Result<GroupCreate, ChatError> {
        self.name = self.name.trim().to_string();
        if self.name.is_empty() || self.name.chars().count() > MAX_NAME_CHARS {
            return Err(ChatError::bad(format!(
                "name must be 1 to {MAX_NAME_CHARS} characters"
            )));
        }
        if self.member_uids.len() > MAX_GROUP_CREATE_MEMBERS
            || self.member_uids.iter().any(|u| *u <= 0)
        {
            return Err(ChatError::bad(format!(
                "member_uids must be at most {MAX_GROUP_CREATE_MEMBERS} positive ids"
            )));
        }
        self.member_uids.sort_unstable();
        self.member_uids.dedup();
        Ok(self)
    }
}

/// `group.join` / `group.leave` / `group.members` content.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct GroupRef {
    #[serde(deserialize_with = "lenient::int")]
    pub group_id: i64,
}

impl GroupRef {
    fn checked(self) -> Result<GroupRef, ChatError> {
        if self.group_id <= 0 {
            return Err(ChatError::bad("group_id must be a positive id"));
        }
        Ok(self)
    }
}

/// `group.add` content: the owner adds `uid`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct GroupAdd {
    #[serde(deserialize_with = "lenient::int")]
    pub group_id: i64,
    #[serde(deserialize_with = "lenient::int")]
    pub uid: i64,
}

impl GroupAdd {
    fn checked(self) -> Result<GroupAdd, ChatError> {
        if self.group_id <= 0 || self.uid <= 0 {
            return Err(ChatError::bad("group_id and uid must be positive ids"));
        }
        Ok(self)
    }
}

/// One member in `group.members` (code 101).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberRow {
    pub id: i64,
    pub nickname: String,
    pub avatar: String,
}

/// Push code 203: someone is typing in `chat_id` (in customer service an agent is shown
/// as the shop: uid 0 and the shop's name).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypingPush {
    pub chat_id: String,
    pub chat_type: ChatType,
    pub uid: i64,
    pub nickname: String,
}

impl TypingPush {
    pub fn push_text(&self) -> String {
        reply_with(code::TYPING, self)
    }
}

/// Push code 204: `reader_uid` (0 = the shop) has read `chat_id` up to `read_msg_id`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReceiptPush {
    pub chat_id: String,
    pub chat_type: ChatType,
    pub reader_uid: i64,
    pub read_msg_id: i64,
}

impl ReceiptPush {
    pub fn push_text(&self) -> String {
        reply_with(code::RECEIPT, self)
    }
}

/// Push code 205: message `msg_id` was recalled, by its `sender`, the `shop` or the
/// `platform`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecallPush {
    pub msg_id: i64,
    pub chat_id: String,
    pub chat_type: ChatType,
    pub by: &'static str,
    /// New (§17): the seq of the recall's event row in its conversation.
    #[serde(skip_serializing_if = "is_zero")]
    pub seq: i64,
    /// New (§17): the shop of a customer-service conversation (its chat_id names two).
    #[serde(skip_serializing_if = "is_zero")]
    pub shop_id: i64,
}

/// Leaves a §17 field out of a frame while it has no value.
pub fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl RecallPush {
    pub fn push_text(&self) -> String {
        reply_with(code::RECALL, self)
    }
}

/// `chat.recall` content.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MsgRef {
    #[serde(deserialize_with = "lenient::int")]
    pub msg_id: i64,
}

impl MsgRef {
    fn checked(self) -> Result<MsgRef, ChatError> {
        if self.msg_id <= 0 {
            return Err(ChatError::bad("msg_id must be a positive id"));
        }
        Ok(self)
    }
}

/// `chat.sync` content (PROTOCOL.md §7).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct SyncRequest {
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub since_msg_id: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub limit: Option<i64>,
}

pub const SYNC_DEFAULT_LIMIT: i64 = 100;
pub const SYNC_MAX_LIMIT: i64 = 500;
/// The most bytes one `chat.sync` reply takes (PROTOCOL.md §15); `has_more` says the rest.
pub const SYNC_MAX_BYTES: usize = 1 << 20;

impl Request {
    /// What the request costs of its connection's rate budget (`limits.msgs_per_sec`): a
    /// page of history or a list reads far more than a send or a mark.
    pub fn cost(&self) -> u32 {
        match self {
            Request::Sync(_) => 10,
            Request::Range(_)
            | Request::Heads(_)
            | Request::RecentChat(_)
            | Request::GroupMembers(_)
            | Request::ServiceQueue
            | Request::ServiceSessions(_)
            | Request::QuickReplies
            | Request::ServiceCustomer(_) => 5,
            Request::GroupList
            | Request::GroupCreate(_)
            | Request::ServiceAgents
            | Request::SaveQuickReply(_)
            | Request::Rate(_) => 2,
            _ => 1,
        }
    }

    /// The most bytes its reply may take: held against `limits.max_pending_bytes` while
    /// the request is in flight.
    pub fn reply_reserve(&self) -> usize {
        match self {
            Request::Sync(_) | Request::Range(_) => SYNC_MAX_BYTES + 256,
            Request::Heads(_) => 64 * 1024,
            Request::RecentChat(_)
            | Request::GroupMembers(_)
            | Request::ServiceQueue
            | Request::ServiceSessions(_)
            | Request::QuickReplies
            | Request::ServiceCustomer(_) => 256 * 1024,
            Request::GroupList | Request::ServiceAgents => 64 * 1024,
            _ => 4 * 1024,
        }
    }
}

impl SyncPage {
    /// The page of `rows` (oldest first) that fits in [`SYNC_MAX_BYTES`]; `has_more` when
    /// the database had more, or rows were left out to fit. At least one row goes out.
    pub fn within_bytes(rows: Vec<SyncRow>, db_has_more: bool) -> SyncPage {
        // `{"code":201,"msg":null,"result":{"rows":[` ... `],"has_more":false}}`
        let mut bytes = PageBytes::new(64);
        let total = rows.len();
        let kept: Vec<SyncRow> = rows.into_iter().take_while(|r| bytes.take(r)).collect();
        let has_more = db_has_more || kept.len() < total;
        SyncPage {
            rows: kept,
            has_more,
        }
    }
}

/// What a page of rows (`chat.sync`, `chat.range`) has taken of [`SYNC_MAX_BYTES`].
pub struct PageBytes {
    used: usize,
    any: bool,
}

impl PageBytes {
    /// A page whose frame around its rows takes `overhead` bytes.
    pub fn new(overhead: usize) -> PageBytes {
        PageBytes {
            used: overhead,
            any: false,
        }
    }

    /// Counts `row` in if it fits; the first row always does.
    pub fn take(&mut self, row: &SyncRow) -> bool {
        let len = serde_json::to_vec(row).map_or(0, |v| v.len()) + 1;
        if self.any && self.used + len > SYNC_MAX_BYTES {
            return false;
        }
        self.used += len;
        self.any = true;
        true
    }
}

impl SyncRequest {
    /// (since, limit) with the defaults applied and the limit capped.
    pub fn bounds(&self) -> Result<(i64, i64), ChatError> {
        let since = self.since_msg_id.unwrap_or(0);
        let limit = self.limit.unwrap_or(SYNC_DEFAULT_LIMIT);
        if since < 0 || limit <= 0 {
            return Err(ChatError::bad("since_msg_id must be >= 0 and limit > 0"));
        }
        Ok((since, limit.min(SYNC_MAX_LIMIT)))
    }
}

#[derive(Serialize)]
struct Reply<'a, T: Serialize> {
    code: i32,
    msg: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

fn to_text<T: Serialize>(reply: &Reply<'_, T>) -> String {
    serde_json::to_string(reply).expect("reply types should always serialize")
}

/// `{"code":<code>,"msg":null,"result":<result>}`.
pub fn reply_with<T: Serialize>(code: i32, result: &T) -> String {
    to_text(&Reply {
        code,
        msg: None,
        result: Some(result),
        error: None,
    })
}

/// A success reply (code 1).
pub fn ok<T: Serialize>(result: &T) -> String {
    reply_with(code::OK, result)
}

/// A failure reply (code 0) with the original's message and a stable machine word.
pub fn error_reply(err: &ChatError) -> String {
    let (msg, word) = err.wire();
    to_text::<()>(&Reply {
        code: code::FAIL,
        msg: Some(msg),
        result: None,
        error: Some(word),
    })
}

/// A push of one chat message, serialized once and shared by every receiving connection.
pub fn push_text(push: &ChatPush) -> Arc<str> {
    Arc::from(reply_with(code::CHAT_PUSH, push))
}

/// The ack of a stored message (the fields are new; the original sent `result:null`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SendAck {
    pub msg_id: i64,
    pub chat_id: String,
    pub createtime: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    /// New (§14): the stored text, when the sensitive-word list masked it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
    /// New (§17): the message's seq in its conversation.
    #[serde(skip_serializing_if = "is_zero")]
    pub seq: i64,
}

/// A chat message as receivers see it (PROTOCOL.md §4 push table); also the row shape of `chat.sync`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatPush {
    pub nickname: String,
    pub avatar: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<UserId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_nickname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_avatar: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shop_id: Option<ShopId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<GroupId>,
    pub chat_id: String,
    pub chat_type: ChatType,
    pub msg_type: MsgType,
    pub msg: String,
    pub createtime: i64,
    pub msg_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    /// New (§10): an automatic reply from the shop (welcome, offline).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto: bool,
    /// New (§12): the card of `msg_type` 3 and 4 (`verified` when the platform signed it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<Value>,
    /// New (§11): recalled; `msg` is then [`RECALLED_TEXT`] and `msg_type` 1.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recalled: bool,
    /// New (§17): its seq in its conversation (0 until it is stored: never sent so).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seq: i64,
    /// New (§17): a notice to everyone, stored once: its seq is in conversation
    /// `system_0`, not in the reader's own `system_{uid}`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub broadcast: bool,
}

/// How this server names an upload (`/user/upload`): 32 hex digits and the image type.
/// Nothing else is served, so no path can escape the upload folder.
pub static STORED_NAME: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"^[0-9a-f]{32}\.(png|jpg|gif|webp)$").expect("name pattern should compile")
});

/// The name of this server's upload that an image message's URL points at, if it does.
pub fn upload_name(url: &str) -> Option<&str> {
    let (_, name) = url.rsplit_once("/media/")?;
    STORED_NAME.is_match(name).then_some(name)
}

/// The name a recalled image's upload is kept under: still there for the platform, no
/// longer served (`GET /media/{name}` answers 410).
pub fn retired_upload(name: &str) -> String {
    format!("{name}.recalled")
}

/// What a recalled message shows (PROTOCOL.md §11).
pub const RECALLED_TEXT: &str = "[消息已撤回]";

/// One row of `chat.sync`: a message, or a stored event (§10 `resolved`,
/// `rating_request`; §11 recall).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
// Most rows are messages: boxing them would cost an allocation per row to save bytes on
// the rare event row.
#[allow(clippy::large_enum_variant)]
pub enum SyncRow {
    Message(ChatPush),
    Event(Value),
}

/// `chat.sync` result (code 201).
#[derive(Debug, Serialize)]
pub struct SyncPage {
    pub rows: Vec<SyncRow>,
    pub has_more: bool,
}

/// One row of a recent-chat list (PROTOCOL.md §6).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecentChatRow {
    pub id: i64,
    pub uid: i64,
    pub chat_id: String,
    pub shop_id: i64,
    pub friend_uid: i64,
    pub friend_name: String,
    pub friend_avatar: String,
    pub last_msg: String,
    pub last_uid: i64,
    pub last_time: i64,
    pub chat_type: ChatType,
    pub msg_type: MsgType,
    pub unread_count: i64,
    /// New (§17): the conversation's last seq.
    pub last_seq: i64,
}

/// `user.recentChat` (code 102) and `/user/chatRecently` (code 1) result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecentChats {
    pub rows: Vec<RecentChatRow>,
    pub unread_count: i64,
}

/// One message of `/user/getChatRecord` (PROTOCOL.md §8).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordRow {
    pub msg_id: i64,
    pub avatar: String,
    pub nickname: String,
    pub chat_id: String,
    pub from_uid: i64,
    pub to_uid: i64,
    pub chat_type: ChatType,
    pub msg_type: MsgType,
    pub msg: String,
    pub createtime: i64,
    pub mine: bool,
    /// New (§11), on the caller's own 1:1 and customer-service messages: whether the
    /// other side has read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read: Option<bool>,
    /// New (§10): an automatic reply from the shop.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub auto: bool,
    /// New (§12): the card of `msg_type` 3 and 4.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<Value>,
    /// New (§11): recalled (the placeholder shows instead).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub recalled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Records {
    pub rows: Vec<RecordRow>,
    pub total: i64,
}

/// Avatars and logos stored as relative paths are served from `media.base_url`.
/// Which image URLs (`msg_type` 2) a client may send (`media.allowed_hosts`): with no
/// hosts listed, any; otherwise a relative path (this server's uploads) or an
/// http(s) URL on a listed host, so a message cannot carry a tracking pixel.
#[derive(Clone, Debug, Default)]
pub struct ImageHosts {
    hosts: Vec<String>,
}

impl ImageHosts {
    /// `hosts` as `host` or `host:port`; `base_url`'s host is always allowed (it is ours).
    pub fn new(hosts: &[String], base_url: &str) -> ImageHosts {
        let mut hosts: Vec<String> = hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
        if !hosts.is_empty() {
            if let Some(own) = url_host(base_url) {
                hosts.push(own);
            }
        }
        ImageHosts { hosts }
    }

    pub fn allows(&self, url: &str) -> bool {
        if self.hosts.is_empty() {
            return true;
        }
        if url.starts_with('/') && !url.starts_with("//") {
            return !url.contains('\\');
        }
        match url_host(url) {
            Some(authority) => {
                let host = authority
                    .rsplit_once(':')
                    .map_or(authority.as_str(), |(h, _)| h);
                self.hosts.iter().any(|h| *h == authority || h == host)
            }
            None => false,
        }
    }
}

/// The `host[:port]` of an `http(s)://` or `//` URL, lowercased; None for anything else
/// or a URL with user info (`https://good.com@evil.com/`).
fn url_host(url: &str) -> Option<String> {
    let lower = url.to_ascii_lowercase();
    let rest = ["https://", "http://", "//"]
        .iter()
        .find_map(|p| lower.strip_prefix(p))?;
    let authority = rest.split(['/', '?', '#', '\\']).next()?;
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(authority.to_string())
}

pub fn absolute_url(base: &str, path: &str) -> String {
    let is_absolute = ["http://", "https://", "//", "data:"]
        .iter()
        .any(|p| path.starts_with(p));
    if path.is_empty() || is_absolute || base.is_empty() {
        return path.to_string();
    }
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod image_host_tests {
    use super::ImageHosts;

    #[test]
    fn no_list_allows_any_url() {
        assert!(ImageHosts::new(&[], "").allows("https://tracker.example/p.gif"));
    }

    #[test]
    fn a_list_allows_our_uploads_and_listed_hosts_only() {
        let h = ImageHosts::new(
            &["cdn.shop.com".into(), "img.shop.com:8443".into()],
            "http://chat.shop.com:9504",
        );
        assert!(h.allows("/media/0123456789abcdef0123456789abcdef.png"));
        assert!(h.allows("https://cdn.shop.com/a.png"));
        assert!(h.allows("https://CDN.shop.com:443/a.png"));
        assert!(h.allows("https://img.shop.com:8443/a.png"));
        assert!(
            h.allows("http://chat.shop.com:9504/media/x.png"),
            "base_url's host"
        );
        for bad in [
            "https://tracker.example/p.gif",
            "//tracker.example/p.gif",
            "https://cdn.shop.com@tracker.example/p.gif",
            "https://cdn.shop.com.tracker.example/p.gif",
            "https://img.shop.com:9999/a.png",
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "cdn.shop.com/a.png",
            "/\\tracker.example/p.gif",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
    }
}
