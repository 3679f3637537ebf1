//! [`StaticDirectory`]: contact details and groups held in memory.

use std::collections::HashMap;
use std::sync::RwLock;

use alertkit_core::{Directory, Recipient, Result};
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

    /// Sets (replaces) a group's members.
    pub fn set_group(&self, group: impl Into<String>, members: Vec<String>) {
        self.groups
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(group.into(), members);
    }
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
