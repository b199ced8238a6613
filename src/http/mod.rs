//! HTTP routes: the WebSocket upgrade at `/` and `/ws`, and the admin API.

pub mod admin;
pub mod ws;

use std::sync::Arc;

use actix::Addr;
use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::db::DbExecutor;
use crate::server::ChatServer;

/// Shared by every worker.
pub struct AppState {
    pub config: Arc<Config>,
    pub auth: Authenticator,
    pub server: Addr<ChatServer>,
    pub db: Addr<DbExecutor>,
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
    .route("/", web::get().to(ws::entry))
    .route("/ws", web::get().to(ws::entry))
    .configure(admin::routes)
    .default_service(web::to(|| async {
        HttpResponse::NotFound().json(json!({"code": 0, "msg": "not found", "error": "not_found"}))
    }));
}
