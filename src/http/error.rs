//! Every HTTP error body, rendered in one place. The original API (PROTOCOL.md §7)
//! answers HTTP 200 with `{"code":0|401,..}`, as its client expects; the admin API
//! (§9) and the routes' own refusals use HTTP statuses, with the same `code: 0` body.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::admin::AdminError;
use crate::error::ChatError;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The original API without a valid token.
    #[error("not logged in")]
    NotLoggedIn,
    /// An original-API failure whose message PROTOCOL.md fixes (the login and register texts).
    #[error("{0}")]
    Text(&'static str),
    /// An original-API failure with its wire word.
    #[error("{0}")]
    Chat(#[from] ChatError),
    /// An admin operation refused.
    #[error("{0}")]
    Admin(#[from] AdminError),
    /// The request body did not arrive within `server.body_timeout_secs`.
    #[error("request body too slow")]
    BodyTimeout,
    /// A body or path actix could not parse.
    #[error("{0}")]
    BadRequest(String),
    #[error("not found")]
    NoRoute,
    /// An upload refused, in the upload route's own format (HTTP 200, the status as `code`).
    #[error("{msg}")]
    Upload {
        code: u16,
        msg: String,
        word: &'static str,
    },
}

impl ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        match self {
            HttpError::NotLoggedIn
            | HttpError::Text(_)
            | HttpError::Chat(_)
            | HttpError::Upload { .. } => StatusCode::OK,
            HttpError::Admin(AdminError::Unauthorized) => StatusCode::UNAUTHORIZED,
            HttpError::Admin(AdminError::BadRequest(_)) | HttpError::BadRequest(_) => {
                StatusCode::BAD_REQUEST
            }
            HttpError::Admin(AdminError::NotFound(_)) | HttpError::NoRoute => StatusCode::NOT_FOUND,
            HttpError::Admin(AdminError::Storage) => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            HttpError::NotLoggedIn => json!({"code": 401, "msg": "请登录", "result": null}),
            HttpError::Text(msg) => json!({"code": 0, "msg": msg, "result": null}),
            HttpError::Chat(e) => {
                let (msg, word) = e.wire();
                json!({"code": 0, "msg": msg, "error": word, "result": null})
            }
            HttpError::Upload { code, msg, word } => {
                json!({"code": code, "msg": msg, "error": word, "data": {}})
            }
            other => json!({"code": 0, "msg": other.to_string(), "error": other.word()}),
        };
        let mut res = HttpResponse::build(self.status_code()).json(body);
        if matches!(self, HttpError::BodyTimeout) {
            // The rest of a slow body is not read: the connection cannot be reused.
            res.head_mut()
                .set_connection_type(actix_web::http::ConnectionType::Close);
        }
        res
    }
}

impl HttpError {
    /// The wire word of an error outside the original API.
    fn word(&self) -> &'static str {
        match self {
            HttpError::Admin(AdminError::Unauthorized) => "unauthorized",
            HttpError::Admin(AdminError::BadRequest(_)) | HttpError::BadRequest(_) => "bad_params",
            HttpError::Admin(AdminError::NotFound(_)) | HttpError::NoRoute => "not_found",
            HttpError::Admin(AdminError::Storage) => "storage_unavailable",
            HttpError::BodyTimeout => "timeout",
            HttpError::Upload { word, .. } => word,
            HttpError::NotLoggedIn | HttpError::Text(_) | HttpError::Chat(_) => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(e: HttpError) -> (u16, serde_json::Value) {
        let res = e.error_response();
        let status = res.status().as_u16();
        let body = actix_web::body::to_bytes(res.into_body());
        let bytes = futures_util::FutureExt::now_or_never(body)
            .expect("a JSON body is ready at once")
            .expect("the body should be readable");
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn the_original_api_answers_200_and_the_rest_by_status() {
        let (status, body) = rendered(HttpError::Text("密码错误"));
        assert_eq!((status, body["code"].as_i64()), (200, Some(0)));
        assert_eq!(body["msg"], "密码错误");
        let (status, body) = rendered(HttpError::NotLoggedIn);
        assert_eq!((status, body["code"].as_i64()), (200, Some(401)));
        let (status, body) = rendered(AdminError::NotFound("no such shop").into());
        assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
        assert_eq!(body["msg"], "no such shop");
        let (status, body) = rendered(AdminError::Storage.into());
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("storage_unavailable"))
        );
        let (status, body) = rendered(HttpError::BodyTimeout);
        assert_eq!((status, body["error"].as_str()), (408, Some("timeout")));
        let (status, body) = rendered(HttpError::NoRoute);
        assert_eq!((status, body["code"].as_i64()), (404, Some(0)));
    }
}
