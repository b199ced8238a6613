//! Conversation lists, read state and history: the operations behind both the
//! WebSocket actions (PROTOCOL.md §6) and the original HTTP API (§8), so the two
//! surfaces cannot drift apart.

use actix::{dev::Request, Addr, Handler, Message as ActixMessage};

use crate::db::{self, DbError, DbExecutor, Mark};
use crate::error::ChatError;
use crate::ids::UserId;
use crate::protocol::{
    absolute_url, ChatRef, RecentChatRow, RecentChats, RecordRow, Records, Role,
};

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

/// The caller's conversations, newest first, with the sum of their unread counts.
pub async fn recent_chats(
    db: &Addr<DbExecutor>,
    uid: UserId,
    is_service: bool,
    media_base: &str,
) -> Result<RecentChats, ChatError> {
    if is_service {
        // Shop-side lists belong to agents; agents arrive with customer service.
        return Err(ChatError::Forbidden);
    }
    let views = ask(db.send(db::RecentChats { uid })).await?;
    let rows: Vec<RecentChatRow> = views
        .into_iter()
        .map(|v| RecentChatRow {
            id: v.row.id,
            uid: v.row.owner_uid,
            chat_id: v.row.chat_id,
            shop_id: v.row.shop_id,
            friend_uid: v.row.peer_id,
            friend_name: v.peer_name,
            friend_avatar: absolute_url(media_base, &v.peer_avatar),
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

/// Clears the unread count of, or hides, the caller's side of a conversation.
pub async fn mark_chat(
    db: &Addr<DbExecutor>,
    uid: UserId,
    chat: ChatRef,
    mark: Mark,
) -> Result<(), ChatError> {
    match chat.role()? {
        Role::Consumer => {}
        // The shared shop side belongs to agents; agents arrive with customer service.
        Role::Agent => return Err(ChatError::Forbidden),
    }
    ask(db.send(db::MarkChat {
        owner: uid.0,
        shop: 0,
        chat_id: chat.chat_id,
        mark,
    }))
    .await?;
    Ok(())
}

/// Which conversation's history is asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordTarget {
    ChatId(String),
    Peer { to_uid: i64, chat_type: i64 },
}

/// The conversation id the caller may read, or why not: only participants may.
pub fn readable_chat(uid: UserId, target: &RecordTarget) -> Result<String, ChatError> {
    match target {
        RecordTarget::ChatId(chat) => match parse_direct(chat) {
            Some((a, b)) if a == uid.0 || b == uid.0 => Ok(chat.clone()),
            _ => Err(ChatError::Forbidden),
        },
        RecordTarget::Peer { to_uid, chat_type } => match *chat_type {
            1 if *to_uid > 0 => Ok(crate::ids::ChatId::direct(uid, UserId(*to_uid)).0),
            1 => Err(ChatError::bad("to_uid must be a positive id")),
            2..=4 => Err(ChatError::UnsupportedChatType),
            _ => Err(ChatError::bad("chat_type must be 1, 2, 3 or 4")),
        },
    }
}

/// `"7_12"` → (7, 12): a 1:1 chat id is exactly two positive ids joined by one underscore.
fn parse_direct(chat: &str) -> Option<(i64, i64)> {
    let (a, b) = chat.split_once('_')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(a) || !digits(b) {
        return None;
    }
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Page `page` (from 1) of a conversation the caller takes part in, newest first.
pub async fn records(
    db: &Addr<DbExecutor>,
    uid: UserId,
    target: RecordTarget,
    page: i64,
    media_base: &str,
) -> Result<Records, ChatError> {
    if page < 1 {
        return Err(ChatError::bad("page starts at 1"));
    }
    let chat_id = readable_chat(uid, &target)?;
    let (rows, total) = ask(db.send(db::LoadRecords {
        chat_id,
        page,
        per_page: RECORDS_PER_PAGE,
    }))
    .await?;
    let rows = rows
        .into_iter()
        .map(|r| RecordRow {
            msg_id: r.message.id,
            avatar: absolute_url(media_base, &r.sender.avatar),
            nickname: r.sender.nickname,
            chat_id: r.message.chat_id,
            from_uid: r.message.from_uid,
            to_uid: r.message.to_uid,
            chat_type: r.message.chat_type,
            msg_type: r.message.msg_type,
            msg: r.message.msg,
            createtime: r.message.createtime,
            mine: r.message.from_uid == uid.0,
        })
        .collect();
    Ok(Records { rows, total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_participants_may_read_a_direct_chat() {
        let me = UserId(7);
        assert_eq!(
            readable_chat(me, &RecordTarget::ChatId("7_12".into())),
            Ok("7_12".into())
        );
        assert_eq!(
            readable_chat(me, &RecordTarget::ChatId("1_7".into())),
            Ok("1_7".into())
        );
        for other in [
            "12_13", "77_1", "7", "7__12", "3____7", "a_7", "_7", "group_7",
        ] {
            assert_eq!(
                readable_chat(me, &RecordTarget::ChatId(other.into())),
                Err(ChatError::Forbidden),
                "{other}"
            );
        }
        let peer = RecordTarget::Peer {
            to_uid: 3,
            chat_type: 1,
        };
        assert_eq!(readable_chat(me, &peer), Ok("3_7".into()));
    }
}
