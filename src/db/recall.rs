//! Recall (PROTOCOL.md §11): a message marked recalled (its text kept for the platform),
//! an event row so that devices that were offline learn of it from `chat.sync`, the
//! conversation's last message replaced by the placeholder, and who must be told. One
//! transaction, inside the write batch.

use diesel::prelude::*;

use super::conn::DbConn;
use super::models::{MessageRow, NewMessage};
use super::schema::{agents, chat_groups, conversations, messages};
use crate::ids::{MsgId, UserId};
use crate::protocol::{ChatType, MsgType, RECALLED_TEXT};

/// Who recalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recaller {
    /// A user: the sender within the window, or an agent for its shop's messages.
    User(UserId),
    /// The platform (the admin API), at any time.
    Platform,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecallRefusal {
    NotFound,
    Forbidden,
    TooLate,
}

/// A recall done (or found done before).
#[derive(Debug, Clone, PartialEq)]
pub struct Recalled {
    pub message: MessageRow,
    /// `sender`, `shop` or `platform`.
    pub by: &'static str,
    /// Everyone who could see it; empty when it was recalled before (nobody is told twice).
    pub audience: Vec<UserId>,
    /// Recalled now, not found recalled before.
    pub first: bool,
    /// The seq of the recall's event row (0 when it was recalled before).
    pub seq: i64,
}

pub fn find_message(conn: &mut DbConn, id: MsgId) -> QueryResult<Option<MessageRow>> {
    messages::table
        .find(id.0)
        .filter(messages::event_type.is_null())
        .select(MessageRow::as_select())
        .first(conn)
        .optional()
}

/// Recalls message `id` for `who`, `now`, a user within `window_secs` of its sending.
pub fn recall(
    conn: &mut DbConn,
    touches: &mut super::Touches<'_>,
    id: MsgId,
    who: Recaller,
    window_secs: i64,
    now: i64,
) -> QueryResult<Result<Recalled, RecallRefusal>> {
    let Some(m) = find_message(conn, id)? else {
        return Ok(Err(RecallRefusal::NotFound));
    };
    let by = match who {
        Recaller::Platform => "platform",
        Recaller::User(uid) if m.from_agent && m.chat_type == ChatType::Service => {
            let shop: Option<i64> = agents::table
                .find(uid.0)
                .select(agents::shop_id)
                .first(conn)
                .optional()?;
            if shop != Some(m.shop_id.0) {
                return Ok(Err(RecallRefusal::Forbidden));
            }
            "shop"
        }
        Recaller::User(uid) if m.from_uid == uid && m.chat_type != ChatType::System => "sender",
        Recaller::User(_) => return Ok(Err(RecallRefusal::Forbidden)),
    };
    if m.recalled_at > 0 {
        // A retry gets the same answer, even after the window.
        return Ok(Ok(Recalled {
            message: m,
            by,
            audience: Vec::new(),
            first: false,
            seq: 0,
        }));
    }
    if matches!(who, Recaller::User(_)) && now - m.createtime > window_secs {
        return Ok(Err(RecallRefusal::TooLate));
    }
    let won = diesel::update(
        messages::table
            .find(id.0)
            .filter(messages::recalled_at.eq(0)),
    )
    .set(messages::recalled_at.eq(now))
    .execute(conn)?;
    if won == 0 {
        return Ok(Ok(Recalled {
            message: m,
            by,
            audience: Vec::new(),
            first: false,
            seq: 0,
        }));
    }
    let seq = store_event(conn, touches, &m, by, now)?;
    // The conversation rows whose last message it was show the placeholder.
    diesel::update(
        conversations::table
            .filter(conversations::chat_id.eq(&m.chat_id))
            .filter(conversations::last_time.eq(m.createtime))
            .filter(conversations::last_uid.eq(m.from_uid.0))
            .filter(conversations::last_msg.eq(&m.msg)),
    )
    .set((
        conversations::last_msg.eq(RECALLED_TEXT),
        conversations::msg_type.eq(MsgType::Text),
    ))
    .execute(conn)?;
    if m.chat_type == ChatType::Group {
        diesel::update(
            chat_groups::table
                .find(m.group_id.0)
                .filter(chat_groups::last_msg_id.eq(id.0)),
        )
        .set((
            chat_groups::last_msg.eq(RECALLED_TEXT),
            chat_groups::msg_type.eq(MsgType::Text),
        ))
        .execute(conn)?;
    }
    let audience = audience(conn, &m)?;
    Ok(Ok(Recalled {
        message: m,
        by,
        audience,
        first: true,
        seq,
    }))
}

/// The event row: in the same conversation, seen by the same readers as the message.
/// Returns its seq.
fn store_event(
    conn: &mut DbConn,
    touches: &mut super::Touches<'_>,
    m: &MessageRow,
    by: &str,
    now: i64,
) -> QueryResult<i64> {
    let event = serde_json::json!({
        "event": "recall",
        "recalled_msg_id": m.id.0,
        "chat_id": m.chat_id,
        "chat_type": m.chat_type,
        "by": by,
    });
    let mut row = NewMessage::new(
        m.chat_type,
        m.chat_id.clone(),
        MsgType::Text,
        event.to_string(),
        m.from_uid,
        m.to_uid,
        None,
    );
    row.shop_id = m.shop_id;
    row.group_id = m.group_id;
    row.consumer_uid = m.consumer_uid;
    row.from_agent = m.from_agent;
    row.agent_uid = m.agent_uid;
    row.createtime = now;
    row.event_type = Some("recall".into());
    Ok(super::store::insert_row(conn, &row, touches)?.seq)
}

/// Everyone who could see `m`: both users of a 1:1, a group's members, the consumer and
/// the shop's agents, a notice's user (a notice to everyone is learnt from `chat.sync`).
fn audience(conn: &mut DbConn, m: &MessageRow) -> QueryResult<Vec<UserId>> {
    Ok(match m.chat_type {
        ChatType::Direct => vec![m.from_uid, m.to_uid],
        ChatType::Group => super::groups::member_ids(conn, m.group_id)?,
        ChatType::Service => {
            let mut to: Vec<UserId> = agents::table
                .filter(agents::shop_id.eq(m.shop_id.0))
                .select(agents::uid)
                .load::<i64>(conn)?
                .into_iter()
                .map(UserId)
                .collect();
            to.push(m.consumer_uid);
            to
        }
        ChatType::System => [m.to_uid].into_iter().filter(|u| u.0 > 0).collect(),
    })
}
