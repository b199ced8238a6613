//! Turning a stored message into what receivers see (PROTOCOL.md §4 push table), the
//! same way for live pushes, `chat.sync` rows and an agent's backlog.

use std::sync::Arc;

use crate::config::Config;
use crate::db::models::MessageRow;
use crate::db::{MessageWithSender, NewMessage, Profile, ShopRow};
use crate::ids::{ChatId, UserId};
use crate::protocol::service::event_row;
use crate::protocol::{absolute_url, ChatPush, ChatType, MsgType, SyncRow, RECALLED_TEXT};

/// Shapes pushes; cheap to clone into every actor that sends them.
#[derive(Clone)]
pub struct Presenter {
    media_base: Arc<str>,
    system_nickname: Arc<str>,
    system_avatar: Arc<str>,
}

impl Presenter {
    pub fn new(config: &Config) -> Presenter {
        Presenter {
            media_base: Arc::from(config.media.base_url.as_str()),
            system_nickname: Arc::from(config.system.nickname.as_str()),
            system_avatar: Arc::from(config.system.avatar.as_str()),
        }
    }

    /// The name and avatar system notices are shown under.
    pub fn system_card(&self) -> (String, String) {
        (
            self.system_nickname.to_string(),
            self.url(&self.system_avatar),
        )
    }

    pub fn url(&self, path: &str) -> String {
        absolute_url(&self.media_base, path)
    }

    /// The push for `m`, stored as `msg_id`, sent by `sender` (for customer service, of `shop`).
    pub fn push(
        &self,
        m: &NewMessage,
        msg_id: i64,
        sender: &Profile,
        shop: Option<&ShopRow>,
    ) -> ChatPush {
        let mut p = ChatPush {
            nickname: sender.nickname.clone(),
            avatar: self.url(&sender.avatar),
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
            auto: m.auto_reply,
            card: m.card.as_deref().and_then(|j| serde_json::from_str(j).ok()),
            recalled: m.recalled_at > 0,
            seq: 0,
            broadcast: false,
        };
        if p.recalled {
            // The text stays in the database for the platform; everyone else sees this.
            p.msg_type = MsgType::Text;
            p.msg = RECALLED_TEXT.to_string();
            p.card = None;
        }
        match m.chat_type {
            ChatType::Group => p.group_id = Some(m.group_id),
            ChatType::System => {
                p.nickname = self.system_nickname.to_string();
                p.avatar = self.url(&self.system_avatar);
                p.id = Some(UserId(0));
                // Stored once for everyone, in conversation `system_0` (§17).
                p.broadcast = m.to_uid.0 == 0;
            }
            ChatType::Service => {
                p.shop_id = Some(m.shop_id);
                if m.auto_reply {
                    // From the shop itself: no agent wrote it.
                    p.nickname = shop
                        .map_or_else(|| ShopRow::placeholder_name(m.shop_id), |s| s.name.clone());
                    p.avatar = self.url(shop.map_or("", |s| s.logo.as_str()));
                    p.id = None;
                } else if m.from_agent {
                    // The consumer sees the shop, and which of its agents answered.
                    p.service_nickname = Some(std::mem::take(&mut p.nickname));
                    p.service_avatar = Some(std::mem::take(&mut p.avatar));
                    p.nickname = shop
                        .map_or_else(|| ShopRow::placeholder_name(m.shop_id), |s| s.name.clone());
                    p.avatar = self.url(shop.map_or("", |s| s.logo.as_str()));
                    p.id = None;
                } else {
                    p.id = Some(m.consumer_uid);
                }
            }
            _ => {}
        }
        p
    }

    /// The push shape of a message read back from the database.
    pub fn stored(&self, r: MessageWithSender) -> ChatPush {
        let seq = r.message.seq;
        let (id, m) = split_row(r.message);
        let mut push = self.push(&m, id, &r.sender, r.shop.as_ref());
        push.seq = seq;
        push
    }

    /// A stored message as `reader` sees it: a notice to everyone (stored once, as
    /// `system_0`) is in the reader's own `system_{uid}` conversation, as when it was pushed.
    pub fn stored_for(&self, r: MessageWithSender, reader: UserId) -> ChatPush {
        let broadcast = r.message.chat_type == ChatType::System && r.message.to_uid.0 == 0;
        let mut push = self.stored(r);
        if broadcast {
            push.chat_id = ChatId::system(reader).0;
        }
        push
    }

    /// A `chat.sync` row: a message as `reader` sees it, or a stored event; `None` for
    /// an event meant for someone else (a rating request is the consumer's alone).
    pub fn sync_row(&self, r: MessageWithSender, reader: UserId) -> Option<SyncRow> {
        let m = &r.message;
        match m.event_type.as_deref() {
            Some("rating_request") if m.consumer_uid != reader => None,
            Some(_) => Some(SyncRow::Event(event_row(
                &m.msg,
                m.id.0,
                m.createtime,
                m.seq,
            ))),
            None => Some(SyncRow::Message(self.stored_for(r, reader))),
        }
    }
}

/// A history row split into its id and the message as it was stored.
pub fn split_row(r: MessageRow) -> (i64, NewMessage) {
    (
        r.id.0,
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
            from_agent: r.from_agent,
            client_msg_id: r.client_msg_id,
            createtime: r.createtime,
            agent_uid: r.agent_uid,
            auto_reply: r.auto_reply,
            event_type: r.event_type,
            card: r.card,
            recalled_at: r.recalled_at,
            masked: false,
        },
    )
}
