//! Cluster mode, when `redis.url` is set: several nodes behind a load balancer share
//! the database and Redis. Redis is the whole cluster protocol:
//!
//! - presence: `{prefix}user:{uid}` is a sorted set of the nodes holding a connection
//!   of that user, and `{prefix}shop:{id}:routable` one of `{uid}@{node}` for the
//!   shop's routable agents. Each member's score is the unix time it expires; a node
//!   refreshes its own every third of `redis.presence_ttl_secs`, so a dead node's
//!   entries stop counting within that time (and the keys themselves expire);
//! - delivery: each node subscribes to `{prefix}node:{id}` (one channel per node,
//!   never one per user) and to `{prefix}all` for cluster-wide events (admin changes,
//!   broadcast notices).
//!
//! Everything this node sends to Redis goes through one task, in order: the pushes of
//! one conversation reach another node in the order they were committed here. Local
//! connections never wait for Redis; when it is unreachable, cross-node pushes are
//! dropped (the messages are stored), one line is logged, and once Redis answers again
//! the node re-announces everything and ChatServer tells every local connection to
//! resync (PROTOCOL.md §17: receivers fetch by seq what they missed).

mod wire;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actix::Recipient;
use deadpool_redis::redis::{self, AsyncCommands};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};

use crate::config::RedisConfig;
use crate::ids::{ShopId, UserId};
pub use wire::{ClusterEvent, FromCluster};

/// How long one Redis round trip may take before Redis counts as unavailable.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// How often an unavailable Redis is tried again.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// The most queued operations sent to Redis in one pipeline.
const MAX_BATCH: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("redis.url: {0}")]
    Url(String),
}

/// This node's handle on the cluster; cheap to clone.
#[derive(Clone)]
pub struct Cluster(Arc<Inner>);

struct Inner {
    node: String,
    prefix: String,
    ttl_secs: u64,
    pool: deadpool_redis::Pool,
    client: redis::Client,
    out: mpsc::UnboundedSender<Out>,
    /// What this node has announced, re-sent on every refresh and after an outage.
    announced: Mutex<Announced>,
    up: AtomicBool,
    /// Whether this node's subscription is live.
    subscribed: AtomicBool,
    /// Where pushes and events from other nodes go (set by `listen`).
    inbox: OnceLock<Recipient<FromCluster>>,
    /// Cross-node pushes dropped while Redis was unavailable.
    dropped: AtomicU64,
}

#[derive(Default)]
struct Announced {
    users: HashSet<UserId>,
    routable: HashMap<ShopId, HashSet<UserId>>,
}

/// One operation for the Redis task.
enum Out {
    Deliver {
        uids: Vec<UserId>,
        text: Arc<str>,
    },
    Event(String),
    User {
        uid: UserId,
        on: bool,
    },
    Routable {
        shop: ShopId,
        uid: UserId,
        on: bool,
    },
    Refresh,
    /// Remove all of this node's entries, then answer (shutdown).
    Withdraw(oneshot::Sender<()>),
}

fn now() -> i64 {
    crate::clock::unix_now() as i64
}

/// The score range of live members: expiring strictly after this second, so an entry
/// refreshed at time t with a TTL of n seconds stops counting by t + n.
fn live_after() -> String {
    format!("({}", now())
}

