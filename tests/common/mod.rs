//! Shared helpers: a real shopchat server on an ephemeral port (its own actix System on
//! its own thread, a SQLite file in a temp dir), and real WebSocket/HTTP clients.
#![allow(dead_code)]

pub mod cluster;
pub mod receiver;

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use shopchat::auth::Authenticator;
use shopchat::config::Config;
use shopchat::ids::UserId;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a frame it expects before failing.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub addr: SocketAddr,
    pub config: Config,
    pub dir: Arc<tempfile::TempDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Which database the in-process suite runs on: `SHOPCHAT_TEST_BACKEND` = `sqlite`
/// (default), `mysql` or `postgres`; the last two need the cargo feature of that name and
/// `SHOPCHAT_TEST_MYSQL_URL` / `SHOPCHAT_TEST_POSTGRES_URL` (any database on that server:
/// each test server gets a throwaway database of its own next to it).
pub fn backend() -> String {
    std::env::var("SHOPCHAT_TEST_BACKEND").unwrap_or_else(|_| "sqlite".into())
}

/// SQL that makes every insert into `messages` fail (a real database error for the
/// server), and the SQL that undoes it, in the current backend's dialect.
pub fn refuse_inserts_sql() -> (&'static str, &'static str) {
    match backend().as_str() {
        "mysql" => (
            "CREATE TRIGGER refuse_writes BEFORE INSERT ON messages FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'disk on fire'",
            "DROP TRIGGER refuse_writes",
        ),
        "postgres" => (
            "CREATE FUNCTION refuse_writes() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse_writes BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse_writes();",
            "DROP TRIGGER refuse_writes ON messages; DROP FUNCTION refuse_writes();",
        ),
        _ => (
            "CREATE TRIGGER refuse_writes BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;",
            "DROP TRIGGER refuse_writes;",
        ),
    }
}

fn env_url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("SHOPCHAT_TEST_BACKEND={} needs {var}", backend()))
}

/// `base` with its database name replaced by `name`.
fn with_database(base: &str, name: &str) -> String {
    let (without_query, query) = base
        .split_once('?')
        .map_or((base, None), |(u, q)| (u, Some(q)));
    let scheme_end = without_query.find("://").map_or(0, |i| i + 3);
    let root = match without_query[scheme_end..].find('/') {
        Some(i) => &without_query[..scheme_end + i],
        None => without_query,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

/// A database name no other test server of any running suite uses.
#[cfg(any(feature = "mysql", feature = "postgres"))]
fn throwaway_name() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "shopchat_t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// A fresh database for one test server, on the configured backend.
fn database_url(dir: &std::path::Path) -> String {
    match backend().as_str() {
        "sqlite" => format!("sqlite://{}/shopchat.db", dir.display()),
        #[cfg(feature = "mysql")]
        "mysql" => {
            use diesel::connection::SimpleConnection;
            use diesel::Connection;
            let name = throwaway_name();
            let base = env_url("SHOPCHAT_TEST_MYSQL_URL");
            let mut c = diesel::MysqlConnection::establish(&base)
                .expect("the MySQL server should accept connections");
            c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name} CHARACTER SET utf8mb4"
            ))
            .expect("a throwaway database should be creatable");
            with_database(&base, &name)
        }
        #[cfg(feature = "postgres")]
        "postgres" => {
            use diesel::connection::SimpleConnection;
            use diesel::Connection;
            let name = throwaway_name();
            let base = env_url("SHOPCHAT_TEST_POSTGRES_URL");
            let mut c = diesel::PgConnection::establish(&base)
                .expect("the PostgreSQL server should accept connections");
            // One statement each: PostgreSQL runs a batch as a transaction, which these refuse.
            c.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
                .expect("a stale database should be droppable");
            c.batch_execute(&format!("CREATE DATABASE {name}"))
                .expect("a throwaway database should be creatable");
            with_database(&base, &name)
        }
        other => panic!(
            "SHOPCHAT_TEST_BACKEND={other} is not sqlite, or this build lacks its cargo feature"
        ),
    }
}

