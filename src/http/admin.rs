//! The admin API (PROTOCOL.md §9) for the platform's back end, behind `admin.token`.

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use crate::db::UpsertUser;
use crate::ids::UserId;
use crate::protocol::{self, absolute_url};
use crate::server::ProfileChanged;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/users/{uid}", web::put().to(put_user));
}

/// Compares in time independent of where the strings differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `None` if the request carries the admin token, else the 401 to send.
fn check_admin(req: &HttpRequest, state: &AppState) -> Option<HttpResponse> {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    match given {
        Some(t) if same_secret(t.as_bytes(), state.config.admin.token.as_bytes()) => None,
        _ => Some(
            HttpResponse::Unauthorized()
                .json(json!({"code": 0, "msg": "admin token required", "error": "unauthorized"})),
        ),
    }
}

pub fn bad_request(msg: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"code": 0, "msg": msg, "error": "bad_params"}))
}

fn storage_failed(e: &dyn std::fmt::Display) -> HttpResponse {
    log::error!("admin API: {e}");
    HttpResponse::ServiceUnavailable()
        .content_type("application/json")
        .body(protocol::error_reply(
            &crate::error::ChatError::StorageUnavailable,
        ))
}

const MAX_NICKNAME_CHARS: usize = 64;
const MAX_URL_BYTES: usize = 1024;

#[derive(Deserialize)]
struct UserBody {
    nickname: Option<String>,
    avatar: Option<String>,
}

async fn put_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Json<UserBody>,
) -> HttpResponse {
    if let Some(denied) = check_admin(&req, &state) {
        return denied;
    }
    let uid = path.into_inner();
    if uid <= 0 {
        return bad_request("uid must be a positive integer");
    }
    let body = body.into_inner();
    if let Some(n) = &body.nickname {
        if n.trim().is_empty() || n.chars().count() > MAX_NICKNAME_CHARS {
            return bad_request("nickname must be 1 to 64 characters");
        }
    }
    if body
        .avatar
        .as_ref()
        .is_some_and(|a| a.len() > MAX_URL_BYTES)
    {
        return bad_request("avatar is longer than 1024 bytes");
    }
    let stored = state
        .db
        .send(UpsertUser {
            uid: UserId(uid),
            nickname: body.nickname,
            avatar: body.avatar,
        })
        .await;
    let profile = match stored {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return storage_failed(&e),
        Err(e) => return storage_failed(&e),
    };
    let result = json!({
        "id": profile.uid.0,
        "nickname": profile.nickname,
        "avatar": absolute_url(&state.config.media.base_url, &profile.avatar),
    });
    state.server.do_send(ProfileChanged(profile));
    HttpResponse::Ok().json(json!({"code": 1, "msg": null, "result": result}))
}
