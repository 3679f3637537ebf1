//! Compiled schedules: when a job's ticks fall.

use std::str::FromStr;

use alertkit_core::{Error, Result, Schedule};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// A [`Schedule`] checked and ready to compute ticks.
///
/// Cron expressions have six fields with seconds (`0 30 2 * * *`) or the
/// standard five (`30 2 * * *`, at second 0), in a named IANA time zone (UTC
/// by default). Ticks follow local wall-clock time and are correct across
/// DST changes (with [`croner`]): a daily 02:30 job runs once on a
/// spring-forward day (at 03:00, the first instant after the gap) and once
/// on a fall-back day (at the first 02:30). Interval ticks are the multiples
/// of the period since the Unix epoch, so every replica computes the same
/// ticks, which is what makes the once-per-tick claim work.
#[derive(Debug, Clone)]
pub enum Compiled {
    /// A cron expression in a time zone.
    Cron {
        /// The parsed expression.
        cron: Box<Cron>,
        /// Its time zone.
        tz: Tz,
    },
    /// Every so many seconds.
    Interval {
        /// The period.
        every: Duration,
    },
}

impl Compiled {
    /// Checks a schedule: [`Error::Invalid`] naming the bad expression, time
    /// zone or period.
    pub fn new(schedule: &Schedule) -> Result<Self> {
        match schedule {
            Schedule::Cron { expr, timezone } => {
                let cron = CronParser::builder()
                    .seconds(Seconds::Optional)
                    .build()
                    .parse(expr)
                    .map_err(|e| {
                        Error::invalid(format!(
                            "cron expression `{}` is not valid: {e}",
                            truncate(expr)
                        ))
                    })?;
                let tz = match timezone {
                    None => Tz::UTC,
                    Some(name) => Tz::from_str(name).map_err(|_| {
                        Error::invalid(format!(
                            "time zone `{}` is not an IANA time zone name (like Europe/Berlin)",
                            truncate(name)
                        ))
                    })?,
                };
                Ok(Compiled::Cron {
                    cron: Box::new(cron),
                    tz,
                })
            }
            Schedule::Interval { every_secs } => {
                if *every_secs == 0 || *every_secs > 366 * 24 * 3600 {
                    return Err(Error::invalid(format!(
                        "interval of {every_secs} s is not between 1 s and a year"
                    )));
                }
                Ok(Compiled::Interval {
                    every: Duration::seconds(i64::try_from(*every_secs).unwrap_or(i64::MAX)),
                })
            }
        }
    }

    /// The first tick strictly after `t`, or `None` if there is none (a cron
    /// expression that never matches again).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Compiled::Cron { cron, tz } => cron
                .find_next_occurrence(&t.with_timezone(tz), false)
                .ok()
                .map(|d| d.with_timezone(&Utc)),
            Compiled::Interval { every } => {
                let period = every.num_milliseconds().max(1);
                let ms = t.timestamp_millis();
                let next = (ms.div_euclid(period) + 1).checked_mul(period)?;
                DateTime::from_timestamp_millis(next)
            }
        }
    }

    /// Every tick in `(after, upto]`, oldest first, at most `max`.
    pub fn ticks_between(
        &self,
        after: DateTime<Utc>,
        upto: DateTime<Utc>,
        max: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut t = after;
        while out.len() < max {
            match self.next_after(t) {
                Some(n) if n <= upto => {
                    out.push(n);
                    t = n;
                }
                _ => break,
            }
        }
        out
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn cron(expr: &str, tz: &str) -> Compiled {
        Compiled::new(&Schedule::Cron {
            expr: expr.into(),
            timezone: Some(tz.into()),
        })
        .unwrap()
    }

    /// Runs of a daily job during one local day, as UTC instants.
    fn runs_on(c: &Compiled, from: &str, to: &str) -> Vec<DateTime<Utc>> {
        c.ticks_between(utc(from), utc(to), 10)
    }

    #[test]
    fn daily_0230_runs_once_on_both_dst_days_in_berlin() {
        let c = cron("0 30 2 * * *", "Europe/Berlin");
        // 2026-03-29: 02:00 → 03:00 local; 02:30 does not exist.
        let spring = runs_on(&c, "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z");
        assert_eq!(spring.len(), 1, "{spring:?}");
        assert_eq!(spring[0], utc("2026-03-29T01:00:00Z"), "03:00 CEST");
        // 2026-10-25: 03:00 → 02:00 local; 02:30 happens twice.
        let fall = runs_on(&c, "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z");
        assert_eq!(fall.len(), 1, "{fall:?}");
        assert_eq!(
            fall[0],
            utc("2026-10-25T00:30:00Z"),
            "the first 02:30 (CEST)"
        );
    }

    #[test]
    fn daily_0230_runs_once_on_both_dst_days_in_new_york() {
        let c = cron("30 2 * * *", "America/New_York");
        // 2026-03-08: 02:00 → 03:00 EDT.
        let spring = runs_on(&c, "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z");
        assert_eq!(spring, vec![utc("2026-03-08T07:00:00Z")], "03:00 EDT");
        // 2026-11-01: 02:00 EDT → 01:00 EST; 02:30 happens once (EST).
        let fall = runs_on(&c, "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z");
        assert_eq!(fall, vec![utc("2026-11-01T07:30:00Z")]);
        // An hourly job at :30 runs 25 times on the fall-back day.
        let hourly = cron("0 30 * * * *", "America/New_York");
        let n = hourly
            .ticks_between(
                utc("2026-11-01T04:00:00Z"),
                utc("2026-11-02T05:00:00Z"),
                100,
            )
            .len();
        assert_eq!(n, 25);
    }

    #[test]
    fn every_two_hours_and_intervals_align_for_every_replica() {
        let c = cron("0 0 */2 * * *", "UTC");
        assert_eq!(
            c.next_after(utc("2026-01-01T01:00:00Z")),
            Some(utc("2026-01-01T02:00:00Z"))
        );
        let i = Compiled::new(&Schedule::Interval { every_secs: 300 }).unwrap();
        assert_eq!(
            i.next_after(utc("2026-01-01T00:07:13Z")),
            Some(utc("2026-01-01T00:10:00Z"))
        );
        assert_eq!(
            i.next_after(utc("2026-01-01T00:10:00Z")),
            Some(utc("2026-01-01T00:15:00Z")),
            "strictly after"
        );
    }

    #[test]
    fn bad_expressions_zones_and_periods_are_invalid_and_named() {
        for (s, needle) in [
            (
                Schedule::Cron {
                    expr: "61 * * * *".into(),
                    timezone: None,
                },
                "61 * * * *",
            ),
            (
                Schedule::Cron {
                    expr: "not cron".into(),
                    timezone: None,
                },
                "not cron",
            ),
            (
                Schedule::Cron {
                    expr: "0 0 * * *".into(),
                    timezone: Some("Europe/Atlantis".into()),
                },
                "Europe/Atlantis",
            ),
            (Schedule::Interval { every_secs: 0 }, "0 s"),
        ] {
            let e = Compiled::new(&s).unwrap_err();
            assert_eq!(e.kind(), alertkit_core::ErrorKind::Invalid);
            assert!(e.to_string().contains(needle), "{e}");
        }
    }
}
