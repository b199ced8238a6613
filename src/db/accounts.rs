//! Accounts registered over `/login/register`, and the friend list of `/user/index`.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::conn::DbConn;
use super::conversations::direct_peers;
use super::models::UserCard;
use super::schema::users;
use crate::ids::UserId;

/// The id and password hash of the account called `username`.
pub fn find_login(
    conn: &mut DbConn,
    username: &str,
) -> QueryResult<Option<(UserId, Option<String>)>> {
    users::table
        .filter(users::username.eq(username))
        .select((users::id, users::password_hash))
        .first::<(i64, Option<String>)>(conn)
        .optional()
        .map(|r| r.map(|(id, hash)| (UserId(id), hash)))
}

/// Creates an account, or `None` if the username is taken. Ids are allocated as
/// max + 1 on every backend (PostgreSQL's sequence would not know of ids that tokens
/// brought in), retrying if another node took the same id first.
pub fn create_account(
    conn: &mut DbConn,
    username: &str,
    password_hash: &str,
    now: i64,
) -> QueryResult<Option<UserId>> {
    for _ in 0..8 {
        if find_login(conn, username)?.is_some() {
            return Ok(None);
        }
        let next: i64 = users::table
            .select(diesel::dsl::max(users::id))
            .first::<Option<i64>>(conn)?
            .unwrap_or(0)
            + 1;
        let inserted = conn.transaction(|c| {
            diesel::insert_into(users::table)
                .values((
                    users::id.eq(next),
                    users::username.eq(username),
                    users::password_hash.eq(password_hash),
                    users::nickname.eq(username),
                    users::avatar.eq(""),
                    users::sign.eq(""),
                    users::created_at.eq(now),
                ))
                .execute(c)
        });
        match inserted {
            Ok(_) => return Ok(Some(UserId(next))),
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(DieselError::RollbackTransaction)
}

/// `uid`'s 1:1 contacts (most recent first), then other users, `limit` in all.
pub fn friend_list(conn: &mut DbConn, uid: UserId, limit: i64) -> QueryResult<Vec<UserCard>> {
    let peers = direct_peers(conn, uid, limit)?;
    let mut known: Vec<UserCard> = users::table
        .filter(users::id.eq_any(&peers))
        .select(UserCard::as_select())
        .load(conn)?;
    known.sort_by_key(|c| peers.iter().position(|p| *p == c.id));
    let room = limit - known.len() as i64;
    if room > 0 {
        let others: Vec<UserCard> = users::table
            .filter(users::id.ne(uid.0))
            .filter(users::id.ne_all(&peers))
            .order(users::id.asc())
            .limit(room)
            .select(UserCard::as_select())
            .load(conn)?;
        known.extend(others);
    }
    Ok(known)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::queries::{ensure_user, store_messages};
    use crate::db::testing::{db, direct};

    #[test]
    fn accounts_are_unique_by_name_and_ids_follow_existing_users() {
        let (_d, mut c) = db();
        ensure_user(&mut c, UserId(500), 0).unwrap();
        let id = create_account(&mut c, "alice1", "hash", 0)
            .unwrap()
            .unwrap();
        assert_eq!(id, UserId(501));
        assert_eq!(create_account(&mut c, "alice1", "other", 0).unwrap(), None);
        assert_eq!(
            find_login(&mut c, "alice1").unwrap(),
            Some((id, Some("hash".into())))
        );
        assert_eq!(find_login(&mut c, "nobody").unwrap(), None);
    }

    #[test]
    fn friend_list_puts_contacts_first_then_others() {
        let (_d, mut c) = db();
        for uid in 1..=6 {
            ensure_user(&mut c, UserId(uid), 0).unwrap();
        }
        store_messages(&mut c, &[direct(1, 5, "x")]).unwrap();
        let ids: Vec<i64> = friend_list(&mut c, UserId(1), 3)
            .unwrap()
            .iter()
            .map(|u| u.id)
            .collect();
        assert_eq!(ids, [5, 2, 3]);
    }
}
