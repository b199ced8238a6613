//! The platform's view of a shop's customer service (PROTOCOL.md §10, admin API):
//! sessions, ratings, quick replies and the numbers.

use serde::Serialize;

use super::{bad, positive, Admin, AdminError};
use crate::chats::ask;
use crate::db::{self, sessions::SessionRow};
use crate::domain::stats::{self, AgentFigures, Percentiles, RatingSummary, SessionFacts};
use crate::ids::ShopId;
use crate::protocol::service::{
    check_short_code, AgentStatus, QuickReply, SessionState, SessionView, MAX_SESSIONS_PAGE,
};

/// The most sessions the numbers are computed over, in one range.
pub const MAX_STATS_SESSIONS: i64 = 200_000;

/// A page of sessions or ratings: which, how many, before which session id.
#[derive(Clone, Debug, Default)]
pub struct SessionQuery {
    /// `waiting`, `open` or `resolved`; `None`: all.
    pub state: Option<String>,
    pub limit: Option<i64>,
    pub before: Option<i64>,
}

impl SessionQuery {
    fn bounds(&self) -> Result<(Option<i32>, i64, i64), AdminError> {
        let state = match self.state.as_deref() {
            None => None,
            Some(s) => Some(
                SessionState::from_name(s)
                    .ok_or_else(|| bad("state must be waiting, open or resolved"))?
                    .code(),
            ),
        };
        let limit = self.limit.unwrap_or(MAX_SESSIONS_PAGE);
        if !(1..=MAX_SESSIONS_PAGE).contains(&limit) {
            return Err(bad(format!("limit must be 1 to {MAX_SESSIONS_PAGE}")));
        }
        let before = self.before.unwrap_or(0);
        if before < 0 {
            return Err(bad("before must be a session id"));
        }
        Ok((state, limit, before))
    }
}

/// A rating as the admin listing shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RatingRow {
    pub session_id: i64,
    pub chat_id: String,
    pub consumer_uid: i64,
    pub agent_uid: i64,
    pub score: i32,
    pub comment: Option<String>,
    pub created_at: i64,
}

/// One agent's line of the numbers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AgentStats {
    pub uid: i64,
    pub status: AgentStatus,
    pub connected: bool,
    pub open_sessions: usize,
    pub messages: i64,
    #[serde(flatten)]
    pub figures: AgentFigures,
}

/// `GET /admin/shops/{id}/stats`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShopStats {
    pub from: i64,
    pub to: i64,
    pub sessions: usize,
    pub waiting_now: i64,
    pub first_response_secs: Percentiles,
    pub resolution_secs: Percentiles,
    pub rating: RatingSummary,
    pub agents: Vec<AgentStats>,
}

fn facts(r: &SessionRow) -> SessionFacts {
    SessionFacts {
        agent: r.agent_uid,
        started_at: r.started_at,
        first_msg_at: r.first_msg_at,
        first_response_at: r.first_response_at,
        resolved_at: r.resolved_at,
        rating: r.rating,
    }
}

impl Admin {
    /// A shop's sessions, newest first.
    pub async fn shop_sessions(
        &self,
        shop: ShopId,
        q: SessionQuery,
    ) -> Result<Vec<SessionView>, AdminError> {
        let shop = self.existing_shop(shop).await?;
        let (state, limit, before) = q.bounds()?;
        let (rows, _) = ask(self.db.send(db::LoadSessions {
            shop,
            state,
            before,
            limit,
        }))
        .await?;
        Ok(rows.iter().map(SessionRow::view).collect())
    }

    /// A shop's ratings, newest first.
    pub async fn shop_ratings(
        &self,
        shop: ShopId,
        q: SessionQuery,
    ) -> Result<Vec<RatingRow>, AdminError> {
        let shop = self.existing_shop(shop).await?;
        let (_, limit, before) = q.bounds()?;
        let rows = ask(self.db.send(db::LoadRatings {
            shop,
            before,
            limit,
        }))
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| RatingRow {
                session_id: r.id,
                chat_id: r.chat_id,
                consumer_uid: r.consumer_uid.0,
                agent_uid: r.agent_uid.0,
                score: r.rating,
                comment: r.rating_comment,
                created_at: r.rated_at,
            })
            .collect())
    }

    /// The numbers of the sessions `shop` started in `[from, to)` (unix seconds; default
    /// the last 30 days up to now).
    pub async fn shop_stats(
        &self,
        shop: ShopId,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<ShopStats, AdminError> {
        let shop = self.existing_shop(shop).await?;
        let now = crate::clock::unix_now() as i64;
        let to = to.unwrap_or(now + 1);
        let from = from.unwrap_or(to - 30 * 24 * 3600);
        if from < 0 || to <= from {
            return Err(bad("from and to must be unix seconds with from < to"));
        }
        let (rows, waiting_now, written) = ask(self.db.send(db::LoadStats {
            shop,
            from,
            to,
            limit: MAX_STATS_SESSIONS,
        }))
        .await?;
        let sessions: Vec<SessionFacts> = rows.iter().map(facts).collect();
        let report = self.shop_agents(shop).await?;
        let agents = report
            .into_iter()
            .map(|a| AgentStats {
                uid: a.uid,
                status: a.status,
                connected: a.connected,
                open_sessions: a.open_sessions,
                messages: written
                    .iter()
                    .find(|(u, _)| u.0 == a.uid)
                    .map_or(0, |(_, n)| *n),
                figures: stats::agent(&sessions, crate::ids::UserId(a.uid)),
            })
            .collect();
        Ok(ShopStats {
            from,
            to,
            sessions: sessions.len(),
            waiting_now,
            first_response_secs: stats::first_response(&sessions),
            resolution_secs: stats::resolution(&sessions),
            rating: stats::ratings(&sessions),
            agents,
        })
    }

    pub async fn quick_replies(&self, shop: ShopId) -> Result<Vec<QuickReply>, AdminError> {
        let shop = self.existing_shop(shop).await?;
        Ok(ask(self.db.send(db::LoadQuickReplies { shop })).await?)
    }

    /// Creates or replaces the quick reply `reply.short_code`.
    pub async fn save_quick_reply(
        &self,
        shop: ShopId,
        reply: QuickReply,
    ) -> Result<(), AdminError> {
        let shop = self.existing_shop(shop).await?;
        let reply = reply.checked().map_err(|e| bad(e.to_string()))?;
        if !ask(self.db.send(db::SaveQuickReply { shop, reply })).await? {
            return Err(bad("the shop has too many quick replies"));
        }
        Ok(())
    }

    pub async fn delete_quick_reply(
        &self,
        shop: ShopId,
        short_code: &str,
    ) -> Result<(), AdminError> {
        let shop = self.existing_shop(shop).await?;
        let short_code = check_short_code(short_code).map_err(|e| bad(e.to_string()))?;
        if !ask(self.db.send(db::DeleteQuickReply { shop, short_code })).await? {
            return Err(AdminError::NotFound("no such quick reply"));
        }
        Ok(())
    }

    /// `shop` if it exists.
    async fn existing_shop(&self, shop: ShopId) -> Result<ShopId, AdminError> {
        let shop = positive(shop)?;
        match ask(self.db.send(db::FindShop { shop })).await? {
            Some(_) => Ok(shop),
            None => Err(AdminError::NotFound("no such shop")),
        }
    }
}
