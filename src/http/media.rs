//! `/user/upload` (answered in layim's format) and `GET /media/{name}`.

use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use actix_files::NamedFile;
use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use rand::RngCore;
use serde_json::json;

use super::api::{state, Caller};
use super::error::HttpError;
use super::limit::{within, KeyedLimit};
use crate::protocol::{retired_upload, STORED_NAME};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/user/upload", web::post().to(upload))
        .route("/media/{name}", web::get().to(serve));
}

/// layim reads `code` 0 as success and shows `msg` otherwise, so failures carry a
/// non-zero code (an HTTP-like number) and a stable `error` word.
fn refused(code: u16, msg: impl Into<String>, word: &'static str) -> HttpError {
    HttpError::Upload {
        code,
        msg: msg.into(),
        word,
    }
}

/// The largest width or height an upload may have: a client that shows a 60,000-pixel
/// image allocates gigabytes for it.
const MAX_IMAGE_SIDE: usize = 16_384;

/// Text that makes a file something else as well as an image (HTML, SVG, script, PHP):
/// a polyglot that a browser or a misconfigured proxy could run.
static MARKUP: LazyLock<aho_corasick::AhoCorasick> = LazyLock::new(|| {
    aho_corasick::AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build([
            "<script",
            "<html",
            "<body",
            "<svg",
            "<iframe",
            "<object",
            "<embed",
            "<?php",
            "<!doctype",
            "<meta",
            "<img",
            "<a href",
            "javascript:",
        ])
        .expect("the markup patterns should compile")
});

/// The extension of an image we accept, judged by its content: a png, jpeg, gif or webp
/// whose header decodes to real dimensions, that ends where its format ends (nothing
/// appended) and carries no markup; or why not.
fn check_image(bytes: &[u8]) -> Result<&'static str, &'static str> {
    use imagesize::ImageType;
    let ext = match imagesize::image_type(bytes) {
        Ok(ImageType::Png) => "png",
        Ok(ImageType::Jpeg) => "jpg",
        Ok(ImageType::Gif) => "gif",
        Ok(ImageType::Webp) => "webp",
        _ => return Err("only png, jpeg, gif or webp images can be uploaded"),
    };
    let size = imagesize::blob_size(bytes).map_err(|_| "the image header does not decode")?;
    if size.width == 0 || size.height == 0 {
        return Err("the image is empty");
    }
    if size.width > MAX_IMAGE_SIDE || size.height > MAX_IMAGE_SIDE {
        return Err("the image is larger than 16384 pixels on a side");
    }
    let ends_right = match ext {
        "png" => bytes.ends_with(b"IEND\xaeB`\x82") && contains(bytes, b"IDAT"),
        "jpg" => bytes.ends_with(&[0xff, 0xd9]) && contains(bytes, &[0xff, 0xda]),
        "gif" => bytes.ends_with(b";") && bytes.contains(&0x2c),
        _ => {
            bytes.len() >= 12
                && u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize + 8
                    == bytes.len()
        }
    };
    if !ends_right {
        return Err("the image is truncated, empty or has data appended");
    }
    if MARKUP.is_match(bytes) {
        return Err("the image carries markup or script");
    }
    Ok(ext)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Per-user upload quotas (`media.max_files_per_min`, `media.max_bytes_per_hour`), on
/// this node.
pub struct UploadQuota {
    files: Option<KeyedLimit<i64>>,
    /// In KiB, so a quota of gigabytes fits the limiter's 32 bits.
    kib: Option<KeyedLimit<i64>>,
}

impl UploadQuota {
    pub fn new(media: &crate::config::MediaConfig) -> UploadQuota {
        UploadQuota {
            files: KeyedLimit::new(media.max_files_per_min.into(), Duration::from_secs(60)),
            kib: KeyedLimit::new(media.max_bytes_per_hour / 1024, Duration::from_secs(3600)),
        }
    }

    fn file(&self, uid: i64) -> bool {
        within(&self.files, &uid, 1)
    }

    fn bytes(&self, uid: i64, bytes: usize) -> bool {
        let kib = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
        within(&self.kib, &uid, kib)
    }
}

async fn upload(
    req: HttpRequest,
    caller: Caller,
    mut form: Multipart,
) -> Result<HttpResponse, HttpError> {
    let st = state(&req);
    let uid = caller.0;
    if !st.uploads.file(uid.0) {
        return Err(refused(
            429,
            "too many uploads, try again in a minute",
            "rate_limited",
        ));
    }
    let limit = st.config.media.max_upload_bytes;
    let Some(bytes) = file_field(&mut form, limit).await? else {
        return Err(refused(
            400,
            "multipart field `file` is required",
            "bad_params",
        ));
    };
    let ext = check_image(&bytes).map_err(|why| refused(415, why, "not_an_image"))?;
    if !st.uploads.bytes(uid.0, bytes.len()) {
        return Err(refused(
            429,
            "upload quota for this hour is used up",
            "rate_limited",
        ));
    }
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
        log::error!("uid {uid}: saving an upload failed: {written:?}");
        return Err(refused(
            500,
            "could not store the file",
            "storage_unavailable",
        ));
    }
    let src = format!("{}/media/{name}", public_base(&req));
    Ok(HttpResponse::Ok().json(json!({"code": 0, "msg": "", "data": {"src": src}})))
}

