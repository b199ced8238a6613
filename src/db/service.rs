//! Customer service (PROTOCOL.md §5): shops, their agents, and one conversation row per
//! shop and consumer saying who serves it and since when it has waited.

use diesel::prelude::*;
use diesel::result::Error as DieselError;

use super::conn::{upsert, DbConn};
use super::conversations::profiles_by_id;
use super::models::{
    AgentRow, MessageWithSender, NewMessage, Profile, RoutingView, ServiceChatRow, ShopRow,
    ShopState,
};
use super::schema::{agents, messages, service_chats, shops};
use super::users::ensure_user;
use crate::ids::{ShopId, UserId};
use crate::protocol::ChatType;

/// What a ShopRouter in cluster mode reads before it decides.
#[derive(Clone, Debug, PartialEq)]
pub struct RoutingQuery {
    pub shop: ShopId,
    /// The conversation about to be routed, if any.
    pub consumer: Option<UserId>,
    /// Whether to list the conversations waiting for an agent.
    pub waiting: bool,
    /// Conversations quiet since before this unix time do not count toward load.
    pub open_since: i64,
}

pub fn shop_ids(conn: &mut DbConn) -> QueryResult<Vec<ShopId>> {
    Ok(shops::table
        .select(shops::id)
        .load::<i64>(conn)?
        .into_iter()
        .map(ShopId)
        .collect())
}

pub fn find_shop(conn: &mut DbConn, shop: ShopId) -> QueryResult<Option<ShopRow>> {
    shops::table
        .find(shop.0)
        .select(ShopRow::as_select())
        .first(conn)
        .optional()
}

/// Creates or updates a shop; fields left `None` keep their value (a new shop without
/// a name is called `shop{id}`).
pub fn upsert_shop(
    conn: &mut DbConn,
    shop: ShopId,
    name: Option<&str>,
    logo: Option<&str>,
    capacity: Option<i32>,
    now: i64,
) -> QueryResult<ShopRow> {
    let placeholder = ShopRow::placeholder_name(shop);
    let row = (
        shops::id.eq(shop.0),
        shops::name.eq(name.unwrap_or(&placeholder)),
        shops::logo.eq(logo.unwrap_or("")),
        shops::capacity.eq(capacity.unwrap_or(0)),
        shops::created_at.eq(now),
    );
    // Setting the id to itself keeps the change valid when no field is given.
    let change = (
        shops::id.eq(shop.0),
        name.map(|n| shops::name.eq(n)),
        logo.map(|l| shops::logo.eq(l)),
        capacity.map(|c| shops::capacity.eq(c)),
    );
    upsert!(&mut *conn, shops::table, row, shops::id, change)?;
    find_shop(conn, shop)?.ok_or(DieselError::NotFound)
}

pub fn find_agent(conn: &mut DbConn, uid: UserId) -> QueryResult<Option<AgentRow>> {
    agents::table
        .find(uid.0)
        .select(AgentRow::as_select())
        .first(conn)
        .optional()
}

/// The shop `uid` serves, if it is an agent.
pub fn agent_shop(conn: &mut DbConn, uid: UserId) -> QueryResult<Option<ShopId>> {
    Ok(find_agent(conn, uid)?.map(|a| a.shop_id))
}

/// Attaches `uid` to `shop` (moving it from another shop if need be); returns the shop
/// it served before, or `None` if the shop does not exist.
pub fn attach_agent(
    conn: &mut DbConn,
    shop: ShopId,
    uid: UserId,
    name: Option<&str>,
    now: i64,
) -> QueryResult<Option<Option<ShopId>>> {
    conn.transaction(|conn| {
        if find_shop(conn, shop)?.is_none() {
            return Ok(None);
        }
        ensure_user(conn, uid, now)?;
        let before = find_agent(conn, uid)?;
        let row = (
            agents::uid.eq(uid.0),
            agents::shop_id.eq(shop.0),
            agents::name.eq(name.unwrap_or("")),
            agents::online.eq(false),
            agents::created_at.eq(now),
        );
        let change = (agents::shop_id.eq(shop.0), name.map(|n| agents::name.eq(n)));
        upsert!(&mut *conn, agents::table, row, agents::uid, change)?;
        Ok(Some(before.map(|a| a.shop_id)))
    })
}

