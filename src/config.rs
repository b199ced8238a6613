//! The config contract of DESIGN.md: a TOML file chosen by `--config` or
//! `SHOPCHAT_ENV`, every key overridable by `SHOPCHAT__SECTION__KEY`, unknown keys
//! warned about, and secrets refused when they are empty (or, for produce, the
//! development defaults).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The development secrets shipped in `config.dev.toml`; a produce setup must replace them.
pub const DEV_JWT_SECRET: &str = "shopchat-dev-secret-change-me";
pub const DEV_ADMIN_TOKEN: &str = "shopchat-dev-admin-token";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} not found")]
    Missing(PathBuf),
    #[error("config: {0}")]
    Load(#[from] config::ConfigError),
    #[error("config: {0}")]
    Invalid(String),
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub admin: AdminConfig,
    pub redis: RedisConfig,
    pub media: MediaConfig,
    pub limits: LimitsConfig,
    pub system: SystemConfig,
    pub service: ServiceConfig,
    pub webhooks: WebhooksConfig,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    pub client_timeout_secs: u64,
    pub shutdown_timeout_secs: u64,
    /// Peers (load balancers) whose `X-Forwarded-For` / `X-Forwarded-Host` /
    /// `X-Forwarded-Proto` are believed; from anyone else those headers are ignored.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// How long a request body may take to arrive, whole (WebSocket upgrades aside).
    pub body_timeout_secs: u64,
    /// `host:port` to serve `/metrics` on instead of the public port; empty: the public port.
    pub metrics_addr: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct DatabaseConfig {
    /// Without its password: that goes in `password` (from the environment).
    pub url: String,
    /// Put into `url` at start-up; empty: none (or the one `url` holds).
    pub password: String,
    /// Connections (and executor threads) for writes and the small reads beside them.
    pub pool_size: u32,
    /// Connections (and executor threads) for reads of history, apart from the writes.
    pub read_pool_size: u32,
    /// SQLite only: when a committed batch counts as stored (and its acks go out).
    pub sqlite_synchronous: SqliteSync,
}

/// SQLite's `synchronous` setting for its write-ahead log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum SqliteSync {
    /// Each commit is on the disk (fsync of the log) before it returns: an acked message
    /// survives a crash of the process, of the operating system and a power cut.
    #[default]
    Full,
    /// Commits reach the log without an fsync (the log is synced at checkpoints): an
    /// acked message survives a crash of the process, but the last commits before a crash
    /// of the operating system or a power cut may be lost.
    Normal,
}

impl TryFrom<String> for SqliteSync {
    type Error = String;

    fn try_from(value: String) -> Result<SqliteSync, String> {
        match value.to_ascii_lowercase().as_str() {
            "full" => Ok(SqliteSync::Full),
            "normal" => Ok(SqliteSync::Normal),
            _ => Err(format!(
                "database.sqlite_synchronous is {value:?}: it must be \"full\" or \"normal\""
            )),
        }
    }
}

impl SqliteSync {
    /// The PRAGMA's value.
    pub fn pragma(self) -> &'static str {
        match self {
            SqliteSync::Full => "FULL",
            SqliteSync::Normal => "NORMAL",
        }
    }
}

