//! The platform's operations (PROTOCOL.md §9): profiles, shops, agents, groups and
//! system notices. The admin API (`http::admin`) parses requests into these calls, and an
//! embedding host calls them directly through `embed::Shopchat`; both get the same checks.

use std::sync::Arc;

use actix::Addr;
use serde::Serialize;

use crate::chats::ask;
use crate::cluster::ClusterEvent;
mod platform;
mod service;

pub use platform::{Delivery, MAX_DELIVERIES_PAGE};
pub use service::{AgentStats, RatingRow, SessionQuery, ShopStats};

use crate::db::{
    self, AttachAgent, CreateGroup, DbExecutor, DetachAgent, JoinGroup, LeaveGroup, SetAgentStatus,
    ShopRow, ShopSettings, UpsertShop, UpsertUser,
};
use crate::domain::hours::{WorkingHours, WorkingHoursSpec};
use crate::error::ChatError;
use crate::ids::{GroupId, MsgId, ShopId, UserId};
use crate::protocol::service::{AgentRole, AgentStatus};
use crate::protocol::{
    absolute_url, MsgType, MAX_NAME_CHARS, MAX_PLATFORM_GROUP_MEMBERS, MAX_URL_BYTES,
};
use crate::routing::AgentReport;
use crate::server::{
    Changed, ChatServer, Notify, OnlineAmong, RecallByPlatform, ShopAgents, TellStatus,
};

/// The most users one notice may name; beyond that, broadcast to all.
pub const MAX_NOTICE_UIDS: usize = 1000;

/// Why an operation was refused. The admin API renders it as HTTP 400/404/503.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin token required")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("storage unavailable, try again")]
    Storage,
}

impl From<ChatError> for AdminError {
    fn from(_: ChatError) -> AdminError {
        // `ask` has logged the cause; everything it reports is a storage failure.
        AdminError::Storage
    }
}

pub(crate) fn bad(msg: impl Into<String>) -> AdminError {
    AdminError::BadRequest(msg.into())
}

/// Ids come from outside (a path, a host's call): only positive ones name anything.
fn positive<T: Copy + Into<i64>>(id: T) -> Result<T, AdminError> {
    if id.into() > 0 {
        Ok(id)
    } else {
        Err(bad("ids must be positive integers"))
    }
}

fn check_name(name: Option<&String>, required_chars: bool) -> Result<(), AdminError> {
    match name {
        Some(n)
            if (required_chars && n.trim().is_empty()) || n.chars().count() > MAX_NAME_CHARS =>
        {
            Err(bad(format!(
                "names are {} to {MAX_NAME_CHARS} characters",
                u8::from(required_chars)
            )))
        }
        _ => Ok(()),
    }
}

fn check_url(url: Option<&String>, field: &str) -> Result<(), AdminError> {
    match url {
        Some(u) if u.len() > MAX_URL_BYTES => {
            Err(bad(format!("{field} is longer than {MAX_URL_BYTES} bytes")))
        }
        _ => Ok(()),
    }
}

/// A profile change; `None` fields keep what is stored.
#[derive(Clone, Debug, Default)]
pub struct UserUpdate {
    pub nickname: Option<String>,
    pub avatar: Option<String>,
}

impl UserUpdate {
    pub fn named(nickname: impl Into<String>) -> UserUpdate {
        UserUpdate {
            nickname: Some(nickname.into()),
            avatar: None,
        }
    }
}

/// A shop change; `None` fields keep what is stored, `Some(None)` clears a nullable one.
#[derive(Clone, Debug, Default)]
pub struct ShopUpdate {
    pub name: Option<String>,
    pub logo: Option<String>,
    /// Most open sessions per agent the random choice prefers; 0 = unlimited.
    pub capacity: Option<i32>,
    /// Capacity becomes a hard limit: consumers wait rather than overload an agent.
    pub queue_when_full: Option<bool>,
    pub welcome_msg: Option<Option<String>>,
    pub offline_msg: Option<Option<String>>,
    /// Open sessions quiet this long are resolved; 0 = never.
    pub auto_resolve_mins: Option<i32>,
    pub working_hours: Option<Option<WorkingHoursSpec>>,
}

/// The longest `auto_resolve_mins`: a week.
pub const MAX_AUTO_RESOLVE_MINS: i32 = 7 * 24 * 60;

impl ShopUpdate {
    pub fn named(name: impl Into<String>) -> ShopUpdate {
        ShopUpdate {
            name: Some(name.into()),
            ..ShopUpdate::default()
        }
    }
}

/// A stored profile, its avatar as an absolute URL.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UserInfo {
    pub id: i64,
    pub nickname: String,
    pub avatar: String,
}

