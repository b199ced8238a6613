//! The built-in web client (web/ in the repository), compiled into the binary: the page
//! at a plain `GET` of the mount point, its script and style under `client/`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

const INDEX: &str = include_str!("../../web/index.html");
const SCRIPT: &str = include_str!("../../web/app.js");
const STYLE: &str = include_str!("../../web/app.css");

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/client/app.js",
        web::get().to(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
    )
    .route(
        "/client/app.css",
        web::get().to(|| async { asset("text/css; charset=utf-8", STYLE) }),
    );
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

/// The page. Its links are relative, so under a prefix it must be fetched as `{prefix}/`:
/// `{prefix}` alone is redirected there.
pub fn page(req: &HttpRequest) -> HttpResponse {
    let path = req.path();
    if !path.ends_with('/') {
        let query = match req.query_string() {
            "" => String::new(),
            q => format!("?{q}"),
        };
        return HttpResponse::PermanentRedirect()
            .insert_header((header::LOCATION, format!("{path}/{query}")))
            .finish();
    }
    asset("text/html; charset=utf-8", INDEX)
}