impl DatabaseConfig {
    /// The URL to connect with, `password` included.
    pub fn url_with_password(&self) -> Result<String, ConfigError> {
        with_password(&self.url, &self.password, "database")
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    pub jwt_secret: String,
    /// Empty: any issuer (or none) is accepted.
    pub jwt_issuer: String,
    /// Dotted path of the user id inside the token's claims.
    pub uid_claim: String,
    pub token_ttl_secs: u64,
    /// Accounts made by `/login/register` get ids from here up to [`MAX_SAFE_ID`]; the
    /// platform's tokens for ids in that range are refused (PROTOCOL.md §15).
    pub register_id_base: i64,
}

/// The largest id a JavaScript client holds exactly (2^53 - 1).
pub const MAX_SAFE_ID: i64 = (1 << 53) - 1;

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct AdminConfig {
    pub token: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct RedisConfig {
    /// Empty: single node. Without its password: that goes in `password`.
    pub url: String,
    /// Put into `url` at start-up; empty: none (or the one `url` holds).
    pub password: String,
    pub key_prefix: String,
    /// How long a node's presence entries outlive its last refresh (it refreshes them
    /// every third of this): the most a dead node's users can look online.
    pub presence_ttl_secs: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct MediaConfig {
    /// Prefixed to avatars and logos stored as relative paths, and to upload URLs. Empty
    /// (the default): uploads' URLs are built from the request (PROTOCOL.md §15) and
    /// relative avatars are sent as they are stored.
    pub base_url: String,
    pub upload_dir: String,
    pub max_upload_bytes: usize,
    /// Hosts (`host` or `host:port`) that `msg_type` 2 images may be on, besides this
    /// server's own uploads; empty: any URL (the original's behaviour). Set it to stop
    /// tracking pixels.
    pub allowed_hosts: Vec<String>,
    /// Uploads one user may make per minute; 0 = unlimited.
    pub max_files_per_min: u32,
    /// Bytes one user may upload per hour; 0 = unlimited.
    pub max_bytes_per_hour: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    pub max_frame_bytes: usize,
    pub max_msg_chars: usize,
    /// Requests a connection may make per second, after a burst of `burst`; 0 = unlimited.
    pub msgs_per_sec: u32,
    pub burst: u32,
    /// Live connections per user; the oldest is closed past this. 0 = unlimited.
    pub max_conns_per_user: usize,
    /// `/login` and `/login/register` calls per client address per minute; 0 = unlimited.
    pub logins_per_min: u32,
    /// Wrong passwords per (client address, username) before that pair is refused for
    /// `login_lockout_secs`; 0 = unlimited. Other addresses are not affected.
    pub login_failures: u32,
    pub login_lockout_secs: u64,
    /// Bytes of replies and pushes that may wait for one connection's socket (with the
    /// largest replies its requests in flight may bring); a client past it is not
    /// reading and is disconnected (1008).
    pub max_pending_bytes: usize,
    /// How long after sending a user may recall a message (PROTOCOL.md §11).
    pub recall_secs: u64,
}

/// Customer service (PROTOCOL.md §10).
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct ServiceConfig {
    /// How often open sessions are checked against their shop's `auto_resolve_mins`.
    pub sweep_secs: u64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig { sweep_secs: 30 }
    }
}

/// Webhooks to the platform (PROTOCOL.md §13).
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct WebhooksConfig {
    /// Where events are `POST`ed; empty: webhooks are off and no event is stored.
    pub url: String,
    /// The HMAC-SHA256 key of `X-Shopchat-Signature`; required when `url` is set (in
    /// production from `SHOPCHAT__WEBHOOKS__SECRET`).
    pub secret: String,
    /// The event types to send; empty: all.
    pub events: Vec<String>,
    pub timeout_ms: u64,
    /// The first retry's delay; it doubles per attempt, capped at 10 minutes, with jitter.
    pub retry_base_ms: u64,
    /// Attempts before an event is dead (listed for the admin API to retry).
    pub max_attempts: u32,
    /// How long delivered events are kept.
    pub retention_hours: u64,
    /// `message.offline` events for one (receiver, chat) within this many seconds are
    /// sent as one, with `count`, when the window closes; 0: each at once.
    pub offline_coalesce_secs: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            url: String::new(),
            secret: String::new(),
            events: Vec::new(),
            timeout_ms: 5000,
            retry_base_ms: 1000,
            max_attempts: 30,
            retention_hours: 72,
            offline_coalesce_secs: 60,
        }
    }
}

