//! Rows as Diesel reads and writes them.

use diesel::prelude::*;

use super::schema::{messages, users};
use crate::ids::{GroupId, MsgId, ShopId, UserId};
use crate::protocol::{ChatType, MsgType};

/// What pushes need of a user: the name and avatar as stored (avatar may be relative).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub uid: UserId,
    pub nickname: String,
    pub avatar: String,
}

impl Profile {
    /// What a user we have never heard of is called until the platform syncs a profile.
    pub fn placeholder_nickname(uid: UserId) -> String {
        format!("user{uid}")
    }

    /// The profile of a user we have never heard of.
    pub fn placeholder(uid: UserId) -> Profile {
        Profile {
            uid,
            nickname: Profile::placeholder_nickname(uid),
            avatar: String::new(),
        }
    }
}

#[derive(Insertable, Clone, Debug, PartialEq)]
#[diesel(table_name = messages)]
// `None` is NULL, not DEFAULT: the INSERT is then one fixed statement, prepared once and
// cached, instead of being built and parsed again for every message.
#[diesel(treat_none_as_default_value = false)]
pub struct NewMessage {
    pub chat_id: String,
    pub chat_type: ChatType,
    pub msg_type: MsgType,
    pub msg: String,
    pub from_uid: UserId,
    pub to_uid: UserId,
    pub shop_id: ShopId,
    pub group_id: GroupId,
    pub consumer_uid: UserId,
    /// Sent by one of the shop's agents (the column keeps the original's name).
    #[diesel(column_name = from_service)]
    pub from_agent: bool,
    pub client_msg_id: Option<String>,
    pub createtime: i64,
    pub agent_uid: UserId,
    /// An automatic reply from the shop (PROTOCOL.md §10).
    pub auto_reply: bool,
    /// An event row (`resolved`, `rating_request`): `msg` holds the event's JSON. Never
    /// unread, never in history pages, never a conversation's last message.
    pub event_type: Option<String>,
    /// The checked card of `msg_type` 3 and 4, as JSON (`protocol::card`).
    pub card: Option<String>,
    /// When it was recalled (0 = never): shown as the recall placeholder from then on.
    pub recalled_at: i64,
    /// Its text was masked by the sensitive-word list (PROTOCOL.md §14): the sender's ack
    /// carries the stored `msg`. Not a column.
    #[diesel(skip_insertion)]
    pub masked: bool,
}

impl NewMessage {
    /// A message of `chat_type` in conversation `chat_id` from `from` to `to`, stamped
    /// now; the fields of other chat types are zero until the caller sets them.
    pub fn new(
        chat_type: ChatType,
        chat_id: String,
        msg_type: MsgType,
        msg: String,
        from: UserId,
        to: UserId,
        client_msg_id: Option<String>,
    ) -> NewMessage {
        NewMessage {
            chat_id,
            chat_type,
            msg_type,
            msg,
            from_uid: from,
            to_uid: to,
            shop_id: ShopId::default(),
            group_id: GroupId::default(),
            consumer_uid: UserId::default(),
            from_agent: false,
            client_msg_id,
            createtime: crate::clock::unix_now() as i64,
            agent_uid: UserId::default(),
            auto_reply: false,
            event_type: None,
            card: None,
            recalled_at: 0,
            masked: false,
        }
    }
}

#[derive(Queryable, Selectable, Clone, Debug, PartialEq)]
#[diesel(table_name = messages)]
pub struct MessageRow {
    pub id: MsgId,
    pub chat_id: String,
    pub chat_type: ChatType,
    pub msg_type: MsgType,
    pub msg: String,
    pub from_uid: UserId,
    pub to_uid: UserId,
    pub shop_id: ShopId,
    pub group_id: GroupId,
    pub consumer_uid: UserId,
    /// Sent by one of the shop's agents (the column keeps the original's name).
    #[diesel(column_name = from_service)]
    pub from_agent: bool,
    pub client_msg_id: Option<String>,
    pub createtime: i64,
    pub agent_uid: UserId,
    pub auto_reply: bool,
    pub event_type: Option<String>,
    pub card: Option<String>,
    pub recalled_at: i64,
}

