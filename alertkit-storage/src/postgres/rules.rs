//! [`RuleStore`]: rules and subscriptions.

use super::*;

#[async_trait]
impl RuleStore for PostgresAlertStore {
    async fn create_rule(&self, rule: AlertRule) -> Result<AlertRule> {
        self.write_rule(&rule, true).await?;
        Ok(rule)
    }

    async fn update_rule(&self, rule: AlertRule) -> Result<AlertRule> {
        self.write_rule(&rule, false).await?;
        Ok(rule)
    }

    async fn get_rule(&self, id: Uuid) -> Result<AlertRule> {
        match sqlx::query("SELECT * FROM alert_rules WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .pg()?
        {
            Some(row) => rule_from_row(&row),
            None => Err(Error::not_found(format!("rule {id}"))),
        }
    }

    async fn list_rules(&self) -> Result<Vec<AlertRule>> {
        sqlx::query("SELECT * FROM alert_rules ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .pg()?
            .iter()
            .map(rule_from_row)
            .collect()
    }

    async fn delete_rule(&self, id: Uuid) -> Result<()> {
        let res = sqlx::query("DELETE FROM alert_rules WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .pg()?;
        if res.rows_affected() == 0 {
            return Err(Error::not_found(format!("rule {id}")));
        }
        Ok(())
    }

    async fn subscriptions(&self, user_id: &str) -> Result<Vec<Subscription>> {
        sqlx::query("SELECT * FROM alert_subscriptions WHERE user_id = $1 ORDER BY alert_type")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
            .pg()?
            .iter()
            .map(subscription_from_row)
            .collect()
    }

    async fn set_subscriptions(&self, user_id: &str, subs: Vec<Subscription>) -> Result<()> {
        if subs.iter().any(|s| s.user_id != user_id) {
            return Err(Error::invalid("every subscription must belong to the user"));
        }
        let mut tx = self.pool.begin().await.pg()?;
        sqlx::query("DELETE FROM alert_subscriptions WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .pg()?;
        for s in &subs {
            let channels: Vec<&str> = s.channels.iter().map(|c| c.as_str()).collect();
            sqlx::query(
                "INSERT INTO alert_subscriptions (user_id, alert_type, enabled, channels, min_severity, digest) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(user_id)
            .bind(&s.alert_type)
            .bind(s.enabled)
            .bind(channels)
            .bind(s.min_severity.rank())
            .bind(s.digest.map(|d| d.as_str()))
            .execute(&mut *tx)
            .await
            .pg()?;
        }
        tx.commit().await.pg()?;
        Ok(())
    }

    async fn subscribers(&self, alert_type: &str, severity: Severity) -> Result<Vec<Subscription>> {
        sqlx::query(
            "SELECT * FROM alert_subscriptions WHERE enabled AND (alert_type = $1 OR alert_type = '*') \
             AND min_severity <= $2 ORDER BY user_id, alert_type",
        )
        .bind(alert_type)
        .bind(severity.rank())
        .fetch_all(&self.pool)
        .await
        .pg()?
        .iter()
        .map(subscription_from_row)
        .collect()
    }

    async fn contact(&self, user_id: &str) -> Result<Option<Recipient>> {
        let row = sqlx::query(
            "SELECT user_id, email, slack_id, webhook_url, time_zone FROM contacts \
             WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .pg()?;
        row.map(|r| {
            Ok(Recipient {
                user_id: r.try_get("user_id").pg()?,
                email: r.try_get("email").pg()?,
                slack_id: r.try_get("slack_id").pg()?,
                webhook_url: r.try_get("webhook_url").pg()?,
                time_zone: r.try_get("time_zone").pg()?,
            })
        })
        .transpose()
    }

    async fn set_contact(&self, c: Recipient) -> Result<()> {
        sqlx::query(
            "INSERT INTO contacts (user_id, email, slack_id, webhook_url, time_zone) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) \
             DO UPDATE SET email = $2, slack_id = $3, webhook_url = $4, time_zone = $5",
        )
        .bind(&c.user_id)
        .bind(c.email.as_deref())
        .bind(c.slack_id.as_deref())
        .bind(c.webhook_url.as_deref())
        .bind(c.time_zone.as_deref())
        .execute(&self.pool)
        .await
        .pg()?;
        Ok(())
    }

    async fn routes(&self) -> Result<Vec<Route>> {
        let rows = sqlx::query("SELECT body FROM notify_routes ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .pg()?;
        rows.iter()
            .map(|r| {
                let body: serde_json::Value = r.try_get("body").pg()?;
                serde_json::from_value(body).map_err(|e| corrupt(BACKEND, e))
            })
            .collect()
    }

    async fn put_route(&self, route: Route) -> Result<()> {
        let body = serde_json::to_value(&route).map_err(|e| Error::backend(BACKEND, e))?;
        sqlx::query(
            "INSERT INTO notify_routes (id, body, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET body = $2",
        )
        .bind(route.id)
        .bind(body)
        .bind(route.created_at)
        .execute(&self.pool)
        .await
        .pg()?;
        Ok(())
    }

    async fn delete_route(&self, id: Uuid) -> Result<()> {
        let res = sqlx::query("DELETE FROM notify_routes WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .pg()?;
        if res.rows_affected() == 0 {
            return Err(Error::not_found(format!("route {id}")));
        }
        Ok(())
    }
}

impl PostgresAlertStore {
    pub(super) async fn write_rule(&self, rule: &AlertRule, create: bool) -> Result<()> {
        let template =
            serde_json::to_value(&rule.template).map_err(|e| Error::invalid(e.to_string()))?;
        let sql = if create {
            "INSERT INTO alert_rules (id, name, kind, enabled, conditions, template, for_secs, \
             cooldown_secs, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        } else {
            "UPDATE alert_rules SET name = $2, kind = $3, enabled = $4, conditions = $5, \
             template = $6, for_secs = $7, cooldown_secs = $8, created_at = $9, updated_at = $10 \
             WHERE id = $1"
        };
        let res = sqlx::query(sql)
            .bind(rule.id)
            .bind(&rule.name)
            .bind(rule.kind.as_str())
            .bind(rule.enabled)
            .bind(&rule.conditions)
            .bind(template)
            .bind(i64_secs(rule.for_secs))
            .bind(i64_secs(rule.cooldown_secs))
            .bind(rule.created_at)
            .bind(rule.updated_at)
            .execute(&self.pool)
            .await
            .pg()?;
        if !create && res.rows_affected() == 0 {
            return Err(Error::not_found(format!("rule {}", rule.id)));
        }
        Ok(())
    }
}