/// How many running test servers use each throwaway database: the last one to stop
/// drops it, so a suite leaves no database behind (a crashed run leaves some, which
/// .ci/run clears before it starts).
static THROWAWAYS: std::sync::Mutex<Vec<(String, usize)>> = std::sync::Mutex::new(Vec::new());

fn is_throwaway(url: &str) -> bool {
    backend() != "sqlite" && url.contains(&format!("/shopchat_t{}_", std::process::id()))
}

fn hold_database(url: &str) {
    if !is_throwaway(url) {
        return;
    }
    let mut held = THROWAWAYS.lock().unwrap();
    match held.iter_mut().find(|(u, _)| u == url) {
        Some((_, n)) => *n += 1,
        None => held.push((url.to_string(), 1)),
    }
}

fn release_database(url: &str) {
    if !is_throwaway(url) {
        return;
    }
    let last = {
        let mut held = THROWAWAYS.lock().unwrap();
        let Some(i) = held.iter().position(|(u, _)| u == url) else {
            return;
        };
        held[i].1 -= 1;
        if held[i].1 > 0 {
            return;
        }
        held.remove(i);
        true
    };
    if last {
        drop_database(url);
    }
}

/// Drops the throwaway database `url` names (best effort).
#[allow(unused_variables)]
fn drop_database(url: &str) {
    let name = url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_string();
    match backend().as_str() {
        #[cfg(feature = "mysql")]
        "mysql" => {
            use diesel::connection::SimpleConnection;
            use diesel::Connection;
            if let Ok(mut c) =
                diesel::MysqlConnection::establish(&env_url("SHOPCHAT_TEST_MYSQL_URL"))
            {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"));
            }
        }
        #[cfg(feature = "postgres")]
        "postgres" => {
            use diesel::connection::SimpleConnection;
            use diesel::Connection;
            if let Ok(mut c) =
                diesel::PgConnection::establish(&env_url("SHOPCHAT_TEST_POSTGRES_URL"))
            {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
        _ => {}
    }
}

/// A config for tests: a fresh database (see `backend`), one worker, everything else default.
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut c = Config::default();
    c.server.port = 0;
    c.server.workers = 1;
    c.server.shutdown_timeout_secs = 5;
    c.database.url = database_url(dir);
    c.database.pool_size = 2;
    // Tests that are not about the rate limit send faster than a person types.
    c.limits.msgs_per_sec = 0;
    c.media.base_url = "http://media.test".into();
    c.media.upload_dir = dir.join("uploads").display().to_string();
    c
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with(|_| {})
    }

    /// Starts with the test config adjusted by `adjust`.
    pub fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir should be creatable"));
        let mut config = test_config(dir.path());
        let fresh = config.database.url.clone();
        adjust(&mut config);
        if config.database.url != fresh && is_throwaway(&fresh) {
            // The test chose another database (a cluster node sharing the first one's).
            drop_database(&fresh);
        }
        Self::start_in(dir, config)
    }

    fn start_in(dir: Arc<tempfile::TempDir>, config: Config) -> TestServer {
        let _ = env_logger::builder().is_test(true).try_init();
        hold_database(&config.database.url);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind should succeed");
        let addr = listener.local_addr().expect("bound socket has an address");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let cfg = config.clone();
        let thread = std::thread::spawn(move || {
            actix_rt::System::new()
                .block_on(shopchat::run(listener, cfg, async {
                    let _ = rx.await;
                }))
                .expect("server should run");
        });
        TestServer {
            addr,
            config,
            dir,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    /// Stops gracefully and waits for the server thread to end.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread should not panic");
        }
    }

    /// Stops this server and starts a new one on the same database and config.
    pub fn restart(mut self) -> TestServer {
        self.stop();
        let dir = self.dir.clone();
        let config = self.config.clone();
        // Held across the restart, so the database outlives the old server.
        hold_database(&config.database.url);
        drop(self);
        let restarted = Self::start_in(dir, config);
        release_database(&restarted.config.database.url);
        restarted
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("shopchat.db")
    }

    /// The value of a `/metrics` line with exactly this name and labels (0 when absent).
    pub async fn metric(&self, series: &str) -> f64 {
        let text = reqwest::get(self.http("/metrics"))
            .await
            .expect("/metrics should answer")
            .text()
            .await
            .expect("/metrics should have a body");
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
            .map_or(0.0, |v| v.parse().expect("a metric's value is a number"))
    }

    pub fn token(&self, uid: i64) -> String {
        Authenticator::new(&self.config.auth).mint(UserId(uid))
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self, uid: i64) -> String {
        format!("ws://{}/?token={}", self.addr, self.token(uid))
    }

    pub async fn connect(&self, uid: i64) -> Client {
        Client::connect(&self.ws_url(uid)).await
    }

    /// `PUT /admin/users/{uid}` with the admin token.
    pub async fn put_user(&self, uid: i64, body: Value) -> reqwest::Response {
        reqwest::Client::new()
            .put(self.http(&format!("/admin/users/{uid}")))
            .bearer_auth(&self.config.admin.token)
            .json(&body)
            .send()
            .await
            .expect("admin request should get an answer")
    }
}