/// A stored message with its sender's current profile (a placeholder if the sender has
/// no row; an agent's service name when it answered for a shop) and, for customer
/// service, the shop.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageWithSender {
    pub message: MessageRow,
    pub sender: Profile,
    pub shop: Option<ShopRow>,
}

#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = users)]
pub struct ProfileRow {
    pub id: UserId,
    pub nickname: String,
    pub avatar: String,
}

impl From<ProfileRow> for Profile {
    fn from(r: ProfileRow) -> Profile {
        Profile {
            uid: r.id,
            nickname: r.nickname,
            avatar: r.avatar,
        }
    }
}

#[derive(Queryable, Selectable, Clone, Debug, PartialEq)]
#[diesel(table_name = super::schema::conversations)]
pub struct ConversationRow {
    pub id: i64,
    pub owner_uid: i64,
    pub shop_id: i64,
    pub chat_id: String,
    pub chat_type: ChatType,
    pub peer_id: i64,
    pub last_msg: String,
    pub last_uid: i64,
    pub last_time: i64,
    pub msg_type: MsgType,
    pub unread_count: i32,
    pub hidden: bool,
}

/// A conversation row with the name and avatar of whoever is on the other side.
#[derive(Clone, Debug, PartialEq)]
pub struct ConversationView {
    pub row: ConversationRow,
    pub peer_name: String,
    pub peer_avatar: String,
}

/// A user as the friend list shows them.
#[derive(Queryable, Selectable, Clone, Debug, PartialEq)]
#[diesel(table_name = users)]
pub struct UserCard {
    pub id: i64,
    pub nickname: String,
    pub avatar: String,
    pub sign: String,
}

#[derive(Queryable, Selectable, Clone, Debug, PartialEq)]
#[diesel(table_name = super::schema::shops)]
pub struct ShopRow {
    pub id: ShopId,
    pub name: String,
    pub logo: String,
    pub capacity: i32,
    /// Capacity is a hard limit: consumers wait rather than overload an agent.
    pub queue_when_full: bool,
    pub welcome_msg: Option<String>,
    pub offline_msg: Option<String>,
    /// Open sessions quiet this long are resolved; 0 = never.
    pub auto_resolve_mins: i32,
    /// JSON (`domain::hours::WorkingHoursSpec`); None = always open.
    pub working_hours: Option<String>,
}

impl ShopRow {
    /// What a shop is called until the platform names it.
    pub fn placeholder_name(shop: ShopId) -> String {
        format!("shop{shop}")
    }
}

#[derive(Queryable, Selectable, Clone, Debug, PartialEq)]
#[diesel(table_name = super::schema::agents)]
pub struct AgentRow {
    pub uid: UserId,
    pub shop_id: ShopId,
    pub name: String,
    pub online: bool,
    pub away: bool,
    pub supervisor: bool,
}

#[derive(Queryable, Selectable, Clone, Debug, PartialEq)]
#[diesel(table_name = super::schema::service_chats)]
pub struct ServiceChatRow {
    pub shop_id: ShopId,
    pub consumer_uid: UserId,
    pub chat_id: String,
    pub agent_uid: UserId,
    pub waiting_from: i64,
    pub last_time: i64,
    /// `domain::session::ConvState` as stored (0 resolved, 1 waiting, 2 open).
    pub state: i32,
    pub session_id: i64,
    /// Auto replies the current session has had (`AutoReply::bit`).
    pub auto_sent: i32,
}

/// A shop's routing state as the database has it (cluster mode).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoutingView {
    /// The conversation asked about, if it exists.
    pub conv: Option<ServiceChatRow>,
    /// Open conversations per agent.
    pub loads: Vec<(UserId, usize)>,
    /// Conversations waiting for an agent, oldest first (if asked).
    pub waiting: Vec<ServiceChatRow>,
}

/// Everything a ShopRouter starts from.
#[derive(Clone, Debug, PartialEq)]
pub struct ShopState {
    pub shop: Option<ShopRow>,
    /// Each agent with the avatar of its user profile.
    pub agents: Vec<(AgentRow, Profile)>,
    pub chats: Vec<ServiceChatRow>,
    /// Consumers the shop has blocked.
    pub blocked: Vec<UserId>,
}
