//! The outbox dispatcher: claims due deliveries under a lease, sends each
//! through its channel's [`Notifier`], and records the outcome.
//!
//! Several dispatchers (in one process or many) may drain one store: the
//! [`Outbox`] claim hands each delivery to one of them while its lease
//! holds, and completing is fenced by the attempt number, so a dispatcher
//! whose lease lapsed cannot overwrite a newer attempt. A dispatcher that
//! dies mid-send leaves its deliveries in flight until the lease lapses;
//! another then sends them again with the same delivery id, which the
//! notifiers pass on (`Idempotency-Key`, `Message-ID`) so receivers can drop
//! the repeat.
//!
//! Outcomes:
//! - sent → [`DeliveryOutcome::Sent`];
//! - a retryable error (timeouts, 5xx, 429) → retried after the provider's
//!   `Retry-After` when it gave one, else after the [`RetryPolicy`]'s next
//!   delay with jitter; after the last delay, dead;
//! - a permanent error (bad address, other 4xx, no contact details, no
//!   notifier for the channel) → dead at once.
//!
//! Dead letters stay in the outbox ([`Outbox::deliveries_in`]) and can be
//! replayed with [`Outbox::retry_delivery`].

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use alertkit_core::{
    Alert, AlertEvent, Broadcaster, BusMessage, Channel, ClaimedDelivery, Clock, DeliveryOutcome,
    DigestBatch, Directory, Error, EventStream, Notification, Notifier, Outbox, Recipient, Result,
    SystemClock,
};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::watch;

/// How failed attempts are retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// The wait before each retry: the first retry waits `delays[0]`, and so
    /// on; when they are used up the delivery is dead. Default 1 min, 5 min,
    /// 15 min (four attempts in all).
    pub delays: Vec<Duration>,
    /// Each wait is spread by up to ± this fraction (default 0.2), so
    /// deliveries that failed together do not retry together.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            delays: vec![
                Duration::from_secs(60),
                Duration::from_secs(300),
                Duration::from_secs(900),
            ],
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// What to do after attempt number `attempt` (from 1) failed with
    /// `error` at `now`.
    pub fn outcome(&self, attempt: u32, error: &Error, now: DateTime<Utc>) -> DeliveryOutcome {
        let text = error.to_string();
        if !error.is_retryable() {
            return DeliveryOutcome::Dead { error: text };
        }
        let Some(delay) = self.delays.get(attempt.saturating_sub(1) as usize) else {
            return DeliveryOutcome::Dead {
                error: format!("gave up after {attempt} attempts: {text}"),
            };
        };
        // The provider's Retry-After wins over the schedule.
        let wait = match error.retry_after() {
            Some(after) => after,
            None => {
                let spread = delay.as_secs_f64() * self.jitter.clamp(0.0, 1.0);
                let offset = spread * (2.0 * alertkit_core::id::unit_random() - 1.0);
                Duration::from_secs_f64((delay.as_secs_f64() + offset).max(0.0))
            }
        };
        let at = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
        DeliveryOutcome::Retry { at, error: text }
    }
}

/// The dispatcher's settings.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Deliveries claimed per round (default 100).
    pub batch: u32,
    /// How long a claim holds (default 2 min): a dispatcher that dies
    /// mid-send delays its deliveries by at most this long.
    pub lease: Duration,
    /// How long to wait before looking again when the outbox was empty
    /// (default 1 s).
    pub poll_every: Duration,
    /// Sends in flight at once (default 32).
    pub concurrency: usize,
    /// Retries and dead letters.
    pub retry: RetryPolicy,
    /// Most messages per second to one destination (one email address,
    /// Slack webhook or channel, webhook URL), per channel; default 1 for
    /// Slack (its webhook limit) and 10 for the others. The dispatcher waits
    /// rather than cause a 429.
    pub per_destination: HashMap<Channel, u32>,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            batch: 100,
            lease: Duration::from_secs(120),
            poll_every: Duration::from_secs(1),
            concurrency: 32,
            retry: RetryPolicy::default(),
            per_destination: HashMap::from([
                (Channel::Slack, 1),
                (Channel::Email, 10),
                (Channel::Webhook, 10),
            ]),
        }
    }
}

