//! Product and order cards (PROTOCOL.md §12): `msg_type` 3 and 4 carry a `card`, checked
//! field by field, with the text fallback the server writes into `msg` for clients that
//! know no cards, and an optional signature from the platform (`sig`, HMAC-SHA256 over
//! the card's canonical JSON) that makes the card `verified`.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::{ImageHosts, MsgType};
use crate::error::ChatError;

/// A card's fields: (name, most characters, required).
type Fields = &'static [(&'static str, usize, bool)];

const PRODUCT: Fields = &[
    ("product_id", 64, true),
    ("title", 120, true),
    ("price", 32, false),
    ("image", 512, false),
    ("url", 512, false),
];

const ORDER: Fields = &[
    ("order_no", 64, true),
    ("title", 120, false),
    ("amount", 32, false),
    ("status", 32, false),
    ("image", 512, false),
    ("url", 512, false),
];

/// The longest `sig`: a hex SHA-256 MAC is 64 characters.
const MAX_SIG: usize = 128;

/// A checked card: what is stored (its fields, and `verified` when its signature checks)
/// and the text a client without cards shows.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedCard {
    pub json: String,
    pub fallback: String,
}

fn fields_of(kind: MsgType) -> Option<Fields> {
    match kind {
        MsgType::Product => Some(PRODUCT),
        MsgType::Order => Some(ORDER),
        _ => None,
    }
}

/// `http(s)://…`, or a relative path (no scheme at all, and not `//host`).
fn is_safe_link(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return !url.contains(char::is_whitespace);
    }
    !url.contains(':') && !url.starts_with("//") && !url.contains('\\')
}

/// The canonical JSON of the fields (keys sorted, no spaces, UTF-8 as is), as the
/// platform signs it.
pub fn canonical(fields: &BTreeMap<String, String>) -> String {
    serde_json::to_string(fields).expect("a map of strings always serializes")
}

