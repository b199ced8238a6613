//! Accounts registered over `/login/register`, and the friend list of `/user/index`.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::conn::DbConn;
use super::conversations::direct_peers;
use super::models::UserCard;
use super::schema::users;
use crate::config::MAX_SAFE_ID;
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

/// What `/login/register` got.
#[derive(Debug, PartialEq, Eq)]
pub enum Registered {
    Created(UserId),
    NameTaken,
    /// Every id from `auth.register_id_base` to 2^53 - 1 is in use.
    IdsExhausted,
}

/// Creates an account. Ids are allocated from `base` up (max + 1 within that range, on
/// every backend), never in the platform's range below it, so a stranger can never
/// take the id of a platform user who has no row yet; retried if another node took the
/// same id first. Past [`MAX_SAFE_ID`] it refuses rather than wraps.
pub fn create_account(
    conn: &mut DbConn,
    username: &str,
    password_hash: &str,
    now: i64,
    base: i64,
) -> QueryResult<Registered> {
    for _ in 0..8 {
        if find_login(conn, username)?.is_some() {
            return Ok(Registered::NameTaken);
        }
        let highest: Option<i64> = users::table
            .filter(users::id.ge(base))
            .select(diesel::dsl::max(users::id))
            .first::<Option<i64>>(conn)?;
        let next = match highest {
            None => base,
            Some(h) => match h.checked_add(1) {
                Some(n) if n <= MAX_SAFE_ID => n,
                _ => return Ok(Registered::IdsExhausted),
            },
        };
        if next > MAX_SAFE_ID {
            return Ok(Registered::IdsExhausted);
        }
        let inserted = conn.transaction(|c| {
            super::groups::start_notices_now(c, UserId(next))?;
            diesel::insert_into(users::table)
                .values((
                    users::id.eq(next),
                    users::username.eq(username),
                    users::password_hash.eq(password_hash),
                    // The login name stays private: others see a nickname, which the
                    // platform may set later (PROTOCOL.md §15, `/user/index`).
                    users::nickname.eq(format!("user{next}")),
                    users::avatar.eq(""),
                    users::sign.eq(""),
                    users::created_at.eq(now),
                ))
                .execute(c)
        });
        match inserted {
            Ok(_) => return Ok(Registered::Created(UserId(next))),
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
    use crate::db::store::store_messages;
    use crate::db::testing::{db, direct};
    use crate::db::users::ensure_user;

    #[test]
    fn accounts_are_unique_by_name_and_ids_stay_above_the_platform_range() {
        let (_d, mut c) = db();
        // A platform user with a row, and one far above (below the base) too.
        ensure_user(&mut c, UserId(500), 0).unwrap();
        ensure_user(&mut c, UserId(999), 0).unwrap();
        let Registered::Created(id) = create_account(&mut c, "alice1", "hash", 0, 1_000).unwrap()
        else {
            panic!("alice1 should be created")
        };
        assert_eq!(id, UserId(1_000), "the first registered id is the base");
        assert_eq!(
            create_account(&mut c, "bobby", "hash", 0, 1_000).unwrap(),
            Registered::Created(UserId(1_001))
        );
        assert_eq!(
            create_account(&mut c, "alice1", "other", 0, 1_000).unwrap(),
            Registered::NameTaken
        );
        assert_eq!(
            find_login(&mut c, "alice1").unwrap(),
            Some((id, Some("hash".into())))
        );
        assert_eq!(find_login(&mut c, "nobody").unwrap(), None);
    }

    #[test]
    fn running_out_of_registered_ids_is_an_error_not_a_wrap() {
        let (_d, mut c) = db();
        let base = MAX_SAFE_ID - 1;
        assert_eq!(
            create_account(&mut c, "first", "h", 0, base).unwrap(),
            Registered::Created(UserId(base))
        );
        assert_eq!(
            create_account(&mut c, "second", "h", 0, base).unwrap(),
            Registered::Created(UserId(MAX_SAFE_ID))
        );
        assert_eq!(
            create_account(&mut c, "third", "h", 0, base).unwrap(),
            Registered::IdsExhausted
        );
        // A row at i64::MAX (a platform token could bring one) does not wrap either.
        ensure_user(&mut c, UserId(i64::MAX), 0).unwrap();
        assert_eq!(
            create_account(&mut c, "fourth", "h", 0, 1).unwrap(),
            Registered::IdsExhausted
        );
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