/// Drains an [`Outbox`]: see the [module docs](self). Cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    outbox: Arc<dyn Outbox>,
    directory: Arc<dyn Directory>,
    notifiers: HashMap<Channel, Arc<dyn Notifier>>,
    clock: Arc<dyn Clock>,
    config: DispatcherConfig,
    limiters: HashMap<Channel, DefaultKeyedRateLimiter<String>>,
    wake: Option<Arc<dyn Broadcaster>>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut channels: Vec<_> = self.inner.notifiers.keys().map(|c| c.as_str()).collect();
        channels.sort_unstable();
        f.debug_struct("Dispatcher")
            .field("channels", &channels)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Dispatcher`].
pub struct DispatcherBuilder {
    outbox: Arc<dyn Outbox>,
    directory: Arc<dyn Directory>,
    notifiers: HashMap<Channel, Arc<dyn Notifier>>,
    clock: Arc<dyn Clock>,
    config: DispatcherConfig,
    wake: Option<Arc<dyn Broadcaster>>,
}

impl DispatcherBuilder {
    /// Wakes the loop as soon as an alert is raised or escalated (its
    /// `created`/`updated` event on this bus), instead of waiting for the
    /// next poll; polling goes on, so a lost event only delays a delivery.
    pub fn wake_on(mut self, bus: Arc<dyn Broadcaster>) -> Self {
        self.wake = Some(bus);
        self
    }

    /// Adds the notifier for its channel (replacing one for the same channel).
    pub fn notifier(mut self, n: Arc<dyn Notifier>) -> Self {
        self.notifiers.insert(n.channel(), n);
        self
    }

    /// The clock (the system clock by default).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The settings.
    pub fn config(mut self, config: DispatcherConfig) -> Self {
        self.config = config;
        self
    }

    /// Builds it; [`Error::Invalid`] for a zero batch, lease or concurrency.
    pub fn build(self) -> Result<Dispatcher> {
        let c = &self.config;
        if c.batch == 0 || c.concurrency == 0 || c.lease.is_zero() {
            return Err(Error::invalid(
                "dispatcher batch, concurrency and lease must be positive",
            ));
        }
        let limiters = c
            .per_destination
            .iter()
            .filter_map(|(ch, n)| {
                NonZeroU32::new(*n).map(|n| (*ch, RateLimiter::keyed(Quota::per_second(n))))
            })
            .collect();
        Ok(Dispatcher {
            inner: Arc::new(Inner {
                outbox: self.outbox,
                directory: self.directory,
                notifiers: self.notifiers,
                clock: self.clock,
                config: self.config,
                limiters,
                wake: self.wake,
            }),
        })
    }
}

/// A running dispatcher loop (from [`Dispatcher::spawn`]).
#[derive(Debug)]
pub struct DispatcherHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl DispatcherHandle {
    /// Stops claiming, lets the sends in flight finish (their outcomes are
    /// recorded; while the store is unavailable, that is retried for up to
    /// the lease), and waits for the loop to end. Deliveries it had claimed
    /// and not started are released when their lease lapses.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        let _ = self.task.await;
    }

    /// Aborts the loop at once, as a crash would: sends in flight are cut
    /// off and their deliveries wait for their lease to lapse.
    pub fn abort(self) {
        self.task.abort();
    }
}

impl Dispatcher {
    /// A dispatcher draining `outbox`, reaching users through `directory`.
    pub fn builder(outbox: Arc<dyn Outbox>, directory: Arc<dyn Directory>) -> DispatcherBuilder {
        DispatcherBuilder {
            outbox,
            directory,
            notifiers: HashMap::new(),
            clock: Arc::new(SystemClock),
            config: DispatcherConfig::default(),
            wake: None,
        }
    }

    /// Claims one batch and sends it; returns how many deliveries it claimed
    /// (digest items gathered for a digest not counted).
    /// The loop of [`spawn`](Self::spawn) calls this; tests and jobs may too.
    ///
    /// A claimed digest item brings the rest of its user's due items on that
    /// channel ([`Outbox::claim_digest`], at most [`DIGEST_MAX`]), and they
    /// go out as one message.
    pub async fn run_once(&self) -> Result<usize> {
        let c = &self.inner.config;
        let lease = chrono::Duration::from_std(c.lease).unwrap_or(chrono::Duration::MAX);
        let now = self.inner.clock.now();
        let claimed = self
            .inner
            .outbox
            .claim_deliveries(now, lease, c.batch)
            .await?;
        let n = claimed.len();
        let mut units: Vec<Vec<ClaimedDelivery>> = Vec::with_capacity(n);
        let mut digests: BTreeMap<(String, Channel), Vec<ClaimedDelivery>> = BTreeMap::new();
        for d in claimed {
            if d.delivery.digest.is_some() {
                let key = (d.delivery.user_id.clone(), d.delivery.channel);
                digests.entry(key).or_default().push(d);
            } else {
                units.push(vec![d]);
            }
        }
        for ((user, channel), mut items) in digests {
            let room = DIGEST_MAX.saturating_sub(u32::try_from(items.len()).unwrap_or(u32::MAX));
            if room > 0 {
                match self
                    .inner
                    .outbox
                    .claim_digest(&user, channel, now, lease, room)
                    .await
                {
                    Ok(more) => items.extend(more),
                    // What was claimed still goes out; the rest follows.
                    Err(e) => {
                        tracing::warn!(user, error = %e, "dispatcher: gathering a digest failed")
                    }
                }
            }
            units.push(items);
        }
        futures::stream::iter(units)
            .for_each_concurrent(c.concurrency, |u| async move { self.deliver(u).await })
            .await;
        Ok(n)
    }

    /// Runs the loop on the Tokio runtime until [`DispatcherHandle::shutdown`].
    pub fn spawn(&self) -> DispatcherHandle {
        let (stop, mut stopped) = watch::channel(false);
        let me = self.clone();
        let task = tokio::spawn(async move {
            let mut events: Option<EventStream> = None;
            let mut backlog_read: Option<std::time::Instant> = None;
            loop {
                if *stopped.borrow() {
                    return;
                }
                if backlog_read.is_none_or(|t| t.elapsed() >= BACKLOG_EVERY) {
                    me.report_backlog().await;
                    backlog_read = Some(std::time::Instant::now());
                }
                if events.is_none()
                    && let Some(bus) = &me.inner.wake
                {
                    events = bus.subscribe().await.ok();
                }
                let full = match me.run_once().await {
                    Ok(n) => n == me.inner.config.batch as usize,
                    Err(e) => {
                        tracing::warn!(error = %e, "dispatcher: claiming deliveries failed");
                        false
                    }
                };
                if !full {
                    let poll = tokio::time::sleep(me.inner.config.poll_every);
                    tokio::pin!(poll);
                    loop {
                        tokio::select! {
                            _ = &mut poll => break,
                            _ = stopped.changed() => return,
                            msg = next(&mut events) => match msg {
                                Some(m) if wakes(&m) => break,
                                Some(_) => {}
                                None => {
                                    events = None;
                                    break;
                                }
                            },
                        }
                    }
                }
            }
        });
        DispatcherHandle { stop, task }
    }

    /// Reads the outbox backlog into the `alertkit_outbox_*` gauges.
    async fn report_backlog(&self) {
        let now = self.inner.clock.now();
        match self.inner.outbox.backlog(now).await {
            Ok(b) => {
                metrics::gauge!(alertkit_core::telemetry::OUTBOX_UNFINISHED)
                    .set(b.unfinished as f64);
                let waited = b
                    .oldest_due
                    .map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
                metrics::gauge!(alertkit_core::telemetry::OUTBOX_OLDEST_DUE_SECONDS).set(waited);
            }
            Err(e) => tracing::warn!(error = %e, "dispatcher: reading the outbox backlog failed"),
        }
    }

    /// Sends one claimed delivery, or the items of one digest as one
    /// message, and records what happened to each.
    async fn deliver(&self, items: Vec<ClaimedDelivery>) {
        let Some(first) = items.first() else {
            return;
        };
        let (user_id, channel) = (first.delivery.user_id.clone(), first.delivery.channel);
        // The same items make the same id on every attempt, so receivers can
        // drop a repeat (the lowest delivery id of the digest).
        let id = items
            .iter()
            .map(|i| i.delivery.id)
            .min()
            .unwrap_or(first.delivery.id);
        let attempt = items.iter().map(|i| i.delivery.attempts).max().unwrap_or(1);
        let digest = first.delivery.digest.map(|period| DigestBatch {
            period,
            alerts: digest_alerts(&items),
        });
        let alert = match &digest {
            Some(d) => d.alerts.first().cloned(),
            None => Some(first.alert.clone()),
        };
        let result = match alert {
            Some(alert) => {
                self.send(&user_id, channel, |recipient| Notification {
                    id,
                    alert,
                    recipient,
                    channel,
                    attempt,
                    digest,
                })
                .await
            }
            None => Ok(()),
        };
        let now = self.inner.clock.now();
        let outcome = match result {
            Ok(()) => DeliveryOutcome::Sent,
            Err(e) => {
                let outcome = self.inner.config.retry.outcome(attempt, &e, now);
                if let DeliveryOutcome::Dead { error } = &outcome {
                    tracing::warn!(delivery = %id, attempt, %error, "delivery dead-lettered");
                } else {
                    tracing::info!(delivery = %id, attempt, error = %e, "delivery attempt failed; will retry");
                }
                outcome
            }
        };
        let label = match &outcome {
            DeliveryOutcome::Sent => "sent",
            DeliveryOutcome::Retry { .. } => "retry",
            DeliveryOutcome::Dead { .. } => "dead",
        };
        metrics::counter!(
            alertkit_core::telemetry::DELIVERIES,
            "channel" => channel.as_str(),
            "outcome" => label,
        )
        .increment(items.len() as u64);
        for item in &items {
            let d = &item.delivery;
            match self.record(d.id, d.attempts, &outcome, now).await {
                Ok(_) => {}
                // Our lease lapsed and another dispatcher took over: its word counts.
                Err(Error::Conflict(_)) => {
                    tracing::warn!(delivery = %d.id, attempt = d.attempts, "delivery re-claimed while sending")
                }
                Err(e) => {
                    tracing::warn!(delivery = %d.id, error = %e, "recording a delivery outcome failed; the lease will lapse")
                }
            }
        }
    }

    /// Records an attempt's outcome. While the store is unavailable (a
    /// database restart), keeps trying with backoff for up to the claim's
    /// lease: a message already sent is then not sent again when the lease
    /// lapses, unless the store stays away longer than that.
    async fn record(
        &self,
        id: uuid::Uuid,
        attempt: u32,
        outcome: &DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> Result<alertkit_core::Delivery> {
        let give_up = tokio::time::Instant::now() + self.inner.config.lease;
        let mut pause = Duration::from_millis(100);
        loop {
            match self
                .inner
                .outbox
                .complete_delivery(id, attempt, outcome.clone(), now)
                .await
            {
                Err(Error::Unavailable(_)) if tokio::time::Instant::now() + pause < give_up => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                other => return other,
            }
        }
    }

    /// Resolves the user's address, waits for the destination's rate
    /// limit, and sends what `build` makes for that recipient.
    async fn send(
        &self,
        user_id: &str,
        channel: Channel,
        build: impl FnOnce(Recipient) -> Notification,
    ) -> Result<()> {
        let notifier = self.inner.notifiers.get(&channel).ok_or_else(|| {
            Error::invalid(format!("no notifier for channel {}", channel.as_str()))
        })?;
        let recipient = match self.inner.directory.recipient(user_id).await? {
            Some(r) => r,
            None => {
                return Err(Error::invalid(format!(
                    "no contact details for user {user_id}"
                )));
            }
        };
        let destination = destination(&recipient, channel).ok_or_else(|| {
            Error::invalid(format!(
                "user {user_id} has no {} address",
                channel.as_str()
            ))
        })?;
        if let Some(limiter) = self.inner.limiters.get(&channel) {
            limiter.until_key_ready(&destination).await;
        }
        notifier.notify(&build(recipient)).await
    }
}

/// Most items one digest message lists; more go out in the next message.
pub const DIGEST_MAX: u32 = 500;

/// How often the loop reads the outbox backlog into its gauges.
const BACKLOG_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// A digest's alerts: each once (as stored now), highest severity first,
/// then oldest first.
fn digest_alerts(items: &[ClaimedDelivery]) -> Vec<Alert> {
    let mut seen = std::collections::HashSet::new();
    let mut alerts: Vec<Alert> = items
        .iter()
        .filter(|i| seen.insert(i.alert.id))
        .map(|i| i.alert.clone())
        .collect();
    alerts.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.created_at.cmp(&b.created_at))
            .then(a.id.cmp(&b.id))
    });
    alerts
}

/// The next bus message, or never when there is no bus.
async fn next(events: &mut Option<EventStream>) -> Option<BusMessage> {
    match events {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// Whether a bus message may mean new deliveries in the outbox.
fn wakes(msg: &BusMessage) -> bool {
    match msg {
        BusMessage::Event(e) => {
            matches!(**e, AlertEvent::Created { .. } | AlertEvent::Updated { .. })
        }
        BusMessage::Lagged(_) | BusMessage::Gap => true,
    }
}

/// The address a channel sends to, the rate limiter's key.
fn destination(r: &Recipient, channel: Channel) -> Option<String> {
    let addr = match channel {
        Channel::Email => r.email.clone(),
        Channel::Slack => r.slack_id.clone(),
        Channel::Webhook => r.webhook_url.clone(),
        Channel::InApp => Some(r.user_id.clone()),
    }?;
    Some(format!("{}:{addr}", channel.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600, 0).unwrap()
    }

    #[test]
    fn retry_schedule_then_dead_letter() {
        let p = RetryPolicy::default();
        let busy = Error::Unavailable("503".into());
        for (attempt, base) in [(1, 60.0), (2, 300.0), (3, 900.0)] {
            let DeliveryOutcome::Retry { at, .. } = p.outcome(attempt, &busy, t0()) else {
                panic!("attempt {attempt} should retry");
            };
            let wait = (at - t0()).num_milliseconds() as f64 / 1000.0;
            assert!(
                (base * 0.8..=base * 1.2).contains(&wait),
                "attempt {attempt}: {wait}"
            );
        }
        assert!(matches!(
            p.outcome(4, &busy, t0()),
            DeliveryOutcome::Dead { error } if error.contains("gave up after 4")
        ));
    }

    #[test]
    fn retry_after_wins_and_permanent_errors_are_dead() {
        let p = RetryPolicy::default();
        let limited = Error::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(
            p.outcome(1, &limited, t0()),
            DeliveryOutcome::Retry {
                at: t0() + chrono::Duration::seconds(2),
                error: limited.to_string()
            }
        );
        assert!(matches!(
            p.outcome(1, &Error::invalid("bad address"), t0()),
            DeliveryOutcome::Dead { .. }
        ));
    }

    #[test]
    fn jitter_spreads_retries() {
        let p = RetryPolicy::default();
        let busy = Error::Unavailable("503".into());
        let times: std::collections::BTreeSet<_> = (0..20)
            .map(|_| match p.outcome(1, &busy, t0()) {
                DeliveryOutcome::Retry { at, .. } => at,
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(times.len() > 10, "jitter must spread retries: {times:?}");
    }
}