/// The bytes of the form's first `file` field (other fields are skipped), refused past
/// `limit` bytes as soon as they pass it; `None` if there is no such field.
async fn file_field(form: &mut Multipart, limit: usize) -> Result<Option<Vec<u8>>, HttpError> {
    let bad = |e: actix_multipart::MultipartError| {
        refused(400, format!("bad multipart body: {e}"), "bad_params")
    };
    while let Some(field) = form.next().await {
        let mut field = field.map_err(bad)?;
        if field.name() != Some("file") {
            continue;
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(bad)?;
            if bytes.len() + chunk.len() > limit {
                let why = format!("file is larger than {limit} bytes");
                return Err(refused(413, why, "too_large"));
            }
            bytes.extend_from_slice(&chunk);
        }
        return Ok(Some(bytes));
    }
    Ok(None)
}

/// Where this server's routes are reached from outside: `media.base_url` when set,
/// else the scheme, host and mount prefix of the upload request itself (the host from
/// `X-Forwarded-Host`/`-Proto` only when the peer is in `server.trusted_proxies`), so
/// changing the port or putting a proxy in front breaks no image.
fn public_base(req: &HttpRequest) -> String {
    let config = &state(req).config;
    if !config.media.base_url.is_empty() {
        return config.media.base_url.trim_end_matches('/').to_string();
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let trusted = super::from_trusted_proxy(req, &config.server.trusted_proxies);
    let forwarded = |name| if trusted { header(name) } else { None };
    let host = forwarded("x-forwarded-host")
        .or_else(|| header("host"))
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .map_or_else(|| req.app_config().host().to_string(), str::to_string);
    let scheme = match forwarded("x-forwarded-proto") {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        Some(_) => "http",
        None if req.app_config().secure() => "https",
        None => "http",
    };
    let prefix = req.path().strip_suffix("/user/upload").unwrap_or("");
    format!("{scheme}://{host}{prefix}")
}

async fn serve(req: HttpRequest, name: web::Path<String>) -> actix_web::Result<HttpResponse> {
    if !STORED_NAME.is_match(&name) {
        return Ok(HttpResponse::NotFound().finish());
    }
    let path = PathBuf::from(&state(&req).config.media.upload_dir).join(name.as_str());
    match NamedFile::open_async(&path).await {
        Ok(file) => {
            let mut resp = file.into_response(&req);
            let headers = resp.headers_mut();
            // Served as what it is and nothing else: no sniffing, no script, no frames.
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                header::HeaderValue::from_static("nosniff"),
            );
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                header::HeaderValue::from_static("default-src 'none'; sandbox"),
            );
            Ok(resp)
        }
        // A recalled image's file is kept aside, for the platform, and no longer served.
        Err(_) if path.with_file_name(retired_upload(&name)).exists() => {
            Ok(HttpResponse::Gone().finish())
        }
        Err(_) => Ok(HttpResponse::NotFound().finish()),
    }
}

#[cfg(test)]
mod tests {
    use super::check_image;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\x0f\0\0\x01\x01\0\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82";
    const GIF: &[u8] = b"GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff!\xf9\x04\x01\0\0\0\0,\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;";

    #[test]
    fn real_images_pass() {
        assert_eq!(check_image(PNG), Ok("png"));
        assert_eq!(check_image(GIF), Ok("gif"));
    }

    #[test]
    fn magic_bytes_alone_are_not_an_image() {
        assert!(check_image(b"\x89PNG\r\n\x1a\n").is_err());
        assert!(check_image(b"GIF89a").is_err());
        assert!(check_image(b"\xff\xd8\xff\xe0 not really").is_err());
        assert!(check_image(b"<html>").is_err());
    }

    #[test]
    fn empty_truncated_and_huge_images_are_refused() {
        let mut zero = PNG.to_vec();
        zero[16..20].copy_from_slice(&[0, 0, 0, 0]); // width 0
        assert_eq!(check_image(&zero), Err("the image is empty"));
        let mut huge = PNG.to_vec();
        huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        assert!(check_image(&huge).is_err());
        assert!(check_image(&PNG[..PNG.len() - 12]).is_err(), "no IEND");
    }

    #[test]
    fn polyglots_are_refused() {
        let mut appended = PNG.to_vec();
        appended.extend_from_slice(b"alert(document.cookie)");
        assert!(check_image(&appended).is_err(), "data after IEND");
        // Markup inside a comment extension of an otherwise valid GIF.
        let mut gif = GIF[..GIF.len() - 1].to_vec();
        gif.extend_from_slice(b"!\xfe\x10<ScRiPt>alert(1)\0;");
        assert_eq!(check_image(&gif), Err("the image carries markup or script"));
    }
}
