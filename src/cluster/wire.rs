//! What nodes say to one another over Redis pub/sub. A push is forwarded as the very
//! text its receivers get, after a one-line header naming them, so it is serialized
//! once on the node that committed it and never parsed on the way:
//!
//! ```text
//! D12,57\n{"code":200,...}                      to one node: push the text to users 12 and 57
//! E{node}\n{"event":"shop_changed","shop":3}    to every node: a change made on {node}
//! ```

use std::sync::Arc;

use actix::Message;
use serde::{Deserialize, Serialize};

use crate::db::Profile;
use crate::ids::{ShopId, UserId};
use crate::protocol::ChatPush;

/// A change every node must apply to its own state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
// A change in flight, never kept in bulk: the notice's size costs nothing worth an
// allocation.
#[allow(clippy::large_enum_variant)]
pub enum ClusterEvent {
    /// A profile was stored: later pushes carry the new name and avatar.
    ProfileChanged {
        uid: UserId,
        nickname: String,
        avatar: String,
    },
    /// A shop was created or changed.
    ShopChanged { shop: ShopId },
    /// An agent was attached, moved or detached.
    AgentMoved {
        uid: UserId,
        from: Option<ShopId>,
        to: Option<ShopId>,
    },
    /// An agent's status was stored.
    AgentStatusChanged {
        shop: ShopId,
        uid: UserId,
        status: crate::protocol::service::AgentStatus,
    },
    /// A stored broadcast notice, for every user connected anywhere.
    NoticeAll { push: ChatPush },
    /// The sensitive-word list was stored: read it again.
    ModerationChanged,
}

impl ClusterEvent {
    pub fn profile(p: &Profile) -> ClusterEvent {
        ClusterEvent::ProfileChanged {
            uid: p.uid,
            nickname: p.nickname.clone(),
            avatar: p.avatar.clone(),
        }
    }
}

/// What the cluster hands to ChatServer.
#[derive(Message, Debug)]
#[rtype(result = "()")]
// In flight only, like `ClusterEvent`.
#[allow(clippy::large_enum_variant)]
pub enum FromCluster {
    /// A push committed on another node, for these users' connections here.
    Deliver {
        uids: Vec<UserId>,
        text: Arc<str>,
    },
    Event(ClusterEvent),
    /// Redis answers again after an outage: what was missed meanwhile must be re-read.
    Recovered,
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("no header line")]
    NoHeader,
    #[error("unknown kind")]
    UnknownKind,
    #[error("bad user id list")]
    BadUids,
    #[error("not UTF-8")]
    NotUtf8,
    #[error("bad event: {0}")]
    BadEvent(#[from] serde_json::Error),
}

pub fn encode_delivery(uids: &[UserId], text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2 + uids.len() * 8);
    out.push('D');
    for (i, uid) in uids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&uid.to_string());
    }
    out.push('\n');
    out.push_str(text);
    out
}

pub fn encode_event(node: &str, event: &ClusterEvent) -> serde_json::Result<String> {
    Ok(format!("E{node}\n{}", serde_json::to_string(event)?))
}

/// Decodes one message; `Ok(None)` for this node's own events coming back.
pub fn decode(own_node: &str, payload: &[u8]) -> Result<Option<FromCluster>, WireError> {
    let payload = std::str::from_utf8(payload).map_err(|_| WireError::NotUtf8)?;
    let (header, body) = payload.split_once('\n').ok_or(WireError::NoHeader)?;
    if let Some(list) = header.strip_prefix('D') {
        let uids = list
            .split(',')
            .map(|u| u.parse().map(UserId))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| WireError::BadUids)?;
        return Ok(Some(FromCluster::Deliver {
            uids,
            text: body.into(),
        }));
    }
    if let Some(node) = header.strip_prefix('E') {
        if node == own_node {
            return Ok(None);
        }
        return Ok(Some(FromCluster::Event(serde_json::from_str(body)?)));
    }
    Err(WireError::UnknownKind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_round_trips_with_its_text_untouched() {
        let text = r#"{"code":101,"msg":"a\nb"}"#;
        let wire = encode_delivery(&[UserId(12), UserId(57)], text);
        assert_eq!(wire, format!("D12,57\n{text}"));
        match decode("me", wire.as_bytes()).unwrap() {
            Some(FromCluster::Deliver { uids, text: t }) => {
                assert_eq!(uids, vec![UserId(12), UserId(57)]);
                assert_eq!(&*t, text);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn events_round_trip_and_own_events_are_ignored() {
        let ev = ClusterEvent::AgentMoved {
            uid: UserId(5),
            from: None,
            to: Some(ShopId(3)),
        };
        let wire = encode_event("n1", &ev).unwrap();
        assert!(decode("n1", wire.as_bytes()).unwrap().is_none());
        match decode("n2", wire.as_bytes()).unwrap() {
            Some(FromCluster::Event(got)) => assert_eq!(got, ev),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b"no newline"[..],
            b"D1,x\n{}",
            b"X\n{}",
            b"E2\nnot json",
            b"\xff\n",
        ] {
            assert!(decode("n1", bad).is_err(), "{bad:?}");
        }
    }
}
