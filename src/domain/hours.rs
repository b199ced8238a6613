//! A shop's working hours (PROTOCOL.md §10): a time zone, intervals per weekday, and
//! closed dates; outside them the consumer hears the offline message.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Most intervals one day may have, and most closed dates.
pub const MAX_INTERVALS: usize = 8;
pub const MAX_CLOSED_DATES: usize = 366;

const DAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("sun", Weekday::Sun),
];

/// As the admin API takes and shows it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkingHoursSpec {
    pub tz: String,
    #[serde(default)]
    pub days: BTreeMap<String, Vec<[String; 2]>>,
    #[serde(default)]
    pub closed_dates: Vec<String>,
}

/// Checked and ready to ask.
#[derive(Clone, Debug)]
pub struct WorkingHours {
    tz: Tz,
    /// Per weekday from Monday: (start, end) in minutes of the day; end < start passes midnight.
    days: [Vec<(u32, u32)>; 7],
    closed: HashSet<NaiveDate>,
}

fn minutes(s: &str) -> Result<u32, String> {
    let bad = || format!("{s:?} is not a time HH:MM");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    match (h, m) {
        (24, 0) => Ok(24 * 60),
        (0..=23, 0..=59) => Ok(h * 60 + m),
        _ => Err(bad()),
    }
}

impl WorkingHours {
    /// Checks a spec: a known IANA zone, weekday names, HH:MM times, ISO dates.
    pub fn parse(spec: &WorkingHoursSpec) -> Result<WorkingHours, String> {
        let tz: Tz = spec
            .tz
            .parse()
            .map_err(|_| format!("unknown time zone {:?}", spec.tz))?;
        let mut days: [Vec<(u32, u32)>; 7] = Default::default();
        for (name, intervals) in &spec.days {
            let i = DAYS
                .iter()
                .position(|(n, _)| n == name)
                .ok_or_else(|| format!("unknown day {name:?} (mon..sun)"))?;
            if intervals.len() > MAX_INTERVALS {
                return Err(format!("at most {MAX_INTERVALS} intervals a day"));
            }
            for [from, to] in intervals {
                let (a, b) = (minutes(from)?, minutes(to)?);
                if a == b || a == 24 * 60 {
                    return Err(format!("empty interval {from}-{to}"));
                }
                days[i].push((a, b));
            }
        }
        if spec.closed_dates.len() > MAX_CLOSED_DATES {
            return Err(format!("at most {MAX_CLOSED_DATES} closed dates"));
        }
        let closed = spec
            .closed_dates
            .iter()
            .map(|d| {
                NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .map_err(|_| format!("{d:?} is not a date YYYY-MM-DD"))
            })
            .collect::<Result<_, _>>()?;
        Ok(WorkingHours { tz, days, closed })
    }

    /// Whether the shop is open at unix time `at`. An interval belongs to the day it
    /// starts on: one passing midnight opens the next morning too, and a closed date
    /// closes the intervals that start on it.
    pub fn open_at(&self, at: i64) -> bool {
        let Some(utc) = DateTime::from_timestamp(at, 0) else {
            return true;
        };
        let local = utc.with_timezone(&self.tz);
        let date = local.date_naive();
        let minute = local.hour() * 60 + local.minute();
        let today = local.weekday().num_days_from_monday() as usize;
        let yesterday = (today + 6) % 7;
        let open_today = !self.closed.contains(&date)
            && self.days[today].iter().any(|&(a, b)| {
                if a < b {
                    a <= minute && minute < b
                } else {
                    minute >= a
                }
            });
        let spill = date.pred_opt().is_some_and(|d| !self.closed.contains(&d))
            && self.days[yesterday]
                .iter()
                .any(|&(a, b)| a > b && minute < b);
        open_today || spill
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn hours(json: serde_json::Value) -> Result<WorkingHours, String> {
        let spec: WorkingHoursSpec = serde_json::from_value(json).map_err(|e| e.to_string())?;
        WorkingHours::parse(&spec)
    }

    fn at(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap().timestamp()
    }

    #[test]
    fn intervals_are_read_in_the_shops_time_zone() {
        let h = hours(serde_json::json!({
            "tz": "Asia/Shanghai",
            "days": {"mon": [["09:00", "12:00"], ["13:00", "18:00"]]},
        }))
        .unwrap();
        let sh = chrono_tz::Asia::Shanghai;
        // 2026-11-30 is a Monday.
        assert!(h.open_at(at(sh, 2026, 11, 30, 9, 0)));
        assert!(h.open_at(at(sh, 2026, 11, 30, 11, 59)));
        assert!(!h.open_at(at(sh, 2026, 11, 30, 12, 0)));
        assert!(!h.open_at(at(sh, 2026, 11, 30, 8, 59)));
        assert!(
            !h.open_at(at(sh, 2026, 12, 1, 10, 0)),
            "tuesday is absent: closed"
        );
        // 09:30 in Shanghai is 01:30 UTC.
        let utc = chrono_tz::UTC;
        assert!(h.open_at(at(utc, 2026, 11, 30, 1, 30)));
        assert!(
            !h.open_at(at(utc, 2026, 11, 30, 11, 0)),
            "19:00 in Shanghai"
        );
    }

    #[test]
    fn an_interval_may_pass_midnight_and_closed_dates_close_their_intervals() {
        let h = hours(serde_json::json!({
            "tz": "Europe/Berlin",
            "days": {"fri": [["22:00", "02:00"]], "sat": [["00:00", "24:00"]]},
            "closed_dates": ["2026-12-12"],
        }))
        .unwrap();
        let b = chrono_tz::Europe::Berlin;
        assert!(h.open_at(at(b, 2026, 12, 4, 23, 0)), "friday night");
        assert!(h.open_at(at(b, 2026, 12, 5, 1, 59)), "into saturday");
        assert!(h.open_at(at(b, 2026, 12, 5, 12, 0)), "saturday all day");
        assert!(!h.open_at(at(b, 2026, 12, 12, 12, 0)), "a closed saturday");
        assert!(
            h.open_at(at(b, 2026, 12, 12, 1, 0)),
            "friday's night is not closed"
        );
        assert!(
            !h.open_at(at(b, 2026, 12, 6, 1, 0)),
            "sunday after a saturday that ended at 24:00"
        );
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (json, word) in [
            (serde_json::json!({"tz": "Mars/Olympus"}), "time zone"),
            (
                serde_json::json!({"tz": "UTC", "days": {"monday": []}}),
                "unknown day",
            ),
            (
                serde_json::json!({"tz": "UTC", "days": {"mon": [["9:00", "10:00"]]}}),
                "HH:MM",
            ),
            (
                serde_json::json!({"tz": "UTC", "days": {"mon": [["09:00", "25:00"]]}}),
                "HH:MM",
            ),
            (
                serde_json::json!({"tz": "UTC", "days": {"mon": [["09:00", "09:00"]]}}),
                "empty",
            ),
            (
                serde_json::json!({"tz": "UTC", "closed_dates": ["01/10/2026"]}),
                "date",
            ),
            (
                serde_json::json!({"tz": "UTC", "extra": 1}),
                "unknown field",
            ),
        ] {
            let err = hours(json.clone()).unwrap_err();
            assert!(err.contains(word), "{json}: {err}");
        }
    }
}
