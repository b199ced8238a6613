//! Customer service (PROTOCOL.md §5, §10): shops, their agents, and one conversation row
//! per shop and consumer saying where it stands (state, agent, session, since when it
//! has waited). Sessions, the queue and the shop's numbers are in `sessions`.

use diesel::prelude::*;
use diesel::result::Error as DieselError;

use super::conn::{upsert, DbConn};
use super::conversations::profiles_by_id;
use super::models::{AgentRow, Profile, RoutingView, ServiceChatRow, ShopRow, ShopState};
use super::schema::{agents, blocked_consumers, service_chats, shops};
use super::users::ensure_user;
use crate::ids::{ShopId, UserId};
use crate::protocol::service::{AgentStatus, SessionState};

/// What a ShopRouter in cluster mode reads before it decides.
#[derive(Clone, Debug, PartialEq)]
pub struct RoutingQuery {
    pub shop: ShopId,
    /// The conversation about to be routed, if any.
    pub consumer: Option<UserId>,
    /// Whether to list the conversations waiting for an agent.
    pub waiting: bool,
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

/// A shop's customer-service settings (PROTOCOL.md §10): `None` keeps a field,
/// `Some(None)` clears a nullable one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShopSettings {
    pub queue_when_full: Option<bool>,
    pub welcome_msg: Option<Option<String>>,
    pub offline_msg: Option<Option<String>>,
    pub auto_resolve_mins: Option<i32>,
    /// JSON, already checked.
    pub working_hours: Option<Option<String>>,
}

impl ShopSettings {
    fn is_empty(&self) -> bool {
        *self == ShopSettings::default()
    }
}

/// Creates or updates a shop; fields left `None` keep their value (a new shop without
/// a name is called `shop{id}`).
pub fn upsert_shop(
    conn: &mut DbConn,
    shop: ShopId,
    name: Option<&str>,
    logo: Option<&str>,
    capacity: Option<i32>,
    settings: &ShopSettings,
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
    conn.transaction(|conn| {
        upsert!(&mut *conn, shops::table, row, shops::id, change)?;
        if !settings.is_empty() {
            let s = settings.clone();
            let set = (
                s.queue_when_full.map(|v| shops::queue_when_full.eq(v)),
                s.welcome_msg.map(|v| shops::welcome_msg.eq(v)),
                s.offline_msg.map(|v| shops::offline_msg.eq(v)),
                s.auto_resolve_mins.map(|v| shops::auto_resolve_mins.eq(v)),
                s.working_hours.map(|v| shops::working_hours.eq(v)),
            );
            diesel::update(shops::table.find(shop.0))
                .set(set)
                .execute(conn)?;
        }
        find_shop(conn, shop)?.ok_or(DieselError::NotFound)
    })
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
    supervisor: Option<bool>,
    now: i64,
) -> QueryResult<Option<Option<ShopId>>> {
    conn.transaction(|conn| {
        // It reads first: on SQLite, take the write lock now (`conn::take_write_lock`).
        super::conn::take_write_lock(conn)?;
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
            agents::supervisor.eq(supervisor.unwrap_or(false)),
        );
        let change = (
            agents::shop_id.eq(shop.0),
            name.map(|n| agents::name.eq(n)),
            supervisor.map(|s| agents::supervisor.eq(s)),
        );
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

/// Sets the status of `shop`'s agent `uid`; false if it is not that shop's agent.
pub fn set_agent_status(
    conn: &mut DbConn,
    shop: ShopId,
    uid: UserId,
    status: AgentStatus,
) -> QueryResult<bool> {
    let (online, away) = status.flags();
    let n = diesel::update(
        agents::table
            .filter(agents::uid.eq(uid.0))
            .filter(agents::shop_id.eq(shop.0)),
    )
    .set((agents::online.eq(online), agents::away.eq(away)))
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
    let blocked = blocked_consumers::table
        .filter(blocked_consumers::shop_id.eq(shop.0))
        .select(blocked_consumers::consumer_uid)
        .load::<i64>(conn)?
        .into_iter()
        .map(UserId)
        .collect();
    Ok(ShopState {
        shop: row,
        agents,
        chats,
        blocked,
    })
}

pub fn find_chat(
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
        .filter(service_chats::state.eq(SessionState::Open.code()))
        .group_by(service_chats::agent_uid)
        .select((service_chats::agent_uid, diesel::dsl::count_star()))
        .load::<(i64, i64)>(conn)?;
    let waiting = if q.waiting {
        service_chats::table
            .filter(service_chats::shop_id.eq(q.shop.0))
            .filter(service_chats::state.eq(SessionState::Waiting.code()))
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
