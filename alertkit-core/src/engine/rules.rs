//! Rules and subscriptions through the engine.

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::principal::{Permission, Principal};
use crate::rule::{AlertRule, NewRule, Subscription};

use super::AlertKit;

impl AlertKit {
    /// Every rule (needs `alerts.manage`: rules reveal what is watched and whom alerts reach).
    pub async fn rules(&self, by: &Principal) -> Result<Vec<AlertRule>> {
        by.require(Permission::AlertsManage)?;
        self.inner.store.list_rules().await
    }

    /// Creates a rule (needs `alerts.manage`).
    pub async fn create_rule(&self, by: &Principal, rule: NewRule) -> Result<AlertRule> {
        by.require(Permission::AlertsManage)?;
        let now = self.now();
        let rule = rule.into_rule(Uuid::now_v7(), now, now);
        rule.validate(now)?;
        self.inner.store.create_rule(rule).await
    }

    /// Replaces a rule (needs `alerts.manage`).
    pub async fn update_rule(&self, by: &Principal, id: Uuid, rule: NewRule) -> Result<AlertRule> {
        by.require(Permission::AlertsManage)?;
        let now = self.now();
        let old = self.inner.store.get_rule(id).await?;
        let rule = rule.into_rule(id, old.created_at, now);
        rule.validate(now)?;
        self.inner.store.update_rule(rule).await
    }

    /// Deletes a rule (needs `alerts.manage`).
    pub async fn delete_rule(&self, by: &Principal, id: Uuid) -> Result<()> {
        by.require(Permission::AlertsManage)?;
        self.inner.store.delete_rule(id).await
    }

    /// The principal's own subscriptions.
    pub async fn subscriptions(&self, by: &Principal) -> Result<Vec<Subscription>> {
        by.require(Permission::AlertsRead)?;
        self.inner.store.subscriptions(&by.user_id).await
    }

    /// Replaces the principal's own subscriptions. Each must name the
    /// principal as its user, or leave `user_id` empty to mean it.
    pub async fn set_subscriptions(
        &self,
        by: &Principal,
        subs: Vec<Subscription>,
    ) -> Result<Vec<Subscription>> {
        by.require(Permission::AlertsRead)?;
        let mut out = Vec::with_capacity(subs.len());
        for mut s in subs {
            if s.user_id.is_empty() {
                s.user_id.clone_from(&by.user_id);
            } else if s.user_id != by.user_id {
                return Err(Error::forbidden(
                    "subscriptions can only be set for oneself",
                ));
            }
            s.validate()?;
            // One subscription per alert type: a later one replaces an
            // earlier one in the same list.
            out.retain(|o: &Subscription| o.alert_type != s.alert_type);
            out.push(s);
        }
        self.inner
            .store
            .set_subscriptions(&by.user_id, out.clone())
            .await?;
        Ok(out)
    }
}
