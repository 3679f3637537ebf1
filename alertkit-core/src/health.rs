//! Components beyond the engine's own (store, bus, backlog) that a
//! service's `/health` reports: a scheduler's loop and leases, an SMTP
//! server's reachability, anything an embedder adds.

use async_trait::async_trait;
use serde_json::{Map, Value};

/// Whether an extra component works. Only the store can take the service
/// down; anything else at worst degrades it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentStatus {
    /// Working.
    Ok,
    /// Not working, but the service still serves.
    Degraded,
}

impl ComponentStatus {
    /// `ok` or `degraded`, as `/health` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentStatus::Ok => "ok",
            ComponentStatus::Degraded => "degraded",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentHealth {
    /// Ok or degraded.
    pub status: ComponentStatus,
    /// Why it is degraded.
    pub error: Option<String>,
    /// Facts worth showing (counts, ages), merged into the component's JSON.
    pub details: Map<String, Value>,
}

impl ComponentHealth {
    /// Working, with `details`.
    pub fn ok(details: Map<String, Value>) -> Self {
        ComponentHealth {
            status: ComponentStatus::Ok,
            error: None,
            details,
        }
    }

    /// Degraded because of `error`, with `details`.
    pub fn degraded(error: impl Into<String>, details: Map<String, Value>) -> Self {
        ComponentHealth {
            status: ComponentStatus::Degraded,
            error: Some(error.into()),
            details,
        }
    }
}

/// A component `/health` asks about. Checks run on every `/health`
/// request: keep them cheap, or cache (as the SMTP check does).
#[async_trait]
pub trait HealthCheck: Send + Sync {
    /// The component's key in `/health` (`scheduler`, `smtp`).
    fn name(&self) -> &str;

    /// Its state now.
    async fn check(&self) -> ComponentHealth;
}
