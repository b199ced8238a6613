//! `/login` and `/login/register` with the original's rules and messages (PROTOCOL.md §8).
//! Passwords are stored as argon2 hashes.

use std::sync::LazyLock;

use actix_web::{web, HttpRequest, HttpResponse};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use regex::Regex;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::{decode, ok_with, state, ApiError};
use crate::chats::ask;
use crate::db::{CreateAccount, FindLogin};
use crate::error::ChatError;

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

async fn login(req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let c: Credentials = decode(&req, &body)?;
    let (username, password) = (text(&c.username), text(&c.password));
    if username.is_empty() {
        return Err(ApiError::Text("用户名不得为空"));
    }
    if !USERNAME.is_match(&username) {
        return Err(ApiError::Text("用户名错误"));
    }
    if password.is_empty() {
        return Err(ApiError::Text("密码不得为空"));
    }
    if !PASSWORD.is_match(&password) {
        return Err(ApiError::Text("密码格式错误"));
    }
    let st = state(&req);
    let Some((uid, hash)) = ask(st.db.send(FindLogin { username })).await? else {
        return Err(ApiError::Text("账户不存在"));
    };
    let hash = hash.ok_or(ApiError::Text("密码错误"))?;
    let matches = web::block(move || {
        PasswordHash::new(&hash).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .map_err(|_| ChatError::StorageUnavailable)?;
    if !matches {
        return Err(ApiError::Text("密码错误"));
    }
    Ok(ok_with(
        Some("登录成功"),
        json!({"token": st.auth.mint(uid)}),
    ))
}

async fn register(req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let c: Credentials = decode(&req, &body)?;
    let (username, password) = (text(&c.username), text(&c.password));
    if !USERNAME.is_match(&username) {
        return Err(ApiError::Text(
            "请输入5~16位以字母开头的数字、字母或下划线的用户名",
        ));
    }
    if !PASSWORD.is_match(&password) {
        return Err(ApiError::Text("请输入6~18位数字、字母或下划线的组合密码"));
    }
    let password_hash = web::block(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(|_| ChatError::StorageUnavailable)?
    .map_err(|e| {
        log::error!("register: hashing failed: {e}");
        ChatError::StorageUnavailable
    })?;
    let st = state(&req);
    let Some(uid) = ask(st.db.send(CreateAccount {
        username,
        password_hash,
    }))
    .await?
    else {
        return Err(ApiError::Text("当前用户名已存在"));
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
