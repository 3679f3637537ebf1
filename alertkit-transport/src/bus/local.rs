//! The in-process broadcaster.

use std::sync::Arc;

use alertkit_core::{AlertEvent, Broadcaster, BusMessage, EventStream, Result};
use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

/// Events buffered per subscriber before it is told it lagged, by default.
pub const DEFAULT_CAPACITY: usize = 4_096;

/// A [`Broadcaster`] within one process, on a tokio broadcast channel.
///
/// Each event is shared (`Arc`) between subscribers, never copied. A
/// subscriber more than `capacity` events behind loses the oldest and
/// receives [`BusMessage::Lagged`] with how many; publishing never waits.
#[derive(Debug, Clone)]
pub struct LocalBroadcaster {
    tx: broadcast::Sender<Arc<AlertEvent>>,
}

impl LocalBroadcaster {
    /// A broadcaster buffering [`DEFAULT_CAPACITY`] events per subscriber.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A broadcaster buffering `capacity` events per subscriber (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        LocalBroadcaster { tx }
    }

    /// How many subscribers are listening now.
    pub fn subscriber_count(&self) -> usize {
        self.tx.receiver_count()
    }
}

impl Default for LocalBroadcaster {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Broadcaster for LocalBroadcaster {
    async fn publish(&self, event: AlertEvent) -> Result<()> {
        // An error only means no one is subscribed, which is fine.
        let _ = self.tx.send(Arc::new(event));
        Ok(())
    }

    async fn subscribe(&self) -> Result<EventStream> {
        let stream = BroadcastStream::new(self.tx.subscribe()).map(|item| match item {
            Ok(event) => BusMessage::Event(event),
            Err(BroadcastStreamRecvError::Lagged(n)) => BusMessage::Lagged(n),
        });
        Ok(Box::pin(stream))
    }
}
