//! Turning a stored message into what receivers see (PROTOCOL.md §4 push table).

use crate::db::models::MessageRow;
use crate::db::{NewMessage, Profile};
use crate::protocol::{absolute_url, ChatPush};

/// The push for `m` (stored as `msg_id`) sent by `sender`.
pub fn chat_push(m: &NewMessage, msg_id: i64, sender: &Profile, media_base: &str) -> ChatPush {
    ChatPush {
        nickname: sender.nickname.clone(),
        avatar: absolute_url(media_base, &sender.avatar),
        id: Some(m.from_uid),
        service_nickname: None,
        service_avatar: None,
        shop_id: None,
        group_id: None,
        chat_id: m.chat_id.clone(),
        chat_type: m.chat_type,
        msg_type: m.msg_type,
        msg: m.msg.clone(),
        createtime: m.createtime,
        msg_id,
        client_msg_id: m.client_msg_id.clone(),
    }
}

/// A history row split into its id and the message as it was stored.
pub fn split_row(r: MessageRow) -> (i64, NewMessage) {
    (
        r.id,
        NewMessage {
            chat_id: r.chat_id,
            chat_type: r.chat_type,
            msg_type: r.msg_type,
            msg: r.msg,
            from_uid: r.from_uid,
            to_uid: r.to_uid,
            shop_id: r.shop_id,
            group_id: r.group_id,
            consumer_uid: r.consumer_uid,
            from_service: r.from_service,
            client_msg_id: r.client_msg_id,
            createtime: r.createtime,
        },
    )
}
