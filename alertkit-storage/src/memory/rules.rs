//! [`RuleStore`]: rules and subscriptions.

use super::*;

#[async_trait]
impl RuleStore for MemoryAlertStore {
    async fn create_rule(&self, rule: AlertRule) -> Result<AlertRule> {
        let mut s = self.write();
        if s.rules.contains_key(&rule.id) {
            return Err(Error::Conflict(format!("rule {} already exists", rule.id)));
        }
        if s.rules.values().any(|r| r.name == rule.name) {
            return Err(Error::Conflict(format!(
                "a rule named `{}` exists",
                rule.name
            )));
        }
        s.rules.insert(rule.id, rule.clone());
        Ok(rule)
    }

    async fn update_rule(&self, rule: AlertRule) -> Result<AlertRule> {
        let mut s = self.write();
        if !s.rules.contains_key(&rule.id) {
            return Err(Error::not_found(format!("rule {}", rule.id)));
        }
        if s.rules
            .values()
            .any(|r| r.name == rule.name && r.id != rule.id)
        {
            return Err(Error::Conflict(format!(
                "a rule named `{}` exists",
                rule.name
            )));
        }
        s.rules.insert(rule.id, rule.clone());
        Ok(rule)
    }

    async fn get_rule(&self, id: Uuid) -> Result<AlertRule> {
        self.read()
            .rules
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("rule {id}")))
    }

    async fn list_rules(&self) -> Result<Vec<AlertRule>> {
        let mut rules: Vec<AlertRule> = self.read().rules.values().cloned().collect();
        rules.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rules)
    }

    async fn delete_rule(&self, id: Uuid) -> Result<()> {
        self.write()
            .rules
            .remove(&id)
            .map(|_| ())
            .ok_or_else(|| Error::not_found(format!("rule {id}")))
    }

    async fn subscriptions(&self, user_id: &str) -> Result<Vec<Subscription>> {
        let mut subs = self
            .read()
            .subscriptions
            .get(user_id)
            .cloned()
            .unwrap_or_default();
        subs.sort_by(|a, b| a.alert_type.cmp(&b.alert_type));
        Ok(subs)
    }

    async fn set_subscriptions(&self, user_id: &str, subs: Vec<Subscription>) -> Result<()> {
        if subs.iter().any(|s| s.user_id != user_id) {
            return Err(Error::invalid("every subscription must belong to the user"));
        }
        let mut s = self.write();
        if subs.is_empty() {
            s.subscriptions.remove(user_id);
        } else {
            s.subscriptions.insert(user_id.to_owned(), subs);
        }
        Ok(())
    }

    async fn subscribers(&self, alert_type: &str, severity: Severity) -> Result<Vec<Subscription>> {
        Ok(self
            .read()
            .subscriptions
            .values()
            .flatten()
            .filter(|s| s.wants(alert_type, severity))
            .cloned()
            .collect())
    }

    async fn contact(&self, user_id: &str) -> Result<Option<Recipient>> {
        Ok(self.read().contacts.get(user_id).cloned())
    }

    async fn set_contact(&self, contact: Recipient) -> Result<()> {
        self.write()
            .contacts
            .insert(contact.user_id.clone(), contact);
        Ok(())
    }

    async fn routes(&self) -> Result<Vec<Route>> {
        let mut out: Vec<Route> = self.read().routes.values().cloned().collect();
        out.sort_by_key(|r| (r.created_at, r.id));
        Ok(out)
    }

    async fn put_route(&self, route: Route) -> Result<()> {
        self.write().routes.insert(route.id, route);
        Ok(())
    }

    async fn delete_route(&self, id: Uuid) -> Result<()> {
        self.write()
            .routes
            .remove(&id)
            .map(|_| ())
            .ok_or_else(|| Error::not_found(format!("route {id}")))
    }
}
