//! The WebSocket entry: authenticate, load the profile, hand the socket to a session.

use actix_web::{http::header, web, HttpRequest, HttpResponse};

use super::AppState;
use crate::db::EnsureUser;
use crate::protocol;
use crate::session::{self, SessionParams};

fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn is_upgrade(req: &HttpRequest) -> bool {
    header_str(req, header::UPGRADE.as_str()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

pub async fn entry(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    if !is_upgrade(&req) {
        if state.web_client {
            return Ok(super::client::page(&req));
        }
        return Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("shopchat: connect a WebSocket here with ?token=JWT\n"));
    }
    let token = super::api::request_token(&req);
    let uid = match token.as_deref().map(|t| state.auth.verify(t)) {
        Some(Ok(uid)) => uid,
        other => {
            log::debug!(
                "websocket refused from {:?}: {:?}",
                req.peer_addr(),
                other.map(|r| r.err())
            );
            return Ok(HttpResponse::Unauthorized()
                .content_type("application/json")
                .body(protocol::NOT_LOGGED_IN));
        }
    };
    let (profile, agent_shop) = match state.db.send(EnsureUser { uid }).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return unavailable(&req, stream, &e),
        Err(e) => return unavailable(&req, stream, &e),
    };
    session::upgrade(
        &req,
        stream,
        SessionParams {
            uid,
            profile,
            agent_shop,
            server: state.server.clone(),
            max_frame_bytes: state.config.limits.max_frame_bytes,
            msgs_per_sec: state.config.limits.msgs_per_sec,
            burst: state.config.limits.burst,
            max_pending_bytes: state.config.limits.max_pending_bytes,
            metrics: state.metrics.clone(),
        },
    )
}

/// The user's profile and role could not be read (the database is down): the
/// connection is accepted and closed with 1013, which a client takes as "reconnect
/// later" (PROTOCOL.md §11).
fn unavailable(
    req: &HttpRequest,
    stream: web::Payload,
    e: &dyn std::fmt::Display,
) -> Result<HttpResponse, actix_web::Error> {
    log::warn!("websocket upgrade: loading the profile failed, closing with 1013: {e}");
    session::try_again_later(req, stream, "storage_unavailable")
}
