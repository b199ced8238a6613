//! Typed identifiers: a shop id can never be passed where a user id is expected. The
//! same types are the wire's numbers (serde) and the database's columns (Diesel), as
//! Lemmy's `newtypes.rs` does. An id of 0 means "none" where a column allows it (a
//! message's `shop_id` outside customer service).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::BigInt;
use serde::{Deserialize, Serialize};

/// An id newtype over `i64`: the same number on the wire (serde transparent) and in the
/// database (a Diesel `BigInt`), so rows and queries carry the type too.
macro_rules! int_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Copy, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            AsExpression, FromSqlRow,
        )]
        #[serde(transparent)]
        #[diesel(sql_type = BigInt)]
        pub struct $name(pub i64);

        impl<DB: Backend> ToSql<BigInt, DB> for $name
        where
            i64: ToSql<BigInt, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
                self.0.to_sql(out)
            }
        }

        impl<DB: Backend> FromSql<BigInt, DB> for $name
        where
            i64: FromSql<BigInt, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                i64::from_sql(bytes).map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }
    };
}

int_id!(
    /// A platform user (consumer or agent); tokens carry it.
    UserId
);
int_id!(
    /// A shop; a separate number space from users.
    ShopId
);
int_id!(
    /// A chat group.
    GroupId
);
int_id!(
    /// A stored message; ascending in the order the server stored them.
    MsgId
);

/// One WebSocket connection, unique within a process run.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl ConnId {
    /// Ids come from a process-wide counter, so they are cheap, ordered by age and never repeat.
    pub fn next() -> ConnId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A conversation id in the original's string format (PROTOCOL.md §3).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChatId(pub String);

impl ChatId {
    /// 1:1 between two users: the two ids ascending, joined by one underscore.
    pub fn direct(a: UserId, b: UserId) -> ChatId {
        Self::joined(a.0, b.0, 1)
    }

    /// Customer service between a shop and a consumer: ascending, four underscores.
    /// The string cannot say which side is the shop; that is stored beside it.
    pub fn service(shop: ShopId, consumer: UserId) -> ChatId {
        Self::joined(shop.0, consumer.0, 4)
    }

    /// The consumer of `shop`'s conversation named `chat`: the number that is not the
    /// shop's (both are, when the consumer's id equals the shop's).
    pub fn service_consumer(chat: &str, shop: ShopId) -> Option<UserId> {
        let ChatKind::Service(a, b) = ChatId::parse(chat)? else {
            return None;
        };
        let consumer = match (a == shop.0, b == shop.0) {
            (true, _) => UserId(b),
            (false, true) => UserId(a),
            _ => return None,
        };
        (ChatId::service(shop, consumer).as_str() == chat).then_some(consumer)
    }

    /// The shop of `consumer`'s conversation named `chat`.
    pub fn service_shop(chat: &str, consumer: UserId) -> Option<ShopId> {
        let ChatKind::Service(a, b) = ChatId::parse(chat)? else {
            return None;
        };
        let shop = match (a == consumer.0, b == consumer.0) {
            (true, _) => ShopId(b),
            (false, true) => ShopId(a),
            _ => return None,
        };
        (ChatId::service(shop, consumer).as_str() == chat).then_some(shop)
    }

    pub fn group(group: GroupId) -> ChatId {
        ChatId(format!("group_{group}"))
    }

    pub fn system(uid: UserId) -> ChatId {
        ChatId(format!("system_{uid}"))
    }

    fn joined(a: i64, b: i64, underscores: usize) -> ChatId {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        ChatId(format!("{lo}{}{hi}", "_".repeat(underscores)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What a chat_id string names: the only parser of them. `None` unless it is one of
    /// the four forms with ids of digits only (a group's and a notice owner's positive).
    pub fn parse(s: &str) -> Option<ChatKind> {
        fn id(t: &str) -> Option<i64> {
            let digits = !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
            digits.then(|| t.parse().ok()).flatten()
        }
        if let Some(g) = s.strip_prefix("group_") {
            return id(g)
                .filter(|g| *g > 0)
                .map(|g| ChatKind::Group(GroupId(g)));
        }
        if let Some(u) = s.strip_prefix("system_") {
            return id(u)
                .filter(|u| *u > 0)
                .map(|u| ChatKind::System(UserId(u)));
        }
        if let Some((a, b)) = s.split_once("____") {
            return Some(ChatKind::Service(id(a)?, id(b)?));
        }
        let (a, b) = s.split_once('_')?;
        Some(ChatKind::Direct(UserId(id(a)?), UserId(id(b)?)))
    }
}

/// What a chat_id names (PROTOCOL.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatKind {
    /// `a_b`: a 1:1 between two users.
    Direct(UserId, UserId),
    /// `a____b`: customer service between a shop and a consumer, ascending. Which number
    /// is the shop the string does not say; the caller's role or shop does.
    Service(i64, i64),
    /// `group_{id}`.
    Group(GroupId),
    /// `system_{uid}`: a user's notices.
    System(UserId),
}

impl fmt::Display for ChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_ids_follow_the_original_format() {
        assert_eq!(ChatId::direct(UserId(12), UserId(7)).as_str(), "7_12");
        assert_eq!(ChatId::direct(UserId(7), UserId(12)).as_str(), "7_12");
        assert_eq!(ChatId::service(ShopId(3), UserId(12)).as_str(), "3____12");
        assert_eq!(ChatId::service(ShopId(30), UserId(12)).as_str(), "12____30");
        assert_eq!(ChatId::group(GroupId(5)).as_str(), "group_5");
        assert_eq!(ChatId::system(UserId(9)).as_str(), "system_9");
    }

    #[test]
    fn a_service_chat_id_names_its_shop_given_the_consumer_and_back() {
        assert_eq!(ChatId::service_shop("3____12", UserId(12)), Some(ShopId(3)));
        assert_eq!(ChatId::service_shop("3____12", UserId(3)), Some(ShopId(12)));
        assert_eq!(ChatId::service_shop("3____12", UserId(7)), None);
        assert_eq!(ChatId::service_shop("3_12", UserId(12)), None);
        assert_eq!(ChatId::service_shop("group_3", UserId(3)), None);
        assert_eq!(
            ChatId::service_consumer("3____12", ShopId(3)),
            Some(UserId(12))
        );
        assert_eq!(
            ChatId::service_consumer("3____12", ShopId(12)),
            Some(UserId(3))
        );
        assert_eq!(
            ChatId::service_consumer("3____3", ShopId(3)),
            Some(UserId(3))
        );
        assert_eq!(ChatId::service_consumer("3____12", ShopId(7)), None);
        assert_eq!(ChatId::service_consumer("03____12", ShopId(3)), None);
    }

    #[test]
    fn chat_ids_parse_into_what_they_name() {
        use ChatKind::*;
        assert_eq!(ChatId::parse("7_12"), Some(Direct(UserId(7), UserId(12))));
        assert_eq!(ChatId::parse("3____12"), Some(Service(3, 12)));
        assert_eq!(ChatId::parse("group_5"), Some(Group(GroupId(5))));
        assert_eq!(ChatId::parse("system_9"), Some(System(UserId(9))));
        for bad in [
            "",
            "7",
            "7_",
            "_7",
            "7__12",
            "7___12",
            "7_____12",
            "a_b",
            "7_-1",
            "group_0",
            "group_",
            "group_x",
            "system_0",
            "system_-3",
            "3____",
            "99999999999999999999_1",
        ] {
            assert_eq!(ChatId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn conn_ids_are_unique_and_ascending() {
        let a = ConnId::next();
        let b = ConnId::next();
        assert!(b > a);
    }
}
