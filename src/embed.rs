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
//! let chat = shopchat::embed::Builder::new(config).start().await?;
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
//! let alice = shopchat::ids::UserId(42);
//! chat.upsert_user(alice, shopchat::embed::UserUpdate::named("Alice")).await?;
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

use crate::auth::Authenticator;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::db::{self, DbExecutor};
use crate::domain::Presenter;
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::router::ShopRouter;
use crate::server::{ChatServer, Shutdown};
use crate::webhooks::Dispatcher;
use crate::StartError;

pub use crate::admin::{
    Admin, AdminError, Audience, ShopInfo, ShopUpdate, UserInfo, UserUpdate, MAX_NOTICE_UIDS,
};
/// What a host's handler returns to answer like shopchat's admin API (an [`AdminError`]
/// converts with `?`).
pub use crate::http::error::HttpError;

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
    /// System (`#[actix_web::main]`, `actix_rt::System::new().block_on(..)`). Connecting
    /// and migrating run on a blocking thread, so the host's async threads keep serving
    /// while a database is slow to answer or another node holds the migration lock.
    pub async fn start(self) -> Result<Shopchat, StartError> {
        let config = Arc::new(self.config);
        let database_url = config
            .database
            .url_with_password()
            .map_err(StartError::Config)?;
        let (pool_size, read_pool_size, sync) = (
            config.database.pool_size,
            config.database.read_pool_size,
            config.database.sqlite_synchronous,
        );
        let (write_pool, pool, read_pool) = actix_rt::task::spawn_blocking(move || {
            let pool = db::connect(&database_url, pool_size, sync)?;
            Ok::<_, db::DbError>((
                db::conn::open(&database_url, 1, sync)?,
                pool,
                db::conn::open(&database_url, read_pool_size, sync)?,
            ))
        })
        .await
        .map_err(|e| db::DbError::Config(format!("database start-up did not finish: {e}")))??;
        let outbox = match config.webhooks.is_on() {
            true => db::outbox::Outbox::on(&config.webhooks.events),
            false => db::outbox::Outbox::default(),
        };
        // The group commit's batches, one at a time, on one thread and one connection:
        // its statement cache and (on SQLite) its page cache stay warm, since no other
        // connection's batch comes between two of its own.
        let writer = DbExecutor::start_named("db-writer", write_pool, 1, outbox.clone());
        let db = DbExecutor::start_named("db", pool, pool_size as usize, outbox.clone());
        let reads = DbExecutor::start_named("db-reads", read_pool, read_pool_size as usize, outbox);
        let metrics = Arc::new(Metrics::new());
        let cluster = match config.redis.url.as_str() {
            "" => None,
            _ => Some(Cluster::start(&config.redis)?),
        };
        let server = ChatServer::new(
            writer,
            db.clone(),
            reads.clone(),
            &config,
            metrics.clone(),
            cluster.clone(),
            ShopRouter::starter(db.clone(), Presenter::new(&config), cluster.clone()),
        )
        .start();
        if config.webhooks.is_on() {
            Dispatcher::new(
                config.webhooks.clone(),
                db.clone(),
                server.clone().recipient(),
                server.clone().recipient(),
                cluster.clone(),
                metrics.clone(),
            )
            .start();
        }
        let admin = Admin::new(db.clone(), server.clone(), &config);
        let state = web::Data::new(AppState {
            admin,
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
        Ok(Shopchat::from(state))
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

/// The handle offers the platform's operations ([`Admin`]) as its own methods:
/// `chat.upsert_user(UserId(42), ..)`, as the admin API would.
impl std::ops::Deref for Shopchat {
    type Target = Admin;

    fn deref(&self) -> &Admin {
        &self.state.admin
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
}
