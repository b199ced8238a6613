//! `/user/upload` (answered in layim's format) and `GET /media/{name}`.

use std::path::PathBuf;
use std::sync::LazyLock;

use actix_files::NamedFile;
use actix_multipart::Multipart;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use rand::RngCore;
use regex::Regex;
use serde_json::json;

use super::api::{state, ApiError, Caller};

/// Names the server gave uploads: nothing else is served, so no path can escape the folder.
static STORED_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[0-9a-f]{32}\.(png|jpg|gif|webp)$").expect("name pattern should compile")
});

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/user/upload", web::post().to(upload))
        .route("/media/{name}", web::get().to(serve));
}

/// layim reads `code` 0 as success and shows `msg` otherwise, so failures carry a
/// non-zero code (an HTTP-like number) and a stable `error` word.
fn refused(code: u16, msg: &str, word: &str) -> HttpResponse {
    HttpResponse::Ok().json(json!({"code": code, "msg": msg, "error": word, "data": {}}))
}

/// The extension for the image kinds we accept, judged by content, not by name.
fn image_extension(bytes: &[u8]) -> Option<&'static str> {
    if infer::image::is_png(bytes) {
        Some("png")
    } else if infer::image::is_jpeg(bytes) {
        Some("jpg")
    } else if infer::image::is_gif(bytes) {
        Some("gif")
    } else if infer::image::is_webp(bytes) {
        Some("webp")
    } else {
        None
    }
}

async fn upload(
    req: HttpRequest,
    caller: Caller,
    mut form: Multipart,
) -> Result<HttpResponse, ApiError> {
    let st = state(&req);
    let limit = st.config.media.max_upload_bytes;
    while let Some(field) = form.next().await {
        let mut field = match field {
            Ok(f) => f,
            Err(e) => {
                return Ok(refused(
                    400,
                    &format!("bad multipart body: {e}"),
                    "bad_params",
                ))
            }
        };
        if field.name() != Some("file") {
            continue;
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    return Ok(refused(
                        400,
                        &format!("bad multipart body: {e}"),
                        "bad_params",
                    ))
                }
            };
            if bytes.len() + chunk.len() > limit {
                return Ok(refused(
                    413,
                    &format!("file is larger than {limit} bytes"),
                    "too_large",
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        let Some(ext) = image_extension(&bytes) else {
            return Ok(refused(
                415,
                "only png, jpeg, gif or webp images can be uploaded",
                "not_an_image",
            ));
        };
        let mut id = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut id);
        let name = format!(
            "{}.{ext}",
            id.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let dir = PathBuf::from(&st.config.media.upload_dir);
        let path = dir.join(&name);
        let written = web::block(move || {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(&path, &bytes)
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            log::error!("uid {}: saving an upload failed: {written:?}", caller.0);
            return Ok(refused(
                500,
                "could not store the file",
                "storage_unavailable",
            ));
        }
        let src = format!(
            "{}/media/{name}",
            st.config.media.base_url.trim_end_matches('/')
        );
        return Ok(HttpResponse::Ok().json(json!({"code": 0, "msg": "", "data": {"src": src}})));
    }
    Ok(refused(
        400,
        "multipart field `file` is required",
        "bad_params",
    ))
}

async fn serve(req: HttpRequest, name: web::Path<String>) -> actix_web::Result<HttpResponse> {
    if !STORED_NAME.is_match(&name) {
        return Ok(HttpResponse::NotFound().finish());
    }
    let path = PathBuf::from(&state(&req).config.media.upload_dir).join(name.as_str());
    match NamedFile::open_async(&path).await {
        Ok(file) => Ok(file.into_response(&req)),
        Err(_) => Ok(HttpResponse::NotFound().finish()),
    }
}