impl TestServer {
    /// POST `path` with a JSON body and the original client's `authorizations: bear` header;
    /// asserts HTTP 200 (the user API always answers 200) and returns the JSON answer.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Value {
        let mut req = reqwest::Client::new().post(self.http(path)).json(&body);
        if let Some(t) = token {
            req = req.header("authorizations", format!("bear {t}"));
        }
        let resp = req.send().await.expect("request should get an answer");
        assert_eq!(resp.status(), 200, "POST {path}");
        resp.json().await.expect("answer is JSON")
    }

    /// `POST /user/upload` as user `uid`, `bytes` in multipart field `field`; the JSON answer.
    pub async fn upload(&self, uid: i64, field: &str, bytes: Vec<u8>) -> Value {
        let form = reqwest::multipart::Form::new().part(
            field.to_string(),
            reqwest::multipart::Part::bytes(bytes).file_name("x.png"),
        );
        reqwest::Client::new()
            .post(self.http("/user/upload"))
            .header("authorizations", format!("bear {}", self.token(uid)))
            .multipart(form)
            .send()
            .await
            .expect("upload should get an answer")
            .json()
            .await
            .expect("upload answers JSON")
    }

    /// POST as user `uid` (token minted for it).
    pub async fn post_as(&self, uid: i64, path: &str, body: Value) -> Value {
        self.post(path, Some(&self.token(uid)), body).await
    }
}