impl WebhooksConfig {
    pub fn is_on(&self) -> bool {
        !self.url.is_empty()
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct SystemConfig {
    pub nickname: String,
    pub avatar: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 9504,
            workers: 0,
            client_timeout_secs: 120,
            shutdown_timeout_secs: 10,
            trusted_proxies: Vec::new(),
            body_timeout_secs: 30,
            metrics_addr: String::new(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://data/shopchat.db".into(),
            password: String::new(),
            pool_size: 4,
            read_pool_size: 2,
            sqlite_synchronous: SqliteSync::Full,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt_secret: DEV_JWT_SECRET.into(),
            jwt_issuer: String::new(),
            uid_claim: "data.id".into(),
            token_ttl_secs: 7 * 24 * 3600,
            register_id_base: 1_000_000_000_000,
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            token: DEV_ADMIN_TOKEN.into(),
        }
    }
}

impl RedisConfig {
    /// The URL to connect with, `password` included.
    pub fn url_with_password(&self) -> Result<String, ConfigError> {
        with_password(&self.url, &self.password, "redis")
    }
}

/// What a password must escape in a URL: all but RFC 3986's unreserved characters.
const USERINFO: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `url` with `password` (percent-encoded) as the password of its user, so that a
/// config file can hold the URL while the secret comes from the environment.
fn with_password(url: &str, password: &str, section: &str) -> Result<String, ConfigError> {
    if password.is_empty() {
        return Ok(url.to_string());
    }
    let invalid = |m: &str| Err(ConfigError::Invalid(format!("{section}.url {m}")));
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return invalid("has no scheme");
    };
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    let authority = &url[start..end];
    let (user, host) = match authority.rsplit_once('@') {
        Some((userinfo, _)) if userinfo.contains(':') => {
            return invalid(&format!(
                "holds a password and {section}.password is set too; keep one"
            ))
        }
        Some((user, host)) => (user, host),
        None => ("", authority),
    };
    let encoded = percent_encoding::utf8_percent_encode(password, USERINFO);
    Ok(format!(
        "{}{user}:{encoded}@{host}{}",
        &url[..start],
        &url[end..]
    ))
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: String::new(),
            password: String::new(),
            key_prefix: "shopchat:".into(),
            presence_ttl_secs: 30,
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            base_url: String::new(),
            upload_dir: "data/uploads".into(),
            max_upload_bytes: 5 * 1024 * 1024,
            allowed_hosts: Vec::new(),
            max_files_per_min: 20,
            max_bytes_per_hour: 200 << 20,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_frame_bytes: 64 * 1024,
            max_msg_chars: 4000,
            msgs_per_sec: 20,
            burst: 40,
            max_conns_per_user: 16,
            logins_per_min: 30,
            login_failures: 5,
            login_lockout_secs: 900,
            max_pending_bytes: 4 << 20,
            recall_secs: 120,
        }
    }
}

impl Default for SystemConfig {
    fn default() -> Self {
        SystemConfig {
            nickname: "系统通知".into(),
            avatar: String::new(),
        }
    }
}

/// Which file the server reads when `--config` is not given.
pub fn default_path() -> PathBuf {
    if is_produce_env() {
        PathBuf::from("config.produce.toml")
    } else {
        PathBuf::from("config.dev.toml")
    }
}

fn is_produce_env() -> bool {
    std::env::var("SHOPCHAT_ENV").is_ok_and(|v| v.eq_ignore_ascii_case("produce"))
}

/// A loaded config and the keys it did not recognise (to be logged as warnings).
pub struct Loaded {
    pub config: Config,
    pub unknown_keys: Vec<String>,
}

impl Config {
    /// Reads `path` (or the default file), applies `SHOPCHAT__SECTION__KEY` overrides and validates.
    pub fn load(path: Option<&Path>) -> Result<Loaded, ConfigError> {
        let path = path.map(Path::to_path_buf).unwrap_or_else(default_path);
        if !path.is_file() {
            return Err(ConfigError::Missing(path));
        }
        let produce = is_produce_env()
            || path.file_name().and_then(|n| n.to_str()) == Some("config.produce.toml");
        let raw = config::Config::builder()
            .add_source(config::File::from(path.as_path()).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("SHOPCHAT")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("server.trusted_proxies")
                    .with_list_parse_key("media.allowed_hosts"),
            )
            .build()?;
        let mut unknown_keys = Vec::new();
        let config: Config =
            serde_ignored::deserialize(raw, |key| unknown_keys.push(key.to_string()))
                .map_err(ConfigError::Load)?;
        config.validate(produce)?;
        Ok(Loaded {
            config,
            unknown_keys,
        })
    }

