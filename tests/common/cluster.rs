//! Cluster helpers: several nodes sharing one database and one Redis key prefix, a
//! direct look at presence in Redis, and a TCP proxy that can cut a node off Redis.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::TestServer;

/// The Redis of the cluster tests, from `SHOPCHAT_TEST_REDIS_URL`. Unset: `None` after
/// saying why the test is skipped, or a failure when `SHOPCHAT_REQUIRE_SERVICES=1`.
pub fn redis_url(test: &str) -> Option<String> {
    match std::env::var("SHOPCHAT_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("SHOPCHAT_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "{test}: SHOPCHAT_REQUIRE_SERVICES=1 but SHOPCHAT_TEST_REDIS_URL is not set"
            );
            eprintln!("skipping {test}: set SHOPCHAT_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379) to run it");
            None
        }
    }
}

/// A key prefix no other test (of this or any concurrent run) uses.
pub fn fresh_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "shopchat_t{}_{}:",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `n` in-process nodes sharing the first one's database, Redis at `redis`, and `prefix`.
pub fn nodes(n: usize, redis: &str, prefix: &str) -> Vec<TestServer> {
    nodes_with(n, redis, prefix, |_| {})
}

/// [`nodes`], each node's config adjusted by `adjust`.
pub fn nodes_with(
    n: usize,
    redis: &str,
    prefix: &str,
    adjust: impl Fn(&mut shopchat::Config),
) -> Vec<TestServer> {
    let first = TestServer::start_with(|c| {
        c.redis.url = redis.to_string();
        c.redis.key_prefix = prefix.to_string();
        adjust(c);
    });
    let db = first.config.database.url.clone();
    let mut all = vec![first];
    for _ in 1..n {
        all.push(TestServer::start_with(|c| {
            c.database.url = db.clone();
            c.redis.url = redis.to_string();
            c.redis.key_prefix = prefix.to_string();
            adjust(c);
        }));
    }
    all
}

/// What Redis says about presence under one prefix.
pub struct Presence {
    client: redis::Client,
    prefix: String,
}

impl Presence {
    pub fn new(url: &str, prefix: &str) -> Presence {
        Presence {
            client: redis::Client::open(url).expect("redis url should parse"),
            prefix: prefix.to_string(),
        }
    }

    async fn live_members(&self, key: &str) -> Vec<String> {
        let mut c = self
            .client
            .get_multiplexed_async_connection()
            .await
            .expect("test redis should accept connections");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        redis::cmd("ZRANGEBYSCORE")
            .arg(format!("{}{key}", self.prefix))
            .arg(format!("({now}"))
            .arg("+inf")
            .query_async(&mut c)
            .await
            .expect("ZRANGEBYSCORE should work")
    }

    /// The nodes holding a live connection of `uid`.
    pub async fn nodes_of(&self, uid: i64) -> Vec<String> {
        self.live_members(&format!("user:{uid}")).await
    }

    /// `uid@node` for each agent routable somewhere in `shop`.
    pub async fn routable(&self, shop: i64) -> Vec<String> {
        self.live_members(&format!("shop:{shop}:routable")).await
    }

    /// Waits until `uid` is live on exactly `count` nodes.
    pub async fn wait_nodes(&self, uid: i64, count: usize) {
        self.wait(
            || async { self.nodes_of(uid).await.len() == count },
            &format!("user {uid} on {count} nodes"),
        )
        .await;
    }

    /// Waits until `shop` has exactly `count` routable entries.
    pub async fn wait_routable(&self, shop: i64, count: usize) {
        self.wait(
            || async { self.routable(shop).await.len() == count },
            &format!("shop {shop} with {count} routable"),
        )
        .await;
    }

    async fn wait<F, Fut>(&self, ok: F, what: &str)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + super::WAIT;
        while !ok().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited in vain for {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A TCP proxy on its own thread; `cut` drops every connection through it and refuses
/// new ones until `restore`.
pub struct Proxy {
    pub addr: std::net::SocketAddr,
    cut: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    pub fn start(target: std::net::SocketAddr) -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind should succeed");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("bound");
        let cut = Arc::new(AtomicBool::new(false));
        let live = Arc::new(Mutex::new(Vec::new()));
        let (c, l) = (cut.clone(), live.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    if c.load(Ordering::SeqCst) {
                        continue; // dropped: the connection is refused
                    }
                    let task = tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    l.lock().unwrap().push(task.abort_handle());
                }
            });
        });
        Proxy { addr, cut, live }
    }

    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for task in self.live.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// `redis://host:port` as a socket address.
pub fn redis_socket(url: &str) -> std::net::SocketAddr {
    use std::net::ToSocketAddrs;
    let rest = url.split("://").nth(1).expect("redis url has a scheme");
    let hostport = rest.split('/').next().unwrap_or(rest);
    let hostport = hostport.rsplit('@').next().unwrap_or(hostport);
    let hostport = match hostport.contains(':') {
        true => hostport.to_string(),
        false => format!("{hostport}:6379"),
    };
    hostport
        .to_socket_addrs()
        .expect("redis address should resolve")
        .next()
        .expect("redis address resolves")
}
