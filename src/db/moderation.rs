//! The sensitive-word list (PROTOCOL.md §14): one row, the whole list as JSON.

use diesel::prelude::*;

use super::conn::{upsert, DbConn};
use super::schema::moderation;
use crate::protocol::webhook::{ModerationAction, ModerationList};

/// The stored list; empty if none was ever stored.
pub fn load(conn: &mut DbConn) -> QueryResult<ModerationList> {
    let row: Option<(String, String)> = moderation::table
        .find(1)
        .select((moderation::action, moderation::words))
        .first(conn)
        .optional()?;
    Ok(match row {
        Some((action, words)) => ModerationList {
            words: serde_json::from_str(&words).unwrap_or_default(),
            action: ModerationAction::from_name(&action).unwrap_or_default(),
        },
        None => ModerationList::default(),
    })
}

/// Replaces the list.
pub fn store(conn: &mut DbConn, list: &ModerationList, now: i64) -> QueryResult<()> {
    let words = serde_json::to_string(&list.words).unwrap_or_else(|_| "[]".into());
    let action = list.action.name();
    upsert!(
        conn,
        moderation::table,
        (
            moderation::id.eq(1),
            moderation::action.eq(action),
            moderation::words.eq(&words),
            moderation::updated_at.eq(now),
        ),
        moderation::id,
        (
            moderation::action.eq(action),
            moderation::words.eq(&words),
            moderation::updated_at.eq(now),
        )
    )?;
    Ok(())
}
