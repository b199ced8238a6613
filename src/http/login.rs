//! `/login` and `/login/register` with the original's rules and messages (PROTOCOL.md §8).
//! Passwords are stored as argon2 hashes. A hash costs about 19 MiB and tens of
//! milliseconds, so both paths are rate-limited per client address, wrong passwords are
//! counted per (address, username), and only as many hashes run at once as there are cores.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use regex::Regex;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::{decode, ok_with, state};
use super::client_ip;
use super::error::HttpError;
use super::limit::{within, KeyedLimit};
use crate::chats::ask;
use crate::config::Config;
use crate::db::accounts::Registered;
use crate::db::{CreateAccount, FindLogin};
use crate::error::ChatError;

/// OWASP's minimum for argon2id (Password Storage Cheat Sheet): 19 MiB, 2 passes, 1 lane.
const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
const ARGON2_PASSES: u32 = 2;
const ARGON2_LANES: u32 = 1;

/// How long a login waits for a free hashing slot before it is told to slow down.
const HASH_WAIT: Duration = Duration::from_secs(5);

/// Address-and-username pairs tracked for wrong passwords; past this, expired ones are
/// dropped, and if none has expired the oldest goes.
const MAX_TRACKED_PAIRS: usize = 100_000;

fn argon2() -> Argon2<'static> {
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, ARGON2_LANES, None)
        .expect("the OWASP argon2 parameters should be valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The cost caps of the login paths, shared by every worker.
pub struct LoginGuard {
    per_addr: Option<KeyedLimit<IpAddr>>,
    failures: Mutex<HashMap<(IpAddr, String), (u32, Instant)>>,
    max_failures: u32,
    lockout: Duration,
    hashing: tokio::sync::Semaphore,
}

impl LoginGuard {
    pub fn new(config: &Config) -> LoginGuard {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let limits = &config.limits;
        LoginGuard {
            per_addr: KeyedLimit::new(limits.logins_per_min.into(), Duration::from_secs(60)),
            failures: Mutex::new(HashMap::new()),
            max_failures: limits.login_failures,
            lockout: Duration::from_secs(limits.login_lockout_secs),
            hashing: tokio::sync::Semaphore::new(cores),
        }
    }

    /// One call of `/login` or `/login/register` from `addr`.
    fn admit(&self, addr: IpAddr) -> Result<(), HttpError> {
        if within(&self.per_addr, &addr, 1) {
            Ok(())
        } else {
            Err(HttpError::Chat(ChatError::RateLimited))
        }
    }

    fn locked(&self, addr: IpAddr, username: &str) -> bool {
        if self.max_failures == 0 {
            return false;
        }
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures
            .get(&(addr, username.to_string()))
            .is_some_and(|(n, since)| *n >= self.max_failures && since.elapsed() < self.lockout)
    }

    fn failed(&self, addr: IpAddr, username: &str) {
        if self.max_failures == 0 {
            return;
        }
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_TRACKED_PAIRS {
            failures.retain(|_, (_, since)| since.elapsed() < self.lockout);
            if failures.len() >= MAX_TRACKED_PAIRS {
                if let Some(oldest) = failures
                    .iter()
                    .min_by_key(|(_, (_, since))| *since)
                    .map(|(k, _)| k.clone())
                {
                    failures.remove(&oldest);
                }
            }
        }
        let entry = failures
            .entry((addr, username.to_string()))
            .or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.lockout {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    fn succeeded(&self, addr: IpAddr, username: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(&(addr, username.to_string()));
    }

    /// Runs `work` (a hash) on the blocking pool once a hashing slot is free.
    async fn hash<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HttpError> {
        let permit = tokio::time::timeout(HASH_WAIT, self.hashing.acquire())
            .await
            .map_err(|_| HttpError::Chat(ChatError::RateLimited))?
            .map_err(|_| HttpError::Chat(ChatError::ShuttingDown))?;
        let out = web::block(work)
            .await
            .map_err(|_| ChatError::StorageUnavailable)?;
        drop(permit);
        Ok(out)
    }
}

static USERNAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-zA-Z][a-zA-Z0-9_]{4,15}$").expect("username pattern should compile")
});
// The original's `\w` was PCRE's ASCII word class.
static PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-zA-Z][a-zA-Z0-9_]{5,17}$").expect("password pattern should compile")
});

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::post().to(login))
        .route("/login/register", web::post().to(register));
}

#[derive(Deserialize)]
struct Credentials {
    #[serde(default)]
    username: Value,
    #[serde(default)]
    password: Value,
}

/// A field as text: numbers are taken as typed, anything else as empty.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

