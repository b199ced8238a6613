//! The agent's desk (PROTOCOL.md §10): what agents and consumers ask of customer service
//! that the database answers alone: who am I, the queue, sessions, a customer's past,
//! quick replies, ratings. Every request is checked against the caller's stored agent row
//! (its shop and role), never against what the client claims.

use actix::Addr;

use crate::chats::ask;
use crate::db::sessions::RateRefusal;
use crate::db::{self, AgentRow, DbExecutor, ShopRow};
use crate::domain::Presenter;
use crate::error::ChatError;
use crate::ids::{ChatId, ShopId, UserId};
use crate::protocol::service::{
    AgentRole, AgentStatus, Customer, Me, MeDesk, QueueRow, Rows, SessionView, MAX_SESSIONS_PAGE,
};
use crate::protocol::{self, Request};

/// A consumer's sessions `service.customer` shows.
const CUSTOMER_SESSIONS: i64 = 50;

/// The caller's agent row and shop, if it is an agent.
pub async fn desk(
    db: &Addr<DbExecutor>,
    uid: UserId,
) -> Result<Option<(AgentRow, ShopRow)>, ChatError> {
    ask(db.send(db::LoadDesk { uid })).await
}

/// The caller's shop if it is one of its agents, else `forbidden`.
pub async fn agent_shop(db: &Addr<DbExecutor>, uid: UserId) -> Result<ShopId, ChatError> {
    desk(db, uid)
        .await?
        .map(|(a, _)| a.shop_id)
        .ok_or(ChatError::Forbidden)
}

/// The caller's shop if it is one of its supervisors, else `forbidden`.
pub async fn supervised_shop(db: &Addr<DbExecutor>, uid: UserId) -> Result<ShopId, ChatError> {
    match desk(db, uid).await? {
        Some((a, _)) if a.supervisor => Ok(a.shop_id),
        _ => Err(ChatError::Forbidden),
    }
}

/// Answers one of the desk's requests; `unknown_action` for any other.
pub async fn answer(
    db: &Addr<DbExecutor>,
    presenter: &Presenter,
    uid: UserId,
    request: Request,
) -> Result<String, ChatError> {
    match request {
        Request::ServiceMe => {
            let desk = desk(db, uid).await?.map(|(a, s)| MeDesk {
                shop_id: s.id.0,
                shop_name: s.name,
                role: AgentRole::from_supervisor(a.supervisor),
                status: AgentStatus::from_flags(a.online, a.away),
            });
            Ok(protocol::ok(&Me {
                agent: desk.is_some(),
                desk,
            }))
        }
        Request::ServiceQueue => {
            let shop = agent_shop(db, uid).await?;
            let rows = ask(db.send(db::LoadQueue { shop }))
                .await?
                .into_iter()
                .map(|q| QueueRow {
                    chat_id: q.chat_id,
                    consumer_uid: q.consumer.uid.0,
                    nickname: q.consumer.nickname,
                    avatar: presenter.url(&q.consumer.avatar),
                    waiting_since: q.waiting_since,
                    last_msg: q.last_msg,
                })
                .collect();
            Ok(protocol::ok(&Rows { rows }))
        }
        Request::ServiceSessions(r) => {
            let (state, limit) = r.bounds()?;
            let shop = agent_shop(db, uid).await?;
            let (rows, side) = ask(db.send(db::LoadSessions {
                shop,
                state: Some(state),
                before: 0,
                limit,
            }))
            .await?;
            let rows: Vec<SessionView> = rows
                .iter()
                .map(|r| {
                    let mut v = r.view();
                    v.unread_count = Some(side.get(&r.chat_id).map_or(0, |s| s.1));
                    v
                })
                .collect();
            Ok(protocol::ok(&Rows { rows }))
        }
        Request::QuickReplies => {
            let shop = agent_shop(db, uid).await?;
            let rows = ask(db.send(db::LoadQuickReplies { shop })).await?;
            Ok(protocol::ok(&Rows { rows }))
        }
        Request::SaveQuickReply(reply) => {
            let shop = supervised_shop(db, uid).await?;
            if !ask(db.send(db::SaveQuickReply { shop, reply })).await? {
                return Err(ChatError::TooMany);
            }
            Ok(protocol::ok(&()))
        }
        Request::DeleteQuickReply(code) => {
            let shop = supervised_shop(db, uid).await?;
            let short_code = code.short_code;
            if !ask(db.send(db::DeleteQuickReply { shop, short_code })).await? {
                return Err(ChatError::NotFound);
            }
            Ok(protocol::ok(&()))
        }
        Request::ServiceCustomer(c) => {
            let shop = agent_shop(db, uid).await?;
            let consumer = UserId(c.consumer_uid);
            let (profile, sessions) = ask(db.send(db::LoadCustomer {
                shop,
                consumer,
                limit: CUSTOMER_SESSIONS.min(MAX_SESSIONS_PAGE),
            }))
            .await?;
            Ok(protocol::ok(&Customer {
                uid: consumer.0,
                nickname: profile.nickname,
                avatar: presenter.url(&profile.avatar),
                sessions: sessions.iter().map(|s| s.view()).collect(),
            }))
        }
        Request::Rate(r) => {
            let shop = ChatId::service_shop(&r.chat_id, uid).ok_or(ChatError::Forbidden)?;
            let rated = ask(db.send(db::RateSession {
                shop,
                consumer: uid,
                score: r.score as i32,
                comment: r.comment,
            }))
            .await?;
            match rated {
                Ok(session) => Ok(protocol::ok(&session.view())),
                Err(RateRefusal::AlreadyRated) => Err(ChatError::AlreadyRated),
                Err(RateRefusal::NothingToRate) => Err(ChatError::NothingToRate),
            }
        }
        _ => Err(ChatError::UnknownAction),
    }
}
