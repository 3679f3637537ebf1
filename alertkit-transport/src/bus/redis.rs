//! The Redis broadcaster (feature `redis`): events across instances.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use alertkit_core::{AlertEvent, Broadcaster, BusMessage, Error, EventStream, Result};
use async_trait::async_trait;
use futures::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::bus::local::DEFAULT_CAPACITY;

/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Events waiting for the publisher task at most; a publish beyond it
/// fails at once.
const OUTBOX: usize = 4096;

/// Events written in one pipelined round trip at most.
const PUBLISH_BATCH: usize = 256;

/// The payload that tells every instance's relay to announce
/// [`BusMessage::Gap`]: published once Redis takes events again after
/// the publisher dropped some. An [`AlertEvent`] is a JSON object, so this
/// JSON string can never be mistaken for one.
const GAP_MARKER: &[u8] = b"\"gap\"";

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

    /// How long one round trip to Redis may take before the link counts as
    /// down (default 1 s). Publishing never waits for it: events are queued
    /// for a background publisher, so a raise does not wait for Redis
    /// even while it is down (see [`RedisBroadcaster`]).
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
        let publishing = Arc::new(AtomicBool::new(true));
        let relay = tokio::spawn(relay(
            client,
            channel.clone(),
            pubsub,
            tx.clone(),
            connected.clone(),
        ));
        let (outbox, queued) = mpsc::channel(OUTBOX);
        let writer = tokio::spawn(
            Publisher {
                conn: publisher.clone(),
                channel: channel.clone(),
                timeout: self.publish_timeout,
                publishing: publishing.clone(),
            }
            .run(queued),
        );
        Ok(RedisBroadcaster {
            inner: Arc::new(Inner {
                channel,
                publisher,
                publish_timeout: self.publish_timeout,
                tx,
                connected,
                publishing,
                outbox,
                relay,
                writer,
            }),
        })
    }
}

/// Runs a command within `timeout`, and once more if it failed on a
/// broken connection: the connection manager reconnects on such an error,
/// so after Redis restarts, the first command fails while the second
/// succeeds. A timeout is not retried. (A publish that reached Redis
/// before its connection broke may so be sent twice; events are
/// doorbells, and subscribers read the store.)
async fn once_more<T, F, Fut>(timeout: Duration, what: &str, mut run: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = redis::RedisResult<T>>,
{
    for attempt in 0..2 {
        match tokio::time::timeout(timeout, run()).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) if attempt == 0 && (e.is_connection_dropped() || e.is_io_error()) => {}
            Ok(Err(e)) => return Err(unavailable(e)),
            Err(_) => return Err(Error::Unavailable(format!("redis: {what} timed out"))),
        }
    }
    Err(Error::Unavailable(format!("redis: {what} failed")))
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
            if payload == GAP_MARKER {
                let _ = tx.send(BusMessage::Gap);
                continue;
            }
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
/// with [`BusMessage::Lagged`]).
///
/// **Publishing never waits for Redis.** [`publish`](Broadcaster::publish)
/// queues the event for a background task that writes the queue in order,
/// many events per round trip. The store is the log and the bus only a
/// doorbell, so a raise is acknowledged once stored, whatever Redis is
/// doing:
/// - while Redis is known to be down (the subscription is lost, or the last
///   write failed), `publish` fails at once with [`Error::Unavailable`]
///   and the event is not sent;
/// - a burst beyond the queue (4,096 events) waits for room, at most the
///   publish timeout (then `Unavailable`);
/// - events already queued when a write fails are dropped;
/// - once Redis takes events again, every instance's subscribers get
///   [`BusMessage::Gap`] and recover what they missed from the store
///   (alert changes; ephemeral broadcasts sent meanwhile are lost).
///
/// The publisher and the subscription reconnect by themselves, with
/// backoff up to 2 s. [`ping`](Broadcaster::ping) (and so `/health`) fails
/// while either is down. Cheap to clone.
#[derive(Clone)]
pub struct RedisBroadcaster {
    inner: Arc<Inner>,
}

struct Inner {
    channel: String,
    publisher: ConnectionManager,
    publish_timeout: Duration,
    tx: broadcast::Sender<BusMessage>,
    /// The subscription is live.
    connected: Arc<AtomicBool>,
    /// The publisher's last write succeeded.
    publishing: Arc<AtomicBool>,
    outbox: mpsc::Sender<Vec<u8>>,
    relay: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.relay.abort();
        self.writer.abort();
    }
}

