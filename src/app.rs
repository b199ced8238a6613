//! Wiring: open the database, start the actors, serve HTTP and WebSocket on a listener
//! until the shutdown future resolves, then stop in order.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use actix_web::{web, App, HttpServer};

use crate::auth::Authenticator;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::db::{self, DbError, DbExecutor};
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::server::push::Presenter;
use crate::server::{ChatServer, Shutdown};

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
    let config = Arc::new(config);
    let database_url = config
        .database
        .url_with_password()
        .map_err(StartError::Config)?;
    let pool = db::connect(&database_url, config.database.pool_size)?;
    let db = DbExecutor::start(pool, config.database.pool_size as usize);
    let metrics = Arc::new(Metrics::new());
    let cluster = match config.redis.url.as_str() {
        "" => None,
        _ => Some(Cluster::start(&config.redis)?),
    };
    let server = ChatServer::new(db.clone(), &config, metrics.clone(), cluster.clone()).start();
    let state = web::Data::new(AppState {
        config: config.clone(),
        auth: Authenticator::new(&config.auth),
        server: server.clone(),
        db,
        presenter: Presenter::new(&config),
        metrics,
    });
    let addr = listener.local_addr()?;
    let mut http = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(actix_web::middleware::from_fn(http::preflight))
            .wrap(http::cors_headers())
            .configure(http::routes)
    })
    .disable_signals()
    // Chat frames are small and latency-bound: send them at once, not after the peer's
    // delayed ACK (Nagle would hold a push until the client's next frame or 40 ms).
    .tcp_nodelay(true)
    .shutdown_timeout(config.server.shutdown_timeout_secs);
    if config.server.workers > 0 {
        http = http.workers(config.server.workers);
    }
    let http = http.listen(listener)?.run();
    let handle = http.handle();
    let serving = actix_rt::spawn(http);
    log::info!(
        "shopchat listening on {addr} (database {})",
        redact(&config.database.url)
    );

    shutdown.await;
    log::info!("shutting down");
    // Accept nothing new while stored work finishes and sockets close.
    handle.pause().await;
    let drained = tokio::time::timeout(
        Duration::from_secs(config.server.shutdown_timeout_secs),
        server.send(Shutdown),
    )
    .await;
    if drained.is_err() {
        log::warn!("shutdown: stored work did not finish within server.shutdown_timeout_secs");
    }
    if let Some(cluster) = &cluster {
        // The other nodes stop counting this one's users now rather than at expiry.
        cluster.withdraw().await;
    }
    handle.stop(true).await;
    match serving.await {
        Ok(res) => res?,
        Err(e) => log::error!("http server task: {e}"),
    }
    log::info!("stopped");
    Ok(())
}

/// The URL without its password, for logs.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_not_logged() {
        assert_eq!(
            super::redact("mysql://root:pw@h/db"),
            "mysql://root:***@h/db"
        );
        assert_eq!(super::redact("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
