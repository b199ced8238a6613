//! The admin API's customer-service routes (PROTOCOL.md §10): a shop's sessions, its
//! numbers, its ratings and its quick replies.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::admin::{body, ok, path_id, Admin};
use super::error::HttpError;
use super::AppState;
use crate::admin::{bad, SessionQuery};
use crate::ids::ShopId;
use crate::protocol::service::QuickReply;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/shops/{shop}/sessions", web::get().to(sessions))
        .route("/admin/shops/{shop}/stats", web::get().to(stats))
        .route("/admin/shops/{shop}/ratings", web::get().to(ratings))
        .route(
            "/admin/shops/{shop}/quick_replies",
            web::get().to(quick_replies),
        )
        .route(
            "/admin/shops/{shop}/quick_replies/{code}",
            web::put().to(put_quick_reply),
        )
        .route(
            "/admin/shops/{shop}/quick_replies/{code}",
            web::delete().to(delete_quick_reply),
        );
}

/// `?state=&limit=&before=`, and `?from=&to=`; numbers as the query gives them.
#[derive(Deserialize, Default)]
struct Query {
    state: Option<String>,
    limit: Option<String>,
    before: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// An optional integer of a query string, or a 400 naming `field`.
pub(super) fn number(field: &str, v: &Option<String>) -> Result<Option<i64>, HttpError> {
    match v.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| bad(format!("{field} must be an integer")).into()),
    }
}

fn query(raw: &str) -> Result<Query, HttpError> {
    serde_urlencoded::from_str(raw).map_err(|e| bad(format!("bad query: {e}")).into())
}

fn page(q: &Query) -> Result<SessionQuery, HttpError> {
    Ok(SessionQuery {
        state: q.state.clone(),
        limit: number("limit", &q.limit)?,
        before: number("before", &q.before)?,
    })
}

async fn sessions(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let shop = ShopId(path_id(&path)?);
    let q = page(&query(req.query_string())?)?;
    let rows = st.admin.shop_sessions(shop, q).await?;
    Ok(ok(json!({ "rows": rows })))
}

async fn ratings(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let shop = ShopId(path_id(&path)?);
    let q = page(&query(req.query_string())?)?;
    let rows = st.admin.shop_ratings(shop, q).await?;
    Ok(ok(json!({ "rows": rows })))
}

async fn stats(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let shop = ShopId(path_id(&path)?);
    let q = query(req.query_string())?;
    let (from, to) = (number("from", &q.from)?, number("to", &q.to)?);
    let stats = st.admin.shop_stats(shop, from, to).await?;
    Ok(ok(json!(stats)))
}

async fn quick_replies(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let shop = ShopId(path_id(&path)?);
    let rows = st.admin.quick_replies(shop).await?;
    Ok(ok(json!({ "rows": rows })))
}

#[derive(Deserialize)]
struct QuickReplyBody {
    text: String,
}

async fn put_quick_reply(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<(String, String)>,
    bytes: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let shop = ShopId(path_id(&path.0)?);
    let QuickReplyBody { text } = body(&bytes)?;
    let reply = QuickReply {
        short_code: path.1.clone(),
        text,
    };
    st.admin.save_quick_reply(shop, reply.clone()).await?;
    Ok(ok(json!(reply)))
}

async fn delete_quick_reply(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, HttpError> {
    let shop = ShopId(path_id(&path.0)?);
    st.admin.delete_quick_reply(shop, &path.1).await?;
    Ok(ok(Value::Null))
}
