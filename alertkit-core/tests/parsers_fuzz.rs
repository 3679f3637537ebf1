//! Property tests for what clients hand to the engine as text: list
//! cursors. Any string decodes to a position or to `Invalid`, never a
//! panic; a cursor that decodes re-encodes to itself; crafted payloads
//! (extreme timestamps, extra fields, huge numbers) are refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use alertkit_core::Error;
use alertkit_core::query::{Cursor, CursorPosition};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;

/// Payloads shaped like a cursor's, with every part free.
fn crafted() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just("99999999999999999999999".to_owned()),
        Just(uuid::Uuid::nil().to_string()),
        "[0-9a-f-]{0,40}",
        ".{0,12}",
    ];
    prop::collection::vec(part, 0..7).prop_map(|parts| URL_SAFE_NO_PAD.encode(parts.join(".")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_string_decodes_or_is_invalid(s in prop_oneof![".{0,200}", "[A-Za-z0-9_-]{0,160}", crafted()]) {
        match Cursor::from_raw(s.clone()).position() {
            Ok(pos) => {
                // What decodes is a position this code could have made.
                let again = Cursor::new(pos).position().unwrap();
                prop_assert_eq!(again, pos);
            }
            Err(Error::Invalid(_)) => {}
            Err(other) => prop_assert!(false, "{s:?}: {other:?}"),
        }
    }

    #[test]
    fn made_cursors_round_trip(micros in -62_000_000_000_000_000i64..250_000_000_000_000_000, totals in proptest::option::of((any::<u64>(), any::<u64>()))) {
        let Some(created_at) = chrono::DateTime::from_timestamp_micros(micros) else { return Ok(()) };
        let pos = CursorPosition { created_at, id: alertkit_core::AlertId::new(), totals };
        match Cursor::new(pos).position() {
            Ok(back) => prop_assert_eq!(back, pos),
            // Outside the range stores keep: refused, never wrapped.
            Err(Error::Invalid(_)) => {}
            Err(other) => prop_assert!(false, "{other:?}"),
        }
    }
}

/// JSON values of any shape, a few levels deep, with the keys rule
/// conditions use among random ones.
fn any_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![Just(">"), Just(">="), Just("=="), Just("!~")]
            .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        let key = prop_oneof![
            Just("metric".to_owned()),
            Just("op".to_owned()),
            Just("value".to_owned()),
            Just("labels".to_owned()),
            Just("for_evaluations".to_owned()),
            Just("audience".to_owned()),
            Just("at_risk_secs".to_owned()),
            "[a-z]{0,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any JSON as a rule's conditions, for every kind, validates or is
    /// `Invalid`; never a panic. A threshold rule that validates has a
    /// metric, an operator and a finite value.
    #[test]
    fn any_rule_conditions_validate_or_are_invalid(conditions in any_json(), kind in 0..3usize) {
        use alertkit_core::{NewAlert, NewRule, RuleKind, Severity};
        let kind = [RuleKind::Threshold, RuleKind::Sla, RuleKind::Event][kind];
        let now = chrono::Utc::now();
        let rule = NewRule {
            name: "fuzz".into(),
            kind,
            enabled: true,
            conditions: conditions.clone(),
            template: NewAlert::new("fuzz", Severity::High, "fuzz"),
            for_secs: 0,
            cooldown_secs: 0,
        }
        .into_rule(uuid::Uuid::now_v7(), now, now);
        match rule.validate(now) {
            Ok(()) => {
                if kind == RuleKind::Threshold {
                    let c = alertkit_core::evaluate::ThresholdConditions::of(&rule).unwrap();
                    prop_assert!(!c.metric.trim().is_empty() && c.value.is_finite());
                }
                prop_assert!(conditions.is_object());
            }
            Err(Error::Invalid(_)) => {}
            Err(other) => prop_assert!(false, "{conditions}: {other:?}"),
        }
    }
}
