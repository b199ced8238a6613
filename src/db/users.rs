//! Profiles: the users table, and how a stored message's sender is shown.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::conn::{upsert, DbConn};
use super::models::{MessageRow, MessageWithSender, Profile, ProfileRow};
use super::schema::{agents, users};
use crate::ids::{ShopId, UserId};

/// Succeeds when the database can be read.
pub fn ping(conn: &mut DbConn) -> QueryResult<()> {
    users::table
        .select(users::id)
        .filter(users::id.eq(0))
        .first::<i64>(conn)
        .optional()
        .map(|_| ())
}

pub fn find_profile(conn: &mut DbConn, uid: UserId) -> QueryResult<Option<Profile>> {
    users::table
        .find(uid.0)
        .select(ProfileRow::as_select())
        .first(conn)
        .optional()
        .map(|r| r.map(Profile::from))
}

/// The user's profile, creating a placeholder row for an id first seen in a token.
pub fn ensure_user(conn: &mut DbConn, uid: UserId, now: i64) -> QueryResult<Profile> {
    if let Some(p) = find_profile(conn, uid)? {
        return Ok(p);
    }
    insert_placeholder(conn, uid, now)?;
    find_profile(conn, uid)?.ok_or(DieselError::NotFound)
}

/// Inserts a placeholder user; losing a race with another inserter is fine.
fn insert_placeholder(conn: &mut DbConn, uid: UserId, now: i64) -> QueryResult<()> {
    let inserted = diesel::insert_into(users::table)
        .values((
            users::id.eq(uid.0),
            users::nickname.eq(Profile::placeholder_nickname(uid)),
            users::avatar.eq(""),
            users::sign.eq(""),
            users::created_at.eq(now),
        ))
        .execute(conn);
    match inserted {
        Ok(_) | Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates or updates a profile in one statement; fields left `None` keep their value
/// (a new row takes the placeholder's).
pub fn upsert_user(
    conn: &mut DbConn,
    uid: UserId,
    nickname: Option<&str>,
    avatar: Option<&str>,
    now: i64,
) -> QueryResult<Profile> {
    let placeholder = Profile::placeholder_nickname(uid);
    let row = (
        users::id.eq(uid.0),
        users::nickname.eq(nickname.unwrap_or(&placeholder)),
        users::avatar.eq(avatar.unwrap_or("")),
        users::sign.eq(""),
        users::created_at.eq(now),
    );
    // Setting the id to itself keeps the change valid when no field is given.
    let change = (
        users::id.eq(uid.0),
        nickname.map(|n| users::nickname.eq(n)),
        avatar.map(|a| users::avatar.eq(a)),
    );
    upsert!(&mut *conn, users::table, row, users::id, change)?;
    find_profile(conn, uid)?.ok_or(DieselError::NotFound)
}

/// Attaches each message's sender profile and, for customer service, its shop and the
/// answering agent's service name.
pub fn with_senders(
    conn: &mut DbConn,
    rows: Vec<(MessageRow, Option<ProfileRow>)>,
) -> QueryResult<Vec<MessageWithSender>> {
    let service = |m: &MessageRow| m.chat_type == crate::protocol::ChatType::Service;
    let mut shop_ids: Vec<ShopId> = rows
        .iter()
        .filter(|(m, _)| service(m))
        .map(|(m, _)| m.shop_id)
        .collect();
    shop_ids.sort_unstable();
    shop_ids.dedup();
    let shops = super::conversations::shops_by_id(conn, &shop_ids)?;
    let agent_uids: Vec<UserId> = rows
        .iter()
        .filter(|(m, _)| service(m) && m.from_agent)
        .map(|(m, _)| m.from_uid)
        .collect();
    let agent_names: HashMap<UserId, String> = agents::table
        .filter(agents::uid.eq_any(&agent_uids))
        .select((agents::uid, agents::name))
        .load::<(UserId, String)>(conn)?
        .into_iter()
        .filter(|(_, n)| !n.is_empty())
        .collect();
    Ok(rows
        .into_iter()
        .map(|(message, sender)| {
            let mut sender = sender
                .map(Profile::from)
                .unwrap_or_else(|| Profile::placeholder(message.from_uid));
            if message.from_agent {
                if let Some(name) = agent_names.get(&message.from_uid) {
                    sender.nickname = name.clone();
                }
            }
            let shop = service(&message)
                .then(|| shops.get(&message.shop_id).cloned())
                .flatten();
            MessageWithSender {
                message,
                sender,
                shop,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::{db, statements};

    #[test]
    fn an_upsert_is_one_write_and_one_read() {
        let (_d, mut c) = db();
        let (p, n) = statements(&mut c, |c| upsert_user(c, UserId(5), Some("Bo"), None, 1));
        assert_eq!((p.unwrap().nickname.as_str(), n), ("Bo", 2));
        let (p, n) = statements(&mut c, |c| {
            upsert_user(c, UserId(5), None, Some("a.png"), 1)
        });
        let p = p.unwrap();
        assert_eq!(
            (p.nickname.as_str(), p.avatar.as_str(), n),
            ("Bo", "a.png", 2)
        );
        let (p, n) = statements(&mut c, |c| upsert_user(c, UserId(6), None, None, 1));
        assert_eq!((p.unwrap().nickname.as_str(), n), ("user6", 2));
    }

    #[test]
    fn ensure_user_creates_a_placeholder_once() {
        let (_d, mut c) = db();
        let p = ensure_user(&mut c, UserId(42), 1).unwrap();
        assert_eq!(p.nickname, "user42");
        assert_eq!(p.avatar, "");
        upsert_user(&mut c, UserId(42), Some("Ann"), None, 2).unwrap();
        assert_eq!(ensure_user(&mut c, UserId(42), 3).unwrap().nickname, "Ann");
    }

    #[test]
    fn upsert_updates_only_given_fields() {
        let (_d, mut c) = db();
        let p = upsert_user(&mut c, UserId(5), None, Some("a.png"), 1).unwrap();
        assert_eq!((p.nickname.as_str(), p.avatar.as_str()), ("user5", "a.png"));
        let p = upsert_user(&mut c, UserId(5), Some("Bo"), None, 1).unwrap();
        assert_eq!((p.nickname.as_str(), p.avatar.as_str()), ("Bo", "a.png"));
    }
}
