//! What the original HTTP API's handlers share: the caller's identity from the
//! `authorizations` header, request parameters from a JSON (or form) body, and the
//! `{"code":..,"msg":..,"result":..}` replies, always with HTTP status 200.

use std::future::{ready, Ready};

use actix_web::{http::header, web, FromRequest, HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use super::error::HttpError;
use super::AppState;
use crate::auth::token_from_parts;
use crate::error::ChatError;
use crate::ids::UserId;

/// `{"code":1,"msg":<msg>,"result":<result>}`.
pub fn ok_with(msg: Option<&str>, result: impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok().json(json!({"code": 1, "msg": msg, "result": result}))
}

/// The token a request carries (`?token=`, `authorizations: bear T` or
/// `Authorization: Bearer T`), for the WebSocket upgrade and the original API alike.
pub fn request_token(req: &HttpRequest) -> Option<std::borrow::Cow<'_, str>> {
    let header_str = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    token_from_parts(
        req.query_string(),
        header_str("authorizations"),
        header_str(header::AUTHORIZATION.as_str()),
    )
}

pub fn state(req: &HttpRequest) -> &AppState {
    req.app_data::<web::Data<AppState>>()
        .expect("AppState should be registered by http::routes")
}

/// The user a request's token speaks for (header `authorizations: bear T`,
/// `Authorization: Bearer T`, or `?token=T`).
pub struct Caller(pub UserId);

impl FromRequest for Caller {
    type Error = HttpError;
    type Future = Ready<Result<Caller, HttpError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let uid = request_token(req).and_then(|t| state(req).auth.verify(&t).ok());
        ready(uid.map(Caller).ok_or(HttpError::NotLoggedIn))
    }
}

/// A request's parameters: a JSON object body, a form body, or nothing at all.
pub fn params(req: &HttpRequest, body: &[u8]) -> Result<Map<String, Value>, HttpError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|e| ChatError::bad(e.to_string()))?;
        return Ok(pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ChatError::bad("body must be a JSON object").into()),
        Err(e) => Err(ChatError::bad(e.to_string()).into()),
    }
}

/// The parameters decoded into `T` (lenient about numbers-as-strings like the WebSocket side).
pub fn decode<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, HttpError> {
    let map = params(req, body)?;
    serde_json::from_value(Value::Object(map))
        .map_err(|e| HttpError::Chat(ChatError::bad(e.to_string())))
}
