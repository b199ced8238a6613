//! No silent gaps (PROTOCOL.md §17): `chat.range`, `chat.heads` and the `resync` push.

use serde::{Deserialize, Serialize};

use super::{lenient, SyncRow, MAX_CHAT_ID};
use crate::error::ChatError;

/// Rows of one `chat.range` reply, at most.
pub const RANGE_MAX_LIMIT: i64 = 200;
pub const RANGE_DEFAULT_LIMIT: i64 = 100;
/// Conversations of one `chat.heads` page, at most.
pub const HEADS_MAX_LIMIT: i64 = 200;
/// The longest `after` cursor of `chat.heads` (a chat_id, a slash, a shop id).
const MAX_CURSOR: usize = MAX_CHAT_ID + 21;

/// `chat.range` content.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RangeRequest {
    pub chat_id: String,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub after_seq: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub limit: Option<i64>,
}

impl RangeRequest {
    pub(super) fn checked(self) -> Result<RangeRequest, ChatError> {
        if self.chat_id.is_empty() || self.chat_id.len() > MAX_CHAT_ID {
            return Err(ChatError::bad("chat_id must be 1 to 64 bytes"));
        }
        if self.after_seq.is_some_and(|s| s < 0) {
            return Err(ChatError::bad("after_seq must be >= 0"));
        }
        if self
            .limit
            .is_some_and(|l| !(1..=RANGE_MAX_LIMIT).contains(&l))
        {
            return Err(ChatError::bad("limit must be 1 to 200"));
        }
        Ok(self)
    }

    /// (after_seq, limit) with the defaults applied.
    pub fn bounds(&self) -> (i64, i64) {
        (
            self.after_seq.unwrap_or(0),
            self.limit.unwrap_or(RANGE_DEFAULT_LIMIT),
        )
    }
}

/// `chat.heads` content.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct HeadsRequest {
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub since: Option<i64>,
    #[serde(default)]
    pub after: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub limit: Option<i64>,
}

impl HeadsRequest {
    pub(super) fn checked(self) -> Result<HeadsRequest, ChatError> {
        if self.since.is_some_and(|s| s < 0) {
            return Err(ChatError::bad("since must be >= 0 (unix seconds)"));
        }
        if self
            .limit
            .is_some_and(|l| !(1..=HEADS_MAX_LIMIT).contains(&l))
        {
            return Err(ChatError::bad("limit must be 1 to 200"));
        }
        if let Some(after) = &self.after {
            if after.len() > MAX_CURSOR || parse_cursor(after).is_none() {
                return Err(ChatError::bad("after must be a cursor from chat.heads"));
            }
        }
        Ok(self)
    }

    /// (since, after, limit) with the defaults applied.
    pub fn bounds(&self) -> (i64, Option<(String, i64)>, i64) {
        (
            self.since.unwrap_or(0),
            self.after.as_deref().and_then(parse_cursor),
            self.limit.unwrap_or(HEADS_MAX_LIMIT),
        )
    }
}

/// The cursor after conversation (chat_id, shop_id): `"{chat_id}/{shop_id}"`.
pub fn cursor(chat_id: &str, shop_id: i64) -> String {
    format!("{chat_id}/{shop_id}")
}

fn parse_cursor(text: &str) -> Option<(String, i64)> {
    let (chat, shop) = text.rsplit_once('/')?;
    let shop: i64 = shop.parse().ok().filter(|s| *s >= 0)?;
    (!chat.is_empty() && chat.len() <= MAX_CHAT_ID).then(|| (chat.to_string(), shop))
}

/// `chat.range` result (code 201): the rows after `after_seq` in seq order, and
/// `upto_seq`, the seq the reply accounts for: rows up to it that are not in `rows` are
/// not the caller's to see (before it joined a group, another reader's rating request).
#[derive(Debug, Serialize)]
pub struct RangePage {
    pub chat_id: String,
    #[serde(skip_serializing_if = "super::is_zero")]
    pub shop_id: i64,
    pub rows: Vec<SyncRow>,
    pub has_more: bool,
    pub upto_seq: i64,
}

impl RangePage {
    /// The page of `rows` (seq order; `None` for a row the caller does not see) that fits
    /// in [`super::SYNC_MAX_BYTES`]; at least one row goes out.
    pub fn within_bytes(
        chat_id: String,
        shop_id: i64,
        after_seq: i64,
        rows: Vec<(i64, Option<SyncRow>)>,
        db_has_more: bool,
    ) -> RangePage {
        let mut bytes = super::PageBytes::new(128 + chat_id.len());
        let mut kept = Vec::with_capacity(rows.len());
        let mut upto = after_seq;
        let total = rows.len();
        let mut taken = 0;
        for (seq, row) in rows {
            if let Some(row) = row {
                if !bytes.take(&row) {
                    break;
                }
                kept.push(row);
            }
            upto = seq;
            taken += 1;
        }
        RangePage {
            chat_id,
            shop_id,
            rows: kept,
            has_more: db_has_more || taken < total,
            upto_seq: upto,
        }
    }
}

/// One conversation of `chat.heads`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeadRow {
    pub chat_id: String,
    pub chat_type: super::ChatType,
    #[serde(skip_serializing_if = "super::is_zero")]
    pub shop_id: i64,
    pub last_seq: i64,
    /// Unix seconds of its last row's commit.
    pub updated_at: i64,
    /// The caller's read cursor (a msg_id; 0 = nothing read).
    pub read_msg_id: i64,
}

/// `chat.heads` result (code 1).
#[derive(Debug, Serialize)]
pub struct HeadsPage {
    pub rows: Vec<HeadRow>,
    pub has_more: bool,
    /// The `after` of the next page, while `has_more`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Why a connection is told to resync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResyncReason {
    /// The node's link to the other nodes (Redis) came back after an outage: pushes from
    /// other nodes may have been lost meanwhile.
    ClusterLinkRestored,
    /// A push for this connection was dropped.
    PushDropped,
}

#[derive(Serialize)]
struct Resync {
    event: &'static str,
    reason: ResyncReason,
}

/// The `resync` push (code 206).
pub fn resync_text(reason: ResyncReason) -> String {
    super::reply_with(
        super::code::RESYNC,
        &Resync {
            event: "resync",
            reason,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_nothing_else_passes() {
        let c = cursor("3____12", 3);
        assert_eq!(parse_cursor(&c), Some(("3____12".into(), 3)));
        for bad in ["", "/3", "x/", "x/-1", "x/y", "nocursor"] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_range_page_accounts_for_rows_the_caller_does_not_see() {
        let row = |n: i64| SyncRow::Event(serde_json::json!({ "seq": n }));
        let page = RangePage::within_bytes(
            "1_2".into(),
            0,
            4,
            vec![(5, Some(row(5))), (6, None), (7, Some(row(7))), (8, None)],
            false,
        );
        assert_eq!(page.rows.len(), 2);
        assert_eq!(page.upto_seq, 8);
        assert!(!page.has_more);
        let empty = RangePage::within_bytes("1_2".into(), 0, 9, Vec::new(), false);
        assert_eq!(empty.upto_seq, 9);
    }

    #[test]
    fn resync_has_the_documented_shape() {
        let v: serde_json::Value =
            serde_json::from_str(&resync_text(ResyncReason::ClusterLinkRestored)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"code":206,"msg":null,"result":{"event":"resync","reason":"cluster_link_restored"}})
        );
    }
}
