//! The admin API (PROTOCOL.md §9) for the platform's back end, behind `admin.token`.
//! JSON in, `{"code":1,"msg":null,"result":..}` out; refusals are HTTP 401/400/404 with
//! code 0, and a database failure is 503 (rendered by [`HttpError`]). Each handler parses its request and calls the
//! same operation of [`crate::admin::Admin`] that an embedding host calls directly.

use std::future::{ready, Ready};

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::state;
use super::error::HttpError;
use super::AppState;
pub use crate::admin::AdminError;
use crate::admin::{bad, Audience, ShopUpdate, UserUpdate};
use crate::domain::hours::WorkingHoursSpec;
use crate::ids::{GroupId, MsgId, ShopId, UserId};
use crate::protocol::lenient;
use crate::protocol::service::{AgentRole, AgentStatus};

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
        .route("/admin/notify", web::post().to(notify))
        .route("/admin/messages/{id}", web::get().to(get_message))
        .route(
            "/admin/messages/{id}/recall",
            web::post().to(recall_message),
        );
}

async fn get_message(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let id = MsgId(path_id(&path)?);
    Ok(ok(json!(st.admin.message(id).await?)))
}

async fn recall_message(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let id = MsgId(path_id(&path)?);
    st.admin.recall_message(id).await?;
    Ok(ok(json!({"msg_id": id, "by": "platform"})))
}

/// Compares in time independent of where the strings differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Proof that the request carries `Authorization: Bearer {admin.token}`.
pub struct Admin;

impl FromRequest for Admin {
    type Error = HttpError;
    type Future = Ready<Result<Admin, HttpError>>;

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
            _ => Err(AdminError::Unauthorized.into()),
        })
    }
}

/// The JSON object body, or an empty one when there is none.
pub(super) fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, AdminError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return serde_json::from_value(json!({})).map_err(|e| bad(format!("bad JSON body: {e}")));
    }
    serde_json::from_slice(bytes).map_err(|e| bad(format!("bad JSON body: {e}")))
}

pub(super) fn ok(result: Value) -> HttpResponse {
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
) -> Result<HttpResponse, HttpError> {
    let uid = UserId(path_id(&path)?);
    let UserBody { nickname, avatar } = body(&bytes)?;
    let info = st
        .admin
        .upsert_user(uid, UserUpdate { nickname, avatar })
        .await?;
    Ok(ok(json!(info)))
}

/// Absent: `None` (unchanged); `null`: `Some(None)` (cleared).
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct ShopBody {
    name: Option<String>,
    logo: Option<String>,
    capacity: Option<i32>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    queue_when_full: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    welcome_msg: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    offline_msg: Option<Option<String>>,
    auto_resolve_mins: Option<i32>,
    #[serde(default, deserialize_with = "nullable")]
    working_hours: Option<Option<WorkingHoursSpec>>,
}

async fn put_shop(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
    bytes: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let shop = ShopId(path_id(&path)?);
    let b: ShopBody = body(&bytes)?;
    let update = ShopUpdate {
        name: b.name,
        logo: b.logo,
        capacity: b.capacity,
        queue_when_full: b.queue_when_full,
        welcome_msg: b.welcome_msg,
        offline_msg: b.offline_msg,
        auto_resolve_mins: b.auto_resolve_mins,
        working_hours: b.working_hours,
    };
    let info = st.admin.upsert_shop(shop, update).await?;
    Ok(ok(json!(info)))
}

/// A positive id from the path (parsed here: actix's own error would answer in its own format).
pub(super) fn path_id(s: &str) -> Result<i64, AdminError> {
    match s.parse() {
        Ok(id) if id > 0 => Ok(id),
        Ok(_) => Err(bad("ids must be positive integers")),
        Err(_) => Err(bad(format!("{s:?} is not an id"))),
    }
}

/// The two ids of `/admin/shops/{shop}/agents/{uid}`.
fn shop_and_agent(path: &(String, String)) -> Result<(ShopId, UserId), AdminError> {
    Ok((ShopId(path_id(&path.0)?), UserId(path_id(&path.1)?)))
}

