//! Sensitive words (PROTOCOL.md §14) on this node: the list as an automaton, read from
//! the database at start and whenever any node changes it, and applied to every user's
//! text and card title before it is stored. System notices do not pass here.

use std::sync::Arc;

use actix::prelude::*;

use super::ChatServer;
use crate::db::LoadModeration;
use crate::domain::moderation::{Verdict, WordFilter};
use crate::error::ChatError;
use crate::protocol::{MsgType, SendMsg};

impl ChatServer {
    /// Reads the list again; the requests that follow wait for it.
    pub(super) fn reload_words(&mut self, ctx: &mut Context<Self>) {
        self.db
            .send(LoadModeration {})
            .into_actor(self)
            .map(|res, act, _| match res {
                Ok(Ok(list)) => act.words = Arc::new(WordFilter::new(list)),
                Ok(Err(e)) => log::error!("cannot load the sensitive-word list: {e}"),
                Err(e) => log::error!("cannot load the sensitive-word list: {e}"),
            })
            .wait(ctx);
    }

    /// Applies the list to a text message's `msg`, or a card's title (and its text):
    /// refused with `content_blocked`, or masked in place (`m.masked`).
    pub(super) fn moderate(&self, m: &mut SendMsg) -> Result<(), ChatError> {
        let kind = m.kind()?;
        if kind == MsgType::Image {
            return Ok(());
        }
        if let Some(masked) = self.judge(&m.msg)? {
            m.msg = masked;
            m.masked = true;
        }
        let Some(card) = m.checked_card.as_deref() else {
            return Ok(());
        };
        let Ok(mut card) = serde_json::from_str::<serde_json::Value>(card) else {
            return Ok(());
        };
        let title = card["title"].as_str().unwrap_or_default().to_string();
        if let Some(masked) = self.judge(&title)? {
            card["title"] = masked.into();
            m.checked_card = Some(card.to_string());
            m.masked = true;
        }
        Ok(())
    }

    /// `Some(masked)` if words matched and the action masks; an error if it rejects.
    fn judge(&self, text: &str) -> Result<Option<String>, ChatError> {
        match self.words.check(text) {
            Verdict::Clean => Ok(None),
            Verdict::Blocked => Err(ChatError::ContentBlocked),
            Verdict::Masked(masked) => Ok(Some(masked)),
        }
    }
}