/// The background task that writes queued events to Redis.
struct Publisher {
    conn: ConnectionManager,
    channel: String,
    timeout: Duration,
    publishing: Arc<AtomicBool>,
}

impl Publisher {
    async fn run(self, mut queued: mpsc::Receiver<Vec<u8>>) {
        let mut batch = Vec::with_capacity(PUBLISH_BATCH);
        while queued.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
            if let Err(e) = self.write(&batch).await {
                let mut dropped = batch.len();
                self.publishing.store(false, Ordering::Relaxed);
                tracing::warn!(error = %e, "publishing to redis failed; events are dropped until it is back, then subscribers resume from the store");
                // What queued behind the failure is as stale: drop it too,
                // and wait until Redis takes a write again.
                let mut backoff = Duration::from_millis(50);
                loop {
                    while let Ok(_stale) = queued.try_recv() {
                        dropped += 1;
                    }
                    tokio::time::sleep(backoff).await;
                    if self.write(&[GAP_MARKER.to_vec()]).await.is_ok() {
                        break;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                metrics::counter!(alertkit_core::telemetry::BUS_EVENTS_DROPPED)
                    .increment(dropped as u64);
                self.publishing.store(true, Ordering::Relaxed);
                tracing::info!(
                    dropped,
                    "publishing to redis restored; subscribers were told to resume"
                );
            }
            batch.clear();
        }
    }

    /// Publishes `payloads` in one pipelined round trip, in order.
    async fn write(&self, payloads: &[Vec<u8>]) -> Result<()> {
        let mut pipe = redis::pipe();
        for p in payloads {
            pipe.cmd("PUBLISH").arg(&self.channel).arg(p).ignore();
        }
        let pipe = &pipe;
        once_more(self.timeout, "publish", || {
            let mut conn = self.conn.clone();
            async move { pipe.query_async::<()>(&mut conn).await }
        })
        .await
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

    /// Whether the subscription is live and the last write succeeded
    /// (for health checks).
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Relaxed)
            && self.inner.publishing.load(Ordering::Relaxed)
    }

    /// Why Redis counts as down now, if it does.
    fn down(&self) -> Option<&'static str> {
        if !self.inner.connected.load(Ordering::Relaxed) {
            Some("redis: the subscription is lost; reconnecting")
        } else if !self.inner.publishing.load(Ordering::Relaxed) {
            Some("redis: publishing failed; reconnecting")
        } else {
            None
        }
    }

    /// How many local subscribers are listening.
    pub fn subscriber_count(&self) -> usize {
        self.inner.tx.receiver_count()
    }
}

#[async_trait]
impl Broadcaster for RedisBroadcaster {
    async fn publish(&self, event: AlertEvent) -> Result<()> {
        if let Some(why) = self.down() {
            return Err(Error::Unavailable(format!("{why}; the event was not sent")));
        }
        let payload = serde_json::to_vec(&event).map_err(|e| Error::backend("redis", e))?;
        // A burst beyond the queue waits for room (the publisher frees it
        // 256 events per round trip), at most the publish timeout: past
        // that the link counts as hung, and the publisher will say so.
        match tokio::time::timeout(self.inner.publish_timeout, self.inner.outbox.send(payload))
            .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Error::Unavailable(
                "redis: the publisher has stopped".into(),
            )),
            Err(_) => Err(Error::Unavailable(
                "redis: the publish queue stayed full; the event was not sent".into(),
            )),
        }
    }

    async fn ping(&self) -> Result<()> {
        if let Some(why) = self.down() {
            return Err(Error::Unavailable(why.into()));
        }
        once_more(self.inner.publish_timeout, "ping", || {
            let mut conn = self.inner.publisher.clone();
            async move { redis::cmd("PING").query_async::<String>(&mut conn).await }
        })
        .await
    }

    async fn subscribe(&self) -> Result<EventStream> {
        let stream = BroadcastStream::new(self.inner.tx.subscribe()).map(|item| match item {
            Ok(msg) => msg,
            Err(BroadcastStreamRecvError::Lagged(n)) => BusMessage::Lagged(n),
        });
        Ok(Box::pin(stream))
    }
}
