//! Conversation lists, read state and history: the operations behind both the
//! WebSocket actions (PROTOCOL.md §6) and the original HTTP API (§8), so the two
//! surfaces cannot drift apart.

use actix::{dev::Request, Addr, Handler, Message as ActixMessage};

use crate::db::history::RangeScope;
use crate::db::{self, DbError, DbExecutor, Mark, RecordScope, Side};
use crate::domain::Presenter;
use crate::error::ChatError;
use crate::ids::{ChatId, ChatKind, GroupId, ShopId, UserId};
use crate::protocol::gaps::{self, HeadRow, HeadsPage, HeadsRequest, RangePage, RangeRequest};
use crate::protocol::{ChatRef, ChatType, RecentChatRow, RecentChats, RecordRow, Records, Role};

/// Messages per page of `/user/getChatRecord`.
pub const RECORDS_PER_PAGE: i64 = 20;

/// Awaits a DbExecutor command; a failure is logged here and reported as storage_unavailable.
pub async fn ask<M, T>(req: Request<DbExecutor, M>) -> Result<T, ChatError>
where
    M: ActixMessage<Result = Result<T, DbError>> + Send + 'static,
    DbExecutor: Handler<M>,
    T: Send + 'static,
{
    match req.await {
        Ok(Ok(v)) => Ok(v),
        // Nobody is left to tell.
        Ok(Err(DbError::Cancelled)) => Err(ChatError::ConnectionGone),
        Ok(Err(e)) => {
            log::error!("database: {e}");
            Err(ChatError::StorageUnavailable)
        }
        Err(e) => {
            log::error!("database executor unreachable: {e}");
            Err(ChatError::StorageUnavailable)
        }
    }
}

/// The shop `uid` serves, or `forbidden`: a shop's side belongs to its agents.
async fn agent_shop(db: &Addr<DbExecutor>, uid: UserId) -> Result<ShopId, ChatError> {
    ask(db.send(db::AgentShop { uid }))
        .await?
        .ok_or(ChatError::Forbidden)
}

/// The caller's conversations (`as_agent`: its shop's), newest first, with the
/// sum of their unread counts.
pub async fn recent_chats(
    db: &Addr<DbExecutor>,
    uid: UserId,
    as_agent: bool,
    presenter: &Presenter,
) -> Result<RecentChats, ChatError> {
    let side = if as_agent {
        Side::Shop(agent_shop(db, uid).await?)
    } else {
        Side::User(uid)
    };
    let mut views = ask(db.send(db::RecentChats { side })).await?;
    if let Side::User(uid) = side {
        // Groups and notices keep cursors rather than rows; they join the list here.
        views.extend(ask(db.send(db::CursorRows { uid })).await?);
        views.sort_by_key(|v| std::cmp::Reverse((v.row.last_time, v.row.id)));
        views.truncate(db::conversations::MAX_RECENT as usize);
    }
    let keys = views
        .iter()
        .map(|v| (v.row.chat_id.clone(), v.row.shop_id))
        .collect();
    let seqs = ask(db.send(db::LastSeqs { keys })).await?;
    let rows: Vec<RecentChatRow> = views
        .into_iter()
        .map(|mut v| {
            if v.row.chat_type == crate::protocol::ChatType::System {
                (v.peer_name, v.peer_avatar) = presenter.system_card();
            }
            v
        })
        .map(|v| {
            (
                seqs.get(&(v.row.chat_id.clone(), v.row.shop_id)).copied(),
                v,
            )
        })
        .map(|(last_seq, v)| RecentChatRow {
            last_seq: last_seq.unwrap_or(0),
            id: v.row.id,
            uid: v.row.owner_uid,
            chat_id: v.row.chat_id,
            shop_id: v.row.shop_id,
            friend_uid: v.row.peer_id,
            friend_name: v.peer_name,
            friend_avatar: presenter.url(&v.peer_avatar),
            last_msg: v.row.last_msg,
            last_uid: v.row.last_uid,
            last_time: v.row.last_time,
            chat_type: v.row.chat_type,
            msg_type: v.row.msg_type,
            unread_count: i64::from(v.row.unread_count),
        })
        .collect();
    let unread_count = rows.iter().map(|r| r.unread_count).sum();
    Ok(RecentChats { rows, unread_count })
}

