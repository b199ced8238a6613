//! The platform's hooks into shopchat: the webhook outbox (PROTOCOL.md §13: deliveries
//! pending or dead, and retrying one) and the sensitive-word list (§14).

use serde::Serialize;

use super::{bad, Admin, AdminError};
use crate::chats::ask;
use crate::cluster::ClusterEvent;
use crate::db::{self, outbox};
use crate::protocol::webhook::{self, ModerationList};
use crate::server::Changed;

/// The most deliveries one listing returns.
pub const MAX_DELIVERIES_PAGE: i64 = 500;

/// One event of the outbox, as the admin API lists it.
#[derive(Debug, Serialize)]
pub struct Delivery {
    pub id: String,
    pub seq: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub state: &'static str,
    pub attempts: i32,
    /// When the next attempt is due (unix ms; pending only).
    pub next_at: i64,
    pub last_error: String,
    pub created_at: i64,
    pub data: serde_json::Value,
}

impl Admin {
    /// `GET /admin/webhooks/deliveries?state=pending|dead&limit=&after=`.
    pub async fn deliveries(
        &self,
        state: Option<&str>,
        limit: Option<i64>,
        after: Option<i64>,
    ) -> Result<Vec<Delivery>, AdminError> {
        let (code, name) = match state.unwrap_or("pending") {
            "pending" => (outbox::PENDING, "pending"),
            "dead" => (outbox::DEAD, "dead"),
            _ => return Err(bad("state must be pending or dead")),
        };
        let limit = limit.unwrap_or(100);
        if !(1..=MAX_DELIVERIES_PAGE).contains(&limit) {
            return Err(bad(format!("limit must be 1 to {MAX_DELIVERIES_PAGE}")));
        }
        let after = after.unwrap_or(0).max(0);
        let rows = ask(self.db.send(db::ListEvents {
            state: code,
            after,
            limit,
        }))
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Delivery {
                id: webhook::event_id(r.id),
                seq: r.id,
                kind: r.kind,
                state: name,
                attempts: r.attempts,
                next_at: r.next_at,
                last_error: r.last_error,
                created_at: r.created_at,
                data: serde_json::from_str(&r.data).unwrap_or_default(),
            })
            .collect())
    }

    /// `POST /admin/webhooks/deliveries/{id}/retry`: a dead (or waiting) event is sent
    /// again now, its attempts counted afresh. `id` is the event's id or its seq.
    pub async fn retry_delivery(&self, id: &str) -> Result<(), AdminError> {
        let seq = id
            .strip_prefix("evt_")
            .unwrap_or(id)
            .parse::<i64>()
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| bad("id must be an event id such as evt_12"))?;
        match ask(self.db.send(db::RetryEvent { id: seq })).await? {
            true => Ok(()),
            false => Err(AdminError::NotFound(
                "no pending or dead delivery with that id",
            )),
        }
    }

    /// `GET /admin/moderation`.
    pub async fn moderation(&self) -> Result<ModerationList, AdminError> {
        Ok(ask(self.db.send(db::LoadModeration {})).await?)
    }

    /// `PUT /admin/moderation`: stores the whole list; every node applies it (this one
    /// before it answers, the others through the cluster channel).
    pub async fn set_moderation(&self, list: ModerationList) -> Result<ModerationList, AdminError> {
        let list = list.checked().map_err(bad)?;
        ask(self.db.send(db::StoreModeration { list: list.clone() })).await?;
        let _ = self
            .server
            .send(Changed(ClusterEvent::ModerationChanged))
            .await;
        Ok(list)
    }
}
