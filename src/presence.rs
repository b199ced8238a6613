//! Who is connected to this node: asked of ChatServer by the webhook dispatcher, which
//! sends `message.offline` only for receivers connected nowhere. Defined below both.

use actix::Message as ActixMessage;

use crate::ids::UserId;

/// Which of `uids` have a live connection on this node; ChatServer answers.
#[derive(ActixMessage)]
#[rtype(result = "Vec<UserId>")]
pub struct ConnectedHere(pub Vec<UserId>);
