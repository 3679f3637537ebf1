//! [`RuleStore`]: rules and subscriptions.

use super::*;

#[async_trait]
impl RuleStore for SqliteAlertStore {
    async fn create_rule(&self, rule: AlertRule) -> Result<AlertRule> {
        self.write_rule(&rule, true).await?;
        Ok(rule)
    }

    async fn update_rule(&self, rule: AlertRule) -> Result<AlertRule> {
        self.write_rule(&rule, false).await?;
        Ok(rule)
    }

    async fn get_rule(&self, id: Uuid) -> Result<AlertRule> {
        match sqlx::query("SELECT * FROM alert_rules WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .lite()?
        {
            Some(row) => rule_from_row(&row),
            None => Err(Error::not_found(format!("rule {id}"))),
        }
    }

    async fn list_rules(&self) -> Result<Vec<AlertRule>> {
        sqlx::query("SELECT * FROM alert_rules ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .lite()?
            .iter()
            .map(rule_from_row)
            .collect()
    }

    async fn delete_rule(&self, id: Uuid) -> Result<()> {
        let res = sqlx::query("DELETE FROM alert_rules WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .lite()?;
        if res.rows_affected() == 0 {
            return Err(Error::not_found(format!("rule {id}")));
        }
        Ok(())
    }

    async fn subscriptions(&self, user_id: &str) -> Result<Vec<Subscription>> {
        sqlx::query("SELECT * FROM alert_subscriptions WHERE user_id = ? ORDER BY alert_type")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
            .lite()?
            .iter()
            .map(subscription_from_row)
            .collect()
    }

    async fn set_subscriptions(&self, user_id: &str, subs: Vec<Subscription>) -> Result<()> {
        if subs.iter().any(|s| s.user_id != user_id) {
            return Err(Error::invalid("every subscription must belong to the user"));
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.lite()?;
        sqlx::query("DELETE FROM alert_subscriptions WHERE user_id = ?")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .lite()?;
        for s in &subs {
            let channels: Vec<String> = s.channels.iter().map(|c| c.as_str().to_owned()).collect();
            sqlx::query(
                "INSERT INTO alert_subscriptions (user_id, alert_type, enabled, channels, min_severity, digest) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(user_id)
            .bind(&s.alert_type)
            .bind(s.enabled)
            .bind(json_list(&channels))
            .bind(s.min_severity.rank())
            .bind(s.digest.map(|d| d.as_str()))
            .execute(&mut *tx)
            .await
            .lite()?;
        }
        tx.commit().await.lite()?;
        Ok(())
    }

    async fn subscribers(&self, alert_type: &str, severity: Severity) -> Result<Vec<Subscription>> {
        sqlx::query(
            "SELECT * FROM alert_subscriptions WHERE enabled AND (alert_type = ? OR alert_type = '*') \
             AND min_severity <= ? ORDER BY user_id, alert_type",
        )
        .bind(alert_type)
        .bind(severity.rank())
        .fetch_all(&self.pool)
        .await
        .lite()?
        .iter()
        .map(subscription_from_row)
        .collect()
    }

    async fn contact(&self, user_id: &str) -> Result<Option<Recipient>> {
        let row = sqlx::query(
            "SELECT user_id, email, slack_id, webhook_url, time_zone FROM contacts \
             WHERE user_id = ?",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .lite()?;
        row.map(|r| {
            Ok(Recipient {
                user_id: r.try_get("user_id").lite()?,
                email: r.try_get("email").lite()?,
                slack_id: r.try_get("slack_id").lite()?,
                webhook_url: r.try_get("webhook_url").lite()?,
                time_zone: r.try_get("time_zone").lite()?,
            })
        })
        .transpose()
    }

    async fn set_contact(&self, c: Recipient) -> Result<()> {
        sqlx::query(
            "INSERT INTO contacts (user_id, email, slack_id, webhook_url, time_zone) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user_id) \
             DO UPDATE SET email = ?2, slack_id = ?3, webhook_url = ?4, time_zone = ?5",
        )
        .bind(&c.user_id)
        .bind(c.email.as_deref())
        .bind(c.slack_id.as_deref())
        .bind(c.webhook_url.as_deref())
        .bind(c.time_zone.as_deref())
        .execute(&self.pool)
        .await
        .lite()?;
        Ok(())
    }

    async fn routes(&self) -> Result<Vec<Route>> {
        let rows = sqlx::query("SELECT body FROM notify_routes ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .lite()?;
        rows.iter()
            .map(|r| {
                let body: String = r.try_get("body").lite()?;
                serde_json::from_str(&body).map_err(|e| corrupt(BACKEND, e))
            })
            .collect()
    }

    async fn put_route(&self, route: Route) -> Result<()> {
        let body = serde_json::to_string(&route).map_err(|e| Error::backend(BACKEND, e))?;
        sqlx::query(
            "INSERT INTO notify_routes (id, body, created_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (id) DO UPDATE SET body = ?2",
        )
        .bind(route.id)
        .bind(body)
        .bind(ms(route.created_at))
        .execute(&self.pool)
        .await
        .lite()?;
        Ok(())
    }

    async fn delete_route(&self, id: Uuid) -> Result<()> {
        let res = sqlx::query("DELETE FROM notify_routes WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .lite()?;
        if res.rows_affected() == 0 {
            return Err(Error::not_found(format!("route {id}")));
        }
        Ok(())
    }
}

impl SqliteAlertStore {
    pub(super) async fn write_rule(&self, rule: &AlertRule, create: bool) -> Result<()> {
        let template =
            serde_json::to_string(&rule.template).map_err(|e| Error::invalid(e.to_string()))?;
        let sql = if create {
            "INSERT INTO alert_rules (name, kind, enabled, conditions, template, for_secs, \
             cooldown_secs, created_at, updated_at, id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        } else {
            "UPDATE alert_rules SET name = ?, kind = ?, enabled = ?, conditions = ?, template = ?, \
             for_secs = ?, cooldown_secs = ?, created_at = ?, updated_at = ? WHERE id = ?"
        };
        let res = sqlx::query(sql)
            .bind(&rule.name)
            .bind(rule.kind.as_str())
            .bind(rule.enabled)
            .bind(rule.conditions.to_string())
            .bind(template)
            .bind(i64::try_from(rule.for_secs).unwrap_or(i64::MAX))
            .bind(i64::try_from(rule.cooldown_secs).unwrap_or(i64::MAX))
            .bind(ms(rule.created_at))
            .bind(ms(rule.updated_at))
            .bind(rule.id)
            .execute(&self.pool)
            .await
            .lite()?;
        if !create && res.rows_affected() == 0 {
            return Err(Error::not_found(format!("rule {}", rule.id)));
        }
        Ok(())
    }
}
