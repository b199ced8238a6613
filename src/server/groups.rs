//! ChatServer's side of groups and system notices. Group membership is read inside the
//! storing transaction (so a member who has left gets nothing stored after), and
//! notices go through the same write queue as every other message.

use actix::prelude::*;
use tokio::sync::oneshot;

use super::{answer_later, ChatServer, Notify, ReplyTx};
use crate::chats::ask;
use crate::db::groups::{Joined, Joiner};
use crate::db::{CreateGroup, GroupMembers, JoinGroup, LeaveGroup, NewMessage, UserGroups};
use crate::error::ChatError;
use crate::ids::{ChatId, GroupId, MsgId, UserId};
use crate::protocol::{self, code, ChatPush, ChatType, MemberRow, Request, SendMsg};
use crate::writes::StoreNotice;

impl ChatServer {
    /// The message and push of a chat_type 2 send (`to_uid` is the group); whether the
    /// sender may post there is decided when it is stored.
    pub(super) fn group_send(
        &self,
        uid: UserId,
        m: SendMsg,
    ) -> Result<(NewMessage, ChatPush), ChatError> {
        let client_msg_id = m.validate_common(self.max_msg_chars)?;
        let msg_type = m.kind()?;
        let group = GroupId(m.to_uid);
        let sender = self.sender_profile(uid)?;
        let card = m.checked_card.clone();
        let mut message = NewMessage::new(
            ChatType::Group,
            ChatId::group(group).0,
            msg_type,
            m.msg,
            uid,
            // The original stores a group message's group id as its to_uid.
            UserId(group.0),
            client_msg_id,
        );
        message.group_id = group;
        message.card = card;
        message.masked = m.masked;
        let push = self.presenter.push(&message, 0, &sender, None);
        Ok((message, push))
    }

    /// group.create / join / leave / members / list: the database alone answers them.
    pub(super) fn group_action(&self, uid: UserId, request: Request, reply: ReplyTx) {
        let db = self.db.clone();
        let presenter = self.presenter.clone();
        answer_later(reply, async move {
            match request {
                Request::GroupCreate(g) => {
                    let members = g.member_uids.into_iter().map(UserId).collect();
                    let group = ask(db.send(CreateGroup {
                        name: g.name,
                        owner: uid,
                        members,
                        open: g.open.unwrap_or(false),
                        by: Joiner::Owner(uid),
                    }))
                    .await?
                    .ok_or(ChatError::Forbidden)?;
                    Ok(protocol::ok(&serde_json::json!({"group_id": group.0})))
                }
                Request::GroupJoin(g) => joined(
                    ask(db.send(JoinGroup {
                        group: GroupId(g.group_id),
                        uid,
                        by: Joiner::Themselves,
                    }))
                    .await?,
                ),
                Request::GroupAdd(g) => joined(
                    ask(db.send(JoinGroup {
                        group: GroupId(g.group_id),
                        uid: UserId(g.uid),
                        by: Joiner::Owner(uid),
                    }))
                    .await?,
                ),
                Request::GroupLeave(g) => match ask(db.send(LeaveGroup {
                    group: GroupId(g.group_id),
                    uid,
                }))
                .await?
                {
                    true => Ok(protocol::ok(&())),
                    false => Err(ChatError::NotFound),
                },
                Request::GroupMembers(g) => {
                    let members = ask(db.send(GroupMembers {
                        group: GroupId(g.group_id),
                        uid,
                    }))
                    .await?
                    .ok_or(ChatError::Forbidden)?;
                    let rows: Vec<MemberRow> = members
                        .into_iter()
                        .map(|p| MemberRow {
                            id: p.uid.0,
                            avatar: presenter.url(&p.avatar),
                            nickname: p.nickname,
                        })
                        .collect();
                    Ok(protocol::reply_with(
                        code::GROUP_MEMBERS,
                        &serde_json::json!({"rows": rows}),
                    ))
                }
                Request::GroupList => {
                    let rows = ask(db.send(UserGroups { uid })).await?;
                    Ok(protocol::ok(&serde_json::json!({"rows": rows})))
                }
                _ => Err(ChatError::UnknownAction),
            }
        });
    }
}

fn joined(j: Joined) -> Result<String, ChatError> {
    match j {
        Joined::Member(_) => Ok(protocol::ok(&())),
        Joined::NoGroup => Err(ChatError::NotFound),
        Joined::Forbidden => Err(ChatError::Forbidden),
    }
}

impl Handler<Notify> for ChatServer {
    type Result = ResponseFuture<Result<Vec<MsgId>, ChatError>>;

    fn handle(&mut self, msg: Notify, ctx: &mut Context<Self>) -> Self::Result {
        let targets: Vec<Option<UserId>> = match msg.to {
            Some(uids) => uids.into_iter().map(Some).collect(),
            None => vec![None],
        };
        let now = crate::clock::unix_now() as i64;
        let system = crate::db::Profile {
            uid: UserId(0),
            nickname: String::new(),
            avatar: String::new(),
        };
        let mut answers = Vec::with_capacity(targets.len());
        for to in targets {
            // A notice to everyone is stored once, to uid 0.
            let uid = to.unwrap_or(UserId(0));
            let mut message = NewMessage::new(
                ChatType::System,
                ChatId::system(uid).0,
                msg.msg_type,
                msg.msg.clone(),
                UserId(0),
                uid,
                None,
            );
            message.createtime = now;
            let push = self.presenter.push(&message, 0, &system, None);
            let (reply, answer) = oneshot::channel();
            answers.push(answer);
            self.queue.push(StoreNotice::new(message, push, to, reply));
        }
        self.flush(ctx);
        Box::pin(async move {
            let mut ids = Vec::with_capacity(answers.len());
            for a in answers {
                ids.push(a.await.unwrap_or(Err(ChatError::StorageUnavailable))?);
            }
            Ok(ids)
        })
    }
}