/// A stored shop, its logo as an absolute URL, with its customer-service settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShopInfo {
    pub id: i64,
    pub name: String,
    pub logo: String,
    pub capacity: i32,
    pub queue_when_full: bool,
    pub welcome_msg: Option<String>,
    pub offline_msg: Option<String>,
    pub auto_resolve_mins: i32,
    pub working_hours: Option<WorkingHoursSpec>,
}

impl ShopInfo {
    fn new(row: ShopRow, media_base: &str) -> ShopInfo {
        ShopInfo {
            id: row.id.0,
            logo: absolute_url(media_base, &row.logo),
            name: row.name,
            capacity: row.capacity,
            queue_when_full: row.queue_when_full,
            welcome_msg: row.welcome_msg,
            offline_msg: row.offline_msg,
            auto_resolve_mins: row.auto_resolve_mins,
            working_hours: row
                .working_hours
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok()),
        }
    }
}

/// A message as the platform reads it (`GET /admin/messages/{id}`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredMessage {
    pub msg_id: i64,
    pub chat_id: String,
    pub chat_type: crate::protocol::ChatType,
    pub msg_type: MsgType,
    /// The original text, recalled or not.
    pub msg: String,
    pub from_uid: i64,
    pub to_uid: i64,
    pub shop_id: i64,
    pub group_id: i64,
    pub createtime: i64,
    pub recalled_at: Option<i64>,
    pub card: Option<serde_json::Value>,
}

/// Who a system notice (chat_type 3) goes to.
#[derive(Clone, Debug)]
pub enum Audience {
    /// These users (1 to [`MAX_NOTICE_UIDS`]).
    Users(Vec<UserId>),
    /// Every user, stored once.
    All,
}

/// The operations, over the actors they change. Cheap to clone.
#[derive(Clone)]
pub struct Admin {
    db: Addr<DbExecutor>,
    server: Addr<ChatServer>,
    /// `media.base_url`, for the absolute URLs of avatars and logos.
    media_base: Arc<str>,
    max_msg_chars: usize,
}

impl Admin {
    pub fn new(
        db: Addr<DbExecutor>,
        server: Addr<ChatServer>,
        config: &crate::config::Config,
    ) -> Admin {
        Admin {
            db,
            server,
            media_base: Arc::from(config.media.base_url.as_str()),
            max_msg_chars: config.limits.max_msg_chars,
        }
    }

    /// Creates or updates a profile; later pushes carry it.
    pub async fn upsert_user(
        &self,
        uid: UserId,
        update: UserUpdate,
    ) -> Result<UserInfo, AdminError> {
        let uid = positive(uid)?;
        check_name(update.nickname.as_ref(), true)?;
        check_url(update.avatar.as_ref(), "avatar")?;
        let profile = ask(self.db.send(UpsertUser {
            uid,
            nickname: update.nickname,
            avatar: update.avatar,
        }))
        .await?;
        let info = UserInfo {
            id: uid.0,
            nickname: profile.nickname.clone(),
            avatar: absolute_url(&self.media_base, &profile.avatar),
        };
        self.server
            .do_send(Changed(ClusterEvent::profile(&profile)));
        Ok(info)
    }

    /// Creates or updates a shop.
    pub async fn upsert_shop(
        &self,
        shop: ShopId,
        update: ShopUpdate,
    ) -> Result<ShopInfo, AdminError> {
        let shop = positive(shop)?;
        check_name(update.name.as_ref(), true)?;
        check_url(update.logo.as_ref(), "logo")?;
        if update.capacity.is_some_and(|c| c < 0) {
            return Err(bad("capacity must be 0 (unlimited) or more"));
        }
        let settings = self.settings(&update)?;
        let row = ask(self.db.send(UpsertShop {
            shop,
            name: update.name,
            logo: update.logo,
            capacity: update.capacity,
            settings,
        }))
        .await?;
        self.server
            .do_send(Changed(ClusterEvent::ShopChanged { shop }));
        Ok(ShopInfo::new(row, &self.media_base))
    }