impl Cluster {
    /// Sets up the connection pool and starts the task that talks to Redis. Redis need
    /// not be up yet: the node starts on its own and joins when it answers. Must run
    /// inside the actix system.
    pub fn start(config: &RedisConfig) -> Result<Cluster, ClusterError> {
        let url = config
            .url_with_password()
            .map_err(|e| ClusterError::Url(e.to_string()))?;
        let client =
            redis::Client::open(url.as_str()).map_err(|e| ClusterError::Url(e.to_string()))?;
        let pool = deadpool_redis::Config::from_url(url.as_str())
            .builder()
            .map_err(|e| ClusterError::Url(e.to_string()))?
            .max_size(4)
            .wait_timeout(Some(REDIS_TIMEOUT))
            .create_timeout(Some(REDIS_TIMEOUT))
            .recycle_timeout(Some(REDIS_TIMEOUT))
            .runtime(deadpool_redis::Runtime::Tokio1)
            .build()
            .map_err(|e| ClusterError::Url(e.to_string()))?;
        let (out, rx) = mpsc::unbounded_channel();
        let node = format!("{:016x}", rand::random::<u64>());
        let cluster = Cluster(Arc::new(Inner {
            node,
            prefix: config.key_prefix.clone(),
            ttl_secs: config.presence_ttl_secs,
            pool,
            client,
            out,
            announced: Mutex::new(Announced::default()),
            // Assumed up until a round trip fails, so that the first failure is logged.
            up: AtomicBool::new(true),
            subscribed: AtomicBool::new(false),
            inbox: OnceLock::new(),
            dropped: AtomicU64::new(0),
        }));
        actix::spawn(cluster.clone().run_outbox(rx));
        actix::spawn(cluster.clone().run_keeper());
        log::info!(
            "cluster mode: node {} on {} (presence expires {} s after a node stops refreshing it)",
            cluster.node(),
            crate::config::redact(&config.url),
            config.presence_ttl_secs
        );
        Ok(cluster)
    }

    /// This node's id, new at each start.
    pub fn node(&self) -> &str {
        &self.0.node
    }

    /// Whether the last round trip to Redis worked.
    pub fn is_up(&self) -> bool {
        self.0.up.load(Ordering::Relaxed)
    }

    /// Starts listening on this node's channel and the cluster-wide one; what arrives
    /// goes to `inbox`. Reconnects by itself.
    pub fn listen(&self, inbox: Recipient<FromCluster>) {
        if self.0.inbox.set(inbox.clone()).is_ok() {
            actix::spawn(self.clone().run_inbox(inbox));
        }
    }

    fn send(&self, op: Out) {
        // The task lives as long as the system; a send after it stopped has nobody to tell.
        let _ = self.0.out.send(op);
    }

    /// `uid` now has a connection on this node (its first).
    pub fn user_up(&self, uid: UserId) {
        if self.announced().users.insert(uid) {
            self.send(Out::User { uid, on: true });
        }
    }

    /// `uid` has no connection left on this node.
    pub fn user_down(&self, uid: UserId) {
        if self.announced().users.remove(&uid) {
            self.send(Out::User { uid, on: false });
        }
    }

    /// The agents of `shop` routable on this node are now exactly `agents`.
    pub fn set_routable(&self, shop: ShopId, agents: HashSet<UserId>) {
        let mut changes = Vec::new();
        {
            let mut announced = self.announced();
            let before = announced.routable.entry(shop).or_default();
            for uid in before.difference(&agents) {
                changes.push((*uid, false));
            }
            for uid in agents.difference(before) {
                changes.push((*uid, true));
            }
            *before = agents;
        }
        for (uid, on) in changes {
            self.send(Out::Routable { shop, uid, on });
        }
    }

    /// Hands a push to the other nodes holding connections of `uids`.
    pub fn publish(&self, uids: Vec<UserId>, text: Arc<str>) {
        self.send(Out::Deliver { uids, text });
    }

    /// Tells every other node of `event`.
    pub fn broadcast(&self, event: &ClusterEvent) {
        match wire::encode_event(&self.0.node, event) {
            Ok(text) => self.send(Out::Event(text)),
            Err(e) => log::error!("cluster: cannot encode {event:?}: {e}"),
        }
    }

    /// Removes this node's presence from Redis (at shutdown), waiting at most a few seconds.
    pub async fn withdraw(&self) {
        let (tx, rx) = oneshot::channel();
        self.send(Out::Withdraw(tx));
        let _ = tokio::time::timeout(REDIS_TIMEOUT * 2, rx).await;
    }

