//! Who an alert is for.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;
use crate::principal::Viewer;

/// One target of an alert: a user, a group, or everyone.
///
/// On the wire a target is a string: `"everyone"`, `"user:<id>"` or
/// `"group:<name>"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// One user, by id.
    User(String),
    /// Every member of a group.
    Group(String),
    /// Every user.
    Everyone,
}

impl Target {
    /// A user target.
    pub fn user(id: impl Into<String>) -> Self {
        Target::User(id.into())
    }

    /// A group target.
    pub fn group(name: impl Into<String>) -> Self {
        Target::Group(name.into())
    }

    /// Whether this target includes the viewer (admins aside).
    pub fn includes(&self, viewer: &Viewer) -> bool {
        match self {
            Target::Everyone => true,
            Target::User(id) => *id == viewer.user_id,
            Target::Group(g) => viewer.groups.iter().any(|vg| vg == g),
        }
    }

    /// Whether raising an alert for this target needs `alerts.broadcast`.
    pub fn is_broadcast(&self) -> bool {
        !matches!(self, Target::User(_))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::User(id) => write!(f, "user:{id}"),
            Target::Group(g) => write!(f, "group:{g}"),
            Target::Everyone => f.write_str("everyone"),
        }
    }
}

/// Longest user id or group name accepted in an audience.
pub const MAX_TARGET_LEN: usize = 256;

impl FromStr for Target {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            Error::invalid(format!(
                "audience entry `{}` must be `everyone`, `user:<id>` or `group:<name>`",
                crate::id::truncate(s, 64)
            ))
        };
        if s == "everyone" {
            return Ok(Target::Everyone);
        }
        let (kind, name) = s.split_once(':').ok_or_else(bad)?;
        if name.is_empty()
            || name.chars().count() > MAX_TARGET_LEN
            || name.chars().any(char::is_control)
            || name.trim() != name
        {
            return Err(bad());
        }
        match kind {
            "user" => Ok(Target::User(name.to_owned())),
            "group" => Ok(Target::Group(name.to_owned())),
            _ => Err(bad()),
        }
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The set of targets an alert is for. Kept sorted and free of duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Audience(Vec<Target>);

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Audience::from_targets(Vec::<Target>::deserialize(d)?))
    }
}

impl Audience {
    /// An audience of the given targets (sorted, duplicates removed).
    pub fn from_targets(targets: impl IntoIterator<Item = Target>) -> Self {
        let mut v: Vec<Target> = targets.into_iter().collect();
        v.sort();
        v.dedup();
        Audience(v)
    }

    /// Everyone.
    pub fn everyone() -> Self {
        Audience(vec![Target::Everyone])
    }

    /// A single user.
    pub fn user(id: impl Into<String>) -> Self {
        Audience(vec![Target::user(id)])
    }

    /// A single group.
    pub fn group(name: impl Into<String>) -> Self {
        Audience(vec![Target::group(name)])
    }

    /// The targets, sorted.
    pub fn targets(&self) -> &[Target] {
        &self.0
    }

    /// Whether there is no target at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a viewer may see an alert for this audience
    /// (admins who see everything always may).
    pub fn is_visible_to(&self, viewer: &Viewer) -> bool {
        viewer.sees_all || self.0.iter().any(|t| t.includes(viewer))
    }

    /// Whether raising for this audience needs `alerts.broadcast`.
    pub fn is_broadcast(&self) -> bool {
        self.0.iter().any(Target::is_broadcast)
    }
}

impl FromIterator<Target> for Audience {
    fn from_iter<I: IntoIterator<Item = Target>>(iter: I) -> Self {
        Audience::from_targets(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(id: &str, groups: &[&str]) -> Viewer {
        Viewer::new(id, groups.iter().map(|g| g.to_string()))
    }

    #[test]
    fn wire_format_round_trips() {
        let a = Audience::from_targets([
            Target::user("u:1"),
            Target::group("ops"),
            Target::Everyone,
            Target::group("ops"),
        ]);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, r#"["user:u:1","group:ops","everyone"]"#);
        let back: Audience = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn bad_entries_are_invalid() {
        for bad in ["", "all", "user:", "team:x", "user: x", "group:a\u{0}b"] {
            assert!(
                matches!(bad.parse::<Target>(), Err(Error::Invalid(_))),
                "{bad:?}"
            );
        }
        assert!(serde_json::from_str::<Audience>(r#"["admins"]"#).is_err());
    }

    #[test]
    fn visibility() {
        let alice = viewer("alice", &["ops"]);
        let bob = viewer("bob", &[]);
        assert!(Audience::user("alice").is_visible_to(&alice));
        assert!(!Audience::user("alice").is_visible_to(&bob));
        assert!(Audience::group("ops").is_visible_to(&alice));
        assert!(!Audience::group("ops").is_visible_to(&bob));
        assert!(Audience::everyone().is_visible_to(&bob));
        assert!(Audience::user("alice").is_visible_to(&Viewer::all("root")));
        assert!(!Audience::default().is_visible_to(&bob));
        assert!(Audience::group("ops").is_broadcast());
        assert!(!Audience::user("x").is_broadcast());
    }
}