    /// The customer-service settings of `update`, checked.
    fn settings(&self, update: &ShopUpdate) -> Result<ShopSettings, AdminError> {
        for (field, text) in [
            ("welcome_msg", &update.welcome_msg),
            ("offline_msg", &update.offline_msg),
        ] {
            if let Some(Some(t)) = text {
                if t.trim().is_empty() || t.chars().count() > self.max_msg_chars {
                    return Err(bad(format!(
                        "{field} must be 1 to {} characters (null clears it)",
                        self.max_msg_chars
                    )));
                }
            }
        }
        if update
            .auto_resolve_mins
            .is_some_and(|m| !(0..=MAX_AUTO_RESOLVE_MINS).contains(&m))
        {
            return Err(bad(format!(
                "auto_resolve_mins must be 0 (never) to {MAX_AUTO_RESOLVE_MINS}"
            )));
        }
        let working_hours = match &update.working_hours {
            Some(Some(spec)) => {
                WorkingHours::parse(spec).map_err(|e| bad(format!("working_hours: {e}")))?;
                Some(Some(
                    serde_json::to_string(spec).map_err(|e| bad(e.to_string()))?,
                ))
            }
            Some(None) => Some(None),
            None => None,
        };
        Ok(ShopSettings {
            queue_when_full: update.queue_when_full,
            welcome_msg: update.welcome_msg.clone(),
            offline_msg: update.offline_msg.clone(),
            auto_resolve_mins: update.auto_resolve_mins,
            working_hours,
        })
    }

    /// Attaches `uid` to `shop` as an agent (moving it from another shop if need be).
    pub async fn attach_agent(
        &self,
        shop: ShopId,
        uid: UserId,
        name: Option<String>,
    ) -> Result<(), AdminError> {
        self.attach_agent_as(shop, uid, name, None).await
    }

    /// Attaches `uid` to `shop` in `role` (`None`: a new agent is an agent, an existing
    /// one keeps its role).
    pub async fn attach_agent_as(
        &self,
        shop: ShopId,
        uid: UserId,
        name: Option<String>,
        role: Option<AgentRole>,
    ) -> Result<(), AdminError> {
        let (shop, uid) = (positive(shop)?, positive(uid)?);
        check_name(name.as_ref(), false)?;
        let supervisor = role.map(|r| r == AgentRole::Supervisor);
        let before = ask(self.db.send(AttachAgent {
            shop,
            uid,
            name,
            supervisor,
        }))
        .await?
        .ok_or(AdminError::NotFound("no such shop"))?;
        self.server.do_send(Changed(ClusterEvent::AgentMoved {
            uid,
            from: before,
            to: Some(shop),
        }));
        Ok(())
    }

    /// Detaches an agent from its shop.
    pub async fn detach_agent(&self, shop: ShopId, uid: UserId) -> Result<(), AdminError> {
        let (shop, uid) = (positive(shop)?, positive(uid)?);
        if !ask(self.db.send(DetachAgent { shop, uid })).await? {
            return Err(AdminError::NotFound("no such agent in this shop"));
        }
        self.server.do_send(Changed(ClusterEvent::AgentMoved {
            uid,
            from: Some(shop),
            to: None,
        }));
        Ok(())
    }

    /// Sets an agent's online flag: online, or offline.
    pub async fn set_agent_online(
        &self,
        shop: ShopId,
        uid: UserId,
        online: bool,
    ) -> Result<(), AdminError> {
        let status = match online {
            true => AgentStatus::Online,
            false => AgentStatus::Offline,
        };
        self.set_agent_status(shop, uid, status).await
    }

    /// Sets an agent's status (it is routable when online and connected).
    pub async fn set_agent_status(
        &self,
        shop: ShopId,
        uid: UserId,
        status: AgentStatus,
    ) -> Result<(), AdminError> {
        let (shop, uid) = (positive(shop)?, positive(uid)?);
        if !ask(self.db.send(SetAgentStatus { shop, uid, status })).await? {
            return Err(AdminError::NotFound("no such agent in this shop"));
        }
        self.server
            .do_send(Changed(ClusterEvent::AgentStatusChanged {
                shop,
                uid,
                status,
            }));
        self.server.do_send(TellStatus {
            shop,
            uid,
            status,
            except: None,
        });
        Ok(())
    }

