//! shopchat: an instant-messaging server for B2B2C e-commerce.
//!
//! # Layout
//!
//! - [`ids`]: typed ids (`UserId`, `ShopId`, `GroupId`, `ConnId`, `MsgId`, `ChatId`).
//! - [`config`]: the config contract (file, `SHOPCHAT__SECTION__KEY` overrides, checks).
//! - [`auth`]: HS256 tokens shared with the e-commerce platform.
//! - [`metrics`]: the Prometheus metrics of one server.
//! - [`watch`]: what a session and the server share of one connection (idle time, backlog).
//! - [`protocol`]: wire types for requests, replies and pushes; pure, no I/O.
//! - [`chats`]: conversation lists, read state and history, shared by WebSocket and HTTP.
//! - [`error`]: what a client can be told, mapped to wire codes in one place.
//! - [`db`]: `DbExecutor` on a SyncArbiter, the only code touching the database.
//! - [`server`]: `ChatServer`, the registry of connections and the write queue.
//! - [`cluster`]: cluster mode over Redis: shared presence, one pub/sub channel per node.
//! - [`router`]: `ShopRouter`, one per shop: customer-service routing (sticky or random).
//! - [`session`]: `WsSession`, one actor per WebSocket (the only actix-web-actors user).
//! - [`http`]: routes: WebSocket upgrade, admin API.
//! - [`embed`]: [`embed::Builder`] and the [`embed::Shopchat`] handle, to run inside a
//!   host actix-web app: routes under a prefix, the admin operations as async methods.
//! - [`app`]: [`run`], the standalone server: the embedding handle on its own HttpServer.

pub mod admin;
pub mod app;
pub mod auth;
pub mod chats;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod db;
pub mod domain;
pub mod embed;
pub mod error;
pub mod http;
pub mod ids;
pub mod metrics;
pub mod protocol;
pub mod router;
pub mod routing;
pub mod server;
pub mod session;
pub mod watch;
pub mod writes;

pub use app::{run, StartError};
pub use config::Config;