async fn login(req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, HttpError> {
    let c: Credentials = decode(&req, &body)?;
    let (username, password) = (text(&c.username), text(&c.password));
    if username.is_empty() {
        return Err(HttpError::Text("用户名不得为空"));
    }
    if !USERNAME.is_match(&username) {
        return Err(HttpError::Text("用户名错误"));
    }
    if password.is_empty() {
        return Err(HttpError::Text("密码不得为空"));
    }
    if !PASSWORD.is_match(&password) {
        return Err(HttpError::Text("密码格式错误"));
    }
    let st = state(&req);
    let addr = client_ip(&req, &st.config.server.trusted_proxies);
    st.login.admit(addr)?;
    if st.login.locked(addr, &username) {
        return Err(HttpError::Chat(ChatError::RateLimited));
    }
    let Some((uid, hash)) = ask(st.db.send(FindLogin {
        username: username.clone(),
    }))
    .await?
    else {
        return Err(HttpError::Text("账户不存在"));
    };
    let hash = hash.ok_or(HttpError::Text("密码错误"))?;
    let matches = st
        .login
        .hash(move || {
            PasswordHash::new(&hash)
                .is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
        })
        .await?;
    if !matches {
        st.login.failed(addr, &username);
        return Err(HttpError::Text("密码错误"));
    }
    st.login.succeeded(addr, &username);
    Ok(ok_with(
        Some("登录成功"),
        json!({"token": st.auth.mint(uid)}),
    ))
}

async fn register(req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, HttpError> {
    let c: Credentials = decode(&req, &body)?;
    let (username, password) = (text(&c.username), text(&c.password));
    if !USERNAME.is_match(&username) {
        return Err(HttpError::Text(
            "请输入5~16位以字母开头的数字、字母或下划线的用户名",
        ));
    }
    if !PASSWORD.is_match(&password) {
        return Err(HttpError::Text("请输入6~18位数字、字母或下划线的组合密码"));
    }
    let st = state(&req);
    st.login
        .admit(client_ip(&req, &st.config.server.trusted_proxies))?;
    let password_hash = st
        .login
        .hash(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
        })
        .await?
        .map_err(|e| {
            log::error!("register: hashing failed: {e}");
            ChatError::StorageUnavailable
        })?;
    let uid = match ask(st.db.send(CreateAccount {
        username,
        password_hash,
        base: st.config.auth.register_id_base,
    }))
    .await?
    {
        Registered::Created(uid) => uid,
        Registered::NameTaken => return Err(HttpError::Text("当前用户名已存在")),
        Registered::IdsExhausted => {
            log::error!("register: every id from auth.register_id_base to 2^53 - 1 is taken");
            return Err(HttpError::Chat(ChatError::RegistrationClosed));
        }
    };
    Ok(ok_with(
        Some("注册成功"),
        json!({"token": st.auth.mint(uid)}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_meet_the_owasp_minimum_for_argon2id() {
        let a = argon2();
        let p = a.params();
        assert!(p.m_cost() >= 19 * 1024 && p.t_cost() >= 2 && p.p_cost() >= 1);
        let salt = SaltString::generate(&mut OsRng);
        let hash = a.hash_password(b"secret1", &salt).unwrap().to_string();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
    }

    #[test]
    fn wrong_passwords_lock_only_that_address_and_username() {
        let mut config = Config::default();
        config.limits.login_failures = 3;
        let guard = LoginGuard::new(&config);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..3 {
            assert!(!guard.locked(a, "bob"));
            guard.failed(a, "bob");
        }
        assert!(guard.locked(a, "bob"));
        assert!(
            !guard.locked(b, "bob"),
            "bob from elsewhere is not locked out"
        );
        assert!(!guard.locked(a, "carol"));
        guard.succeeded(a, "bob");
        assert!(!guard.locked(a, "bob"));
    }

    #[test]
    fn the_original_patterns() {
        for ok in ["alice", "a1234", "A_b_c_d", "abcdefghijklmnop"] {
            assert!(USERNAME.is_match(ok), "{ok}");
        }
        for bad in [
            "",
            "abcd",
            "1alice",
            "_alice",
            "abcdefghijklmnopq",
            "ali ce",
            "alicé",
        ] {
            assert!(!USERNAME.is_match(bad), "{bad}");
        }
        for ok in ["abc123", "Zzzzzz", "a_____", "abcdefghijklmnopqr"] {
            assert!(PASSWORD.is_match(ok), "{ok}");
        }
        for bad in [
            "",
            "abcde",
            "123456",
            "_abcde",
            "abcdefghijklmnopqrs",
            "abc 123",
            "abc12é",
        ] {
            assert!(!PASSWORD.is_match(bad), "{bad}");
        }
    }
}
