//! The admin API (PROTOCOL.md §9) for the platform's back end, behind `admin.token`.
//! JSON in, `{"code":1,"msg":null,"result":..}` out; refusals are HTTP 401/400/404 with
//! code 0, and a database failure is 503.

use std::future::{ready, Ready};

use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::state;
use super::AppState;
use crate::chats::ask;
use crate::db::{
    AttachAgent, CreateGroup, DetachAgent, JoinGroup, LeaveGroup, SetAgentOnline, UpsertShop,
    UpsertUser,
};
use crate::error::ChatError;
use crate::ids::{GroupId, ShopId, UserId};
use crate::protocol::{absolute_url, lenient};
use crate::server::{
    AgentFlagChanged, AgentMoved, Notify, ProfileChanged, ShopAgents, ShopChanged,
};

const MAX_NAME_CHARS: usize = 64;
const MAX_URL_BYTES: usize = 1024;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/users/{uid}", web::put().to(put_user))
        .route("/admin/shops/{shop}", web::put().to(put_shop))
        .route("/admin/shops/{shop}/agents", web::get().to(list_agents))
        .route("/admin/shops/{shop}/agents/{uid}", web::put().to(put_agent))
        .route(
            "/admin/shops/{shop}/agents/{uid}",
            web::delete().to(delete_agent),
        )
        .route(
            "/admin/shops/{shop}/agents/{uid}/online",
            web::post().to(set_online),
        )
        .route("/admin/groups", web::post().to(create_group))
        .route(
            "/admin/groups/{group}/members/{uid}",
            web::put().to(add_member),
        )
        .route(
            "/admin/groups/{group}/members/{uid}",
            web::delete().to(remove_member),
        )
        .route("/admin/notify", web::post().to(notify));
}

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

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            AdminError::Unauthorized => StatusCode::UNAUTHORIZED,
            AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::Storage => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let word = match self {
            AdminError::Unauthorized => "unauthorized",
            AdminError::BadRequest(_) => "bad_params",
            AdminError::NotFound(_) => "not_found",
            AdminError::Storage => "storage_unavailable",
        };
        HttpResponse::build(self.status_code())
            .json(json!({"code": 0, "msg": self.to_string(), "error": word}))
    }
}

fn bad(msg: impl Into<String>) -> AdminError {
    AdminError::BadRequest(msg.into())
}

/// Compares in time independent of where the strings differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Proof that the request carries `Authorization: Bearer {admin.token}`.
pub struct Admin;

impl FromRequest for Admin {
    type Error = AdminError;
    type Future = Ready<Result<Admin, AdminError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        let expected = state(req).config.admin.token.as_bytes();
        ready(match given {
            Some(t) if same_secret(t.as_bytes(), expected) => Ok(Admin),
            _ => Err(AdminError::Unauthorized),
        })
    }
}

/// The JSON object body, or an empty one when there is none.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, AdminError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return serde_json::from_value(json!({})).map_err(|e| bad(format!("bad JSON body: {e}")));
    }
    serde_json::from_slice(bytes).map_err(|e| bad(format!("bad JSON body: {e}")))
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

fn ok(result: Value) -> HttpResponse {
    HttpResponse::Ok().json(json!({"code": 1, "msg": null, "result": result}))
}

#[derive(Deserialize)]
struct UserBody {
    nickname: Option<String>,
    avatar: Option<String>,
}

async fn put_user(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    let uid = UserId(path_id(&path)?);
    let b: UserBody = body(&bytes)?;
    check_name(b.nickname.as_ref(), true)?;
    check_url(b.avatar.as_ref(), "avatar")?;
    let profile = ask(st.db.send(UpsertUser {
        uid,
        nickname: b.nickname,
        avatar: b.avatar,
    }))
    .await?;
    let result = json!({"id": uid.0, "nickname": profile.nickname, "avatar": absolute_url(&st.config.media.base_url, &profile.avatar)});
    st.server.do_send(ProfileChanged(profile));
    Ok(ok(result))
}

#[derive(Deserialize)]
struct ShopBody {
    name: Option<String>,
    logo: Option<String>,
    /// Most open conversations per agent the random choice prefers; 0 = unlimited.
    capacity: Option<i32>,
}

async fn put_shop(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    let shop = ShopId(path_id(&path)?);
    let b: ShopBody = body(&bytes)?;
    check_name(b.name.as_ref(), true)?;
    check_url(b.logo.as_ref(), "logo")?;
    if b.capacity.is_some_and(|c| c < 0) {
        return Err(bad("capacity must be 0 (unlimited) or more"));
    }
    let row = ask(st.db.send(UpsertShop {
        shop,
        name: b.name,
        logo: b.logo,
        capacity: b.capacity,
    }))
    .await?;
    st.server.do_send(ShopChanged { shop });
    Ok(ok(
        json!({"id": row.id, "name": row.name, "logo": absolute_url(&st.config.media.base_url, &row.logo), "capacity": row.capacity}),
    ))
}

/// A positive id from the path (parsed here: actix's own error would answer in its own format).
fn path_id(s: &str) -> Result<i64, AdminError> {
    positive(s.parse().map_err(|_| bad(format!("{s:?} is not an id")))?)
}

/// The two ids of `/admin/{shops|groups}/{id}/{agents|members}/{uid}`.
fn path_ids(path: &(String, String)) -> Result<(i64, UserId), AdminError> {
    Ok((path_id(&path.0)?, UserId(path_id(&path.1)?)))
}

