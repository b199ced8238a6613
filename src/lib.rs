//! shopchat: an instant-messaging server for B2B2C e-commerce.
//!
//! # Layout
//!
//! A ladder: each module uses only those listed after it (ARCHITECTURE.md, Layers).
//!
//! - [`app`]: [`run`], the standalone server: the embedding handle on its own HttpServer.
//! - [`embed`]: [`embed::Builder`] and the [`embed::Shopchat`] handle, to run inside a
//!   host actix-web app: routes under a prefix, the admin operations as async methods.
//! - [`http`]: routes: WebSocket upgrade, the original user API, the admin API, media,
//!   the web client; every error body rendered by [`http::error::HttpError`].
//! - [`admin`]: the platform's operations (profiles, shops, agents, groups, notices),
//!   called by the admin API and the embedding handle alike.
//! - [`session`]: `WsSession`, one actor per WebSocket (the only actix-web-actors user).
//! - [`server`]: `ChatServer`, the registry of connections and the write queue.
//! - [`router`]: `ShopRouter`, one per shop: customer-service sessions, agent status, the
//!   queue, auto replies, routing (sticky or random).
//! - [`cluster`]: cluster mode over Redis: shared presence, one pub/sub channel per node.
//! - [`webhooks`]: the webhook dispatcher: delivers the outbox's events to the platform.
//! - [`writes`]: each kind of write, with what follows its commit; `Enqueue`.
//! - [`routing`]: what a shop's router is told, and the `RouterMail` ChatServer holds.
//! - [`presence`]: who is connected to this node, as the webhook dispatcher asks it.
//! - [`chats`]: conversation lists, read state and history, shared by WebSocket and HTTP.
//! - [`desk`]: the agent's desk: customer-service requests the database answers alone
//!   (`service.me`, the queue, sessions, customers, quick replies, `chat.rate`).
//! - [`domain`]: pure decisions: the routing choice, the session state machine, working
//!   hours, and the shape of a push.
//! - [`db`]: `DbExecutor` on a SyncArbiter, the only code touching the database, and
//!   its query modules, one per aggregate.
//! - [`protocol`]: wire types for requests, replies and pushes; pure, no I/O.
//! - [`ids`]: typed ids (`UserId`, `ShopId`, `GroupId`, `ConnId`, `MsgId`, `ChatId`),
//!   the same on the wire and in the database; [`ids::ChatId::parse`].
//! - [`error`]: what a client can be told, mapped to wire codes in one place.
//! - [`config`]: the config contract (file, `SHOPCHAT__SECTION__KEY` overrides, checks).
//! - [`auth`]: HS256 tokens shared with the e-commerce platform.
//! - [`metrics`]: the Prometheus metrics of one server.
//! - [`watch`]: what a session and the server share of one connection (idle time, backlog).
//! - [`clock`]: unix seconds (which tests may move forward).

pub mod admin;
pub mod app;
pub mod auth;
pub mod chats;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod db;
pub mod desk;
pub mod domain;
pub mod embed;
pub mod error;
pub mod http;
pub mod ids;
pub mod metrics;
pub mod presence;
pub mod protocol;
pub mod router;
pub mod routing;
pub mod server;
pub mod session;
pub mod watch;
pub mod webhooks;
pub mod writes;

pub use app::{run, StartError};
pub use config::Config;
