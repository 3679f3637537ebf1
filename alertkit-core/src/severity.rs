//! Alert severities.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// How urgent an alert is, ordered `info < low < medium < high < critical`.
///
/// Lowercase on the wire. `warning` is accepted on input as [`Severity::Medium`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For information only.
    Info,
    /// Low urgency.
    Low,
    /// Medium urgency (also accepted as `warning`).
    #[serde(alias = "warning")]
    Medium,
    /// High urgency.
    High,
    /// Needs action now.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The wire name (`info`, `low`, `medium`, `high`, `critical`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// A number that sorts like the severity (0 for info … 4 for critical),
    /// for backends that store it as an integer.
    pub fn rank(self) -> i16 {
        self as i16
    }

    /// The severity of a [`rank`](Self::rank).
    pub fn from_rank(rank: i16) -> Option<Severity> {
        Severity::ALL.get(usize::try_from(rank).ok()?).copied()
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "low" => Ok(Severity::Low),
            "medium" | "warning" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            _ => Err(Error::invalid(format!(
                "severity `{}` is not one of info, low, medium (warning), high, critical",
                crate::id::truncate(s, 32)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_and_warning_alias() {
        assert!(Severity::Info < Severity::Low);
        assert!(Severity::High < Severity::Critical);
        assert_eq!("warning".parse::<Severity>().ok(), Some(Severity::Medium));
        assert_eq!("HIGH".parse::<Severity>().ok(), Some(Severity::High));
        let s: Severity = serde_json::from_str("\"warning\"").unwrap();
        assert_eq!(s, Severity::Medium);
        assert_eq!(
            serde_json::to_string(&Severity::Medium).ok().as_deref(),
            Some("\"medium\"")
        );
        assert!(matches!(
            "urgent".parse::<Severity>(),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn rank_round_trips() {
        for s in Severity::ALL {
            assert_eq!(Severity::from_rank(s.rank()), Some(s));
        }
        assert_eq!(Severity::from_rank(5), None);
        assert_eq!(Severity::from_rank(-1), None);
    }
}
