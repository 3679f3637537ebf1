//! Contact details and the delivery outbox through the engine.

use uuid::Uuid;

use crate::delivery::{Delivery, DeliveryStatus};
use crate::error::{Error, Result};
use crate::id::AlertId;
use crate::notify::Recipient;
use crate::principal::{Permission, Principal};
use crate::route::{NewRoute, Route};

use super::AlertKit;

/// Most deliveries one listing returns.
pub const MAX_DELIVERIES: u32 = 1000;

impl AlertKit {
    /// The principal's own contact details (empty when never set).
    pub async fn contacts(&self, by: &Principal) -> Result<Recipient> {
        by.require(Permission::AlertsRead)?;
        Ok(self
            .inner
            .store
            .contact(&by.user_id)
            .await?
            .unwrap_or_else(|| Recipient {
                user_id: by.user_id.clone(),
                ..Default::default()
            }))
    }

    /// Replaces the principal's own contact details (validated; the user id
    /// is always the principal's).
    pub async fn set_contacts(&self, by: &Principal, mut contact: Recipient) -> Result<Recipient> {
        by.require(Permission::AlertsRead)?;
        if !contact.user_id.is_empty() && contact.user_id != by.user_id {
            return Err(Error::forbidden(
                "contact details can only be set for oneself",
            ));
        }
        contact.user_id.clone_from(&by.user_id);
        contact.validate()?;
        self.inner.store.set_contact(contact.clone()).await?;
        Ok(contact)
    }

    /// Deliveries of one alert (optionally in one status), or the latest in
    /// one status (at most `limit`, up to [`MAX_DELIVERIES`]); needs
    /// `alerts.manage`. With neither filter, the latest of every status.
    pub async fn deliveries(
        &self,
        by: &Principal,
        alert_id: Option<AlertId>,
        status: Option<DeliveryStatus>,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        by.require(Permission::AlertsManage)?;
        let limit = limit.clamp(1, MAX_DELIVERIES);
        match (alert_id, status) {
            (Some(id), status) => {
                let mut all = self.inner.store.deliveries(id).await?;
                all.retain(|d| status.is_none_or(|s| d.status == s));
                all.truncate(limit as usize);
                Ok(all)
            }
            (None, Some(status)) => self.inner.store.deliveries_in(status, limit).await,
            (None, None) => {
                let mut all = Vec::new();
                for s in DeliveryStatus::ALL {
                    all.extend(self.inner.store.deliveries_in(s, limit).await?);
                }
                all.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(b.id.cmp(&a.id)));
                all.truncate(limit as usize);
                Ok(all)
            }
        }
    }

    /// Replays a dead letter now (needs `alerts.manage`).
    pub async fn retry_delivery(&self, by: &Principal, id: Uuid) -> Result<Delivery> {
        by.require(Permission::AlertsManage)?;
        self.inner.store.retry_delivery(id, self.now()).await
    }

    /// Every recorded attempt of a delivery, oldest first (needs `alerts.manage`).
    pub async fn delivery_attempts(
        &self,
        by: &Principal,
        id: Uuid,
    ) -> Result<Vec<crate::delivery::DeliveryAttempt>> {
        by.require(Permission::AlertsManage)?;
        self.inner.store.attempts(id).await
    }

    /// Every team route (needs `alerts.manage`).
    pub async fn routes(&self, by: &Principal) -> Result<Vec<Route>> {
        by.require(Permission::AlertsManage)?;
        self.inner.store.routes().await
    }

    /// Creates a team route (needs `alerts.manage`).
    pub async fn create_route(&self, by: &Principal, spec: NewRoute) -> Result<Route> {
        by.require(Permission::AlertsManage)?;
        spec.validate()?;
        let now = self.now();
        let route = Route {
            id: Uuid::now_v7(),
            spec,
            created_at: now,
            updated_at: now,
        };
        self.inner.store.put_route(route.clone()).await?;
        Ok(route)
    }

    /// Replaces a team route (needs `alerts.manage`).
    pub async fn update_route(&self, by: &Principal, id: Uuid, spec: NewRoute) -> Result<Route> {
        by.require(Permission::AlertsManage)?;
        spec.validate()?;
        let old = self
            .inner
            .store
            .routes()
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| Error::not_found(format!("route {id}")))?;
        let route = Route {
            spec,
            updated_at: self.now(),
            ..old
        };
        self.inner.store.put_route(route.clone()).await?;
        Ok(route)
    }

    /// Deletes a team route (needs `alerts.manage`).
    pub async fn delete_route(&self, by: &Principal, id: Uuid) -> Result<()> {
        by.require(Permission::AlertsManage)?;
        self.inner.store.delete_route(id).await
    }
}