    /// Checks what serde cannot: non-empty secrets, sane limits, a known database scheme.
    pub fn validate(&self, produce: bool) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.auth.jwt_secret.is_empty() {
            return invalid("auth.jwt_secret is empty (set SHOPCHAT__AUTH__JWT_SECRET)");
        }
        if self.admin.token.is_empty() {
            return invalid("admin.token is empty (set SHOPCHAT__ADMIN__TOKEN)");
        }
        if produce && self.auth.jwt_secret == DEV_JWT_SECRET {
            return invalid(
                "auth.jwt_secret is the development default; set SHOPCHAT__AUTH__JWT_SECRET",
            );
        }
        if produce && self.admin.token == DEV_ADMIN_TOKEN {
            return invalid("admin.token is the development default; set SHOPCHAT__ADMIN__TOKEN");
        }
        if self.auth.uid_claim.is_empty() || self.auth.uid_claim.split('.').any(str::is_empty) {
            return invalid("auth.uid_claim must be a dotted claim path such as data.id");
        }
        if !(1..=MAX_SAFE_ID).contains(&self.auth.register_id_base) {
            return invalid("auth.register_id_base must be from 1 to 2^53 - 1");
        }
        if !["sqlite://", "mysql://", "postgres://", "postgresql://"]
            .iter()
            .any(|s| self.database.url.starts_with(s))
        {
            return invalid("database.url must start with sqlite://, mysql:// or postgres://");
        }
        self.database.url_with_password()?;
        self.redis.url_with_password()?;
        if self.database.pool_size == 0 || self.database.read_pool_size == 0 {
            return invalid("database.pool_size and database.read_pool_size must be at least 1");
        }
        if self.limits.max_pending_bytes < 2 * crate::protocol::SYNC_MAX_BYTES {
            return invalid(
                "limits.max_pending_bytes must be at least 2 MiB (two pages of chat.sync)",
            );
        }
        if self.limits.max_frame_bytes < 256 {
            return invalid("limits.max_frame_bytes must be at least 256");
        }
        if self.limits.max_msg_chars == 0 {
            return invalid("limits.max_msg_chars must be at least 1");
        }
        if !self.redis.url.is_empty()
            && !["redis://", "rediss://", "redis+unix://", "unix://"]
                .iter()
                .any(|s| self.redis.url.starts_with(s))
        {
            return invalid("redis.url must be empty or start with redis://");
        }
        if self.redis.presence_ttl_secs < 3 {
            return invalid("redis.presence_ttl_secs must be at least 3");
        }
        if !self.server.metrics_addr.is_empty()
            && self
                .server
                .metrics_addr
                .parse::<std::net::SocketAddr>()
                .is_err()
        {
            return invalid(
                "server.metrics_addr must be empty or an address such as 127.0.0.1:9505",
            );
        }
        if self.server.body_timeout_secs == 0 {
            return invalid("server.body_timeout_secs must be at least 1");
        }
        if self.server.client_timeout_secs == 0 {
            return invalid("server.client_timeout_secs must be at least 1");
        }
        if self.service.sweep_secs == 0 {
            return invalid("service.sweep_secs must be at least 1");
        }
        let hooks = &self.webhooks;
        if hooks.is_on() {
            if !hooks.url.starts_with("http://") && !hooks.url.starts_with("https://") {
                return invalid("webhooks.url must be empty or start with http:// or https://");
            }
            if hooks.secret.is_empty() {
                return invalid("webhooks.secret is empty (set SHOPCHAT__WEBHOOKS__SECRET)");
            }
        }
        if let Some(e) = hooks
            .events
            .iter()
            .find(|e| !crate::protocol::webhook::EVENT_TYPES.contains(&e.as_str()))
        {
            return invalid(&format!("webhooks.events: unknown event type {e}"));
        }
        if hooks.timeout_ms == 0 || hooks.retry_base_ms == 0 || hooks.max_attempts == 0 {
            return invalid(
                "webhooks.timeout_ms, retry_base_ms and max_attempts must be at least 1",
            );
        }
        Ok(())
    }
}