/// Clears the unread count of, or hides, the caller's side of a conversation (role
/// 1: its shop's shared side).
pub async fn mark_chat(
    db: &Addr<DbExecutor>,
    uid: UserId,
    chat: ChatRef,
    mark: Mark,
) -> Result<(), ChatError> {
    if let Some(group) = group_of(&chat.chat_id) {
        return match ask(db.send(db::MarkGroup { group, uid, mark })).await? {
            true => Ok(()),
            false => Err(ChatError::Forbidden),
        };
    }
    if let Some(ChatKind::System(owner)) = ChatId::parse(&chat.chat_id) {
        if owner != uid {
            return Err(ChatError::Forbidden);
        }
        return ask(db.send(db::MarkNotices { uid, mark })).await;
    }
    let side = match chat.role()? {
        Role::Consumer => Side::User(uid),
        Role::Agent => Side::Shop(agent_shop(db, uid).await?),
    };
    ask(db.send(db::MarkChat {
        side,
        chat_id: chat.chat_id,
        mark,
    }))
    .await?;
    Ok(())
}

/// The other side of a 1:1 or customer-service conversation `uid` reads, and the chat_id
/// its row has; groups and notices have none.
fn other_side(uid: UserId, scope: &RecordScope) -> Option<(Side, String)> {
    match scope {
        RecordScope::Direct(chat) => match ChatId::parse(chat)? {
            ChatKind::Direct(a, b) => {
                Some((Side::User(if a == uid { b } else { a }), chat.clone()))
            }
            _ => None,
        },
        RecordScope::Service { shop, consumer } => {
            let chat = ChatId::service(*shop, *consumer).0;
            match *consumer == uid {
                true => Some((Side::Shop(*shop), chat)),
                false => Some((Side::User(*consumer), chat)),
            }
        }
        RecordScope::Group { .. } | RecordScope::Notices(_) => None,
    }
}

/// A read mark that moved a 1:1 or customer-service read cursor: who read what, and how far.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadMoved {
    pub reader: Side,
    pub chat_id: String,
    pub read_msg_id: i64,
}

/// `chat.setChatRead`: clears (or, with `msg_id`, recounts) the caller's unread count;
/// on a 1:1 or customer-service conversation it also moves the caller's read cursor,
/// and says so if it moved, for the receipt.
pub async fn read_chat(
    db: &Addr<DbExecutor>,
    uid: UserId,
    chat: ChatRef,
) -> Result<Option<ReadMoved>, ChatError> {
    match ChatId::parse(&chat.chat_id) {
        Some(ChatKind::Direct(..) | ChatKind::Service(..)) => {}
        _ => return mark_chat(db, uid, chat, Mark::Read).await.map(|_| None),
    }
    let reader = match chat.role()? {
        Role::Consumer => Side::User(uid),
        Role::Agent => Side::Shop(agent_shop(db, uid).await?),
    };
    let moved = ask(db.send(db::MarkRead {
        side: reader,
        chat_id: chat.chat_id.clone(),
        upto: chat.msg_id,
    }))
    .await?
    .map_err(|_| ChatError::bad("msg_id is not a message of this chat"))?;
    Ok(moved.map(|read_msg_id| ReadMoved {
        reader,
        chat_id: chat.chat_id,
        read_msg_id,
    }))
}

/// `"group_5"` → group 5.
fn group_of(chat: &str) -> Option<GroupId> {
    match ChatId::parse(chat)? {
        ChatKind::Group(g) => Some(g),
        _ => None,
    }
}

/// Which conversation's history is asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordTarget {
    ChatId(String),
    Peer { to_uid: i64, chat_type: i64 },
}

/// The conversation the caller may read, or why not: only participants may (for
/// customer service, the consumer and the shop's agents).
pub fn readable_scope(
    uid: UserId,
    agent_shop: Option<ShopId>,
    target: &RecordTarget,
) -> Result<RecordScope, ChatError> {
    let service = |shop: i64, consumer: i64| RecordScope::Service {
        shop: ShopId(shop),
        consumer: UserId(consumer),
    };
    match target {
        RecordTarget::ChatId(chat) => match ChatId::parse(chat).ok_or(ChatError::Forbidden)? {
            ChatKind::System(owner) if owner == uid => Ok(RecordScope::Notices(uid)),
            ChatKind::Direct(a, b) if a == uid || b == uid => Ok(RecordScope::Direct(chat.clone())),
            // The string does not say which number is the shop: the caller's role does.
            ChatKind::Service(a, b) => match agent_shop.map(|s| s.0) {
                Some(shop) if shop == a => Ok(service(a, b)),
                Some(shop) if shop == b => Ok(service(b, a)),
                _ if uid.0 == b => Ok(service(a, b)),
                _ if uid.0 == a => Ok(service(b, a)),
                _ => Err(ChatError::Forbidden),
            },
            ChatKind::System(_) | ChatKind::Direct(..) | ChatKind::Group(_) => {
                Err(ChatError::Forbidden)
            }
        },
        RecordTarget::Peer { to_uid, chat_type } => {
            if *to_uid <= 0 {
                return Err(ChatError::bad("to_uid must be a positive id"));
            }
            match *chat_type {
                1 => Ok(RecordScope::Direct(ChatId::direct(uid, UserId(*to_uid)).0)),
                // An agent reads its shop's conversation with consumer `to_uid`; anyone
                // else their own conversation with shop `to_uid`.
                4 => Ok(match agent_shop {
                    Some(shop) => service(shop.0, *to_uid),
                    None => service(*to_uid, uid.0),
                }),
                3 => Ok(RecordScope::Notices(uid)),
                // Groups need their membership; `records` resolves them first.
                2 => Err(ChatError::Forbidden),
                _ => Err(ChatError::bad("chat_type must be 1, 2, 3 or 4")),
            }
        }
    }
}

