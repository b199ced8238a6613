//! Field decoders for what PHP-era clients send: integers as numbers or numeric
//! strings, booleans as `true`, `1` or `"1"`.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;

struct IntVisitor;

impl Visitor<'_> for IntVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer or a numeric string")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom("integer out of range"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        v.parse::<i64>()
            .map_err(|_| E::custom("not a numeric string"))
    }
}

/// A required integer.
pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(IntVisitor)
}

/// An optional integer: absent or null is `None`.
pub fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct Opt;
    impl<'de> Visitor<'de> for Opt {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an integer, a numeric string or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            int(d).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

/// A boolean as JSON bool, 0/1, or the strings "true"/"false"/"1"/"0".
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v: Option<serde_json::Value> = serde::Deserialize::deserialize(d)?;
    use serde_json::Value;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(Some(false)),
        Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(Some(true)),
        Some(Value::String(s)) if s == "true" || s == "1" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" || s == "0" || s.is_empty() => Ok(Some(false)),
        Some(_) => Err(de::Error::custom("expected a boolean")),
    }
}

/// A required boolean, as leniently as `opt_bool`.
pub fn req_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    opt_bool(d)?.ok_or_else(|| de::Error::custom("expected a boolean"))
}

/// A list of integers, each a number or a numeric string; absent or null is empty.
pub fn int_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
    #[derive(serde::Deserialize)]
    struct Item(#[serde(deserialize_with = "int")] i64);
    let items: Option<Vec<Item>> = serde::Deserialize::deserialize(d)?;
    Ok(items.unwrap_or_default().into_iter().map(|i| i.0).collect())
}
