//! Who is asking: principals, permissions and the store-facing viewer.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Permission {
    /// `alerts.read`: read one's own alerts and keep one's read/dismiss state.
    AlertsRead,
    /// `alerts.create`: raise alerts for users.
    AlertsCreate,
    /// `alerts.manage`: see and delete all alerts, manage rules.
    AlertsManage,
    /// `alerts.broadcast`: raise alerts for groups or everyone, push broadcasts.
    AlertsBroadcast,
    /// `scheduler.manage`: pause, resume and trigger jobs.
    SchedulerManage,
    /// `forecast.read`: read series, forecasts and their history, and
    /// receive `forecast` frames.
    ForecastRead,
    /// `forecast.manage`: upload actuals and change series settings.
    ForecastManage,
    /// `reports.create`: trigger reports and download one's own.
    ReportsCreate,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 8] = [
        Permission::AlertsRead,
        Permission::AlertsCreate,
        Permission::AlertsManage,
        Permission::AlertsBroadcast,
        Permission::SchedulerManage,
        Permission::ForecastRead,
        Permission::ForecastManage,
        Permission::ReportsCreate,
    ];

    /// The permission's string form, as in JWT `perms` claims.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::AlertsRead => "alerts.read",
            Permission::AlertsCreate => "alerts.create",
            Permission::AlertsManage => "alerts.manage",
            Permission::AlertsBroadcast => "alerts.broadcast",
            Permission::SchedulerManage => "scheduler.manage",
            Permission::ForecastRead => "forecast.read",
            Permission::ForecastManage => "forecast.manage",
            Permission::ReportsCreate => "reports.create",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Permission {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown permission `{}`",
                    crate::id::truncate(s, 64)
                ))
            })
    }
}

impl Serialize for Permission {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// An authenticated caller: a user id, the groups it belongs to and its
/// permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The user id (JWT `sub`).
    pub user_id: String,
    /// Groups the user belongs to.
    #[serde(default)]
    pub groups: Vec<String>,
    /// What the user may do.
    #[serde(default)]
    pub permissions: BTreeSet<Permission>,
    /// When the credentials this principal was authenticated with stop
    /// being accepted (a token's `exp` plus the authenticator's leeway);
    /// `None` when they do not expire. Long-lived sessions (WebSockets)
    /// end at this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Principal {
    /// A regular user: may read its own alerts, nothing else.
    pub fn user(user_id: impl Into<String>) -> Self {
        Principal {
            user_id: user_id.into(),
            groups: Vec::new(),
            permissions: BTreeSet::from([Permission::AlertsRead]),
            expires_at: None,
        }
    }

    /// A user with every permission.
    pub fn admin(user_id: impl Into<String>) -> Self {
        Principal {
            user_id: user_id.into(),
            groups: Vec::new(),
            permissions: Permission::ALL.into_iter().collect(),
            expires_at: None,
        }
    }

    /// The principal alertkit's own jobs (rules, forecasts, SLA watch) act as.
    pub fn system() -> Self {
        Principal::admin("system")
    }

    /// Adds groups.
    pub fn with_groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups.extend(groups.into_iter().map(Into::into));
        self
    }

    /// Adds permissions.
    pub fn with_permissions(mut self, perms: impl IntoIterator<Item = Permission>) -> Self {
        self.permissions.extend(perms);
        self
    }

    /// Whether the principal holds a permission.
    pub fn can(&self, p: Permission) -> bool {
        self.permissions.contains(&p)
    }

    /// Fails with [`Error::Forbidden`] unless the principal holds `p`.
    pub fn require(&self, p: Permission) -> crate::Result<()> {
        if self.can(p) {
            Ok(())
        } else {
            Err(Error::forbidden(format!("`{p}` permission required")))
        }
    }

    /// What this principal looks like to a store: admins (`alerts.manage`)
    /// see every alert, others their own, their groups' and everyone's.
    pub fn viewer(&self) -> Viewer {
        Viewer {
            user_id: self.user_id.clone(),
            groups: self.groups.clone(),
            sees_all: self.can(Permission::AlertsManage),
        }
    }
}

/// The part of a principal a store needs to decide visibility and to key
/// per-user read/dismiss state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    /// Whose receipts (read/dismissed state) apply.
    pub user_id: String,
    /// Groups the viewer belongs to.
    pub groups: Vec<String>,
    /// Whether the viewer sees every alert regardless of audience.
    pub sees_all: bool,
}

impl Viewer {
    /// A viewer who sees alerts for itself, its groups and everyone.
    pub fn new<I, S>(user_id: impl Into<String>, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Viewer {
            user_id: user_id.into(),
            groups: groups.into_iter().map(Into::into).collect(),
            sees_all: false,
        }
    }

    /// A viewer who sees every alert (an admin).
    pub fn all(user_id: impl Into<String>) -> Self {
        Viewer {
            user_id: user_id.into(),
            groups: Vec::new(),
            sees_all: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_parse_and_gate() {
        assert_eq!(
            "alerts.manage".parse::<Permission>().ok(),
            Some(Permission::AlertsManage)
        );
        assert!("alerts.everything".parse::<Permission>().is_err());
        let u = Principal::user("u1").with_groups(["ops"]);
        assert!(u.can(Permission::AlertsRead));
        assert!(matches!(
            u.require(Permission::AlertsManage),
            Err(Error::Forbidden(_))
        ));
        assert!(!u.viewer().sees_all);
        assert_eq!(u.viewer().groups, vec!["ops".to_string()]);
        assert!(Principal::admin("a").viewer().sees_all);
        let json = serde_json::to_value(Principal::user("x")).unwrap();
        assert_eq!(json["permissions"], serde_json::json!(["alerts.read"]));
    }
}
