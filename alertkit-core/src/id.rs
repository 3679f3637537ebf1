//! Alert identifiers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;

/// An alert's identifier: a UUIDv7, so ids are time-ordered and can be
/// created on any instance without coordination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AlertId(Uuid);

impl AlertId {
    /// A new, time-ordered id.
    pub fn new() -> Self {
        AlertId(Uuid::now_v7())
    }

    /// Wraps an existing UUID (for backends reading ids back).
    pub fn from_uuid(uuid: Uuid) -> Self {
        AlertId(uuid)
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for AlertId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for AlertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for AlertId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s)
            .map(AlertId)
            .map_err(|_| Error::invalid(format!("`{}` is not an alert id", truncate(s, 64))))
    }
}

/// Shortens user input before echoing it in an error message.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// A random number in [0, 1), from a fresh UUIDv4: spreads retries and job
/// starts (jitter) without a random-number dependency.
pub fn unit_random() -> f64 {
    // The low 64 bits of a v4 UUID start with its two variant bits (`10`):
    // only the 62 below them are random. Taking the top 53 of all 64 gave
    // values in [0.5, 0.75) only.
    let random62 = uuid::Uuid::new_v4().as_u128() as u64 & ((1u64 << 62) - 1);
    (random62 >> 9) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_random_covers_the_unit_interval() {
        let draws: Vec<f64> = (0..20_000).map(|_| unit_random()).collect();
        assert!(draws.iter().all(|x| (0.0..1.0).contains(x)));
        let min = draws.iter().copied().fold(1.0, f64::min);
        let max = draws.iter().copied().fold(0.0, f64::max);
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!(min < 0.01 && max > 0.99, "[{min}, {max}]");
        assert!((0.48..0.52).contains(&mean), "mean {mean}");
        // Each tenth holds about a tenth of the draws.
        for d in 0..10 {
            let n = draws
                .iter()
                .filter(|x| (d as f64 / 10.0..(d + 1) as f64 / 10.0).contains(*x))
                .count();
            assert!((1_600..2_400).contains(&n), "tenth {d}: {n}");
        }
    }

    #[test]
    fn ids_are_time_ordered_and_parse_back() {
        let a = AlertId::new();
        let b = AlertId::new();
        assert!(a < b);
        assert_eq!(a.to_string().parse::<AlertId>().ok(), Some(a));
        assert_eq!(a.as_uuid().get_version_num(), 7);
    }

    #[test]
    fn bad_id_is_invalid() {
        let err = "nope".parse::<AlertId>().err();
        assert!(matches!(err, Some(Error::Invalid(_))));
    }
}