impl TestServer {
    /// An admin API call; returns (HTTP status, JSON body).
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .request(method, self.http(path))
            .bearer_auth(&self.config.admin.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .expect("admin request should get an answer");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Creates shop `shop` with agents `(uid, name)`, asserting each call succeeds.
    pub async fn shop_with_agents(&self, shop: i64, name: &str, agents: &[(i64, &str)]) {
        let (st, body) = self
            .admin(
                reqwest::Method::PUT,
                &format!("/admin/shops/{shop}"),
                Some(json!({"name": name, "logo": format!("logos/{shop}.png")})),
            )
            .await;
        assert_eq!(st, 200, "{body}");
        for (uid, agent) in agents {
            let (st, body) = self
                .admin(
                    reqwest::Method::PUT,
                    &format!("/admin/shops/{shop}/agents/{uid}"),
                    Some(json!({"name": agent})),
                )
                .await;
            assert_eq!(st, 200, "{body}");
        }
    }

    /// Connects agent `uid` and turns its online flag on over the WebSocket.
    pub async fn online_agent(&self, uid: i64) -> Client {
        let mut c = self.connect(uid).await;
        let r = c
            .request("service", "setOnline", json!({"online": true}))
            .await;
        assert_eq!(r["code"], 1, "agent {uid} going online: {r}");
        c
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
        release_database(&self.config.database.url);
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client that sorts what arrives into replies, pushes (code 200 chat
/// messages) and events (codes 202-205: conversation events, typing, receipts, recalls),
/// each read on its own: an event is never taken for a message.
pub struct Client {
    ws: Ws,
    frames: VecDeque<Value>,
    events: VecDeque<Value>,
}

/// A code 200 push: a chat message.
pub fn is_push(v: &Value) -> bool {
    v["code"].as_i64() == Some(200)
}

/// A code 202-205 push: an event.
pub fn is_event(v: &Value) -> bool {
    v["code"].as_i64().is_some_and(|c| c >= 202)
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket should connect");
        Client::from_stream(ws)
    }

    pub fn from_stream(ws: Ws) -> Client {
        Client {
            ws,
            frames: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(WsMessage::text(text))
            .await
            .expect("send should succeed");
    }

    pub async fn send_raw(&mut self, msg: WsMessage) {
        self.ws.send(msg).await.expect("send should succeed");
    }

    pub async fn send_json(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    /// Sends `frames` in one write to the socket, so that the server reads them together.
    pub async fn send_together(&mut self, frames: impl IntoIterator<Item = Value>) {
        for v in frames {
            self.ws
                .feed(WsMessage::text(v.to_string()))
                .await
                .expect("send should succeed");
        }
        self.ws.flush().await.expect("send should succeed");
    }

    /// The next frame off the socket (any kind), or None when it closed.
    pub async fn next_raw(&mut self) -> Option<WsMessage> {
        match tokio::time::timeout(WAIT, self.ws.next()).await {
            Ok(Some(Ok(m))) => Some(m),
            Ok(Some(Err(_))) | Ok(None) => None,
            Err(_) => panic!("no frame within {WAIT:?}"),
        }
    }

    /// The next reply or push off the socket; events are set aside for `event`.
    async fn read_json(&mut self) -> Value {
        loop {
            match self.next_raw().await {
                Some(WsMessage::Text(t)) => {
                    let v: Value = serde_json::from_str(&t).expect("server sends JSON text");
                    if is_event(&v) {
                        self.events.push_back(v);
                        continue;
                    }
                    return v;
                }
                Some(WsMessage::Ping(_)) | Some(WsMessage::Pong(_)) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    async fn next_where(&mut self, want: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.frames.iter().position(&want) {
            return self.frames.remove(i).expect("index is in range");
        }
        loop {
            let v = self.read_json().await;
            if want(&v) {
                return v;
            }
            self.frames.push_back(v);
        }
    }

    /// The next reply to a request (pushes are kept for `push`).
    pub async fn reply(&mut self) -> Value {
        self.next_where(|v| !is_push(v)).await
    }

    /// The next push.
    pub async fn push(&mut self) -> Value {
        self.next_where(is_push).await
    }

    pub async fn request(&mut self, class: &str, action: &str, content: Value) -> Value {
        self.send_json(json!({"class": class, "action": action, "content": content}))
            .await;
        self.reply().await
    }

    /// Sends a 1:1 text message and returns the reply.
    pub async fn send_direct(&mut self, to: i64, text: &str) -> Value {
        self.request(
            "chat",
            "sendMsg",
            json!({"chat_type": 1, "msg_type": 1, "msg": text, "to_uid": to, "chat_id": null}),
        )
        .await
    }

    pub async fn sync(&mut self, since: i64, limit: i64) -> Value {
        self.request(
            "chat",
            "sync",
            json!({"since_msg_id": since, "limit": limit}),
        )
        .await
    }

    /// The next push if one arrives within `d`.
    pub async fn maybe_push(&mut self, d: Duration) -> Option<Value> {
        self.maybe_where(d, is_push).await
    }

    /// The next frame that `want` picks if one arrives within `d`; whatever else arrives
    /// meanwhile is kept for the other readers.
    async fn maybe_where(&mut self, d: Duration, want: fn(&Value) -> bool) -> Option<Value> {
        if let Some(i) = self.frames.iter().position(want) {
            return self.frames.remove(i);
        }
        if let Some(i) = self.events.iter().position(want) {
            return self.events.remove(i);
        }
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.ws.next()).await {
                Ok(Some(Ok(WsMessage::Text(t)))) => {
                    let v: Value = serde_json::from_str(&t).expect("server sends JSON text");
                    if want(&v) {
                        return Some(v);
                    }
                    match is_event(&v) {
                        true => self.events.push_back(v),
                        false => self.frames.push_back(v),
                    }
                }
                Ok(Some(Ok(_))) => continue,
                Ok(_) | Err(_) => return None,
            }
        }
    }

    /// The next event (code 202-205) if one arrives within `d`.
    pub async fn maybe_event(&mut self, d: Duration) -> Option<Value> {
        self.maybe_where(d, is_event).await
    }

    /// The next event (code 202-205).
    pub async fn event(&mut self) -> Value {
        self.maybe_event(WAIT)
            .await
            .unwrap_or_else(|| panic!("no event within {WAIT:?}"))
    }

    /// The next event named `name` (code 202 `event` field); other events before it are dropped.
    pub async fn event_named(&mut self, name: &str) -> Value {
        loop {
            let e = self.event().await;
            if e["result"]["event"] == name {
                return e;
            }
        }
    }

    /// Every event that arrives until the socket has been quiet for `quiet`.
    pub async fn drain_events(&mut self, quiet: Duration) -> Vec<Value> {
        let mut got = Vec::new();
        while let Some(e) = self.maybe_event(quiet).await {
            got.push(e);
        }
        got
    }

    /// Every push that arrives until the socket has been quiet for `quiet`.
    pub async fn drain_pushes(&mut self, quiet: Duration) -> Vec<Value> {
        let mut got = Vec::new();
        while let Some(p) = self.maybe_push(quiet).await {
            got.push(p);
        }
        got
    }

    /// Asserts no reply or push arrives for `d` (beyond what is already buffered);
    /// events are set aside for `event`.
    pub async fn expect_silence(&mut self, d: Duration) {
        assert!(
            self.frames.is_empty(),
            "unexpected buffered frames: {:?}",
            self.frames
        );
        if let Some(v) = self.maybe_where(d, |v| !is_event(v)).await {
            panic!("expected silence, got {v}");
        }
    }

    /// Waits for the server to close the socket; returns the close code.
    pub async fn closed(&mut self) -> Option<CloseCode> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await {
                Ok(Some(Ok(WsMessage::Close(frame)))) => return frame.map(|f| f.code),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(tungstenite::Error::ConnectionClosed))) | Ok(None) => return None,
                Ok(Some(Err(e))) => panic!("socket error while waiting for close: {e}"),
                Err(_) => panic!("socket not closed within {WAIT:?}"),
            }
        }
    }
}

/// The real `shopchat` binary as a child process in its own folder, configured by a
/// copy of config.dev.toml plus `SHOPCHAT__…` overrides, on an ephemeral port.
pub struct ChildServer {
    pub child: std::process::Child,
    pub addr: String,
    pub dir: PathBuf,
    /// The secret its tokens are signed with (the dev config's).
    pub auth: Authenticator,
    /// Every line it has logged so far.
    pub log: Arc<std::sync::Mutex<Vec<String>>>,
}

impl ChildServer {
    /// Starts the binary in `dir` (created if needed) with these environment overrides.
    pub fn spawn(dir: &std::path::Path, env: &[(&str, &str)]) -> ChildServer {
        // Only the root package builds the binary; the bench's tests never spawn it.
        let Some(program) = option_env!("CARGO_BIN_EXE_shopchat") else {
            panic!("the shopchat binary is built only for the root package's tests")
        };
        let program = std::path::Path::new(program);
        Self::spawn_program(program, &[], dir, env)
    }

    /// Starts `program args` in `dir` with a copy of config.dev.toml there and these
    /// environment overrides; it must log "listening on ADDR" to stderr.
    pub fn spawn_program(
        program: &std::path::Path,
        args: &[&str],
        dir: &std::path::Path,
        env: &[(&str, &str)],
    ) -> ChildServer {
        use std::io::{BufRead, BufReader};
        std::fs::create_dir_all(dir).expect("server folder should be creatable");
        let dev = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.dev.toml"),
        )
        .expect("config.dev.toml is in the repo");
        std::fs::write(dir.join("config.dev.toml"), dev).expect("config should be writable");
        let mut cmd = std::process::Command::new(program);
        cmd.args(args)
            .current_dir(dir)
            .env("SHOPCHAT__SERVER__PORT", "0")
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped());
        for (k, v) in env {
            // The "listening on" line is what tells us the port: keep it whatever the level.
            let v = if *k == "RUST_LOG" {
                format!("{v},shopchat::app=info")
            } else {
                v.to_string()
            };
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("server binary should start");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = log.clone();
        // Drain the log for the child's whole life, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            let echo = std::env::var("SHOPCHAT_TEST_ECHO").is_ok_and(|v| v == "1");
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if echo {
                    eprintln!("[server] {line}");
                }
                kept.lock().unwrap().push(line.clone());
                if let Some(rest) = line.split("listening on ").nth(1) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(
                            rest.split_whitespace()
                                .next()
                                .unwrap_or_default()
                                .to_string(),
                        );
                    }
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server should say where it listens within 30 s");
        ChildServer {
            child,
            addr,
            dir: dir.to_path_buf(),
            auth: Authenticator::new(&shopchat::config::AuthConfig::default()),
            log,
        }
    }

