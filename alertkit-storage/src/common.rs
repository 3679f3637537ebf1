//! Conversions shared by the database backends: how model values are stored in
//! columns, and back. Anything that does not read back is a corrupt row,
//! reported as a backend error rather than a panic.

use std::str::FromStr;

use std::collections::HashMap;

use alertkit_core::{
    Alert, AlertId, Audience, ClaimedDelivery, Delivery, Error, Raised, Result, Severity, Target,
    Viewer,
};

/// A row that does not decode into the model.
pub(crate) fn corrupt(backend: &'static str, what: impl std::fmt::Display) -> Error {
    Error::backend(backend, format!("corrupt row: {what}"))
}

/// Parses a stored enum-like text column.
pub(crate) fn parse<T: FromStr<Err = Error>>(backend: &'static str, s: &str) -> Result<T> {
    s.parse().map_err(|e| corrupt(backend, e))
}

/// The stored form of an audience: its wire strings.
pub(crate) fn audience_strings(a: &Audience) -> Vec<String> {
    a.targets().iter().map(ToString::to_string).collect()
}

/// Reads an audience back from its wire strings.
pub(crate) fn audience_from(backend: &'static str, v: Vec<String>) -> Result<Audience> {
    v.iter()
        .map(|s| parse::<Target>(backend, s))
        .collect::<Result<Audience>>()
}

/// The audience strings a viewer matches: everyone, its user, its groups.
pub(crate) fn viewer_targets(v: &Viewer) -> Vec<String> {
    let mut out = vec![
        Target::Everyone.to_string(),
        Target::user(v.user_id.clone()).to_string(),
    ];
    out.extend(
        v.groups
            .iter()
            .map(|g| Target::group(g.clone()).to_string()),
    );
    out
}

/// Reads a severity rank back.
pub(crate) fn severity_from(backend: &'static str, rank: i16) -> Result<Severity> {
    Severity::from_rank(rank).ok_or_else(|| corrupt(backend, format!("severity rank {rank}")))
}

/// Reads a non-negative counter back.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn count_from(backend: &'static str, n: i32) -> Result<u32> {
    u32::try_from(n).map_err(|_| corrupt(backend, format!("negative counter {n}")))
}

/// A `u32` for an `INTEGER` column (saturating; counters never get near).
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A `u64` count from a database count.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Puts a batch's results back in input order: `out` holds the keyed
/// raises in place (`Some`) and a gap (`None`) for each plain alert, which
/// `plain` supplies, in order, as newly created.
#[cfg(any(feature = "postgres", feature = "mongodb", feature = "sqlite"))]
pub(crate) fn in_input_order(
    out: Vec<Option<Raised>>,
    plain: Vec<(Alert, Vec<alertkit_core::DeliveryTarget>)>,
) -> Vec<Raised> {
    let mut plain = plain.into_iter();
    out.into_iter()
        .filter_map(|r| {
            r.or_else(|| {
                plain.next().map(|(alert, _)| Raised {
                    alert,
                    deduplicated: false,
                    escalated: false,
                })
            })
        })
        .collect()
}

/// Pairs claimed deliveries with their alerts, in the deliveries' order;
/// one whose alert vanished meanwhile (deleted) is dropped.
pub(crate) fn pair_with_alerts(
    deliveries: Vec<Delivery>,
    alerts: &HashMap<AlertId, Alert>,
) -> Vec<ClaimedDelivery> {
    deliveries
        .into_iter()
        .filter_map(|delivery| {
            let alert = alerts.get(&delivery.alert_id)?.clone();
            Some(ClaimedDelivery { delivery, alert })
        })
        .collect()
}

/// The distinct alerts a batch of raises touched, in first-seen order (a
/// batch may merge into one alert twice): the order in which they take
/// change numbers.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn touched(raised: &[Raised]) -> Vec<uuid::Uuid> {
    let mut seen = std::collections::HashSet::with_capacity(raised.len());
    raised
        .iter()
        .map(|r| r.alert.id.as_uuid())
        .filter(|id| seen.insert(*id))
        .collect()
}

/// Copies the change numbers a batch was given into its raises.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn set_seqs(raised: &mut [Raised], seqs: &HashMap<uuid::Uuid, u64>) {
    for r in raised {
        r.alert.seq = seqs.get(&r.alert.id.as_uuid()).copied().unwrap_or_default();
    }
}