/// Detaches `uid` from `shop`; false if it was not that shop's agent.
pub fn detach_agent(conn: &mut DbConn, shop: ShopId, uid: UserId) -> QueryResult<bool> {
    let n = diesel::delete(
        agents::table
            .filter(agents::uid.eq(uid.0))
            .filter(agents::shop_id.eq(shop.0)),
    )
    .execute(conn)?;
    Ok(n > 0)
}

/// Sets the online flag of `shop`'s agent `uid`; false if it is not that shop's agent.
pub fn set_agent_online(
    conn: &mut DbConn,
    shop: ShopId,
    uid: UserId,
    online: bool,
) -> QueryResult<bool> {
    let n = diesel::update(
        agents::table
            .filter(agents::uid.eq(uid.0))
            .filter(agents::shop_id.eq(shop.0)),
    )
    .set(agents::online.eq(online))
    .execute(conn)?;
    Ok(n > 0)
}

/// What a ShopRouter needs to start: the shop, its agents and its conversations.
pub fn load_shop_state(conn: &mut DbConn, shop: ShopId) -> QueryResult<ShopState> {
    let row = find_shop(conn, shop)?;
    let agent_rows: Vec<AgentRow> = agents::table
        .filter(agents::shop_id.eq(shop.0))
        .order(agents::uid.asc())
        .select(AgentRow::as_select())
        .load(conn)?;
    let uids: Vec<UserId> = agent_rows.iter().map(|a| a.uid).collect();
    let profiles = profiles_by_id(conn, &uids)?;
    let agents = agent_rows
        .into_iter()
        .map(|a| {
            let profile = profiles
                .get(&a.uid)
                .cloned()
                .unwrap_or_else(|| Profile::placeholder(a.uid));
            (a, profile)
        })
        .collect();
    let chats = service_chats::table
        .filter(service_chats::shop_id.eq(shop.0))
        .select(ServiceChatRow::as_select())
        .load(conn)?;
    Ok(ShopState {
        shop: row,
        agents,
        chats,
    })
}

fn find_chat(
    conn: &mut DbConn,
    shop: ShopId,
    consumer: UserId,
) -> QueryResult<Option<ServiceChatRow>> {
    service_chats::table
        .filter(service_chats::shop_id.eq(shop))
        .filter(service_chats::consumer_uid.eq(consumer))
        .select(ServiceChatRow::as_select())
        .first(conn)
        .optional()
}

/// Keeps the service conversation of a stored chat_type-4 message up to date: the
/// agent it went to or came from serves it; with none, it waits from this message on.
pub fn record(conn: &mut DbConn, id: i64, m: &NewMessage) -> QueryResult<()> {
    if m.chat_type != ChatType::Service {
        return Ok(());
    }
    let existing = find_chat(conn, m.shop_id, m.consumer_uid)?;
    let none = UserId::default();
    let (agent, waiting_from) = match (m.agent_uid, &existing) {
        (a, Some(row)) if a == none && row.waiting_from > 0 => (row.agent_uid, row.waiting_from),
        (a, Some(row)) if a == none => (row.agent_uid, id),
        (a, None) if a == none => (none, id),
        (agent, _) => (agent, 0),
    };
    if existing.is_some() {
        diesel::update(
            service_chats::table
                .filter(service_chats::shop_id.eq(m.shop_id))
                .filter(service_chats::consumer_uid.eq(m.consumer_uid)),
        )
        .set((
            service_chats::agent_uid.eq(agent),
            service_chats::waiting_from.eq(waiting_from),
            service_chats::last_time.eq(m.createtime),
        ))
        .execute(conn)?;
        return Ok(());
    }
    diesel::insert_into(service_chats::table)
        .values((
            service_chats::shop_id.eq(m.shop_id),
            service_chats::consumer_uid.eq(m.consumer_uid),
            service_chats::chat_id.eq(&m.chat_id),
            service_chats::agent_uid.eq(agent),
            service_chats::waiting_from.eq(waiting_from),
            service_chats::last_time.eq(m.createtime),
        ))
        .execute(conn)?;
    Ok(())
}

