//! Running shopchat inside a host actix-web application.
//!
//! [`Builder::start`] starts the actors (DbExecutor, ChatServer, the ShopRouters, and the
//! Redis link when `redis.url` is set) in the host's actix System and returns a
//! [`Shopchat`] handle. The handle mounts the WebSocket and HTTP routes under a prefix of
//! the host's choosing, and offers the admin API's operations as typed async methods, so
//! the host's back end needs neither HTTP nor the admin token to reach them.
//!
//! ```no_run
//! use actix_web::{web, App, HttpServer};
//!
//! # async fn host(config: shopchat::Config) -> Result<(), Box<dyn std::error::Error>> {
//! let chat = shopchat::embed::Builder::new(config).start()?;
//! let routes = chat.mount("/im");
//! let server = HttpServer::new(move || {
//!     App::new()
//!         .route("/hello", web::get().to(|| async { "hello" }))
//!         .configure(routes.clone())
//! })
//! .bind(("127.0.0.1", 8080))?
//! .run();
//! let handle = server.handle();
//! actix_rt::spawn(server);
//! chat.upsert_user(42, shopchat::embed::UserUpdate::named("Alice")).await?;
//! // ... later, on the host's own shutdown:
//! handle.pause().await;
//! chat.shutdown().await;
//! handle.stop(true).await;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use actix_web::web;
use serde::Serialize;

use crate::auth::Authenticator;
use crate::chats::ask;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::db::{
    self, AttachAgent, CreateGroup, DbExecutor, DetachAgent, JoinGroup, LeaveGroup, SetAgentOnline,
    UpsertShop, UpsertUser,
};
use crate::error::ChatError;
use crate::http::{self, AppState};
use crate::ids::{GroupId, MsgId, ShopId, UserId};
use crate::metrics::Metrics;
use crate::protocol::absolute_url;
use crate::router::AgentReport;
use crate::server::push::Presenter;
use crate::server::{
    AgentFlagChanged, AgentMoved, ChatServer, Notify, OnlineAmong, ProfileChanged, ShopAgents,
    ShopChanged, Shutdown,
};
use crate::StartError;

const MAX_NAME_CHARS: usize = 64;
const MAX_URL_BYTES: usize = 1024;
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

fn positive(id: i64) -> Result<i64, AdminError> {
    if id > 0 {
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
                "names are {} to 64 characters",
                u8::from(required_chars)
            )))
        }
        _ => Ok(()),
    }
}

