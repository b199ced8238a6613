//! Token authentication (PROTOCOL.md §1): HS256 JWTs shared with the e-commerce
//! platform, the user id read at a configurable claim path.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};

use crate::config::AuthConfig;
use crate::ids::UserId;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("no token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token has no positive integer user id at claim {0}")]
    NoUid(String),
    #[error("user id {0} is in the range of self-registered accounts")]
    ReservedUid(i64),
}

/// The claim shopchat puts in the tokens it mints for self-registered accounts: only
/// those may speak for ids at or above `auth.register_id_base`.
const REGISTERED_CLAIM: &str = "shopchat_account";

/// Verifies and mints tokens with the configured secret; cheap to clone into every worker.
#[derive(Clone)]
pub struct Authenticator {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
    issuer: String,
    uid_path: Vec<String>,
    ttl_secs: u64,
    register_id_base: i64,
}

impl Authenticator {
    pub fn new(cfg: &AuthConfig) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_nbf = true;
        if !cfg.jwt_issuer.is_empty() {
            validation.set_issuer(&[cfg.jwt_issuer.as_str()]);
        }
        Authenticator {
            decoding: DecodingKey::from_secret(cfg.jwt_secret.as_bytes()),
            encoding: EncodingKey::from_secret(cfg.jwt_secret.as_bytes()),
            validation,
            issuer: cfg.jwt_issuer.clone(),
            uid_path: cfg.uid_claim.split('.').map(str::to_owned).collect(),
            ttl_secs: cfg.token_ttl_secs,
            register_id_base: cfg.register_id_base,
        }
    }

    /// Whether `uid` is in the range `/login/register` hands out.
    pub fn is_registered_range(&self, uid: UserId) -> bool {
        uid.0 >= self.register_id_base
    }

    /// The user a token speaks for, if its signature, issuer and expiry hold.
    pub fn verify(&self, token: &str) -> Result<UserId, AuthError> {
        let data = jsonwebtoken::decode::<Value>(token, &self.decoding, &self.validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let mut at = &data.claims;
        for key in &self.uid_path {
            at = at.get(key).ok_or_else(|| self.no_uid())?;
        }
        let uid = match at {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse::<i64>().ok(),
            _ => None,
        };
        match uid {
            Some(uid) if uid > 0 => {
                let registered = data.claims.get(REGISTERED_CLAIM) == Some(&Value::Bool(true));
                if self.is_registered_range(UserId(uid)) && !registered {
                    return Err(AuthError::ReservedUid(uid));
                }
                Ok(UserId(uid))
            }
            _ => Err(self.no_uid()),
        }
    }

    fn no_uid(&self) -> AuthError {
        AuthError::NoUid(self.uid_path.join("."))
    }

    /// A token shaped like the original's (`iss`, `iat`, `exp`, uid at the claim path).
    pub fn mint(&self, uid: UserId) -> String {
        self.mint_with_ttl(uid, self.ttl_secs)
    }

    pub fn mint_with_ttl(&self, uid: UserId, ttl_secs: u64) -> String {
        let now = unix_now();
        let mut claims = Map::new();
        if !self.issuer.is_empty() {
            claims.insert("iss".into(), Value::from(self.issuer.clone()));
        }
        claims.insert("iat".into(), Value::from(now));
        claims.insert("exp".into(), Value::from(now + ttl_secs));
        if self.is_registered_range(uid) {
            claims.insert(REGISTERED_CLAIM.into(), Value::Bool(true));
        }
        let mut value = Value::from(uid.0);
        for key in self.uid_path.iter().skip(1).rev() {
            let mut m = Map::new();
            m.insert(key.clone(), value);
            value = Value::Object(m);
        }
        // unwrap: uid_path is validated non-empty by Config::validate
        claims.insert(self.uid_path.first().cloned().unwrap_or_default(), value);
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Value::Object(claims),
            &self.encoding,
        )
        .expect("HS256 encoding of a JSON object should not fail")
    }
}

pub use crate::clock::unix_now;

/// The token of a request: `?token=` first, then `authorizations: bear X` or
/// `Authorization: Bearer X` (scheme word case-insensitive).
pub fn token_from_parts<'a>(
    query: &'a str,
    authorizations: Option<&'a str>,
    authorization: Option<&'a str>,
) -> Option<std::borrow::Cow<'a, str>> {
    for pair in query.split('&') {
        if let Some(v) = pair.strip_prefix("token=") {
            if !v.is_empty() {
                return Some(percent_decode(v));
            }
        }
    }
    [authorizations, authorization]
        .into_iter()
        .flatten()
        .find_map(|h| {
            let (scheme, token) = h.trim().split_once(char::is_whitespace)?;
            let scheme = scheme.to_ascii_lowercase();
            let token = token.trim();
            ((scheme == "bear" || scheme == "bearer") && !token.is_empty())
                .then_some(std::borrow::Cow::Borrowed(token))
        })
}