/// Page `page` (from 1) of a conversation the caller takes part in, newest first.
pub async fn records(
    db: &Addr<DbExecutor>,
    uid: UserId,
    target: RecordTarget,
    page: i64,
    presenter: &Presenter,
) -> Result<Records, ChatError> {
    if page < 1 {
        return Err(ChatError::bad("page starts at 1"));
    }
    let group = match &target {
        RecordTarget::ChatId(chat) => group_of(chat),
        RecordTarget::Peer {
            to_uid,
            chat_type: 2,
        } if *to_uid > 0 => Some(GroupId(*to_uid)),
        RecordTarget::Peer { .. } => None,
    };
    let scope = match group {
        // Members read their group from when they joined.
        Some(group) => match ask(db.send(db::GroupView { group, uid })).await? {
            Some(from) => RecordScope::Group { group, from },
            None => return Err(ChatError::Forbidden),
        },
        None => {
            let agent_shop = ask(db.send(db::AgentShop { uid })).await?;
            readable_scope(uid, agent_shop, &target)?
        }
    };
    // How far the other side has read: the caller's own rows say whether they were.
    let peer_read = match other_side(uid, &scope) {
        Some((side, chat_id)) => Some(ask(db.send(db::ReadCursor { side, chat_id })).await?),
        None => None,
    };
    let (rows, total) = ask(db.send(db::LoadRecords {
        scope,
        page,
        per_page: RECORDS_PER_PAGE,
    }))
    .await?;
    let rows = rows
        .into_iter()
        .map(|r| {
            let (from_uid, to_uid) = (r.message.from_uid, r.message.to_uid);
            let mine = from_uid == uid;
            let read = peer_read.filter(|_| mine).map(|at| r.message.id.0 <= at);
            let push = presenter.stored_for(r, uid);
            RecordRow {
                msg_id: push.msg_id,
                avatar: push.avatar,
                nickname: push.nickname,
                chat_id: push.chat_id,
                from_uid: from_uid.0,
                to_uid: to_uid.0,
                chat_type: push.chat_type,
                msg_type: push.msg_type,
                msg: push.msg,
                createtime: push.createtime,
                mine,
                read,
                auto: push.auto,
                card: push.card,
                recalled: push.recalled,
            }
        })
        .collect();
    Ok(Records { rows, total })
}

/// The sequence of the notices to everyone (PROTOCOL.md §17), stored once as `system_0`.
pub const BROADCASTS: &str = "system_0";

/// The conversation `chat_id` names for `uid` in `chat.range`, or `forbidden`: the same
/// participants as its history, and `system_0`, the notices to everyone, for anyone.
async fn range_scope(
    db: &Addr<DbExecutor>,
    uid: UserId,
    chat_id: &str,
) -> Result<RangeScope, ChatError> {
    let plain = |chat_id: String, after_id: i64| RangeScope {
        chat_id,
        shop_id: 0,
        after_id,
    };
    // Not a conversation id of its own elsewhere (a broadcast shows as `system_{uid}`).
    if chat_id == BROADCASTS {
        let from = ask(db.send(db::BroadcastsFrom { uid })).await?;
        return Ok(plain(chat_id.to_string(), from));
    }
    match ChatId::parse(chat_id).ok_or(ChatError::Forbidden)? {
        ChatKind::Group(group) => match ask(db.send(db::GroupView { group, uid })).await? {
            Some(from) => Ok(plain(chat_id.to_string(), from)),
            None => Err(ChatError::Forbidden),
        },
        _ => {
            let agent_shop = ask(db.send(db::AgentShop { uid })).await?;
            let target = RecordTarget::ChatId(chat_id.to_string());
            Ok(match readable_scope(uid, agent_shop, &target)? {
                RecordScope::Direct(chat) => plain(chat, 0),
                RecordScope::Service { shop, consumer } => RangeScope {
                    chat_id: ChatId::service(shop, consumer).0,
                    shop_id: shop.0,
                    after_id: 0,
                },
                // Its own notices: `system_{uid}`.
                RecordScope::Notices(_) => plain(chat_id.to_string(), 0),
                RecordScope::Group { .. } => return Err(ChatError::Forbidden),
            })
        }
    }
}

