//! A host actix-web application with shopchat embedded under `/im`.
//!
//!     cargo run --example embed -- --port 8080 --config config.dev.toml
//!
//! - `GET /hello`: the host's own route.
//! - `/im/`: everything shopchat serves (WebSocket at `/im/` and `/im/ws`, the HTTP and
//!   admin APIs, uploads at `/im/media/`, the web client at `GET /im/`).
//! - `POST /backend/notice/{uid}` (body: the text) and `GET /backend/online?uids=1,2,3`:
//!   the host's back end calling shopchat's operations directly, without HTTP.
//!
//! It prints `embed: listening on ADDR` (stderr) once it accepts connections, and stops cleanly
//! on Ctrl-C or SIGTERM.

use std::net::TcpListener;
use std::path::PathBuf;

use actix_web::{web, App, HttpResponse, HttpServer};
use clap::Parser;
use serde::Deserialize;
use shopchat::embed::{Audience, Builder, HttpError, Shopchat};
use shopchat::ids::UserId;
use shopchat::Config;

#[derive(Parser)]
struct Args {
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// shopchat's config file (default: config.dev.toml).
    #[arg(long)]
    config: Option<PathBuf>,
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let mut config = Config::load(args.config.as_deref())?.config;
    let listener = TcpListener::bind(("127.0.0.1", args.port))?;
    let addr = listener.local_addr()?;
    // A client that never reads what it is sent is dropped after the client timeout.
    shopchat::app::tune_listener(
        &listener,
        std::time::Duration::from_secs(config.server.client_timeout_secs),
    );
    // Uploaded images are served under the mount point (built from each request when
    // base_url is empty; set here to show the override).
    config.media.base_url = format!("http://{addr}/im");

    let chat = Builder::new(config).start().await?;
    let routes = chat.mount("/im");
    let backend = web::Data::new(chat.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(backend.clone())
            .route(
                "/hello",
                web::get().to(|| async { "hello from the host app\n" }),
            )
            .route("/backend/notice/{uid}", web::post().to(notice))
            .route("/backend/online", web::get().to(online))
            .configure(routes.clone())
    })
    .disable_signals()
    .tcp_nodelay(true)
    .listen(listener)?
    .run();
    let handle = server.handle();
    let serving = actix_web::rt::spawn(server);
    eprintln!("embed: listening on {addr}");

    shopchat::app::stop_signal().await;
    handle.pause().await;
    chat.shutdown().await;
    handle.stop(true).await;
    serving.await??;
    Ok(())
}

/// A system notice to one user, from the host's own code.
async fn notice(
    chat: web::Data<Shopchat>,
    uid: web::Path<UserId>,
    text: String,
) -> Result<HttpResponse, HttpError> {
    let ids = chat
        .notify(Audience::Users(vec![uid.into_inner()]), 1, text)
        .await?;
    Ok(HttpResponse::Ok().json(ids.iter().map(|id| id.0).collect::<Vec<_>>()))
}

#[derive(Deserialize)]
struct OnlineQuery {
    uids: String,
}

/// Which of the given users are connected.
async fn online(
    chat: web::Data<Shopchat>,
    q: web::Query<OnlineQuery>,
) -> Result<HttpResponse, HttpError> {
    let uids: Vec<UserId> = q
        .uids
        .split(',')
        .filter_map(|u| u.trim().parse().ok().map(UserId))
        .collect();
    Ok(HttpResponse::Ok().json(chat.online_users(&uids).await?))
}
