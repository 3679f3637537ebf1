//! Property tests for job schedules as users write them: any cron
//! expression and time zone compiles or is `Invalid` (never a panic), and
//! a schedule that compiles yields ticks strictly after the time asked,
//! in order, within the bound asked for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use alertkit_core::Error;
use alertkit_core::scheduler::Schedule;
use alertkit_scheduler::Compiled;
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;

/// Expressions built from cron's own tokens, mostly plausible.
fn expr() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        Just("*".to_owned()),
        (0u32..70).prop_map(|n| n.to_string()),
        (0u32..70, 0u32..70).prop_map(|(a, b)| format!("{a}-{b}")),
        (0u32..70).prop_map(|n| format!("*/{n}")),
        (0u32..70, 0u32..70).prop_map(|(a, b)| format!("{a},{b}")),
        Just("L".to_owned()),
        Just("MON-FRI".to_owned()),
        Just("JAN".to_owned()),
        Just("?".to_owned()),
        Just("1#3".to_owned()),
        Just("5L".to_owned()),
        Just("15W".to_owned()),
        "[a-zA-Z0-9*/,#?-]{0,6}",
    ];
    prop_oneof![
        4 => prop::collection::vec(field, 0..8).prop_map(|f| f.join(" ")),
        1 => ".{0,80}",
        1 => Just("@hourly".to_owned()),
        1 => Just("@yearly".to_owned()),
    ]
}

fn timezone() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        Just("Europe/Berlin".to_owned()),
        Just("Asia/Ho_Chi_Minh".to_owned()),
        Just("America/St_Johns".to_owned()),
        Just("Australia/Lord_Howe".to_owned()),
        ".{0,30}",
    ])
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // 1970 to 2400, through every DST change in between.
    (0i64..13_569_465_600).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn any_cron_compiles_or_is_invalid_and_ticks_move_forward(
        expr in expr(), timezone in timezone(), at in instant(), span_h in 1i64..400,
    ) {
        let schedule = Schedule::Cron { expr: expr.clone(), timezone };
        match Compiled::new(&schedule) {
            Err(Error::Invalid(msg)) => prop_assert!(msg.len() < 400, "{msg}"),
            Err(other) => prop_assert!(false, "{expr:?}: {other:?}"),
            Ok(c) => {
                if let Some(n) = c.next_after(at) {
                    prop_assert!(n > at, "{expr:?}: {n} is not after {at}");
                }
                let ticks = c.ticks_between(at, at + Duration::hours(span_h), 50);
                prop_assert!(ticks.len() <= 50);
                prop_assert!(ticks.windows(2).all(|w| w[0] < w[1]), "{expr:?}: {ticks:?}");
                prop_assert!(ticks.iter().all(|t| *t > at && *t <= at + Duration::hours(span_h)));
            }
        }
    }

    #[test]
    fn any_interval_compiles_or_is_invalid(every_secs in any::<u64>(), at in instant()) {
        match Compiled::new(&Schedule::Interval { every_secs }) {
            Err(Error::Invalid(_)) => {}
            Err(other) => prop_assert!(false, "{other:?}"),
            Ok(c) => {
                if let Some(n) = c.next_after(at) {
                    prop_assert!(n > at);
                }
            }
        }
    }
}
