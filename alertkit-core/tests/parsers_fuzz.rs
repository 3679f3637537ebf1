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
