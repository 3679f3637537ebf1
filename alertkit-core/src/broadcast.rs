//! Publishing alert events to every interested instance and connection.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use futures::Stream;

use crate::error::Result;
use crate::event::AlertEvent;

/// What a subscriber receives.
#[derive(Debug, Clone, PartialEq)]
pub enum BusMessage {
    /// An event, shared between subscribers.
    Event(Arc<AlertEvent>),
    /// The subscriber fell behind and this many events were dropped for it;
    /// it should recover from the store (resume) rather than trust its state.
    Lagged(u64),
    /// The broadcaster lost its link (a Redis reconnect, say): an unknown
    /// number of events may be missing before this message. Recover from the
    /// store, as for [`Lagged`](Self::Lagged); live events follow again.
    Gap,
}

/// A subscription to a broadcaster: every event published after it was made.
pub type EventStream = Pin<Box<dyn Stream<Item = BusMessage> + Send + 'static>>;

/// Delivers alert events to every subscriber, in publish order.
///
/// Subscribers see every event published after they subscribed; one that
/// falls behind is told so with [`BusMessage::Lagged`], never silently skipped.
/// A publish never waits for slow subscribers.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait Broadcaster: Send + Sync + 'static {
    /// Publishes an event.
    async fn publish(&self, event: AlertEvent) -> Result<()>;

    /// Subscribes to events published from now on.
    async fn subscribe(&self) -> Result<EventStream>;

    /// Whether the bus is reachable now (for health checks). An in-process
    /// bus always is (the default).
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