/// The two ids of `/admin/groups/{group}/members/{uid}`.
fn group_and_member(path: &(String, String)) -> Result<(GroupId, UserId), AdminError> {
    Ok((GroupId(path_id(&path.0)?), UserId(path_id(&path.1)?)))
}

#[derive(Deserialize)]
struct AgentBody {
    name: Option<String>,
    role: Option<AgentRole>,
}

async fn put_agent(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<(String, String)>,
    bytes: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let (shop, uid) = shop_and_agent(&path)?;
    let AgentBody { name, role } = body(&bytes)?;
    st.admin.attach_agent_as(shop, uid, name, role).await?;
    Ok(ok(json!({"shop_id": shop, "uid": uid})))
}

async fn delete_agent(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, HttpError> {
    let (shop, uid) = shop_and_agent(&path)?;
    st.admin.detach_agent(shop, uid).await?;
    Ok(ok(Value::Null))
}

/// `{"online": bool}`, or (new) `{"status": "online"|"away"|"offline"}`.
#[derive(Deserialize)]
struct OnlineBody {
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    online: Option<bool>,
    status: Option<AgentStatus>,
}

async fn set_online(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<(String, String)>,
    bytes: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let (shop, uid) = shop_and_agent(&path)?;
    let status = match body(&bytes)? {
        OnlineBody {
            status: Some(s),
            online: None,
        } => s,
        OnlineBody {
            online: Some(true),
            status: None,
        } => AgentStatus::Online,
        OnlineBody {
            online: Some(false),
            status: None,
        } => AgentStatus::Offline,
        _ => return Err(bad("give online (bool) or status (online, away, offline)").into()),
    };
    st.admin.set_agent_status(shop, uid, status).await?;
    let online = status != AgentStatus::Offline;
    Ok(ok(
        json!({"shop_id": shop, "uid": uid, "online": online, "status": status}),
    ))
}

async fn list_agents(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let shop = ShopId(path_id(&path)?);
    let agents: Vec<Value> = st
        .admin
        .shop_agents(shop)
        .await?
        .into_iter()
        .map(|a| {
            json!({"uid": a.uid, "name": a.name, "online": a.online,
                "connected": a.connected, "open_conversations": a.open_sessions,
                "status": a.status, "role": a.role})
        })
        .collect();
    Ok(ok(json!({"shop_id": shop, "agents": agents})))
}

#[derive(Deserialize)]
struct GroupBody {
    name: String,
    #[serde(deserialize_with = "lenient::int")]
    owner_uid: i64,
    #[serde(default, deserialize_with = "lenient::int_list")]
    member_uids: Vec<i64>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    open: Option<bool>,
}

async fn create_group(
    _: Admin,
    st: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let b: GroupBody = body(&bytes)?;
    let (owner, members) = (UserId(b.owner_uid), to_users(&b.member_uids));
    let group = if b.open == Some(true) {
        st.admin.create_open_group(&b.name, owner, &members).await?
    } else {
        st.admin.create_group(&b.name, owner, &members).await?
    };
    Ok(ok(json!({"group_id": group})))
}

async fn add_member(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, HttpError> {
    let (group, uid) = group_and_member(&path)?;
    let added = st.admin.add_group_member(group, uid).await?;
    Ok(ok(json!({"group_id": group, "uid": uid, "added": added})))
}

async fn remove_member(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, HttpError> {
    let (group, uid) = group_and_member(&path)?;
    st.admin.remove_group_member(group, uid).await?;
    Ok(ok(Value::Null))
}

fn to_users(uids: &[i64]) -> Vec<UserId> {
    uids.iter().copied().map(UserId).collect()
}

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
) -> Result<HttpResponse, HttpError> {
    let b: NotifyBody = body(&bytes)?;
    let to = match (b.all.unwrap_or(false), b.uids.is_empty()) {
        (true, true) => Audience::All,
        (false, false) => Audience::Users(to_users(&b.uids)),
        _ => return Err(bad("give either uids or all: true").into()),
    };
    let ids = st.admin.notify(to, b.msg_type, b.msg).await?;
    let ids: Vec<i64> = ids.into_iter().map(|i| i.0).collect();
    Ok(ok(json!({"msg_ids": ids})))
}
