//! Time windows: freezes (absolute, or yearly by month and day in the environment's time zone)
//! and allowed windows (cron expressions that must match the instant). Pure: the instant is
//! always an argument.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;

use super::WindowSet;

/// Parses a cron expression with seconds (6 fields, 7 with a year, or a shortcut such as
/// `@daily`). The error is one line saying what is wrong (the cron crate's own messages draw a
/// caret under the text on lines of their own).
pub fn parse_cron(text: &str) -> Result<cron::Schedule, String> {
    let fields = text.split_whitespace().count();
    if !text.trim_start().starts_with('@') && !(6..=7).contains(&fields) {
        return Err(format!(
            "{fields} field{} where 6 are needed, seconds first",
            if fields == 1 { "" } else { "s" }
        ));
    }
    cron::Schedule::from_str(text).map_err(|e| {
        let message = e.to_string();
        let last = message.lines().rev().find(|l| !l.trim().is_empty());
        last.unwrap_or("not a cron expression")
            .trim()
            .trim_end_matches('.')
            .to_string()
    })
}

/// A day of the year as `MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MonthDay {
    /// 1-12
    pub month: u32,
    /// 1-31
    pub day: u32,
}

impl FromStr for MonthDay {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{text}` is not a month and day: write MM-DD, e.g. 12-20");
        let (m, d) = text.split_once('-').ok_or_else(bad)?;
        let (month, day): (u32, u32) =
            (m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
        // 2024 is a leap year, so 02-29 is accepted.
        NaiveDate::from_ymd_opt(2024, month, day).ok_or_else(bad)?;
        Ok(Self { month, day })
    }
}

impl fmt::Display for MonthDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}-{:02}", self.month, self.day)
    }
}

/// When a freeze holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FreezeSpan {
    /// Every year from the start of `from` to the end of `to` (both whole days, local time);
    /// wraps over the new year when `to` comes before `from`.
    Yearly { from: MonthDay, to: MonthDay },
    /// From `start` (inclusive) to `end` (exclusive).
    Between {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
}

/// A named freeze from a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freeze {
    /// Its name.
    pub name: String,
    /// Why, when the policy says.
    pub reason: Option<String>,
    /// When.
    pub span: FreezeSpan,
    /// The policy file.
    pub file: String,
}

impl Freeze {
    /// True when the freeze holds at `now` in the time zone `tz`.
    pub fn holds_at(&self, now: DateTime<Utc>, tz: Tz) -> bool {
        match &self.span {
            FreezeSpan::Between { start, end } => *start <= now && now < *end,
            FreezeSpan::Yearly { from, to } => {
                let local = now.with_timezone(&tz);
                let today = MonthDay {
                    month: local.month(),
                    day: local.day(),
                };
                if from <= to {
                    *from <= today && today <= *to
                } else {
                    today >= *from || today <= *to
                }
            }
        }
    }

    /// How the freeze reads in a reason: `year-end (every year 12-20 to 01-03, Europe/London)`.
    pub fn describe(&self, tz: Tz) -> String {
        let when = match &self.span {
            FreezeSpan::Yearly { from, to } => format!("every year {from} to {to}, {tz}"),
            FreezeSpan::Between { start, end } => {
                format!("{} to {}", start.to_rfc3339(), end.to_rfc3339())
            }
        };
        match &self.reason {
            Some(reason) => format!("{} ({when}): {reason}", self.name),
            None => format!("{} ({when})", self.name),
        }
    }
}

impl WindowSet {
    /// The window that matches `now` in `tz`, if any.
    pub fn matching(&self, now: DateTime<Utc>, tz: Tz) -> Option<&str> {
        let local = now.with_timezone(&tz);
        self.windows
            .iter()
            .find(|(_, s)| s.includes(local))
            .map(|(text, _)| text.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_errors_are_one_line() {
        assert!(parse_cron("0 0 9 * * Tue,Thu").is_ok());
        assert!(parse_cron("@daily").is_ok());
        let cases = [
            (
                "0 9 * * Tue,Thu",
                "5 fields where 6 are needed, seconds first",
            ),
            ("hourly", "1 field where 6 are needed, seconds first"),
            (
                "0 0 25 * * *",
                "Hours must be less than 23. ('25' specified.)",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse_cron(text).unwrap_err(), want, "{text}");
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn yearly(from: &str, to: &str) -> Freeze {
        Freeze {
            name: "year-end".into(),
            reason: None,
            span: FreezeSpan::Yearly {
                from: from.parse().unwrap(),
                to: to.parse().unwrap(),
            },
            file: "policies/prod.yaml".into(),
        }
    }

    #[test]
    fn yearly_freeze_covers_whole_local_days_across_new_year() {
        let f = yearly("12-20", "01-03");
        let london = chrono_tz::Europe::London;
        assert!(
            !f.holds_at(at("2026-12-19T23:59:59Z"), london),
            "last second before"
        );
        assert!(
            f.holds_at(at("2026-12-20T00:00:00Z"), london),
            "first second"
        );
        assert!(f.holds_at(at("2026-12-31T12:00:00Z"), london));
        assert!(
            f.holds_at(at("2027-01-03T23:59:59Z"), london),
            "last second"
        );
        assert!(
            !f.holds_at(at("2027-01-04T00:00:00Z"), london),
            "first second after"
        );
        assert!(!f.holds_at(at("2027-06-01T00:00:00Z"), london));
    }

    #[test]
    fn yearly_freeze_uses_the_environment_time_zone() {
        let f = yearly("12-20", "01-03");
        // 19 Dec 23:30 UTC is already 20 Dec in Tokyo, still 19 Dec in New York.
        assert!(f.holds_at(at("2026-12-19T23:30:00Z"), chrono_tz::Asia::Tokyo));
        assert!(!f.holds_at(at("2026-12-19T23:30:00Z"), chrono_tz::America::New_York));
        // 4 Jan 03:00 UTC is still 3 Jan in New York.
        assert!(f.holds_at(at("2027-01-04T03:00:00Z"), chrono_tz::America::New_York));
    }

    #[test]
    fn yearly_freeze_within_one_year_and_in_summer_time() {
        let f = yearly("07-01", "07-31");
        let london = chrono_tz::Europe::London;
        // London is UTC+1 in July: 30 Jun 23:00 UTC is 1 Jul 00:00 local.
        assert!(!f.holds_at(at("2026-06-30T22:59:59Z"), london));
        assert!(f.holds_at(at("2026-06-30T23:00:00Z"), london));
        assert!(f.holds_at(at("2026-07-31T22:59:59Z"), london));
        assert!(!f.holds_at(at("2026-07-31T23:00:00Z"), london));
    }

    #[test]
    fn absolute_freeze_includes_start_and_excludes_end() {
        let f = Freeze {
            name: "launch".into(),
            reason: Some("big day".into()),
            span: FreezeSpan::Between {
                start: at("2026-11-01T00:00:00Z"),
                end: at("2026-11-02T00:00:00Z"),
            },
            file: "p".into(),
        };
        assert!(!f.holds_at(at("2026-10-31T23:59:59Z"), chrono_tz::UTC));
        assert!(f.holds_at(at("2026-11-01T00:00:00Z"), chrono_tz::UTC));
        assert!(f.holds_at(at("2026-11-01T23:59:59Z"), chrono_tz::UTC));
        assert!(!f.holds_at(at("2026-11-02T00:00:00Z"), chrono_tz::UTC));
        assert!(f.describe(chrono_tz::UTC).ends_with(": big day"));
    }

    #[test]
    fn month_days_are_validated() {
        assert!("02-29".parse::<MonthDay>().is_ok());
        for bad in ["13-01", "02-30", "1220", "aa-bb", "00-10"] {
            assert!(bad.parse::<MonthDay>().is_err(), "{bad}");
        }
    }

    #[test]
    fn allowed_windows_follow_local_time_across_dst() {
        let set = WindowSet {
            file: "p".into(),
            windows: vec![(
                "* * 9-16 * * Mon-Fri".into(),
                "* * 9-16 * * Mon-Fri".parse().unwrap(),
            )],
        };
        let london = chrono_tz::Europe::London;
        // Friday 27 March 2026, GMT: 09:00 local = 09:00 UTC.
        assert!(set.matching(at("2026-03-27T09:00:00Z"), london).is_some());
        assert!(set.matching(at("2026-03-27T08:59:59Z"), london).is_none());
        // Monday 30 March 2026, BST (clocks went forward on the 29th): 09:00 local = 08:00 UTC.
        assert!(set.matching(at("2026-03-30T08:00:00Z"), london).is_some());
        assert!(set.matching(at("2026-03-30T07:59:59Z"), london).is_none());
        assert!(
            set.matching(at("2026-03-30T15:59:59Z"), london).is_some(),
            "16:59:59 local"
        );
        assert!(
            set.matching(at("2026-03-30T16:00:00Z"), london).is_none(),
            "17:00 local"
        );
        // Saturday.
        assert!(set.matching(at("2026-03-28T10:00:00Z"), london).is_none());
    }
}