/// The signature of `fields` under `secret`, hex.
pub fn sign(fields: &BTreeMap<String, String>, secret: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(canonical(fields).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn verify(fields: &BTreeMap<String, String>, sig: &str, secret: &[u8]) -> bool {
    let Ok(sig) = hex::decode(sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(canonical(fields).as_bytes());
    mac.verify_slice(&sig).is_ok()
}

/// Checks `raw` as a card of `kind`: an object of known string fields within their
/// lengths, the required ones present, links `http(s)` or relative (and on an allowed
/// host when `hosts` lists some), and `sig` checked against `secret`.
pub fn check(
    kind: MsgType,
    raw: &Value,
    hosts: &ImageHosts,
    secret: &[u8],
) -> Result<CheckedCard, ChatError> {
    let spec =
        fields_of(kind).ok_or_else(|| ChatError::bad("only msg_type 3 and 4 carry a card"))?;
    let object = raw
        .as_object()
        .ok_or_else(|| ChatError::bad("card must be an object"))?;
    let mut fields = BTreeMap::new();
    let mut sig = None;
    for (key, value) in object {
        let text = value
            .as_str()
            .ok_or_else(|| ChatError::bad(format!("card.{key} must be a string")))?;
        if key == "sig" {
            if text.len() > MAX_SIG {
                return Err(ChatError::bad("card.sig is too long"));
            }
            sig = Some(text);
            continue;
        }
        let (_, max, _) = spec
            .iter()
            .find(|(name, _, _)| name == key)
            .ok_or_else(|| ChatError::bad(format!("card.{key} is not a field of this card")))?;
        if text.chars().count() > *max {
            return Err(ChatError::bad(format!("card.{key} is longer than {max}")));
        }
        if matches!(key.as_str(), "image" | "url") && !text.is_empty() {
            if !is_safe_link(text) {
                return Err(ChatError::bad(format!(
                    "card.{key} must be http(s) or relative"
                )));
            }
            if !hosts.allows(text) {
                return Err(ChatError::ImageHostNotAllowed);
            }
        }
        fields.insert(key.clone(), text.to_string());
    }
    for (name, _, required) in spec {
        if *required && fields.get(*name).is_none_or(|v| v.trim().is_empty()) {
            return Err(ChatError::bad(format!("card.{name} is required")));
        }
    }
    let verified = sig.is_some_and(|s| verify(&fields, s, secret));
    let fallback = match kind {
        MsgType::Product => format!("[商品] {}", fields["title"]),
        _ => format!("[订单] {}", fields["order_no"]),
    };
    let mut stored: serde_json::Map<String, Value> = fields
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    if verified {
        stored.insert("verified".into(), Value::Bool(true));
    }
    Ok(CheckedCard {
        json: Value::Object(stored).to_string(),
        fallback,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"test-secret";

    fn open() -> ImageHosts {
        ImageHosts::new(&[], "")
    }

    fn product() -> Value {
        json!({"product_id": "sku-881", "title": "Oolong 200 g", "price": "¥59.00",
               "image": "https://img.example.com/881.jpg", "url": "/p/881"})
    }

    #[test]
    fn a_product_card_is_stored_with_its_fallback() {
        let c = check(MsgType::Product, &product(), &open(), SECRET).unwrap();
        assert_eq!(c.fallback, "[商品] Oolong 200 g");
        let stored: Value = serde_json::from_str(&c.json).unwrap();
        assert_eq!(stored, product(), "unsigned: no verified flag");
        let order = json!({"order_no": "E2026-1", "status": "paid"});
        let c = check(MsgType::Order, &order, &open(), SECRET).unwrap();
        assert_eq!(c.fallback, "[订单] E2026-1");
    }

    #[test]
    fn a_signature_over_the_canonical_json_verifies_and_a_tampered_card_does_not() {
        let fields: BTreeMap<String, String> = serde_json::from_value(product()).unwrap();
        assert_eq!(
            canonical(&fields),
            r#"{"image":"https://img.example.com/881.jpg","price":"¥59.00","product_id":"sku-881","title":"Oolong 200 g","url":"/p/881"}"#,
            "keys sorted, no spaces, UTF-8 as is (Python's sort_keys, separators, ensure_ascii=False)"
        );
        let mut signed = product();
        signed["sig"] = json!(sign(&fields, SECRET));
        let c = check(MsgType::Product, &signed, &open(), SECRET).unwrap();
        let stored: Value = serde_json::from_str(&c.json).unwrap();
        assert_eq!(stored["verified"], true);
        assert!(stored.get("sig").is_none(), "the signature is not kept");
        let mut tampered = signed.clone();
        tampered["price"] = json!("¥0.01");
        let c = check(MsgType::Product, &tampered, &open(), SECRET).unwrap();
        assert!(serde_json::from_str::<Value>(&c.json)
            .unwrap()
            .get("verified")
            .is_none());
        let c = check(MsgType::Product, &signed, &open(), b"another secret").unwrap();
        assert!(serde_json::from_str::<Value>(&c.json)
            .unwrap()
            .get("verified")
            .is_none());
        let mut garbage = product();
        garbage["sig"] = json!("not hex");
        assert!(check(MsgType::Product, &garbage, &open(), SECRET).is_ok());
    }

    #[test]
    fn bad_cards_are_refused() {
        let with = |k: &str, v: Value| {
            let mut c = product();
            c[k] = v;
            c
        };
        for (card, why) in [
            (json!("sku-881"), "not an object"),
            (json!({"title": "x"}), "no product_id"),
            (with("product_id", json!("")), "empty product_id"),
            (with("title", json!(7)), "not a string"),
            (with("title", json!("x".repeat(121))), "title too long"),
            (with("price", json!("1".repeat(33))), "price too long"),
            (with("url", json!("javascript:alert(1)")), "javascript:"),
            (with("image", json!("data:image/png;base64,AAAA")), "data:"),
            (
                with("image", json!("//evil.example.com/x.png")),
                "scheme-relative",
            ),
            (
                with(
                    "url",
                    json!(format!("https://x.example.com/{}", "a".repeat(500))),
                ),
                "url too long",
            ),
            (with("colour", json!("red")), "unknown field"),
            (with("sig", json!("f".repeat(129))), "sig too long"),
        ] {
            assert!(
                matches!(
                    check(MsgType::Product, &card, &open(), SECRET),
                    Err(ChatError::BadParams(_))
                ),
                "{why}: {card}"
            );
        }
        assert!(check(MsgType::Text, &product(), &open(), SECRET).is_err());
        let listed = ImageHosts::new(&["img.example.com".into()], "");
        assert!(check(MsgType::Product, &product(), &listed, SECRET).is_ok());
        let elsewhere = with("image", json!("https://tracker.example.net/p.gif"));
        assert_eq!(
            check(MsgType::Product, &elsewhere, &listed, SECRET),
            Err(ChatError::ImageHostNotAllowed)
        );
    }
}
