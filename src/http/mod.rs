//! HTTP routes: the WebSocket upgrade at `/` and `/ws` (a plain GET of `/` is the web
//! client), the original user API, uploads, and the admin API.

pub mod admin;
pub mod api;
pub mod client;
pub mod login;
pub mod media;
pub mod user;
pub mod ws;

use std::net::IpAddr;
use std::sync::Arc;

use actix::Addr;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::auth::Authenticator;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::db::DbExecutor;
use crate::metrics::Metrics;
use crate::server::push::Presenter;
use crate::server::ChatServer;

/// The address a request comes from: the peer, or, when the peer is a trusted proxy,
/// the last address in `X-Forwarded-For` that is not one of the trusted proxies.
pub fn client_ip(req: &actix_web::HttpRequest, trusted: &[IpAddr]) -> IpAddr {
    let peer = req
        .peer_addr()
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded
        .into_iter()
        .rev()
        .find(|a| !trusted.contains(a))
        .unwrap_or(peer)
}

/// Shared by every worker.
pub struct AppState {
    pub config: Arc<Config>,
    pub auth: Authenticator,
    pub server: Addr<ChatServer>,
    pub db: Addr<DbExecutor>,
    /// Reads of history, apart from the writes (see `DbExecutor::start`).
    pub reads: Addr<DbExecutor>,
    pub presenter: Presenter,
    pub metrics: Arc<Metrics>,
    pub cluster: Option<Cluster>,
    pub login: login::LoginGuard,
    pub uploads: media::UploadQuota,
    /// Serve the built-in web client on a plain GET of the mount point.
    pub web_client: bool,
}

/// The CORS headers of PROTOCOL.md §8, on every response (the H5 client is on another origin).
pub fn cors_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Access-Control-Allow-Origin", "*"))
        .add((
            "Access-Control-Allow-Methods",
            "GET, POST, OPTIONS, DELETE, PUT",
        ))
        .add((
            "Access-Control-Allow-Headers",
            "Content-Type, authorizations, Authorization, X-Requested-With",
        ))
}

/// Answers `OPTIONS` on any path with 200 before routing (a preflight must not meet a 404 or 405).
pub async fn preflight(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::OPTIONS {
        return Ok(req
            .into_response(HttpResponse::Ok().finish())
            .map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// 200 only when the database answers a real query, in time.
async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let ping = state.db.send(crate::db::Ping {});
    match tokio::time::timeout(std::time::Duration::from_secs(2), ping).await {
        Ok(Ok(Ok(()))) => HttpResponse::Ok().json(json!({"status": "ok"})),
        other => {
            log::warn!("healthz: database not answering: {other:?}");
            HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable"}))
        }
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}

/// Mounts every route on `cfg`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::JsonConfig::default().error_handler(|err, _| {
        let body =
            json!({"code": 0, "msg": format!("bad JSON body: {err}"), "error": "bad_params"});
        actix_web::error::InternalError::from_response(err, HttpResponse::BadRequest().json(body))
            .into()
    }))
    .app_data(web::PathConfig::default().error_handler(|err, _| {
        let body = json!({"code": 0, "msg": format!("bad path: {err}"), "error": "bad_params"});
        actix_web::error::InternalError::from_response(err, HttpResponse::BadRequest().json(body))
            .into()
    }))
    // "" is the mount point itself when mounted under a prefix ("/im").
    .route("", web::get().to(ws::entry))
    .route("/", web::get().to(ws::entry))
    .route("/ws", web::get().to(ws::entry))
    .route("/healthz", web::get().to(healthz))
    .route("/metrics", web::get().to(metrics))
    .configure(admin::routes)
    .configure(login::routes)
    .configure(user::routes)
    .configure(media::routes)
    .default_service(web::to(|| async {
        HttpResponse::NotFound().json(json!({"code": 0, "msg": "not found", "error": "not_found"}))
    }));
}
