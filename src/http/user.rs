//! `/user/index`, `/user/chatRecently`, `/user/getChatRecord` (PROTOCOL.md §8).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::api::{decode, ok_with, state, Caller};
use super::error::HttpError;
use crate::chats::{self, ask, RecordTarget};
use crate::db::LoadIndex;
use crate::ids::UserId;
use crate::protocol::{absolute_url, lenient};
use crate::server::OnlineAmong;

/// Users listed by `/user/index`.
const FRIEND_LIST_SIZE: i64 = 20;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/user/index", web::post().to(index))
        .route("/user/chatRecently", web::post().to(chat_recently))
        .route("/user/getChatRecord", web::post().to(chat_record));
}

async fn index(req: HttpRequest, caller: Caller) -> Result<HttpResponse, HttpError> {
    let st = state(&req);
    let base = &st.config.media.base_url;
    let (mine, friends) = ask(st.db.send(LoadIndex {
        uid: caller.0,
        limit: FRIEND_LIST_SIZE,
    }))
    .await?;
    let uids = friends.iter().map(|f| UserId(f.id)).collect();
    let online = st
        .server
        .send(OnlineAmong { uids })
        .await
        .map_or(0, |v| v.len());
    let list: Vec<_> = friends
        .into_iter()
        .map(|f| json!({"username": f.nickname, "avatar": absolute_url(base, &f.avatar), "id": f.id, "sign": f.sign}))
        .collect();
    Ok(ok_with(
        None,
        json!({
            "mine": {"id": mine.uid.0, "nickname": mine.nickname, "avatar": absolute_url(base, &mine.avatar)},
            "friend": [{"groupname": "分组一", "id": 1, "online": online, "list": list}],
        }),
    ))
}

async fn chat_recently(
    req: HttpRequest,
    caller: Caller,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let q: crate::protocol::RecentChatRequest = decode(&req, &body)?;
    let st = state(&req);
    let list = chats::recent_chats(
        &st.reads,
        caller.0,
        q.as_agent.unwrap_or(false),
        &st.presenter,
    )
    .await?;
    Ok(ok_with(None, list))
}

#[derive(Deserialize)]
struct RecordQuery {
    #[serde(default)]
    chat_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    to_uid: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    chat_type: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    page: Option<i64>,
}

async fn chat_record(
    req: HttpRequest,
    caller: Caller,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let q: RecordQuery = decode(&req, &body)?;
    let target = match (q.chat_id.filter(|c| !c.is_empty()), q.to_uid, q.chat_type) {
        (Some(chat), _, _) => RecordTarget::ChatId(chat),
        (None, Some(to_uid), Some(chat_type)) => RecordTarget::Peer { to_uid, chat_type },
        _ => {
            return Err(crate::error::ChatError::bad(
                "chat_id, or to_uid and chat_type, are required",
            )
            .into())
        }
    };
    let st = state(&req);
    let records = chats::records(
        &st.reads,
        caller.0,
        target,
        q.page.unwrap_or(1),
        &st.presenter,
    )
    .await?;
    Ok(ok_with(None, records))
}
