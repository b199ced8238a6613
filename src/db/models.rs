//! Rows as Diesel reads and writes them.

use diesel::backend::Backend;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Bool, HasSqlType, Integer, Nullable, Text};

use super::conn::{insert_returning_id, sqlite_last_insert_id, DbConn};
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

/// Stores `m` and returns its id. On SQLite, the hot path, through [`InsertMessage`]
/// and the connection's last rowid; on the server databases through Diesel's own
/// insert (`RETURNING` on PostgreSQL, `LAST_INSERT_ID()` on MySQL).
pub fn insert_message(conn: &mut DbConn, m: &NewMessage, seq: i64) -> QueryResult<MsgId> {
    #[allow(irrefutable_let_patterns)] // only SQLite is compiled in without features
    if let DbConn::Sqlite(c) = conn {
        return InsertMessage(m, seq)
            .execute(c)
            .and_then(|_| sqlite_last_insert_id(c))
            .map(MsgId);
    }
    insert_returning_id!(
        conn,
        messages::table,
        (m, messages::seq.eq(seq)),
        messages::id
    )
    .map(MsgId)
}

/// `INSERT INTO messages (chat_id, …, recalled_at) VALUES (?, …)` for one message,
/// written out as a query of its own: Diesel's derived insert of the same seventeen
/// columns walked its tuple of values twice per message (once only to learn that it may
/// be cached) and was about a quarter of the writer's time flat out (BENCHMARKS.md,
/// session 9). It names every field of [`NewMessage`], so a field added there does not
/// compile until it is written here too.
pub struct InsertMessage<'a>(pub &'a NewMessage, pub i64);

super::conn::fixed_query!(InsertMessage);

impl<DB> QueryFragment<DB> for InsertMessage<'_>
where
    DB: Backend + HasSqlType<Bool>,
    str: ToSql<Text, DB>,
    i64: ToSql<BigInt, DB>,
    bool: ToSql<Bool, DB>,
    Option<String>: ToSql<Nullable<Text>, DB>,
    UserId: ToSql<BigInt, DB>,
    ShopId: ToSql<BigInt, DB>,
    GroupId: ToSql<BigInt, DB>,
    ChatType: ToSql<Integer, DB>,
    MsgType: ToSql<Integer, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        let NewMessage {
            chat_id,
            chat_type,
            msg_type,
            msg,
            from_uid,
            to_uid,
            shop_id,
            group_id,
            consumer_uid,
            from_agent,
            client_msg_id,
            createtime,
            agent_uid,
            auto_reply,
            event_type,
            card,
            recalled_at,
            masked: _, // not a column
        } = self.0;
        let seq = &self.1;
        out.push_sql("INSERT INTO ");
        out.push_identifier("messages")?;
        out.push_sql(" (");
        for (i, column) in MESSAGE_COLUMNS.iter().enumerate() {
            if i > 0 {
                out.push_sql(", ");
            }
            out.push_identifier(column)?;
        }
        out.push_sql(") VALUES (");
        // Each value in the order of MESSAGE_COLUMNS, with its SQL type.
        macro_rules! values {
            ($first_ty:ty: $first:expr $(, $ty:ty: $value:expr)* $(,)?) => {
                out.push_bind_param::<$first_ty, _>($first)?;
                $(
                    out.push_sql(", ");
                    out.push_bind_param::<$ty, _>($value)?;
                )*
            };
        }
        values!(
            Text: chat_id.as_str(),
            Integer: chat_type,
            Integer: msg_type,
            Text: msg.as_str(),
            BigInt: from_uid,
            BigInt: to_uid,
            BigInt: shop_id,
            BigInt: group_id,
            BigInt: consumer_uid,
            Bool: from_agent,
            Nullable<Text>: client_msg_id,
            BigInt: createtime,
            BigInt: agent_uid,
            Bool: auto_reply,
            Nullable<Text>: event_type,
            Nullable<Text>: card,
            BigInt: recalled_at,
            BigInt: seq,
        );
        out.push_sql(")");
        Ok(())
    }
}

/// The columns [`InsertMessage`] writes, in the order of its values.
const MESSAGE_COLUMNS: [&str; 18] = [
    "chat_id",
    "chat_type",
    "msg_type",
    "msg",
    "from_uid",
    "to_uid",
    "shop_id",
    "group_id",
    "consumer_uid",
    "from_service",
    "client_msg_id",
    "createtime",
    "agent_uid",
    "auto_reply",
    "event_type",
    "card",
    "recalled_at",
    "seq",
];

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
    /// Its place in its conversation (PROTOCOL.md §17).
    pub seq: i64,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::db;

    /// Every field of a message goes to its own column, through the hand-written insert
    /// on SQLite and through Diesel's derived one (the server databases' path), alike.
    #[test]
    fn a_message_comes_back_as_it_was_inserted_field_for_field() {
        let (_d, mut c) = db();
        let m = NewMessage {
            chat_id: "s_7_8".into(),
            chat_type: ChatType::Service,
            msg_type: MsgType::Order,
            msg: "订单 #42".into(),
            from_uid: UserId(8),
            to_uid: UserId(9),
            shop_id: ShopId(7),
            group_id: GroupId(3),
            consumer_uid: UserId(10),
            from_agent: true,
            client_msg_id: Some("c-1".into()),
            createtime: 1_700_000_123,
            agent_uid: UserId(11),
            auto_reply: true,
            event_type: Some("resolved".into()),
            card: Some("{\"title\":\"t\"}".into()),
            recalled_at: 1_700_000_456,
            masked: true,
        };
        let again = NewMessage {
            client_msg_id: Some("c-2".into()),
            ..m.clone()
        };
        let by_hand = insert_message(&mut c, &m, 5).unwrap();
        #[allow(irrefutable_let_patterns)] // only SQLite is compiled in without features
        let DbConn::Sqlite(sqlite) = &mut **c
        else {
            unreachable!("the test database is SQLite")
        };
        let derived: i64 = diesel::insert_into(messages::table)
            .values((&again, messages::seq.eq(6)))
            .returning(messages::id)
            .get_result(sqlite)
            .unwrap();
        let rows: Vec<MessageRow> = messages::table
            .order(messages::id)
            .select(MessageRow::as_select())
            .load(&mut **c)
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].id, rows[1].id), (by_hand, MsgId(derived)));
        assert_eq!((rows[0].seq, rows[1].seq), (5, 6));
        for (row, inserted) in rows.iter().zip([&m, &again]) {
            let as_new = NewMessage {
                chat_id: row.chat_id.clone(),
                chat_type: row.chat_type,
                msg_type: row.msg_type,
                msg: row.msg.clone(),
                from_uid: row.from_uid,
                to_uid: row.to_uid,
                shop_id: row.shop_id,
                group_id: row.group_id,
                consumer_uid: row.consumer_uid,
                from_agent: row.from_agent,
                client_msg_id: row.client_msg_id.clone(),
                createtime: row.createtime,
                agent_uid: row.agent_uid,
                auto_reply: row.auto_reply,
                event_type: row.event_type.clone(),
                card: row.card.clone(),
                recalled_at: row.recalled_at,
                masked: true,
            };
            assert_eq!(&as_new, inserted);
        }
    }
}