    /// The agents of `shop` routable on other nodes.
    pub async fn routable_elsewhere(&self, shop: ShopId) -> redis::RedisResult<HashSet<UserId>> {
        self.if_up()?;
        let key = self.routable_key(shop);
        let members: Vec<String> = self
            .round_trip(|mut c| async move { c.zrangebyscore(key, live_after(), "+inf").await })
            .await?;
        Ok(members
            .iter()
            .filter_map(|m| m.split_once('@'))
            .filter(|(_, node)| *node != self.0.node)
            .filter_map(|(uid, _)| uid.parse().ok().map(UserId))
            .collect())
    }

    /// Which of `uids` have a live connection on some node (this one included).
    pub async fn online_anywhere(&self, uids: &[UserId]) -> redis::RedisResult<HashSet<UserId>> {
        self.if_up()?;
        let nodes = self.nodes_of(uids.to_vec()).await?;
        Ok(nodes
            .into_iter()
            .filter(|(_, n)| !n.is_empty())
            .map(|(u, _)| u)
            .collect())
    }

    /// During an outage, reads fail at once instead of each waiting for a timeout.
    fn if_up(&self) -> redis::RedisResult<()> {
        match self.is_up() {
            true => Ok(()),
            false => Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "redis unavailable",
            ))),
        }
    }

    fn announced(&self) -> std::sync::MutexGuard<'_, Announced> {
        // Nothing panics while holding it; a poisoned lock still holds consistent sets.
        self.0.announced.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn user_key(&self, uid: UserId) -> String {
        format!("{}user:{uid}", self.0.prefix)
    }

    fn routable_key(&self, shop: ShopId) -> String {
        format!("{}shop:{shop}:routable", self.0.prefix)
    }

    fn node_channel(&self, node: &str) -> String {
        format!("{}node:{node}", self.0.prefix)
    }

    fn all_channel(&self) -> String {
        format!("{}all", self.0.prefix)
    }

    fn routable_member(&self, uid: UserId) -> String {
        format!("{uid}@{}", self.0.node)
    }

    /// Runs `f` on a pooled connection within `REDIS_TIMEOUT`, keeping track of whether
    /// Redis is reachable.
    async fn round_trip<T, F, Fut>(&self, f: F) -> redis::RedisResult<T>
    where
        F: FnOnce(deadpool_redis::Connection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let attempt = async {
            let conn = self.0.pool.get().await.map_err(|e| {
                redis::RedisError::from((redis::ErrorKind::Io, "no connection", e.to_string()))
            })?;
            f(conn).await
        };
        let res = match tokio::time::timeout(REDIS_TIMEOUT, attempt).await {
            Ok(res) => res,
            Err(_) => Err(redis::RedisError::from((redis::ErrorKind::Io, "timed out"))),
        };
        if let Err(e) = &res {
            self.mark_down(e);
        }
        res
    }

    /// The nodes (this one included) holding connections of each of `uids`.
    async fn nodes_of(&self, uids: Vec<UserId>) -> redis::RedisResult<Vec<(UserId, Vec<String>)>> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for uid in &uids {
            pipe.zrangebyscore(self.user_key(*uid), live_after(), "+inf");
        }
        let nodes: Vec<Vec<String>> = self
            .round_trip(|mut c| async move { pipe.query_async(&mut c).await })
            .await?;
        Ok(uids.into_iter().zip(nodes).collect())
    }

    /// Logs the first failure of an outage, once.
    fn mark_down(&self, e: &dyn std::fmt::Display) {
        if self.0.up.swap(false, Ordering::Relaxed) {
            log::error!(
                "redis unavailable ({e}): cluster paused, local delivery continues; \
                 cross-node pushes are dropped (connections are told to resync when it is back); retrying every {} s",
                RETRY_EVERY.as_secs()
            );
        }
    }

    /// Marks Redis reachable if it answers a PING while this node is subscribed: says so
    /// once, re-announces everything, and has the routers look again.
    async fn check_up(&self) {
        if self.is_up() || !self.0.subscribed.load(Ordering::Relaxed) {
            return;
        }
        let ping = self
            .round_trip(
                |mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await },
            )
            .await;
        if ping.is_err() {
            return;
        }
        if !self.0.up.swap(true, Ordering::Relaxed) {
            let dropped = self.0.dropped.swap(0, Ordering::Relaxed);
            log::warn!(
                "redis reachable again: cluster resumed ({dropped} cross-node pushes were dropped meanwhile)"
            );
            self.send(Out::Refresh);
            if let Some(inbox) = self.0.inbox.get() {
                inbox.do_send(FromCluster::Recovered);
            }
        }
    }

    /// The one task that writes to Redis, in the order operations were queued.
    async fn run_outbox(self, mut rx: mpsc::UnboundedReceiver<Out>) {
        let mut batch = Vec::new();
        while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let ops = std::mem::take(&mut batch);
            if !self.is_up() {
                self.skip(ops);
                continue;
            }
            if let Err(e) = self.apply(ops).await {
                log::debug!("cluster: a batch failed: {e}");
            }
        }
    }

    /// Drops what cannot be sent while Redis is down; a refresh after recovery
    /// re-announces presence, and a shutdown is answered at once.
    fn skip(&self, ops: Vec<Out>) {
        for op in ops {
            match op {
                Out::Deliver { .. } => {
                    self.0.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Out::Withdraw(done) => {
                    let _ = done.send(());
                }
                _ => {}
            }
        }
    }

    async fn apply(&self, ops: Vec<Out>) -> redis::RedisResult<()> {
        let wanted: Vec<UserId> = {
            let mut seen = HashSet::new();
            ops.iter()
                .flat_map(|op| match op {
                    Out::Deliver { uids, .. } => uids.as_slice(),
                    _ => &[],
                })
                .filter(|u| seen.insert(**u))
                .copied()
                .collect()
        };
        let nodes: HashMap<UserId, Vec<String>> = match self.nodes_of(wanted).await {
            Ok(n) => n.into_iter().collect(),
            Err(e) => {
                self.skip(ops);
                return Err(e);
            }
        };
        let t = now();
        let mut pipe = redis::pipe();
        let mut answers = Vec::new();
        let mut delivers = 0u64;
        for op in ops {
            match op {
                Out::Deliver { uids, text } => {
                    delivers += 1;
                    self.deliver_into(&mut pipe, &nodes, &uids, &text);
                }
                Out::Event(text) => {
                    pipe.publish(self.all_channel(), text).ignore();
                }
                Out::User { uid, on } => {
                    let member = self.0.node.clone();
                    self.presence_into(&mut pipe, self.user_key(uid), member, on, t);
                }
                Out::Routable { shop, uid, on } => {
                    let member = self.routable_member(uid);
                    self.presence_into(&mut pipe, self.routable_key(shop), member, on, t);
                }
                Out::Refresh => self.refresh_into(&mut pipe, t),
                Out::Withdraw(done) => {
                    self.withdraw_into(&mut pipe);
                    answers.push(done);
                }
            }
        }
        let res = match pipe.is_empty() {
            // Nobody elsewhere to push to and nothing to announce.
            true => Ok(()),
            false => {
                self.round_trip(|mut c| async move { pipe.query_async::<()>(&mut c).await })
                    .await
            }
        };
        if res.is_err() {
            self.0.dropped.fetch_add(delivers, Ordering::Relaxed);
        }
        for done in answers {
            let _ = done.send(());
        }
        res
    }

    /// Publishes `text` once to each other node holding some of `uids`, naming those.
    fn deliver_into(
        &self,
        pipe: &mut redis::Pipeline,
        nodes: &HashMap<UserId, Vec<String>>,
        uids: &[UserId],
        text: &str,
    ) {
        let mut by_node: BTreeMap<&str, Vec<UserId>> = BTreeMap::new();
        for uid in uids {
            for node in nodes.get(uid).into_iter().flatten() {
                if *node != self.0.node {
                    by_node.entry(node).or_default().push(*uid);
                }
            }
        }
        for (node, to) in by_node {
            pipe.publish(self.node_channel(node), wire::encode_delivery(&to, text))
                .ignore();
        }
    }

    /// Adds `member` to the presence set `key` until the TTL runs out (`on`), or removes it.
    fn presence_into(
        &self,
        pipe: &mut redis::Pipeline,
        key: String,
        member: String,
        on: bool,
        t: i64,
    ) {
        let ttl = self.0.ttl_secs as i64;
        if on {
            pipe.zadd(&key, member, t + ttl)
                .ignore()
                .expire(&key, ttl)
                .ignore();
        } else {
            pipe.zrem(&key, member).ignore();
        }
    }

    /// Renews every entry this node announced, and sweeps expired members of those keys.
    fn refresh_into(&self, pipe: &mut redis::Pipeline, t: i64) {
        let expiry = t + self.0.ttl_secs as i64;
        let ttl = self.0.ttl_secs as i64;
        let announced = self.announced();
        for uid in &announced.users {
            let key = self.user_key(*uid);
            pipe.zadd(&key, &self.0.node, expiry)
                .ignore()
                .expire(&key, ttl)
                .ignore()
                .zrembyscore(&key, "-inf", t)
                .ignore();
        }
        for (shop, agents) in &announced.routable {
            let key = self.routable_key(*shop);
            for uid in agents {
                pipe.zadd(&key, self.routable_member(*uid), expiry).ignore();
            }
            if !agents.is_empty() {
                pipe.expire(&key, ttl).ignore();
            }
            pipe.zrembyscore(&key, "-inf", t).ignore();
        }
    }

    fn withdraw_into(&self, pipe: &mut redis::Pipeline) {
        let mut announced = self.announced();
        for uid in announced.users.drain() {
            pipe.zrem(self.user_key(uid), &self.0.node).ignore();
        }
        for (shop, agents) in announced.routable.drain() {
            for uid in agents {
                pipe.zrem(self.routable_key(shop), self.routable_member(uid))
                    .ignore();
            }
        }
    }

    /// Asks for a refresh every third of the TTL while Redis is up, and checks every
    /// second whether it is back while it is not.
    async fn run_keeper(self) {
        let refresh_every = (self.0.ttl_secs / 3).max(1);
        let mut since_refresh = 0;
        let mut tick = tokio::time::interval(RETRY_EVERY);
        loop {
            tick.tick().await;
            if self.0.out.is_closed() {
                return;
            }
            if self.is_up() {
                since_refresh += RETRY_EVERY.as_secs();
                if since_refresh >= refresh_every {
                    since_refresh = 0;
                    self.send(Out::Refresh);
                }
            } else {
                self.check_up().await;
            }
        }
    }

    /// Listens for pushes and events; on a lost subscription, marks Redis down and
    /// retries until it is back, then marks it up (which re-announces this node).
    async fn run_inbox(self, inbox: Recipient<FromCluster>) {
        let channels = [self.node_channel(&self.0.node), self.all_channel()];
        loop {
            let subscribed = async {
                let mut pubsub = self.0.client.get_async_pubsub().await?;
                pubsub.subscribe(&channels).await?;
                redis::RedisResult::Ok(pubsub)
            };
            let pubsub = match tokio::time::timeout(REDIS_TIMEOUT, subscribed).await {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => {
                    self.mark_down(&e);
                    tokio::time::sleep(RETRY_EVERY).await;
                    continue;
                }
                Err(_) => {
                    self.mark_down(&"subscribing timed out");
                    tokio::time::sleep(RETRY_EVERY).await;
                    continue;
                }
            };
            self.0.subscribed.store(true, Ordering::Relaxed);
            self.check_up().await;
            let mut stream = pubsub.into_on_message();
            while let Some(msg) = stream.next().await {
                match wire::decode(&self.0.node, msg.get_payload_bytes()) {
                    Ok(Some(m)) => inbox.do_send(m),
                    Ok(None) => {}
                    Err(e) => log::warn!(
                        "cluster: ignoring a malformed message on {}: {e}",
                        msg.get_channel_name()
                    ),
                }
            }
            self.0.subscribed.store(false, Ordering::Relaxed);
            self.mark_down(&"subscription connection lost");
            tokio::time::sleep(RETRY_EVERY).await;
        }
    }
}