    /// Recalls a message for the platform, at any time (PROTOCOL.md §11): everyone who
    /// could see it is told, and it shows the placeholder from now on.
    pub async fn recall_message(&self, id: MsgId) -> Result<(), AdminError> {
        let id = positive(id)?;
        match self.server.send(RecallByPlatform { msg_id: id }).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(ChatError::NotFound)) => Err(AdminError::NotFound("no such message")),
            _ => Err(AdminError::Storage),
        }
    }

    /// A message as stored, with its original text even when recalled.
    pub async fn message(&self, id: MsgId) -> Result<StoredMessage, AdminError> {
        let id = positive(id)?;
        let m = ask(self.db.send(db::FindMessage { id }))
            .await?
            .ok_or(AdminError::NotFound("no such message"))?;
        Ok(StoredMessage {
            msg_id: m.id.0,
            chat_id: m.chat_id,
            chat_type: m.chat_type,
            msg_type: m.msg_type,
            msg: m.msg,
            from_uid: m.from_uid.0,
            to_uid: m.to_uid.0,
            shop_id: m.shop_id.0,
            group_id: m.group_id.0,
            createtime: m.createtime,
            recalled_at: (m.recalled_at > 0).then_some(m.recalled_at),
            card: m.card.as_deref().and_then(|j| serde_json::from_str(j).ok()),
        })
    }

    /// A shop's agents: status, whether connected, open sessions.
    pub async fn shop_agents(&self, shop: ShopId) -> Result<Vec<AgentReport>, AdminError> {
        let shop = positive(shop)?;
        self.server
            .send(ShopAgents { shop })
            .await
            .map_err(|_| AdminError::Storage)?
            .ok_or(AdminError::NotFound("no such shop"))
    }

    /// Which of `uids` have a live connection (on any node in cluster mode), sorted.
    pub async fn online_users(&self, uids: &[UserId]) -> Result<Vec<UserId>, AdminError> {
        let uids = uids.to_vec();
        self.server
            .send(OnlineAmong { uids })
            .await
            .map_err(|_| AdminError::Storage)
    }

    /// Creates a group owned by `owner` with `members` (the owner is always one). It is
    /// private: its members come from the owner or the platform; see [`Self::create_open_group`].
    pub async fn create_group(
        &self,
        name: &str,
        owner: UserId,
        members: &[UserId],
    ) -> Result<GroupId, AdminError> {
        self.create_group_as(name, owner, members, false).await
    }

    /// Creates a group that anyone may `group.join`.
    pub async fn create_open_group(
        &self,
        name: &str,
        owner: UserId,
        members: &[UserId],
    ) -> Result<GroupId, AdminError> {
        self.create_group_as(name, owner, members, true).await
    }

    async fn create_group_as(
        &self,
        name: &str,
        owner: UserId,
        members: &[UserId],
        open: bool,
    ) -> Result<GroupId, AdminError> {
        let name = name.trim().to_string();
        check_name(Some(&name), true)?;
        positive(owner)?;
        if members.len() > MAX_PLATFORM_GROUP_MEMBERS || members.iter().any(|u| u.0 <= 0) {
            return Err(bad(format!(
                "member_uids must be at most {MAX_PLATFORM_GROUP_MEMBERS} positive ids"
            )));
        }
        let mut members = members.to_vec();
        members.sort();
        members.dedup();
        ask(self.db.send(CreateGroup {
            name,
            owner,
            members,
            open,
            by: db::groups::Joiner::Platform,
        }))
        .await?
        .ok_or(AdminError::Storage)
    }

    /// Adds a member; `Ok(false)` if it already was one.
    pub async fn add_group_member(&self, group: GroupId, uid: UserId) -> Result<bool, AdminError> {
        let (group, uid) = (positive(group)?, positive(uid)?);
        match ask(self.db.send(JoinGroup {
            group,
            uid,
            by: db::groups::Joiner::Platform,
        }))
        .await?
        {
            db::groups::Joined::Member(added) => Ok(added),
            db::groups::Joined::NoGroup | db::groups::Joined::Forbidden => {
                Err(AdminError::NotFound("no such group"))
            }
        }
    }

    /// Removes a member.
    pub async fn remove_group_member(&self, group: GroupId, uid: UserId) -> Result<(), AdminError> {
        let (group, uid) = (positive(group)?, positive(uid)?);
        if !ask(self.db.send(LeaveGroup { group, uid })).await? {
            return Err(AdminError::NotFound("no such member in this group"));
        }
        Ok(())
    }

    /// Stores a system notice (msg_type 1 text, 2 image URL) and pushes it to whoever of
    /// its audience is connected; returns the stored ids (one per user, or one for all).
    pub async fn notify(
        &self,
        to: Audience,
        msg_type: i64,
        msg: String,
    ) -> Result<Vec<MsgId>, AdminError> {
        let to = match to {
            Audience::All => None,
            Audience::Users(uids) if uids.is_empty() => {
                return Err(bad("give either uids or all: true"))
            }
            Audience::Users(uids)
                if uids.len() <= MAX_NOTICE_UIDS && uids.iter().all(|u| u.0 > 0) =>
            {
                let mut uids = uids;
                uids.sort();
                uids.dedup();
                Some(uids)
            }
            Audience::Users(_) => return Err(bad("uids must be at most 1000 positive ids")),
        };
        let msg_type = MsgType::from_code(msg_type)
            .filter(|t| !t.is_card())
            .ok_or_else(|| bad("msg_type must be 1 or 2"))?;
        if msg.is_empty() || msg.chars().count() > self.max_msg_chars {
            return Err(bad("msg must be non-empty and within limits.max_msg_chars"));
        }
        self.server
            .send(Notify { to, msg_type, msg })
            .await
            .map_err(|_| AdminError::Storage)?
            .map_err(AdminError::from)
    }
}
