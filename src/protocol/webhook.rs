//! Webhooks (PROTOCOL.md §13) and sensitive words (§14): what the platform is told, how
//! each event is wrapped and signed, and the moderation list's shape. Pure: no I/O.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::ChatType;

/// Every event type, as the config's `webhooks.events` names them.
pub const EVENT_TYPES: [&str; 7] = [
    MESSAGE_OFFLINE,
    CONVERSATION_WAITING,
    CONVERSATION_ASSIGNED,
    CONVERSATION_TRANSFERRED,
    CONVERSATION_RESOLVED,
    CONVERSATION_RATED,
    MESSAGE_RECALLED,
];

pub const MESSAGE_OFFLINE: &str = "message.offline";
pub const CONVERSATION_WAITING: &str = "conversation.waiting";
pub const CONVERSATION_ASSIGNED: &str = "conversation.assigned";
pub const CONVERSATION_TRANSFERRED: &str = "conversation.transferred";
pub const CONVERSATION_RESOLVED: &str = "conversation.resolved";
pub const CONVERSATION_RATED: &str = "conversation.rated";
pub const MESSAGE_RECALLED: &str = "message.recalled";

/// The most receivers one `message.offline` event names; more make more events.
pub const MAX_OFFLINE_UIDS: usize = 1000;
/// The most characters of `msg` a `message.offline` preview keeps.
pub const PREVIEW_CHARS: usize = 80;

/// `message.offline`'s data. `to_uids` and `count` are filled in by the dispatcher, when
/// it knows who was offline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfflineData {
    pub msg_id: i64,
    pub chat_id: String,
    pub chat_type: ChatType,
    pub shop_id: i64,
    pub from_uid: i64,
    pub sender_name: String,
    pub preview: String,
    #[serde(default)]
    pub to_uids: Vec<i64>,
    /// How many messages of the chat this event stands for (coalescing), at least 1.
    #[serde(default = "one")]
    pub count: i64,
}

fn one() -> i64 {
    1
}

/// The first [`PREVIEW_CHARS`] characters of a message.
pub fn preview(msg: &str) -> String {
    msg.chars().take(PREVIEW_CHARS).collect()
}

/// The data of `conversation.*` events but `rated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationData {
    pub shop_id: i64,
    pub consumer_uid: i64,
    pub session_id: i64,
    pub agent_uid: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_uid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_uid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by_uid: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatedData {
    pub shop_id: i64,
    pub consumer_uid: i64,
    pub session_id: i64,
    pub agent_uid: i64,
    pub score: i32,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecalledData {
    pub msg_id: i64,
    pub chat_id: String,
    pub by_uid: i64,
}

/// An event's unique id, from its seq.
pub fn event_id(seq: i64) -> String {
    format!("evt_{seq}")
}

/// The body of one event's `POST`: `data` is its stored JSON.
pub fn body(seq: i64, kind: &str, created_at: i64, data: &str) -> String {
    let data: serde_json::Value = serde_json::from_str(data).unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "id": event_id(seq),
        "type": kind,
        "seq": seq,
        "created_at": created_at,
        "data": data,
    })
    .to_string()
}

/// `X-Shopchat-Signature` for `body` sent at unix time `t`:
/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    let v1 = mac(secret, t, body).finalize().into_bytes();
    format!("t={t},v1={}", hex::encode(v1))
}

/// The MAC of `"<t>.<body>"`, ready to finalize or verify.
fn mac(secret: &str, t: i64, body: &str) -> Hmac<Sha256> {
    let mut m =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body.as_bytes());
    m
}

/// Whether `header` is a valid signature of `body` under `secret` (what a receiver
/// checks), compared in constant time.
pub fn verify(secret: &str, header: &str, body: &str) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    match (t, v1) {
        (Some(t), Some(v1)) => mac(secret, t, body).verify_slice(&v1).is_ok(),
        _ => false,
    }
}

/// What a matched sensitive word does (§14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ModerationAction {
    #[default]
    Reject,
    Mask,
}

impl ModerationAction {
    pub fn name(self) -> &'static str {
        match self {
            ModerationAction::Reject => "reject",
            ModerationAction::Mask => "mask",
        }
    }

    pub fn from_name(s: &str) -> Option<ModerationAction> {
        match s {
            "reject" => Some(ModerationAction::Reject),
            "mask" => Some(ModerationAction::Mask),
            _ => None,
        }
    }
}

/// `GET`/`PUT /admin/moderation`: the whole list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ModerationList {
    pub words: Vec<String>,
    pub action: ModerationAction,
}

/// The most words the list may hold.
pub const MAX_MODERATION_WORDS: usize = 20_000;
/// The most characters one word may have.
pub const MAX_MODERATION_WORD_CHARS: usize = 64;
/// The largest `PUT /admin/moderation` body.
pub const MAX_MODERATION_BODY: usize = 2 << 20;

impl ModerationList {
    /// Trimmed, without empty words or repeats; or why it is refused.
    pub fn checked(mut self) -> Result<ModerationList, String> {
        if self.words.len() > MAX_MODERATION_WORDS {
            return Err(format!("at most {MAX_MODERATION_WORDS} words"));
        }
        let mut seen = std::collections::HashSet::new();
        let mut words = Vec::with_capacity(self.words.len());
        for w in self.words.drain(..) {
            let w = w.trim().to_string();
            if w.chars().count() > MAX_MODERATION_WORD_CHARS {
                return Err(format!(
                    "a word has at most {MAX_MODERATION_WORD_CHARS} characters"
                ));
            }
            if !w.is_empty() && seen.insert(w.to_lowercase()) {
                words.push(w);
            }
        }
        self.words = words;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_a_changed_body_does_not() {
        let body = body(7, MESSAGE_RECALLED, 1_700_000_000, r#"{"msg_id":1}"#);
        let sig = signature("s3cret", 1_700_000_001, &body);
        assert!(sig.starts_with("t=1700000001,v1="));
        assert!(verify("s3cret", &sig, &body));
        assert!(!verify("other", &sig, &body));
        assert!(!verify("s3cret", &sig, &body.replace('1', "2")));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["id"], "evt_7");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["type"], "message.recalled");
        assert_eq!(v["data"]["msg_id"], 1);
    }

    #[test]
    fn a_moderation_list_is_trimmed_deduplicated_and_bounded() {
        let l = ModerationList {
            words: vec![" Bad ".into(), "bad".into(), "".into(), "坏".into()],
            action: ModerationAction::Mask,
        }
        .checked()
        .unwrap();
        assert_eq!(l.words, vec!["Bad", "坏"]);
        let too_many = ModerationList {
            words: vec!["x".into(); MAX_MODERATION_WORDS + 1],
            action: ModerationAction::Reject,
        };
        assert!(too_many.checked().is_err());
        let parsed: ModerationList =
            serde_json::from_str(r#"{"words":["a"],"action":"mask"}"#).unwrap();
        assert_eq!(parsed.action, ModerationAction::Mask);
        assert!(serde_json::from_str::<ModerationList>(r#"{"words":[],"action":"x"}"#).is_err());
    }

    #[test]
    fn a_preview_keeps_eighty_characters() {
        let long = "字".repeat(100);
        assert_eq!(preview(&long).chars().count(), 80);
        assert_eq!(preview("hi"), "hi");
    }
}