/// The URL without its password, for logs.
pub fn redact(url: &str) -> String {
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
    use super::*;

    #[test]
    fn defaults_are_valid_for_dev_but_not_produce() {
        let c = Config::default();
        assert!(c.validate(false).is_ok());
        let err = c.validate(true).unwrap_err().to_string();
        assert!(err.contains("auth.jwt_secret"), "{err}");
    }

    #[test]
    fn sqlite_synchronous_is_full_or_normal() {
        let parse = |v: &str| {
            config::Config::builder()
                .add_source(config::File::from_str(
                    &format!("[database]\nsqlite_synchronous = \"{v}\""),
                    config::FileFormat::Toml,
                ))
                .build()
                .and_then(|c| c.try_deserialize::<Config>())
                .map(|c| c.database.sqlite_synchronous)
        };
        assert_eq!(parse("full").unwrap(), SqliteSync::Full);
        assert_eq!(parse("normal").unwrap(), SqliteSync::Normal);
        let err = parse("off").unwrap_err().to_string();
        assert!(err.contains("full") && err.contains("normal"), "{err}");
        assert_eq!(
            Config::default().database.sqlite_synchronous,
            SqliteSync::Full
        );
    }

    #[test]
    fn empty_secret_is_refused_everywhere() {
        let mut c = Config::default();
        c.auth.jwt_secret.clear();
        assert!(c.validate(false).is_err());
    }

    #[test]
    fn passwords_from_the_environment_go_into_the_urls() {
        let mut c = Config::default();
        c.database.url = "mysql://shopchat@db:3306/shopchat".into();
        c.database.password = "p@ss:w/rd".into();
        assert_eq!(
            c.database.url_with_password().unwrap(),
            "mysql://shopchat:p%40ss%3Aw%2Frd@db:3306/shopchat"
        );
        c.redis.url = "redis://10.0.0.5:6379/0".into();
        c.redis.password = "s3cret".into();
        assert_eq!(
            c.redis.url_with_password().unwrap(),
            "redis://:s3cret@10.0.0.5:6379/0"
        );
        c.redis.password.clear();
        assert_eq!(
            c.redis.url_with_password().unwrap(),
            "redis://10.0.0.5:6379/0"
        );
        c.database.url = "mysql://u:inline@db/x".into();
        let err = c.database.url_with_password().unwrap_err().to_string();
        assert!(err.contains("keep one"), "{err}");
    }

    #[test]
    fn shipped_produce_config_is_mysql_and_redis_with_no_secret_in_it() {
        let text = include_str!("../config.produce.toml");
        let mut c: Config = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .expect("config.produce.toml parses");
        assert!(c.database.url.starts_with("mysql://"), "{}", c.database.url);
        assert!(c.redis.url.starts_with("redis://"), "{}", c.redis.url);
        for secret in [
            &c.database.password,
            &c.redis.password,
            &c.auth.jwt_secret,
            &c.admin.token,
        ] {
            assert!(
                secret.is_empty(),
                "a secret in config.produce.toml: {secret}"
            );
        }
        assert!(
            c.validate(true).is_err(),
            "starts only once the environment gives the secrets"
        );
        // What the environment supplies on a node.
        c.auth.jwt_secret = "platform-secret".into();
        c.admin.token = "admin-token".into();
        c.database.password = "db-pw".into();
        c.validate(true).expect("valid once the secrets are set");
        assert!(c.database.url_with_password().unwrap().contains(":db-pw@"));
    }

    #[test]
    fn unknown_scheme_is_refused() {
        let mut c = Config::default();
        c.database.url = "redis://x".into();
        assert!(c
            .validate(false)
            .unwrap_err()
            .to_string()
            .contains("database.url"));
    }

    #[test]
    fn passwords_are_not_logged() {
        assert_eq!(redact("mysql://root:pw@h/db"), "mysql://root:***@h/db");
        assert_eq!(redact("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