/// What a ShopRouter in cluster mode decides from: the conversation to route, each
/// agent's open conversations, and (if asked) the waiting conversations, oldest first.
pub fn routing_view(conn: &mut DbConn, q: &RoutingQuery) -> QueryResult<RoutingView> {
    let conv = match q.consumer {
        Some(c) => find_chat(conn, q.shop, c)?,
        None => None,
    };
    let loads = service_chats::table
        .filter(service_chats::shop_id.eq(q.shop.0))
        .filter(service_chats::agent_uid.gt(0))
        .filter(service_chats::last_time.ge(q.open_since))
        .group_by(service_chats::agent_uid)
        .select((service_chats::agent_uid, diesel::dsl::count_star()))
        .load::<(i64, i64)>(conn)?;
    let waiting = if q.waiting {
        service_chats::table
            .filter(service_chats::shop_id.eq(q.shop.0))
            .filter(service_chats::waiting_from.gt(0))
            .order(service_chats::waiting_from.asc())
            .limit(MAX_WAITING_READ)
            .select(ServiceChatRow::as_select())
            .load(conn)?
    } else {
        Vec::new()
    };
    Ok(RoutingView {
        conv,
        loads: loads
            .into_iter()
            .map(|(a, n)| (UserId(a), n as usize))
            .collect(),
        waiting,
    })
}

/// The most waiting conversations one routing read hands out.
const MAX_WAITING_READ: i64 = 1000;

/// Gives a conversation to `agent` (with `only_if_waiting`, only if it still waits);
/// returns what it had waited with (the messages since it started waiting), which the
/// agent has not seen.
pub fn assign(
    conn: &mut DbConn,
    shop: ShopId,
    consumer: UserId,
    agent: UserId,
    only_if_waiting: bool,
) -> QueryResult<Vec<MessageWithSender>> {
    let Some(row) = find_chat(conn, shop, consumer)? else {
        return Ok(Vec::new());
    };
    if only_if_waiting && row.waiting_from == 0 {
        return Ok(Vec::new());
    }
    let target = service_chats::table
        .filter(service_chats::shop_id.eq(shop.0))
        .filter(service_chats::consumer_uid.eq(consumer.0));
    let set = (
        service_chats::agent_uid.eq(agent.0),
        service_chats::waiting_from.eq(0),
    );
    if only_if_waiting {
        // Compare and set: of two nodes handing out the same waiting conversation at
        // once, the second finds it no longer waiting (its UPDATE waits for the first's
        // row lock, then matches nothing) and pushes nothing.
        let won = diesel::update(target.filter(service_chats::waiting_from.eq(row.waiting_from)))
            .set(set)
            .execute(conn)?;
        if won == 0 {
            return Ok(Vec::new());
        }
    } else {
        diesel::update(target).set(set).execute(conn)?;
    }
    if row.waiting_from == 0 {
        return Ok(Vec::new());
    }
    let rows = messages::table
        .left_join(super::schema::users::table)
        .filter(messages::chat_type.eq(ChatType::Service))
        .filter(messages::shop_id.eq(shop.0))
        .filter(messages::shop_id.gt(0)) // lets SQLite use its partial index
        .filter(messages::consumer_uid.eq(consumer.0))
        .filter(messages::id.ge(row.waiting_from))
        .order(messages::id.asc())
        .select((
            super::models::MessageRow::as_select(),
            Option::<super::models::ProfileRow>::as_select(),
        ))
        .load(conn)?;
    super::users::with_senders(conn, rows)
}