fn check_url(url: Option<&String>, field: &str) -> Result<(), AdminError> {
    match url {
        Some(u) if u.len() > MAX_URL_BYTES => {
            Err(bad(format!("{field} is longer than 1024 bytes")))
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

/// A shop change; `None` fields keep what is stored.
#[derive(Clone, Debug, Default)]
pub struct ShopUpdate {
    pub name: Option<String>,
    pub logo: Option<String>,
    /// Most open conversations per agent the random choice prefers; 0 = unlimited.
    pub capacity: Option<i32>,
}

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

/// A stored shop, its logo as an absolute URL.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShopInfo {
    pub id: i64,
    pub name: String,
    pub logo: String,
    pub capacity: i32,
}

/// Who a system notice (chat_type 3) goes to.
#[derive(Clone, Debug)]
pub enum Audience {
    /// These users (1 to [`MAX_NOTICE_UIDS`]).
    Users(Vec<i64>),
    /// Every user, stored once.
    All,
}

/// Starts shopchat's actors from a [`Config`].
pub struct Builder {
    config: Config,
    web_client: bool,
}

impl Builder {
    pub fn new(config: Config) -> Builder {
        Builder {
            config,
            web_client: true,
        }
    }

    /// Whether a plain `GET` on the mount point serves the built-in web client (default
    /// on); off, it answers with a one-line hint. WebSocket upgrades are unaffected.
    pub fn web_client(mut self, on: bool) -> Builder {
        self.web_client = on;
        self
    }

    /// Opens (and migrates) the database and starts the actors. Must run inside an actix
    /// System (`#[actix_web::main]`, `actix_rt::System::new().block_on(..)`).
    pub fn start(self) -> Result<Shopchat, StartError> {
        let config = Arc::new(self.config);
        let database_url = config
            .database
            .url_with_password()
            .map_err(StartError::Config)?;
        let pool = db::connect(&database_url, config.database.pool_size)?;
        let db = DbExecutor::start(pool, config.database.pool_size as usize);
        let read_pool = db::conn::open(&database_url, config.database.read_pool_size)?;
        let reads = DbExecutor::start(read_pool, config.database.read_pool_size as usize);
        let metrics = Arc::new(Metrics::new());
        let cluster = match config.redis.url.as_str() {
            "" => None,
            _ => Some(Cluster::start(&config.redis)?),
        };
        let server = ChatServer::new(
            db.clone(),
            reads.clone(),
            &config,
            metrics.clone(),
            cluster.clone(),
        )
        .start();
        let state = web::Data::new(AppState {
            config: config.clone(),
            auth: Authenticator::new(&config.auth),
            server,
            db,
            reads,
            presenter: Presenter::new(&config),
            metrics,
            cluster,
            login: http::login::LoginGuard::new(&config),
            uploads: http::media::UploadQuota::new(&config.media),
            web_client: self.web_client,
        });
        Ok(Shopchat { state })
    }
}

/// A running shopchat: its routes and its operations. Cheap to clone.
#[derive(Clone)]
pub struct Shopchat {
    state: web::Data<AppState>,
}

impl From<web::Data<AppState>> for Shopchat {
    fn from(state: web::Data<AppState>) -> Shopchat {
        Shopchat { state }
    }
}

impl Shopchat {
    /// The configuration it runs with.
    pub fn config(&self) -> &Config {
        &self.state.config
    }

    /// Mounts every route (WebSocket at `{prefix}/` and `{prefix}/ws`, the HTTP and admin
    /// APIs, uploads, the web client) under `prefix`, e.g. `"/im"`; `""` or `"/"` mounts
    /// at the root, as the standalone server does. Pass the result to
    /// `App::configure` in the `HttpServer` factory (it is `Clone`).
    pub fn mount(&self, prefix: &str) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
        let state = self.state.clone();
        let prefix = prefix.trim_end_matches('/').to_string();
        move |cfg: &mut web::ServiceConfig| {
            let web_client = state.web_client;
            let metrics_public = state.config.server.metrics_addr.is_empty();
            cfg.service(
                web::scope(&prefix)
                    .app_data(state.clone())
                    .wrap(actix_web::middleware::from_fn(http::body_deadline))
                    .wrap(actix_web::middleware::from_fn(http::preflight))
                    .wrap(http::cors_headers())
                    .configure(|cfg| {
                        if web_client {
                            http::client::routes(cfg);
                        }
                        if metrics_public {
                            http::metrics_route(cfg);
                        }
                    })
                    .configure(http::routes),
            );
        }
    }

    /// `/metrics` alone, for a listener of its own (`server.metrics_addr`), so the numbers
    /// need not be on the public port. Pass it to `App::configure`.
    pub fn metrics_only(&self) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
        let state = self.state.clone();
        move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(state.clone());
            http::metrics_route(cfg);
        }
    }

    /// Refuses new sends, finishes stored work, closes every WebSocket with 1001 and, in
    /// cluster mode, withdraws this node's presence. Call it after pausing the host's
    /// `HttpServer` and before stopping it. Gives up waiting after
    /// `server.shutdown_timeout_secs`.
    pub async fn shutdown(&self) {
        let drained = tokio::time::timeout(
            Duration::from_secs(self.state.config.server.shutdown_timeout_secs),
            self.state.server.send(Shutdown),
        )
        .await;
        if drained.is_err() {
            log::warn!("shutdown: stored work did not finish within server.shutdown_timeout_secs");
        }
        if let Some(cluster) = &self.state.cluster {
            // The other nodes stop counting this one's users now rather than at expiry.
            cluster.withdraw().await;
        }
    }

    /// Creates or updates a profile; later pushes carry it.
    pub async fn upsert_user(&self, uid: i64, update: UserUpdate) -> Result<UserInfo, AdminError> {
        let uid = UserId(positive(uid)?);
        check_name(update.nickname.as_ref(), true)?;
        check_url(update.avatar.as_ref(), "avatar")?;
        let st = &self.state;
        let profile = ask(st.db.send(UpsertUser {
            uid,
            nickname: update.nickname,
            avatar: update.avatar,
        }))
        .await?;
        let info = UserInfo {
            id: uid.0,
            nickname: profile.nickname.clone(),
            avatar: absolute_url(&st.config.media.base_url, &profile.avatar),
        };
        st.server.do_send(ProfileChanged(profile));
        Ok(info)
    }

    /// Creates or updates a shop.
    pub async fn upsert_shop(&self, shop: i64, update: ShopUpdate) -> Result<ShopInfo, AdminError> {
        let shop = ShopId(positive(shop)?);
        check_name(update.name.as_ref(), true)?;
        check_url(update.logo.as_ref(), "logo")?;
        if update.capacity.is_some_and(|c| c < 0) {
            return Err(bad("capacity must be 0 (unlimited) or more"));
        }
        let st = &self.state;
        let row = ask(st.db.send(UpsertShop {
            shop,
            name: update.name,
            logo: update.logo,
            capacity: update.capacity,
        }))
        .await?;
        st.server.do_send(ShopChanged { shop });
        Ok(ShopInfo {
            id: row.id,
            logo: absolute_url(&st.config.media.base_url, &row.logo),
            name: row.name,
            capacity: row.capacity,
        })
    }

    /// Attaches `uid` to `shop` as an agent (moving it from another shop if need be).
    pub async fn attach_agent(
        &self,
        shop: i64,
        uid: i64,
        name: Option<String>,
    ) -> Result<(), AdminError> {
        let (shop, uid) = (ShopId(positive(shop)?), UserId(positive(uid)?));
        check_name(name.as_ref(), false)?;
        let before = ask(self.state.db.send(AttachAgent { shop, uid, name }))
            .await?
            .ok_or(AdminError::NotFound("no such shop"))?;
        self.state.server.do_send(AgentMoved {
            uid,
            from: before,
            to: Some(shop),
        });
        Ok(())
    }

    /// Detaches an agent from its shop.
    pub async fn detach_agent(&self, shop: i64, uid: i64) -> Result<(), AdminError> {
        let (shop, uid) = (ShopId(positive(shop)?), UserId(positive(uid)?));
        if !ask(self.state.db.send(DetachAgent { shop, uid })).await? {
            return Err(AdminError::NotFound("no such agent in this shop"));
        }
        self.state.server.do_send(AgentMoved {
            uid,
            from: Some(shop),
            to: None,
        });
        Ok(())
    }

    /// Sets an agent's online flag (it is routable when also connected).
    pub async fn set_agent_online(
        &self,
        shop: i64,
        uid: i64,
        online: bool,
    ) -> Result<(), AdminError> {
        let (shop, uid) = (ShopId(positive(shop)?), UserId(positive(uid)?));
        if !ask(self.state.db.send(SetAgentOnline { shop, uid, online })).await? {
            return Err(AdminError::NotFound("no such agent in this shop"));
        }
        self.state
            .server
            .do_send(AgentFlagChanged { shop, uid, online });
        Ok(())
    }

    /// A shop's agents: online flag, whether connected, open conversations.
    pub async fn shop_agents(&self, shop: i64) -> Result<Vec<AgentReport>, AdminError> {
        let shop = ShopId(positive(shop)?);
        self.state
            .server
            .send(ShopAgents { shop })
            .await
            .map_err(|_| AdminError::Storage)?
            .ok_or(AdminError::NotFound("no such shop"))
    }

    /// Which of `uids` have a live connection (on any node in cluster mode), sorted.
    pub async fn online_users(&self, uids: &[i64]) -> Result<Vec<i64>, AdminError> {
        let uids = uids.iter().map(|u| UserId(*u)).collect();
        let online = self
            .state
            .server
            .send(OnlineAmong { uids })
            .await
            .map_err(|_| AdminError::Storage)?;
        Ok(online.into_iter().map(|u| u.0).collect())
    }

    /// Creates a group owned by `owner` with `members` (the owner is always one). It is
    /// private: its members come from the owner or the platform; see [`Self::create_open_group`].
    pub async fn create_group(
        &self,
        name: &str,
        owner: i64,
        members: &[i64],
    ) -> Result<i64, AdminError> {
        self.create_group_as(name, owner, members, false).await
    }

    /// Creates a group that anyone may `group.join`.
    pub async fn create_open_group(
        &self,
        name: &str,
        owner: i64,
        members: &[i64],
    ) -> Result<i64, AdminError> {
        self.create_group_as(name, owner, members, true).await
    }

    async fn create_group_as(
        &self,
        name: &str,
        owner: i64,
        members: &[i64],
        open: bool,
    ) -> Result<i64, AdminError> {
        let name = name.trim().to_string();
        check_name(Some(&name), true)?;
        positive(owner)?;
        if members.len() > db::groups::MAX_INITIAL_MEMBERS || members.iter().any(|u| *u <= 0) {
            return Err(bad("member_uids must be at most 2000 positive ids"));
        }
        let mut members: Vec<UserId> = members.iter().map(|u| UserId(*u)).collect();
        members.sort();
        members.dedup();
        let group = ask(self.state.db.send(CreateGroup {
            name,
            owner: UserId(owner),
            members,
            open,
            by: db::groups::Joiner::Platform,
        }))
        .await?
        .ok_or(AdminError::Storage)?;
        Ok(group.0)
    }

    /// Adds a member; `Ok(false)` if it already was one.
    pub async fn add_group_member(&self, group: i64, uid: i64) -> Result<bool, AdminError> {
        let (group, uid) = (GroupId(positive(group)?), UserId(positive(uid)?));
        match ask(self.state.db.send(JoinGroup {
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
    pub async fn remove_group_member(&self, group: i64, uid: i64) -> Result<(), AdminError> {
        let (group, uid) = (GroupId(positive(group)?), UserId(positive(uid)?));
        if !ask(self.state.db.send(LeaveGroup { group, uid })).await? {
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
                if uids.len() <= MAX_NOTICE_UIDS && uids.iter().all(|u| *u > 0) =>
            {
                let mut uids: Vec<UserId> = uids.into_iter().map(UserId).collect();
                uids.sort();
                uids.dedup();
                Some(uids)
            }
            Audience::Users(_) => return Err(bad("uids must be at most 1000 positive ids")),
        };
        if !matches!(msg_type, 1 | 2) {
            return Err(bad("msg_type must be 1 or 2"));
        }
        if msg.is_empty() || msg.chars().count() > self.state.config.limits.max_msg_chars {
            return Err(bad("msg must be non-empty and within limits.max_msg_chars"));
        }
        self.state
            .server
            .send(Notify {
                to,
                msg_type: msg_type as i32,
                msg,
            })
            .await
            .map_err(|_| AdminError::Storage)?
            .map_err(AdminError::from)
    }
}
