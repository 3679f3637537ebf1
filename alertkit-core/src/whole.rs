//! Whole numbers from JSON, written either way: `22` or `22.0`.
//!
//! JSON does not tell integers from floats, and JSON Schema counts `22.0` as
//! an integer, so a client (or a generated one) may send either. serde
//! refuses `22.0` for an integer field; fields using these functions
//! (`#[serde(deserialize_with = "alertkit_core::whole::u64")]`) take both,
//! and still refuse fractions, negatives and values out of range.
//!
//! ```
//! #[derive(serde::Deserialize)]
//! struct Body {
//!     #[serde(deserialize_with = "alertkit_core::whole::u64")]
//!     secs: u64,
//! }
//! let b: Body = serde_json::from_str(r#"{"secs": 22.0}"#).unwrap();
//! assert_eq!(b.secs, 22);
//! assert!(serde_json::from_str::<Body>(r#"{"secs": 22.5}"#).is_err());
//! ```

use serde::de::{Deserialize, Deserializer, Error};

/// The number as a `u64`, if it is a whole number in range.
fn whole(n: &serde_json::Number) -> Option<u64> {
    n.as_u64().or_else(|| {
        let f = n.as_f64()?;
        // 2^64 as f64 is the first value out of range.
        (f >= 0.0 && f.fract() == 0.0 && f < 18_446_744_073_709_551_616.0).then_some(f as u64)
    })
}

/// A `u64` written as `22` or `22.0`.
pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    whole(&n).ok_or_else(|| D::Error::custom(format!("{n} is not a whole number from 0")))
}

/// A `u32` written as `22` or `22.0`.
pub fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    whole(&n)
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| D::Error::custom(format!("{n} is not a whole number from 0 to 2^32-1")))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Both {
        #[serde(deserialize_with = "super::u64")]
        a: u64,
        #[serde(deserialize_with = "super::u32")]
        b: u32,
    }

    fn parse(s: &str) -> Result<(u64, u32), String> {
        serde_json::from_str::<Both>(s)
            .map(|v| (v.a, v.b))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn whole_numbers_either_way_and_nothing_else() {
        assert_eq!(parse(r#"{"a": 22.0, "b": 7}"#), Ok((22, 7)));
        assert_eq!(
            parse(r#"{"a": 18446744073709551615, "b": 4294967295.0}"#),
            Ok((u64::MAX, u32::MAX))
        );
        assert_eq!(parse(r#"{"a": 0.0, "b": 0e3}"#), Ok((0, 0)));
        for bad in [
            r#"{"a": 22.5, "b": 1}"#,
            r#"{"a": -1, "b": 1}"#,
            r#"{"a": -1.0, "b": 1}"#,
            r#"{"a": 1e20, "b": 1}"#,
            r#"{"a": 1, "b": 4294967296}"#,
            r#"{"a": "1", "b": 1}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