/// JWTs are base64url plus dots, so a client rarely escapes them; decode the few that do.
fn percent_decode(v: &str) -> std::borrow::Cow<'_, str> {
    percent_encoding::percent_decode_str(v).decode_utf8_lossy()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(issuer: &str, claim: &str) -> Authenticator {
        Authenticator::new(&AuthConfig {
            jwt_secret: "s3cret".into(),
            jwt_issuer: issuer.into(),
            uid_claim: claim.into(),
            token_ttl_secs: 60,
            register_id_base: 1_000,
        })
    }

    #[test]
    fn minted_tokens_verify_and_carry_the_uid() {
        let a = auth("", "data.id");
        assert_eq!(a.verify(&a.mint(UserId(42))), Ok(UserId(42)));
        let b = auth("mall", "uid");
        assert_eq!(b.verify(&b.mint(UserId(7))), Ok(UserId(7)));
    }

    #[test]
    fn issuer_secret_and_expiry_are_enforced() {
        let mall = auth("mall", "data.id");
        let other = auth("other", "data.id");
        assert!(matches!(
            mall.verify(&other.mint(UserId(1))),
            Err(AuthError::Invalid(_))
        ));
        let wrong = Authenticator::new(&AuthConfig {
            jwt_secret: "different".into(),
            ..AuthConfig::default()
        });
        assert!(wrong.verify(&auth("", "data.id").mint(UserId(1))).is_err());
        let a = auth("", "data.id");
        let expired = {
            let now = unix_now();
            let claims = serde_json::json!({"iat": now - 100, "exp": now - 10, "data": {"id": 5}});
            jsonwebtoken::encode(
                &Header::default(),
                &claims,
                &EncodingKey::from_secret(b"s3cret"),
            )
            .unwrap()
        };
        assert!(matches!(a.verify(&expired), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn uid_may_be_a_numeric_string_but_must_be_positive() {
        let a = auth("", "data.id");
        let sign = |claims: serde_json::Value| {
            jsonwebtoken::encode(
                &Header::default(),
                &claims,
                &EncodingKey::from_secret(b"s3cret"),
            )
            .unwrap()
        };
        let exp = unix_now() + 60;
        assert_eq!(
            a.verify(&sign(serde_json::json!({"exp": exp, "data": {"id": "42"}}))),
            Ok(UserId(42))
        );
        assert!(matches!(
            a.verify(&sign(serde_json::json!({"exp": exp, "data": {"id": 0}}))),
            Err(AuthError::NoUid(_))
        ));
        assert!(matches!(
            a.verify(&sign(serde_json::json!({"exp": exp, "id": 3}))),
            Err(AuthError::NoUid(_))
        ));
    }

    fn sign(claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(b"s3cret"),
        )
        .unwrap()
    }

    #[test]
    fn platform_tokens_cannot_speak_for_registered_ids() {
        let a = auth("", "data.id");
        let exp = unix_now() + 60;
        assert_eq!(
            a.verify(&sign(
                serde_json::json!({"exp": exp, "data": {"id": 1_000}})
            )),
            Err(AuthError::ReservedUid(1_000))
        );
        assert_eq!(
            a.verify(&sign(serde_json::json!({"exp": exp, "data": {"id": 999}}))),
            Ok(UserId(999))
        );
        // What shopchat itself mints for a registered account verifies.
        assert_eq!(a.verify(&a.mint(UserId(1_000))), Ok(UserId(1_000)));
        assert_eq!(a.verify(&a.mint(UserId(999))), Ok(UserId(999)));
    }

    #[test]
    fn not_before_is_enforced() {
        let a = auth("", "data.id");
        let now = unix_now();
        let early =
            sign(serde_json::json!({"exp": now + 600, "nbf": now + 300, "data": {"id": 5}}));
        assert!(matches!(a.verify(&early), Err(AuthError::Invalid(_))));
        let ready = sign(serde_json::json!({"exp": now + 600, "nbf": now - 1, "data": {"id": 5}}));
        assert_eq!(a.verify(&ready), Ok(UserId(5)));
    }

    #[test]
    fn token_is_found_in_query_or_either_header() {
        assert_eq!(
            token_from_parts("a=1&token=abc", None, None).as_deref(),
            Some("abc")
        );
        assert_eq!(
            token_from_parts("token=a%2Eb", None, None).as_deref(),
            Some("a.b")
        );
        assert_eq!(
            token_from_parts("", Some("bear xyz"), None).as_deref(),
            Some("xyz")
        );
        assert_eq!(
            token_from_parts("", None, Some("Bearer xyz")).as_deref(),
            Some("xyz")
        );
        assert_eq!(
            token_from_parts("", None, Some("BEARER  xyz ")).as_deref(),
            Some("xyz")
        );
        assert_eq!(token_from_parts("", None, Some("Basic xyz")), None);
        assert_eq!(token_from_parts("token=", None, None), None);
    }
}
