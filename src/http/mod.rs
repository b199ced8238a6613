//! HTTP routes: the WebSocket upgrade at `/` and `/ws` (a plain GET of `/` is the web
//! client), the original user API, uploads, and the admin API.

pub mod admin;
mod admin_platform;
mod admin_service;
pub mod api;
pub mod client;
pub mod error;
pub mod limit;
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
use crate::domain::Presenter;
use crate::metrics::Metrics;
use crate::server::ChatServer;

/// Whether the request comes straight from one of `server.trusted_proxies`, whose
/// `X-Forwarded-*` headers are then believed.
pub fn from_trusted_proxy(req: &actix_web::HttpRequest, trusted: &[IpAddr]) -> bool {
    req.peer_addr().is_some_and(|p| trusted.contains(&p.ip()))
}

/// The address a request comes from: the peer, or, when the peer is a trusted proxy,
/// the last address in `X-Forwarded-For` that is not one of the trusted proxies.
pub fn client_ip(req: &actix_web::HttpRequest, trusted: &[IpAddr]) -> IpAddr {
    let peer = req
        .peer_addr()
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    if !from_trusted_proxy(req, trusted) {
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
    /// The platform's operations, which the admin API calls.
    pub admin: crate::admin::Admin,
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

/// A request body cut off at its deadline: a client trickling a byte every few seconds
/// would otherwise hold a socket and a worker's attention for as long as it likes.
struct TimedBody {
    inner: actix_web::dev::Payload,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    timed_out: std::rc::Rc<std::cell::Cell<bool>>,
}

impl futures_util::Stream for TimedBody {
    type Item = Result<web::Bytes, actix_web::error::PayloadError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if let Poll::Ready(item) = std::pin::Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        match std::future::Future::poll(self.deadline.as_mut(), cx) {
            Poll::Ready(()) => {
                self.timed_out.set(true);
                Poll::Ready(Some(Err(actix_web::error::PayloadError::Io(
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "request body too slow"),
                ))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Gives every request body `server.body_timeout_secs` to arrive whole; past it the
/// request is answered 408 and the connection closed. WebSocket upgrades are exempt:
/// their "body" is the socket, watched by the idle timeout.
pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    use actix_web::HttpMessage as _;
    let upgrade = req
        .headers()
        .get(actix_web::http::header::UPGRADE)
        .is_some();
    let timed_out = std::rc::Rc::new(std::cell::Cell::new(false));
    if !upgrade {
        let secs = req
            .app_data::<web::Data<AppState>>()
            .map_or(30, |s| s.config.server.body_timeout_secs);
        let body = TimedBody {
            inner: req.take_payload(),
            deadline: Box::pin(tokio::time::sleep(std::time::Duration::from_secs(secs))),
            timed_out: timed_out.clone(),
        };
        let boxed: actix_http::BoxedPayloadStream = Box::pin(body);
        req.set_payload(actix_web::dev::Payload::from(boxed));
    }
    let res = next.call(req).await?;
    if timed_out.get() {
        let timeout = actix_web::ResponseError::error_response(&error::HttpError::BodyTimeout);
        return Ok(ServiceResponse::new(res.request().clone(), timeout).map_into_right_body());
    }
    Ok(res.map_into_left_body())
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

/// `GET /metrics`: on the public port unless `server.metrics_addr` names another.
pub fn metrics_route(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics));
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}

/// Mounts every route on `cfg`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::JsonConfig::default().error_handler(|err, _| {
        error::HttpError::BadRequest(format!("bad JSON body: {err}")).into()
    }))
    .app_data(
        web::PathConfig::default().error_handler(|err, _| {
            error::HttpError::BadRequest(format!("bad path: {err}")).into()
        }),
    )
    // "" is the mount point itself when mounted under a prefix ("/im").
    .route("", web::get().to(ws::entry))
    .route("/", web::get().to(ws::entry))
    .route("/ws", web::get().to(ws::entry))
    .route("/healthz", web::get().to(healthz))
    .configure(admin::routes)
    .configure(admin_service::routes)
    .configure(admin_platform::routes)
    .configure(login::routes)
    .configure(user::routes)
    .configure(media::routes)
    .default_service(web::to(|| async {
        Err::<HttpResponse, _>(error::HttpError::NoRoute)
    }));
}
