//! [`RuleStore`]: rules and subscriptions.

use super::*;

#[async_trait]
impl RuleStore for MongoAlertStore {
    async fn create_rule(&self, rule: AlertRule) -> Result<AlertRule> {
        self.rules().insert_one(rule_doc(&rule)?).await.mongo()?;
        Ok(rule)
    }

    async fn update_rule(&self, rule: AlertRule) -> Result<AlertRule> {
        let res = self
            .rules()
            .replace_one(doc! { "_id": id_bson(rule.id) }, rule_doc(&rule)?)
            .await
            .mongo()?;
        if res.matched_count == 0 {
            return Err(Error::not_found(format!("rule {}", rule.id)));
        }
        Ok(rule)
    }

    async fn get_rule(&self, id: Uuid) -> Result<AlertRule> {
        match self
            .rules()
            .find_one(doc! { "_id": id_bson(id) })
            .await
            .mongo()?
        {
            Some(d) => rule_from(&d),
            None => Err(Error::not_found(format!("rule {id}"))),
        }
    }

    async fn list_rules(&self) -> Result<Vec<AlertRule>> {
        collect(
            self.rules()
                .find(doc! {})
                .sort(doc! { "name": 1 })
                .await
                .mongo()?,
        )
        .await?
        .iter()
        .map(rule_from)
        .collect()
    }

    async fn delete_rule(&self, id: Uuid) -> Result<()> {
        let res = self
            .rules()
            .delete_one(doc! { "_id": id_bson(id) })
            .await
            .mongo()?;
        if res.deleted_count == 0 {
            return Err(Error::not_found(format!("rule {id}")));
        }
        Ok(())
    }

    async fn subscriptions(&self, user_id: &str) -> Result<Vec<Subscription>> {
        collect(
            self.subs()
                .find(doc! { "user_id": user_id })
                .sort(doc! { "alert_type": 1 })
                .await
                .mongo()?,
        )
        .await?
        .iter()
        .map(sub_from)
        .collect()
    }

    async fn set_subscriptions(&self, user_id: &str, subs: Vec<Subscription>) -> Result<()> {
        if subs.iter().any(|s| s.user_id != user_id) {
            return Err(Error::invalid("every subscription must belong to the user"));
        }
        let mut s = self.client.start_session().await.mongo()?;
        s.start_transaction().await.mongo()?;
        self.subs()
            .delete_many(doc! { "user_id": user_id })
            .session(&mut s)
            .await
            .mongo()?;
        if !subs.is_empty() {
            self.subs()
                .insert_many(subs.iter().map(sub_doc))
                .session(&mut s)
                .await
                .mongo()?;
        }
        s.commit_transaction().await.mongo()
    }

    async fn subscribers(&self, alert_type: &str, severity: Severity) -> Result<Vec<Subscription>> {
        collect(
            self.subs()
                .find(doc! {
                    "enabled": true,
                    "alert_type": { "$in": [alert_type, alertkit_core::rule::ANY_ALERT_TYPE] },
                    "min_severity": { "$lte": i32::from(severity.rank()) },
                })
                .sort(doc! { "user_id": 1, "alert_type": 1 })
                .await
                .mongo()?,
        )
        .await?
        .iter()
        .map(sub_from)
        .collect()
    }

    async fn contact(&self, user_id: &str) -> Result<Option<Recipient>> {
        let d = self
            .contacts_coll()
            .find_one(doc! { "_id": user_id })
            .await
            .mongo()?;
        d.map(|d| {
            Ok(Recipient {
                user_id: user_id.to_owned(),
                email: get_opt_str(&d, "email")?,
                slack_id: get_opt_str(&d, "slack_id")?,
                webhook_url: get_opt_str(&d, "webhook_url")?,
                time_zone: get_opt_str(&d, "time_zone")?,
            })
        })
        .transpose()
    }

    async fn set_contact(&self, c: Recipient) -> Result<()> {
        let mut d = doc! { "_id": &c.user_id };
        set_opt(&mut d, "email", c.email.clone().map(Bson::String));
        set_opt(&mut d, "slack_id", c.slack_id.clone().map(Bson::String));
        set_opt(
            &mut d,
            "webhook_url",
            c.webhook_url.clone().map(Bson::String),
        );
        set_opt(&mut d, "time_zone", c.time_zone.clone().map(Bson::String));
        self.contacts_coll()
            .replace_one(doc! { "_id": &c.user_id }, d)
            .upsert(true)
            .await
            .mongo()?;
        Ok(())
    }

    async fn routes(&self) -> Result<Vec<Route>> {
        collect(
            self.routes_coll()
                .find(doc! {})
                .sort(doc! { "created_at": 1, "_id": 1 })
                .await
                .mongo()?,
        )
        .await?
        .iter()
        .map(|d| get_json(d, "body"))
        .collect()
    }

    async fn put_route(&self, route: Route) -> Result<()> {
        let body = serde_json::to_string(&route).map_err(|e| Error::backend(BACKEND, e))?;
        self.routes_coll()
            .replace_one(
                doc! { "_id": id_bson(route.id) },
                doc! { "_id": id_bson(route.id), "body": body, "created_at": time_bson(route.created_at) },
            )
            .upsert(true)
            .await
            .mongo()?;
        Ok(())
    }

    async fn delete_route(&self, id: Uuid) -> Result<()> {
        let res = self
            .routes_coll()
            .delete_one(doc! { "_id": id_bson(id) })
            .await
            .mongo()?;
        if res.deleted_count == 0 {
            return Err(Error::not_found(format!("route {id}")));
        }
        Ok(())
    }
}
