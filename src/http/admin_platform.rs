//! The admin API's hooks for the platform: webhook deliveries (PROTOCOL.md §13) and the
//! sensitive-word list (§14).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::admin::{body, ok, Admin};
use super::admin_service::number;
use super::error::HttpError;
use super::AppState;
use crate::admin::bad;
use crate::protocol::webhook::{ModerationList, MAX_MODERATION_BODY};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/moderation")
            // The whole list in one body: 20,000 words fit in 2 MiB.
            .app_data(web::PayloadConfig::new(MAX_MODERATION_BODY))
            .route(web::get().to(get_moderation))
            .route(web::put().to(put_moderation)),
    )
    .route("/admin/webhooks/deliveries", web::get().to(deliveries))
    .route(
        "/admin/webhooks/deliveries/{id}/retry",
        web::post().to(retry),
    );
}

async fn get_moderation(_: Admin, st: web::Data<AppState>) -> Result<HttpResponse, HttpError> {
    Ok(ok(json!(st.admin.moderation().await?)))
}

async fn put_moderation(
    _: Admin,
    st: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let list: ModerationList = body(&bytes)?;
    Ok(ok(json!(st.admin.set_moderation(list).await?)))
}

/// `?state=pending|dead&limit=&after=`.
#[derive(Deserialize, Default)]
struct Query {
    state: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

async fn deliveries(
    _: Admin,
    st: web::Data<AppState>,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, HttpError> {
    let q: Query = serde_urlencoded::from_str(req.query_string())
        .map_err(|e| HttpError::from(bad(format!("bad query: {e}"))))?;
    let rows = st
        .admin
        .deliveries(
            q.state.as_deref(),
            number("limit", &q.limit)?,
            number("after", &q.after)?,
        )
        .await?;
    Ok(ok(json!({ "rows": rows })))
}

async fn retry(
    _: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    st.admin.retry_delivery(&path).await?;
    Ok(ok(json!({ "id": path.into_inner(), "state": "pending" })))
}
