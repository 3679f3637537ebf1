//! What the live transport needs of the engine: the change feed with
//! receipts, per-viewer replays, broadcasts, the event stream and health.

use std::collections::HashMap;

use crate::alert::{Alert, AlertView, Receipt};
use crate::broadcast::EventStream;
use crate::error::{Error, Result};
use crate::event::AlertEvent;
use crate::principal::{Permission, Principal};

use super::AlertKit;

/// One entry of the change feed: an alert in its state after its latest
/// change, and every user's receipt on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The alert; [`Alert::seq`] is the change number.
    pub alert: Alert,
    /// The receipts users hold on it (users without one are absent).
    pub receipts: HashMap<String, Receipt>,
}

/// How long the oldest due delivery may wait before the dispatcher's
/// backlog counts as degraded.
pub const BACKLOG_DEGRADED_AFTER: chrono::Duration = chrono::Duration::minutes(5);

/// The engine's view of its dependencies.
#[derive(Debug)]
pub struct Health {
    /// The store backend's name.
    pub store_backend: &'static str,
    /// Whether the store answered, and if not why.
    pub store: Result<()>,
    /// Whether the bus answered (an in-process bus always does).
    pub bus: Result<()>,
    /// The delivery backlog, when the store could tell.
    pub backlog: Option<crate::store::Backlog>,
    /// How long the oldest due delivery has waited.
    pub backlog_wait: chrono::Duration,
}

impl Health {
    /// Whether every component is up.
    pub fn is_ok(&self) -> bool {
        self.store.is_ok() && self.bus.is_ok() && !self.backlog_degraded()
    }

    /// Whether the store is down: the one failure that makes the service
    /// unusable (`/health` answers 503 only then).
    pub fn is_down(&self) -> bool {
        self.store.is_err()
    }

    /// Whether deliveries wait longer than [`BACKLOG_DEGRADED_AFTER`].
    pub fn backlog_degraded(&self) -> bool {
        self.backlog_wait > BACKLOG_DEGRADED_AFTER
    }
}

impl AlertKit {
    /// The highest change number committed so far.
    pub async fn latest_seq(&self) -> Result<u64> {
        self.inner.store.latest_seq().await
    }

    /// Up to `limit` changes numbered above `after`, lowest first, each with
    /// the receipts users hold on it, read in one batch: what a live fan-out
    /// (the WebSocket hub) follows. Costs two store reads per call.
    ///
    /// This is a system-level read with no principal: the caller must only
    /// hand each change to connections allowed to see it.
    pub async fn change_feed(&self, after: u64, limit: u32) -> Result<Vec<Change>> {
        let alerts = crate::telemetry::timed(
            "changes_since",
            self.inner.store.changes_since(after, limit, self.now()),
        )
        .await?;
        if alerts.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<_> = alerts.iter().map(|a| a.id).collect();
        let mut receipts =
            crate::telemetry::timed("receipts_many", self.inner.store.receipts_many(&ids)).await?;
        Ok(alerts
            .into_iter()
            .map(|alert| Change {
                receipts: receipts.remove(&alert.id).unwrap_or_default(),
                alert,
            })
            .collect())
    }

    /// The alerts the principal may see whose latest change is numbered in
    /// `(after, upto]`, lowest first, at most `limit`, each with the
    /// principal's receipt: what a WebSocket `resume` replays. Visibility is
    /// filtered by the store's query, so the cost is bounded by `limit`, not
    /// by how much else changed.
    pub async fn replay(
        &self,
        by: &Principal,
        after: u64,
        upto: u64,
        limit: u32,
    ) -> Result<Vec<AlertView>> {
        by.require(Permission::AlertsRead)?;
        if after >= upto {
            return Ok(Vec::new());
        }
        crate::telemetry::timed(
            "replay",
            self.inner
                .store
                .changes_for(&by.viewer(), after, upto, limit, self.now()),
        )
        .await
    }

    /// Whether the store and the bus answer, and how far behind delivery is.
    pub async fn health(&self) -> Health {
        let now = self.now();
        let (store, bus) = futures::join!(self.inner.store.ping(), self.inner.bus.ping());
        let backlog = match &store {
            Ok(()) => self.inner.store.backlog(now).await.ok(),
            Err(_) => None,
        };
        let backlog_wait = backlog
            .and_then(|b| b.oldest_due)
            .map_or(chrono::Duration::zero(), |t| {
                (now - t).max(chrono::Duration::zero())
            });
        Health {
            store_backend: self.inner.store.backend(),
            store,
            bus,
            backlog,
            backlog_wait,
        }
    }

    /// Sends an ephemeral message to every connected client, on every
    /// instance (needs `alerts.broadcast`). Nothing is stored. `level` is
    /// `info` (the default), `warning` or `error`; `data` must be a JSON
    /// object of at most 16 KiB (or null).
    pub async fn broadcast(
        &self,
        by: &Principal,
        message: &str,
        level: Option<&str>,
        data: serde_json::Value,
    ) -> Result<()> {
        by.require(Permission::AlertsBroadcast)?;
        if message.trim().is_empty() || message.chars().count() > 4096 {
            return Err(Error::invalid(
                "message must be 1 to 4096 characters, not blank",
            ));
        }
        let level = level.unwrap_or("info");
        if !matches!(level, "info" | "warning" | "error") {
            return Err(Error::invalid("level must be one of info, warning, error"));
        }
        if !(data.is_null() || data.is_object()) || data.to_string().len() > 16 * 1024 {
            return Err(Error::invalid(
                "data must be a JSON object of at most 16 KiB",
            ));
        }
        self.inner
            .bus
            .publish(AlertEvent::Broadcast {
                message: message.to_owned(),
                level: level.to_owned(),
                data,
                at: self.now(),
            })
            .await
    }

    /// Sends an ephemeral application frame `{type: topic, data, at}` to
    /// the connected clients holding `permission` (every client when
    /// `None`), on every instance (needs `alerts.broadcast`). Nothing is
    /// stored. `topic` is 1–32 of `a-z 0-9 _` and not a frame type of the
    /// wire contract (`alert`, `hello`, …); `data` is JSON of at most
    /// 64 KiB.
    pub async fn publish_topic(
        &self,
        by: &Principal,
        topic: &str,
        permission: Option<Permission>,
        data: serde_json::Value,
    ) -> Result<()> {
        by.require(Permission::AlertsBroadcast)?;
        const RESERVED: [&str; 10] = [
            "alert",
            "hello",
            "receipt",
            "broadcast",
            "error",
            "pong",
            "resumed",
            "unread",
            "auth",
            "ping",
        ];
        let well_formed = !topic.is_empty()
            && topic.len() <= 32
            && topic
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !well_formed || RESERVED.contains(&topic) {
            return Err(Error::invalid(format!(
                "topic {:?}: 1 to 32 of a-z, 0-9, _, and not a frame type of the contract",
                crate::id::truncate(topic, 40)
            )));
        }
        if data.to_string().len() > 64 * 1024 {
            return Err(Error::invalid("topic data must be at most 64 KiB of JSON"));
        }
        self.inner
            .bus
            .publish(AlertEvent::Topic {
                topic: topic.to_owned(),
                permission,
                data,
                at: self.now(),
            })
            .await
    }

    /// Subscribes to the event stream (what a WebSocket hub listens to).
    pub async fn subscribe(&self) -> Result<EventStream> {
        self.inner.bus.subscribe().await
    }
}
