//! [`StaticDirectory`]: contact details and groups held in memory.

use std::collections::HashMap;
use std::sync::RwLock;

use alertkit_core::{Directory, Error, Recipient, Result};
use async_trait::async_trait;

/// A [`Directory`] kept in memory: for tests, demos and small deployments
/// whose contacts come from configuration.
#[derive(Debug, Default)]
pub struct StaticDirectory {
    recipients: RwLock<HashMap<String, Recipient>>,
    groups: RwLock<HashMap<String, Vec<String>>>,
}

impl StaticDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (replaces) a user's contact details.
    pub fn set(&self, recipient: Recipient) {
        self.recipients
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(recipient.user_id.clone(), recipient);
    }

    /// A directory of groups only, from a spec like
    /// `planners=alice,bob;ops=carol` (`;` between groups, `,` between
    /// members, spaces around names ignored). [`Error::Invalid`] names what is
    /// wrong: an entry without `=`, an empty group or member name, or a
    /// group listed twice.
    ///
    /// ```
    /// use alertkit_notify::StaticDirectory;
    /// let groups = StaticDirectory::from_groups("planners=alice, bob; ops=carol")?;
    /// assert!(StaticDirectory::from_groups("planners").is_err());
    /// # Ok::<_, alertkit_core::Error>(())
    /// ```
    pub fn from_groups(spec: &str) -> Result<Self> {
        let dir = StaticDirectory::new();
        let mut seen = std::collections::HashSet::new();
        for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let Some((group, members)) = entry.split_once('=') else {
                return Err(Error::invalid(format!(
                    "group entry `{}` needs `group=member,member`",
                    truncate(entry)
                )));
            };
            let group = group.trim();
            let members: Vec<String> = members.split(',').map(|m| m.trim().to_owned()).collect();
            if group.is_empty() || members.iter().any(String::is_empty) {
                return Err(Error::invalid(format!(
                    "group entry `{}` has an empty name",
                    truncate(entry)
                )));
            }
            if !seen.insert(group.to_owned()) {
                return Err(Error::invalid(format!(
                    "group `{}` is listed twice",
                    truncate(group)
                )));
            }
            dir.set_group(group, members);
        }
        Ok(dir)
    }

    /// Sets (replaces) a group's members.
    pub fn set_group(&self, group: impl Into<String>, members: Vec<String>) {
        self.groups
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(group.into(), members);
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

#[async_trait]
impl Directory for StaticDirectory {
    async fn recipient(&self, user_id: &str) -> Result<Option<Recipient>> {
        Ok(self
            .recipients
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(user_id)
            .cloned())
    }

    async fn members(&self, group: &str) -> Result<Vec<String>> {
        Ok(self
            .groups
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(group)
            .cloned()
            .unwrap_or_default())
    }
}

/// A [`Directory`] reading each user's own contact details from the store
/// ([`RuleStore::contact`](alertkit_core::RuleStore::contact), set through
/// `PUT /api/me/contacts`), with group membership from another directory
/// when given (none: groups have no members).
#[derive(Clone)]
pub struct StoreDirectory {
    rules: std::sync::Arc<dyn alertkit_core::RuleStore>,
    groups: Option<std::sync::Arc<dyn Directory>>,
}

impl std::fmt::Debug for StoreDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreDirectory")
            .field("groups", &self.groups.is_some())
            .finish_non_exhaustive()
    }
}

impl StoreDirectory {
    /// Contacts from `rules` (e.g. [`AlertKit::rule_store`](alertkit_core::AlertKit::rule_store)).
    pub fn new(rules: std::sync::Arc<dyn alertkit_core::RuleStore>) -> Self {
        StoreDirectory {
            rules,
            groups: None,
        }
    }

    /// Group members from `groups` (your identity provider's directory).
    pub fn with_groups(mut self, groups: std::sync::Arc<dyn Directory>) -> Self {
        self.groups = Some(groups);
        self
    }
}

#[async_trait]
impl Directory for StoreDirectory {
    /// A user's contacts, or for a team route's delivery (`route:<id>`)
    /// the route's destination.
    async fn recipient(&self, user_id: &str) -> Result<Option<Recipient>> {
        if let Some(id) = alertkit_core::Route::id_of(user_id) {
            let routes = self.rules.routes().await?;
            return Ok(routes.iter().find(|r| r.id == id).map(|r| r.recipient()));
        }
        self.rules.contact(user_id).await
    }

    async fn members(&self, group: &str) -> Result<Vec<String>> {
        match &self.groups {
            Some(g) => g.members(group).await,
            None => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn groups_from_a_spec() {
        let d = StaticDirectory::from_groups(" planners = alice, bob ;ops=carol;").unwrap();
        assert_eq!(d.members("planners").await.unwrap(), ["alice", "bob"]);
        assert_eq!(d.members("ops").await.unwrap(), ["carol"]);
        assert!(d.members("nobody").await.unwrap().is_empty());
        for bad in ["planners", "=alice", "planners=alice,,bob", "a=x;a=y"] {
            let e = StaticDirectory::from_groups(bad).unwrap_err();
            assert_eq!(e.kind(), alertkit_core::ErrorKind::Invalid, "{bad}");
        }
        assert!(StaticDirectory::from_groups("").is_ok(), "no groups");
    }
}