/// `chat.range` (PROTOCOL.md §17): a conversation's rows after a seq, as the caller sees them.
pub async fn range(
    db: &Addr<DbExecutor>,
    uid: UserId,
    req: RangeRequest,
    presenter: &Presenter,
) -> Result<RangePage, ChatError> {
    let (after_seq, limit) = req.bounds();
    let scope = range_scope(db, uid, &req.chat_id).await?;
    let (rows, has_more) = ask(db.send(db::LoadRange {
        scope: scope.clone(),
        after_seq,
        limit,
    }))
    .await?;
    let rows = rows
        .into_iter()
        .map(|r| (r.message.seq, presenter.sync_row(r, uid)))
        .collect();
    Ok(RangePage::within_bytes(
        req.chat_id,
        scope.shop_id,
        after_seq,
        rows,
        has_more,
    ))
}

/// `chat.heads` (PROTOCOL.md §17): the caller's conversations that moved since `since`.
pub async fn heads(
    db: &Addr<DbExecutor>,
    uid: UserId,
    req: HeadsRequest,
) -> Result<HeadsPage, ChatError> {
    let (since, after, limit) = req.bounds();
    let agent_shop = ask(db.send(db::AgentShop { uid })).await?;
    let (heads, has_more) = ask(db.send(db::LoadHeads {
        uid,
        agent_shop,
        since,
        after,
        limit,
    }))
    .await?;
    let next = has_more
        .then(|| heads.last().map(|h| gaps::cursor(&h.chat_id, h.shop_id)))
        .flatten();
    let rows = heads
        .into_iter()
        .map(|h| HeadRow {
            chat_type: match (ChatId::parse(&h.chat_id), h.shop_id) {
                (_, shop) if shop > 0 => ChatType::Service,
                (Some(ChatKind::Group(_)), _) => ChatType::Group,
                (Some(ChatKind::System(_)), _) => ChatType::System,
                _ if h.chat_id == BROADCASTS => ChatType::System,
                _ => ChatType::Direct,
            },
            chat_id: h.chat_id,
            shop_id: h.shop_id,
            last_seq: h.last_seq,
            updated_at: h.updated_at,
            read_msg_id: h.read_msg_id,
        })
        .collect();
    Ok(HeadsPage {
        rows,
        has_more,
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_participants_may_read_a_direct_chat() {
        let me = UserId(7);
        let direct = |c: &str| RecordTarget::ChatId(c.into());
        assert_eq!(
            readable_scope(me, None, &direct("7_12")),
            Ok(RecordScope::Direct("7_12".into()))
        );
        assert_eq!(
            readable_scope(me, None, &direct("1_7")),
            Ok(RecordScope::Direct("1_7".into()))
        );
        for other in [
            "12_13", "77_1", "7", "7__12", "a_7", "_7", "group_7", "3____8",
        ] {
            assert_eq!(
                readable_scope(me, None, &direct(other)),
                Err(ChatError::Forbidden),
                "{other}"
            );
        }
        let peer = RecordTarget::Peer {
            to_uid: 3,
            chat_type: 1,
        };
        assert_eq!(
            readable_scope(me, None, &peer),
            Ok(RecordScope::Direct("3_7".into()))
        );
    }

    #[test]
    fn service_history_is_named_by_shop_and_consumer_from_the_callers_role() {
        let svc = |shop: i64, consumer: i64| RecordScope::Service {
            shop: ShopId(shop),
            consumer: UserId(consumer),
        };
        let chat = RecordTarget::ChatId("3____12".into());
        // Consumer 12 of shop 3, and consumer 3 of shop 12, share the string.
        assert_eq!(readable_scope(UserId(12), None, &chat), Ok(svc(3, 12)));
        assert_eq!(readable_scope(UserId(3), None, &chat), Ok(svc(12, 3)));
        assert_eq!(
            readable_scope(UserId(50), Some(ShopId(3)), &chat),
            Ok(svc(3, 12))
        );
        assert_eq!(
            readable_scope(UserId(50), Some(ShopId(12)), &chat),
            Ok(svc(12, 3))
        );
        assert_eq!(
            readable_scope(UserId(50), Some(ShopId(4)), &chat),
            Err(ChatError::Forbidden)
        );
        assert_eq!(
            readable_scope(UserId(50), None, &chat),
            Err(ChatError::Forbidden)
        );
        let peer = RecordTarget::Peer {
            to_uid: 3,
            chat_type: 4,
        };
        assert_eq!(readable_scope(UserId(12), None, &peer), Ok(svc(3, 12)));
        assert_eq!(
            readable_scope(UserId(50), Some(ShopId(9)), &peer),
            Ok(svc(9, 3))
        );
    }
}