#[derive(Deserialize)]
struct AgentBody {
    name: Option<String>,
}

async fn put_agent(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<(String, String)>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    let (shop, uid) = path_ids(&path)?;
    let shop = ShopId(shop);
    let b: AgentBody = body(&bytes)?;
    check_name(b.name.as_ref(), false)?;
    let before = ask(st.db.send(AttachAgent {
        shop,
        uid,
        name: b.name,
    }))
    .await?
    .ok_or(AdminError::NotFound("no such shop"))?;
    st.server.do_send(AgentMoved {
        uid,
        from: before,
        to: Some(shop),
    });
    Ok(ok(json!({"shop_id": shop.0, "uid": uid.0})))
}

async fn delete_agent(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (shop, uid) = path_ids(&path)?;
    let shop = ShopId(shop);
    if !ask(st.db.send(DetachAgent { shop, uid })).await? {
        return Err(AdminError::NotFound("no such agent in this shop"));
    }
    st.server.do_send(AgentMoved {
        uid,
        from: Some(shop),
        to: None,
    });
    Ok(ok(Value::Null))
}

#[derive(Deserialize)]
struct OnlineBody {
    #[serde(deserialize_with = "lenient::req_bool")]
    online: bool,
}

async fn set_online(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<(String, String)>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    let (shop, uid) = path_ids(&path)?;
    let shop = ShopId(shop);
    let OnlineBody { online } = body(&bytes)?;
    if !ask(st.db.send(SetAgentOnline { shop, uid, online })).await? {
        return Err(AdminError::NotFound("no such agent in this shop"));
    }
    st.server.do_send(AgentFlagChanged { shop, uid, online });
    Ok(ok(
        json!({"shop_id": shop.0, "uid": uid.0, "online": online}),
    ))
}

async fn list_agents(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let shop = ShopId(path_id(&path)?);
    let agents = st
        .server
        .send(ShopAgents { shop })
        .await
        .map_err(|_| AdminError::Storage)?
        .ok_or(AdminError::NotFound("no such shop"))?;
    Ok(ok(json!({"shop_id": shop.0, "agents": agents})))
}

#[derive(Deserialize)]
struct GroupBody {
    name: String,
    #[serde(deserialize_with = "lenient::int")]
    owner_uid: i64,
    #[serde(default, deserialize_with = "lenient::int_list")]
    member_uids: Vec<i64>,
}

async fn create_group(
    _: Admin,
    st: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    let b: GroupBody = body(&bytes)?;
    let name = b.name.trim().to_string();
    check_name(Some(&name), true)?;
    positive(b.owner_uid)?;
    if b.member_uids.len() > crate::db::groups::MAX_INITIAL_MEMBERS
        || b.member_uids.iter().any(|u| *u <= 0)
    {
        return Err(bad("member_uids must be at most 2000 positive ids"));
    }
    let mut members: Vec<UserId> = b.member_uids.into_iter().map(UserId).collect();
    members.sort();
    members.dedup();
    let group = ask(st.db.send(CreateGroup {
        name,
        owner: UserId(b.owner_uid),
        members,
    }))
    .await?;
    Ok(ok(json!({"group_id": group.0})))
}

async fn add_member(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (group, uid) = path_ids(&path)?;
    let group = GroupId(group);
    let added = ask(st.db.send(JoinGroup { group, uid }))
        .await?
        .ok_or(AdminError::NotFound("no such group"))?;
    Ok(ok(
        json!({"group_id": group.0, "uid": uid.0, "added": added}),
    ))
}

async fn remove_member(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (group, uid) = path_ids(&path)?;
    let group = GroupId(group);
    if !ask(st.db.send(LeaveGroup { group, uid })).await? {
        return Err(AdminError::NotFound("no such member in this group"));
    }
    Ok(ok(Value::Null))
}

/// The most users one notice may name; beyond that, broadcast with `all`.
const MAX_NOTICE_UIDS: usize = 1000;

#[derive(Deserialize)]
struct NotifyBody {
    #[serde(default, deserialize_with = "lenient::int_list")]
    uids: Vec<i64>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    all: Option<bool>,
    #[serde(deserialize_with = "lenient::int")]
    msg_type: i64,
    msg: String,
}

async fn notify(
    _: Admin,
    st: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AdminError> {
    let b: NotifyBody = body(&bytes)?;
    let to = match (b.all.unwrap_or(false), b.uids.is_empty()) {
        (true, true) => None,
        (false, false) if b.uids.len() <= MAX_NOTICE_UIDS && b.uids.iter().all(|u| *u > 0) => {
            let mut uids: Vec<UserId> = b.uids.into_iter().map(UserId).collect();
            uids.sort();
            uids.dedup();
            Some(uids)
        }
        (false, false) => return Err(bad("uids must be at most 1000 positive ids")),
        _ => return Err(bad("give either uids or all: true")),
    };
    if !matches!(b.msg_type, 1 | 2) {
        return Err(bad("msg_type must be 1 or 2"));
    }
    if b.msg.is_empty() || b.msg.chars().count() > st.config.limits.max_msg_chars {
        return Err(bad("msg must be non-empty and within limits.max_msg_chars"));
    }
    let ids = st
        .server
        .send(Notify {
            to,
            msg_type: b.msg_type as i32,
            msg: b.msg,
        })
        .await
        .map_err(|_| AdminError::Storage)?
        .map_err(AdminError::from)?;
    let ids: Vec<i64> = ids.into_iter().map(|i| i.0).collect();
    Ok(ok(json!({"msg_ids": ids})))
}
