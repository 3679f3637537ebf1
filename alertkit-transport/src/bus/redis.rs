//! The Redis broadcaster (feature `redis`): events across instances.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use alertkit_core::{AlertEvent, Broadcaster, BusMessage, Error, EventStream, Result};
use async_trait::async_trait;
use futures::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::bus::local::DEFAULT_CAPACITY;

/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Builds a [`RedisBroadcaster`].
#[derive(Clone)]
pub struct RedisBuilder {
    url: String,
    prefix: String,
    capacity: usize,
    publish_timeout: Duration,
}

impl std::fmt::Debug for RedisBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBuilder")
            .field("url", &"<redacted>")
            .field("prefix", &self.prefix)
            .field("capacity", &self.capacity)
            .field("publish_timeout", &self.publish_timeout)
            .finish()
    }
}

impl RedisBuilder {
    /// A builder for the Redis server at `url` (`redis://host:port`).
    pub fn new(url: impl Into<String>) -> Self {
        RedisBuilder {
            url: url.into(),
            prefix: "alertkit".into(),
            capacity: DEFAULT_CAPACITY,
            publish_timeout: Duration::from_secs(1),
        }
    }

    /// How long a publish may take before it fails with a retryable error
    /// (default 1 s). While Redis is down, raises then fail to publish
    /// quickly instead of hanging; the alerts are stored and reach clients
    /// through the hub's store catch-up and `resume`.
    pub fn publish_timeout(mut self, timeout: Duration) -> Self {
        self.publish_timeout = timeout;
        self
    }

    /// A builder for `REDIS_URL`; [`Error::Invalid`] when it is unset.
    pub fn from_env() -> Result<Self> {
        std::env::var("REDIS_URL")
            .map(Self::new)
            .map_err(|_| Error::invalid("REDIS_URL is not set"))
    }

    /// The channel prefix (default `alertkit`): instances with the same
    /// prefix share events; tenants and tests use their own.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Events buffered per local subscriber before it is told it lagged.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Connects the publisher and subscribes the relay; returns once the
    /// subscription is live, so every event published afterwards arrives.
    pub async fn connect(self) -> Result<RedisBroadcaster> {
        let client = redis::Client::open(self.url.as_str())
            .map_err(|e| Error::invalid(format!("REDIS_URL: {e}")))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.publish_timeout))
            .set_response_timeout(Some(self.publish_timeout))
            .set_max_delay(Duration::from_secs(2));
        let publisher = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(unavailable)?;
        let channel = format!("{}:events", self.prefix);
        let pubsub = subscribe(&client, &channel).await?;
        let (tx, _) = broadcast::channel(self.capacity);
        let connected = Arc::new(AtomicBool::new(true));
        let relay = tokio::spawn(relay(
            client,
            channel.clone(),
            pubsub,
            tx.clone(),
            connected.clone(),
        ));
        Ok(RedisBroadcaster {
            inner: Arc::new(Inner {
                channel,
                publisher,
                publish_timeout: self.publish_timeout,
                tx,
                connected,
                relay,
            }),
        })
    }
}

fn unavailable(e: redis::RedisError) -> Error {
    Error::Unavailable(format!("redis: {e}"))
}

async fn subscribe(client: &redis::Client, channel: &str) -> Result<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await.map_err(unavailable)?;
    pubsub.subscribe(channel).await.map_err(unavailable)?;
    Ok(pubsub)
}

/// Forwards the channel's messages to local subscribers, deserializing each
/// once; on a lost connection, resubscribes with backoff and sends
/// [`BusMessage::Gap`] so subscribers recover what they missed.
async fn relay(
    client: redis::Client,
    channel: String,
    first: redis::aio::PubSub,
    tx: broadcast::Sender<BusMessage>,
    connected: Arc<AtomicBool>,
) {
    let mut stream = first.into_on_message();
    loop {
        while let Some(msg) = stream.next().await {
            let payload: &[u8] = msg.get_payload_bytes();
            match serde_json::from_slice::<AlertEvent>(payload) {
                // No subscriber is fine: the event is dropped here.
                Ok(event) => {
                    let _ = tx.send(BusMessage::Event(Arc::new(event)));
                }
                Err(e) => tracing::warn!(error = %e, "ignoring an undecodable event on {channel}"),
            }
        }
        connected.store(false, Ordering::Relaxed);
        tracing::warn!("redis subscription to {channel} lost; reconnecting");
        let mut backoff = Duration::from_millis(50);
        loop {
            tokio::time::sleep(backoff).await;
            match subscribe(&client, &channel).await {
                Ok(pubsub) => {
                    stream = pubsub.into_on_message();
                    break;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "redis still unreachable");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        connected.store(true, Ordering::Relaxed);
        tracing::info!("redis subscription to {channel} restored");
        let _ = tx.send(BusMessage::Gap);
    }
}

/// A [`Broadcaster`] over Redis pub/sub: every instance with the same prefix
/// receives every event.
///
/// Each event is serialized once and published once; each instance holds
/// one subscription and deserializes each event once, fanning it out to its
/// local subscribers through a bounded buffer (a lagging subscriber is told
/// with [`BusMessage::Lagged`]). The publisher and the subscription
/// reconnect by themselves; events published while the subscription was
/// down are not replayed by Redis, so subscribers then get
/// [`BusMessage::Gap`] and recover from the store. Cheap to clone.
#[derive(Clone)]
pub struct RedisBroadcaster {
    inner: Arc<Inner>,
}

struct Inner {
    channel: String,
    publisher: ConnectionManager,
    publish_timeout: Duration,
    tx: broadcast::Sender<BusMessage>,
    connected: Arc<AtomicBool>,
    relay: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.relay.abort();
    }
}

impl std::fmt::Debug for RedisBroadcaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroadcaster")
            .field("channel", &self.inner.channel)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl RedisBroadcaster {
    /// Starts building a broadcaster for the server at `url`.
    pub fn builder(url: impl Into<String>) -> RedisBuilder {
        RedisBuilder::new(url)
    }

    /// Whether the subscription is live (for health checks).
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Relaxed)
    }

    /// How many local subscribers are listening.
    pub fn subscriber_count(&self) -> usize {
        self.inner.tx.receiver_count()
    }
}

#[async_trait]
impl Broadcaster for RedisBroadcaster {
    async fn publish(&self, event: AlertEvent) -> Result<()> {
        let payload = serde_json::to_vec(&event).map_err(|e| Error::backend("redis", e))?;
        let mut conn = self.inner.publisher.clone();
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(&self.inner.channel).arg(payload);
        match tokio::time::timeout(
            self.inner.publish_timeout,
            cmd.query_async::<i64>(&mut conn),
        )
        .await
        {
            Ok(r) => r.map(drop).map_err(unavailable),
            Err(_) => Err(Error::Unavailable("redis: publish timed out".into())),
        }
    }

    async fn ping(&self) -> Result<()> {
        let mut conn = self.inner.publisher.clone();
        match tokio::time::timeout(
            self.inner.publish_timeout,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await
        {
            Ok(r) => r.map(drop).map_err(unavailable),
            Err(_) => Err(Error::Unavailable("redis: ping timed out".into())),
        }
    }

    async fn subscribe(&self) -> Result<EventStream> {
        let stream = BroadcastStream::new(self.inner.tx.subscribe()).map(|item| match item {
            Ok(msg) => msg,
            Err(BroadcastStreamRecvError::Lagged(n)) => BusMessage::Lagged(n),
        });
        Ok(Box::pin(stream))
    }
}