    /// How many logged lines so far contain `needle`.
    pub fn logged(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits until some logged line contains `needle`.
    pub async fn wait_logged(&self, needle: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.logged(needle) == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the server never logged {needle:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn ws_url(&self, uid: i64) -> String {
        format!("ws://{}/?token={}", self.addr, self.auth.mint(UserId(uid)))
    }

    pub async fn connect(&self, uid: i64) -> Client {
        Client::connect(&self.ws_url(uid)).await
    }

    /// Resident memory in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        shopchat::metrics::rss_kib(self.child.id()).expect("the process is alive and reports VmRSS")
    }

    pub fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill should run")
            .success();
        assert!(ok, "kill {sig} failed");
    }

    /// Waits for the process to exit (at most `limit`).
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("child can be waited on") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "server did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A consumer's customer-service message to `shop`, asserted to be stored; its ack.
pub async fn ask_shop(c: &mut Client, shop: i64, text: &str) -> Value {
    let r = ask_shop_raw(c, shop, text).await;
    assert_eq!(r["code"], 1, "consumer send: {r}");
    r
}

/// A consumer's message to `shop`, and the reply whatever it is.
pub async fn ask_shop_raw(c: &mut Client, shop: i64, text: &str) -> Value {
    c.request("chat", "sendMsg", json!({"chat_type": 4, "msg_type": 1, "msg": text, "to_uid": shop, "shop_id": shop, "role_type": "user", "chat_id": null}))
        .await
}

/// An agent's answer to `consumer`, as its shop; the reply, whatever it is.
pub async fn answer(c: &mut Client, consumer: i64, text: &str) -> Value {
    c.request("chat", "sendMsg", json!({"chat_type": 4, "msg_type": 1, "msg": text, "to_uid": consumer, "role_type": "service"}))
        .await
}
