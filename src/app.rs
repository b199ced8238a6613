//! The standalone server: the embedding handle ([`crate::embed`]) mounted at the root of
//! its own HttpServer, until the shutdown future resolves; then stop in order.

use std::future::Future;
use std::net::TcpListener;

use actix_web::{App, HttpServer};

use crate::config::Config;
use crate::db::DbError;
use crate::embed::Builder;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Db(#[from] DbError),
    #[error("cannot serve: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("{0}")]
    Config(crate::config::ConfigError),
}

/// Serves on `listener` until `shutdown` resolves: then stops accepting, lets stored
/// work finish, closes every WebSocket with 1001 and returns. Must run inside an actix
/// System (`#[actix_web::main]`, `actix_rt::System::new().block_on(..)`).
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let database = crate::config::redact(&config.database.url);
    let workers = config.server.workers;
    let shutdown_timeout = config.server.shutdown_timeout_secs;
    let config_timeout = config.server.client_timeout_secs;
    let chat = Builder::new(config).start().await?;
    let routes = chat.mount("");
    let addr = listener.local_addr()?;
    tune_listener(&listener, std::time::Duration::from_secs(config_timeout));
    let mut http = HttpServer::new(move || App::new().configure(routes.clone()))
        .disable_signals()
        // Chat frames are small and latency-bound: send them at once, not after the peer's
        // delayed ACK (Nagle would hold a push until the client's next frame or 40 ms).
        .tcp_nodelay(true)
        .shutdown_timeout(shutdown_timeout);
    if workers > 0 {
        http = http.workers(workers);
    }
    let http = http.listen(listener)?.run();
    let handle = http.handle();
    let serving = actix_rt::spawn(http);
    let metrics = match chat.config().server.metrics_addr.as_str() {
        "" => None,
        at => {
            let routes = chat.metrics_only();
            let server = HttpServer::new(move || App::new().configure(routes.clone()))
                .disable_signals()
                .workers(1)
                .bind(at)?
                .run();
            log::info!("metrics on {at}");
            let handle = server.handle();
            actix_rt::spawn(server);
            Some(handle)
        }
    };
    log::info!("shopchat listening on {addr} (database {database})");

    shutdown.await;
    log::info!("shutting down");
    // Accept nothing new while stored work finishes and sockets close.
    handle.pause().await;
    chat.shutdown().await;
    handle.stop(true).await;
    if let Some(metrics) = metrics {
        metrics.stop(true).await;
    }
    match serving.await {
        Ok(res) => res?,
        Err(e) => log::error!("http server task: {e}"),
    }
    log::info!("stopped");
    Ok(())
}

/// Lets the kernel drop a connection whose peer has not acknowledged (or, with a zero
/// window, has not read) what was sent to it for `timeout` (TCP_USER_TIMEOUT, set on the
/// listener: accepted sockets inherit it, at no cost per connection). A WebSocket
/// stalled on output is never polled, so no timer of the server's could close it; this
/// bounds how long its memory stays held. A host that embeds shopchat calls it on its
/// own listener with `server.client_timeout_secs`.
pub fn tune_listener(listener: &TcpListener, timeout: std::time::Duration) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(e) = socket2::SockRef::from(listener).set_tcp_user_timeout(Some(timeout)) {
        log::warn!("cannot set TCP_USER_TIMEOUT: {e}");
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (listener, timeout);
}

/// Resolves on Ctrl-C or SIGTERM: the shutdown future of the binary, and of a host that
/// embeds shopchat and wants the same behaviour.
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                log::warn!("cannot watch SIGTERM ({e}); stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
