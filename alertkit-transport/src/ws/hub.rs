//! The per-instance fan-out hub behind the WebSocket endpoint.
//!
//! One hub per process (per [`router`](crate::http::router)) holds every
//! open connection, indexed by user, group and "sees all". One pump task
//! follows the store's change sequence ([`AlertKit::change_feed`](alertkit_core::AlertKit::change_feed)) and
//! fans each change out: the frame is encoded **once** and the same bytes
//! (a reference-counted [`Utf8Bytes`](axum::extract::ws::Utf8Bytes)) go to every recipient's queue; only
//! users holding a receipt on an updated alert get a frame of their own.
//!
//! The bus ([`Broadcaster`](alertkit_core::Broadcaster)) is the doorbell:
//! an alert event makes the pump read the store from its watermark, and the
//! pump also reads it every [`WsConfig::poll_every`], so a lost publish
//! (Redis down, a crash between commit and publish) delays an alert by at
//! most that long and never loses it. Because the store hands out change
//! numbers in commit order, the pump's watermark never skips a change, which
//! is what makes `resume` exact. Receipt, delete and broadcast events, which
//! the store does not sequence, are fanned out straight from the bus.
//!
//! A connection's queue is bounded ([`WsConfig::queue`]); when a send finds
//! it full the connection is detached and closed with 4008.

use alertkit_core::{
    Alert, AlertEvent, AlertKit, AlertView, BusMessage, Principal, Receipt, Target, Viewer,
};
use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc, watch};

use super::frames::*;

/// How the WebSocket hub behaves. `WsConfig::default()` is what the router uses.
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// Frames queued per connection before it is cut with 4008 (default 256).
    pub queue: usize,
    /// How often the pump reads the store even without a bus event
    /// (default 1 s): the bound on how late a lost publish makes an alert.
    pub poll_every: Duration,
    /// Ping interval; a client silent for twice this long is closed (default 30 s).
    pub ping_every: Duration,
    /// Largest client message, in bytes (default 64 KiB); larger closes with 1009.
    pub max_message: usize,
    /// Most alerts one `resume` replays (default 1000); further behind, the
    /// client gets `error {code: "cursor_expired"}` and should reload by REST.
    pub max_replay: usize,
    /// Client messages allowed per second per connection, sustained
    /// (default 10); with [`client_burst`](Self::client_burst) on top. A
    /// client past both is flooding and is closed with 1008.
    pub client_messages_per_sec: u32,
    /// Client messages allowed in a burst beyond the sustained rate (default 50).
    pub client_burst: u32,
    /// Each connection's read buffer, in bytes (default 4 KiB). It is
    /// allocated up front for every socket, so it dominates an idle
    /// connection's memory (tungstenite's own default is 128 KiB); larger
    /// messages still arrive, the buffer grows for them.
    pub read_buffer: usize,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            queue: 256,
            poll_every: Duration::from_secs(1),
            ping_every: Duration::from_secs(30),
            max_message: 64 * 1024,
            max_replay: 1000,
            client_messages_per_sec: 10,
            client_burst: 50,
            read_buffer: 4 * 1024,
        }
    }
}

/// A connection attached to the hub: its queue and how it is told to close.
#[derive(Debug)]
pub struct Attached {
    /// The hub's id for it (pass to [`WsHub::detach`]).
    pub id: u64,
    /// Its queue of live frames.
    pub rx: mpsc::Receiver<Frame>,
    /// Every change up to this number was delivered before it attached;
    /// every later one it may see will be queued (the `hello` cursor).
    pub watermark: u64,
    /// Set when the hub closes it (4008 on overflow, 1001 on shutdown).
    pub kicked: Arc<Kick>,
}

/// Tells a connection's writer to close, with which code.
#[derive(Debug, Default)]
pub struct Kick {
    code: AtomicU16,
    notify: Notify,
}

impl Kick {
    fn kick(&self, code: u16) {
        // The first reason wins.
        let _ = self
            .code
            .compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst);
        self.notify.notify_one();
    }

    /// Waits until kicked; returns the close code.
    pub async fn kicked(&self) -> u16 {
        self.notify.notified().await;
        self.code.load(Ordering::SeqCst)
    }
}

struct Conn {
    principal: Principal,
    viewer: Viewer,
    kick: Arc<Kick>,
}

/// What fan-out needs of a connection, packed densely: alerts for everyone
/// walk these, not the map of larger entries.
struct Slot {
    id: u64,
    user: Arc<str>,
    tx: mpsc::Sender<Frame>,
}

#[derive(Default)]
struct HubState {
    watermark: u64,
    /// Whether `watermark` was read from the store (else the pump reads it
    /// first, so a store outage at start does not replay history).
    started: bool,
    next_id: u64,
    conns: HashMap<u64, Conn>,
    by_user: HashMap<String, HashSet<u64>>,
    by_group: HashMap<String, HashSet<u64>>,
    sees_all: HashSet<u64>,
    /// Every connection's slot.
    dense: Vec<Slot>,
    /// Connection id → its index in `dense`.
    dense_at: HashMap<u64, usize>,
    /// Users refused a connection until then ([`WsHub::disconnect_user`]).
    held: HashMap<String, Instant>,
}

impl HubState {
    /// Connections that may see an alert with these targets; `None`: all.
    fn recipients(&self, targets: &[Target]) -> Option<Vec<u64>> {
        if targets.iter().any(|t| matches!(t, Target::Everyone)) {
            return None;
        }
        let mut out: HashSet<u64> = self.sees_all.clone();
        for t in targets {
            let ids = match t {
                Target::User(u) => self.by_user.get(u),
                Target::Group(g) => self.by_group.get(g),
                Target::Everyone => None,
            };
            out.extend(ids.into_iter().flatten().copied());
        }
        Some(out.into_iter().collect())
    }

    fn remove(&mut self, id: u64) -> Option<Conn> {
        let conn = self.conns.remove(&id)?;
        if let Some(i) = self.dense_at.remove(&id) {
            self.dense.swap_remove(i);
            if let Some(moved) = self.dense.get(i) {
                self.dense_at.insert(moved.id, i);
            }
        }
        let prune = |map: &mut HashMap<String, HashSet<u64>>, key: &str| {
            if let Some(set) = map.get_mut(key) {
                set.remove(&id);
                if set.is_empty() {
                    map.remove(key);
                }
            }
        };
        prune(&mut self.by_user, &conn.viewer.user_id);
        for g in &conn.viewer.groups {
            prune(&mut self.by_group, g);
        }
        self.sees_all.remove(&id);
        Some(conn)
    }

    /// Queues a frame, chosen per user, for the connections `ids` (all
    /// when `None`). A full queue detaches its connection and kicks it with
    /// 4008; a closed one is detached. Returns how many were queued.
    fn deliver(
        &mut self,
        ids: Option<Vec<u64>>,
        mut frame_for: impl FnMut(&str) -> Frame,
    ) -> usize {
        let mut queued = 0;
        let mut failed = Vec::new();
        let mut offer = |slot: &Slot| match slot.tx.try_send(frame_for(&slot.user)) {
            Ok(()) => queued += 1,
            Err(mpsc::error::TrySendError::Full(_)) => failed.push((slot.id, true)),
            Err(mpsc::error::TrySendError::Closed(_)) => failed.push((slot.id, false)),
        };
        match ids {
            None => self.dense.iter().for_each(&mut offer),
            Some(ids) => {
                for id in ids {
                    if let Some(slot) = self.dense_at.get(&id).and_then(|&i| self.dense.get(i)) {
                        offer(slot);
                    }
                }
            }
        }
        for (id, full) in failed {
            if let Some(c) = self.remove(id)
                && full
            {
                metrics::counter!(alertkit_core::telemetry::WS_SLOW_CLOSES).increment(1);
                c.kick.kick(CLOSE_TOO_SLOW);
            }
        }
        queued
    }
}

/// Live counters, for `/api/ws/stats`.
#[derive(Debug)]
pub(crate) struct Counters {
    started: Instant,
    pub(crate) sent: AtomicU64,
    /// Connections being served (until their close frame is written).
    pub(crate) open: std::sync::atomic::AtomicUsize,
}

/// The fan-out hub: see the [module docs](self). Cheap to clone.
#[derive(Clone)]
pub struct WsHub {
    inner: Arc<Inner>,
}

struct Inner {
    kit: AlertKit,
    config: WsConfig,
    state: Mutex<HubState>,
    counters: Counters,
    pump_started: tokio::sync::OnceCell<()>,
    shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for WsHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsHub")
            .field("connections", &self.lock().conns.len())
            .finish()
    }
}

impl WsHub {
    /// A hub for `kit`. The pump starts with the first attached connection
    /// (it needs a Tokio runtime).
    pub fn new(kit: AlertKit, config: WsConfig) -> Self {
        WsHub {
            inner: Arc::new(Inner {
                kit,
                config,
                state: Mutex::new(HubState::default()),
                counters: Counters {
                    started: Instant::now(),
                    sent: AtomicU64::new(0),
                    open: std::sync::atomic::AtomicUsize::new(0),
                },
                pump_started: tokio::sync::OnceCell::new(),
                shutdown: watch::channel(false).0,
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &WsConfig {
        &self.inner.config
    }

    pub(crate) fn kit(&self) -> &AlertKit {
        &self.inner.kit
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // Fan-out never leaves the state half-updated; recover from poison.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Attaches a connection for `principal`. From now on every change it
    /// may see past [`Attached::watermark`] is queued for it.
    pub async fn attach(&self, principal: Principal) -> Attached {
        self.start_pump().await;
        let (tx, rx) = mpsc::channel(self.inner.config.queue.max(1));
        let kick = Arc::new(Kick::default());
        let viewer = principal.viewer();
        let mut s = self.lock();
        s.next_id += 1;
        let id = s.next_id;
        s.by_user
            .entry(viewer.user_id.clone())
            .or_default()
            .insert(id);
        for g in &viewer.groups {
            s.by_group.entry(g.clone()).or_default().insert(id);
        }
        if viewer.sees_all {
            s.sees_all.insert(id);
        }
        let at = s.dense.len();
        s.dense.push(Slot {
            id,
            user: Arc::from(viewer.user_id.as_str()),
            tx,
        });
        s.dense_at.insert(id, at);
        s.conns.insert(
            id,
            Conn {
                principal,
                viewer,
                kick: kick.clone(),
            },
        );
        Attached {
            id,
            rx,
            watermark: s.watermark,
            kicked: kick,
        }
    }

    /// Detaches a connection (idempotent).
    pub fn detach(&self, id: u64) {
        self.lock().remove(id);
    }

    /// Closes every connection of `user_id` on this instance with 4000
    /// ([`CLOSE_DISCONNECTED`]) and,
    /// when `hold` is not zero, refuses the user's new connections until it
    /// has passed (the upgrade answers 503 with `Retry-After`; a connection
    /// that authenticates by its first message is closed with 4000). A later
    /// call replaces the hold; a zero `hold` lifts it. Clients meanwhile
    /// poll the REST API. Returns how many connections were closed.
    pub fn disconnect_user(&self, user_id: &str, hold: Duration) -> usize {
        let mut s = self.lock();
        let now = Instant::now();
        s.held.retain(|_, until| *until > now);
        if hold.is_zero() {
            s.held.remove(user_id);
        } else {
            s.held.insert(user_id.to_owned(), now + hold);
        }
        let ids: Vec<u64> = s
            .by_user
            .get(user_id)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default();
        for id in &ids {
            if let Some(c) = s.remove(*id) {
                c.kick.kick(crate::ws::frames::CLOSE_DISCONNECTED);
            }
        }
        ids.len()
    }

    /// How much longer `user_id` is refused new connections (see
    /// [`disconnect_user`](Self::disconnect_user)); `None` when not held.
    pub fn held_for(&self, user_id: &str) -> Option<Duration> {
        let s = self.lock();
        let left = s
            .held
            .get(user_id)?
            .checked_duration_since(Instant::now())?;
        (!left.is_zero()).then_some(left)
    }

    /// A receiver that turns `true` when [`shutdown`](Self::shutdown) is called.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// Closes every connection with 1001 (going away) and stops the pump.
    /// For graceful shutdown: call it before stopping the HTTP server.
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        let mut s = self.lock();
        for (_, c) in s.conns.drain() {
            c.kick.kick(CLOSE_GOING_AWAY);
        }
        s.by_user.clear();
        s.by_group.clear();
        s.sees_all.clear();
        s.dense.clear();
        s.dense_at.clear();
    }

    /// Waits (at most `within`) until every connection has written its close
    /// frame and ended: call after [`shutdown`](Self::shutdown) and after
    /// the HTTP server returned, before the runtime stops.
    pub async fn drained(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while self.inner.counters.open.load(Ordering::SeqCst) > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    /// `{connections, users, messages_sent, messages_per_sec}` since start.
    pub fn stats(&self) -> Value {
        let (connections, users) = {
            let s = self.lock();
            (s.conns.len(), s.by_user.len())
        };
        let sent = self.inner.counters.sent.load(Ordering::Relaxed);
        let secs = self
            .inner
            .counters
            .started
            .elapsed()
            .as_secs_f64()
            .max(1e-3);
        json!({
            "connections": connections,
            "users": users,
            "messages_sent": sent,
            "messages_per_sec": sent as f64 / secs,
        })
    }

    /// Fans one alert change out to the attached connections that may see
    /// it, and advances the watermark to its number. What the pump does for
    /// each change it reads; public for benchmarks and custom pumps.
    /// `receipts` holds the receipts of users who have one on this alert
    /// (their frame carries it; everyone else shares one encoding).
    /// Returns how many connections it was queued for.
    pub fn fan_out(&self, alert: &Alert, receipts: &HashMap<String, Receipt>) -> usize {
        let event = event_name(alert);
        let shared = alert_frame(
            event,
            &AlertView::new(alert.clone(), Receipt::default()),
            alert.seq,
        );
        let mut own: HashMap<&str, Frame> = HashMap::new();
        let frame_for = |user: &str| -> Frame {
            if receipts.is_empty() {
                return shared.clone();
            }
            match receipts.get_key_value(user) {
                Some((user, r)) => own
                    .entry(user.as_str())
                    .or_insert_with(|| {
                        alert_frame(event, &AlertView::new(alert.clone(), *r), alert.seq)
                    })
                    .clone(),
                None => shared.clone(),
            }
        };
        let mut s = self.lock();
        s.watermark = s.watermark.max(alert.seq);
        let ids = s.recipients(alert.audience.targets());
        let queued = s.deliver(ids, frame_for);
        drop(s);
        let lag = (chrono::Utc::now() - alert.updated_at).num_microseconds();
        if let Some(us) = lag.filter(|us| *us >= 0) {
            metrics::histogram!(alertkit_core::telemetry::WS_FANOUT_LAG_SECONDS)
                .record(us as f64 / 1e6);
        }
        queued
    }

    /// Queues a frame for every connection of one user.
    fn send_user(&self, user: &str, frame: Frame) {
        let mut s = self.lock();
        let ids = s.by_user.get(user).into_iter().flatten().copied().collect();
        s.deliver(Some(ids), |_| frame.clone());
    }

    /// Queues a frame for the connections that may see `targets`.
    fn send_targets(&self, targets: &[Target], frame: Frame) {
        let mut s = self.lock();
        let ids = s.recipients(targets);
        s.deliver(ids, |_| frame.clone());
    }

    async fn start_pump(&self) {
        self.inner
            .pump_started
            .get_or_init(|| async {
                // Start from what is committed now; earlier changes are the
                // clients' to fetch (REST) or replay (resume).
                self.read_start().await;
                tokio::spawn(self.clone().pump());
            })
            .await;
    }

    async fn read_start(&self) -> bool {
        if self.lock().started {
            return true;
        }
        match self.inner.kit.latest_seq().await {
            Ok(start) => {
                let mut s = self.lock();
                s.watermark = s.watermark.max(start);
                s.started = true;
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "ws hub: store unavailable; will retry");
                false
            }
        }
    }

    /// Reads every change past the watermark from the store and fans it out.
    async fn catch_up(&self) {
        const BATCH: u32 = 500;
        if !self.read_start().await {
            return;
        }
        loop {
            let after = self.lock().watermark;
            let kit = &self.inner.kit;
            let batch = match kit.change_feed(after, BATCH).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "ws hub: reading changes failed; retrying on the next tick");
                    return;
                }
            };
            for change in &batch {
                self.fan_out(&change.alert, &change.receipts);
            }
            if batch.len() < BATCH as usize {
                return;
            }
        }
    }

    async fn pump(self) {
        let mut shutdown = self.shutdown_signal();
        let mut poll = tokio::time::interval(self.inner.config.poll_every);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut bus = None;
        loop {
            if bus.is_none() {
                match self.inner.kit.subscribe().await {
                    Ok(b) => {
                        bus = Some(b);
                        // Whatever was published while unsubscribed is in the store.
                        self.catch_up().await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "ws hub: bus unavailable; polling the store")
                    }
                }
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = poll.tick() => self.catch_up().await,
                msg = async { match bus.as_mut() { Some(b) => b.next().await, None => std::future::pending().await } } => {
                    let Some(first) = msg else {
                        bus = None;
                        continue;
                    };
                    // Take everything already waiting, then read the store once.
                    let mut alerts_changed = false;
                    let mut next = Some(first);
                    while let Some(m) = next {
                        alerts_changed |= self.on_bus(m);
                        next = bus.as_mut().and_then(|b| b.next().now_or_never().flatten());
                    }
                    if alerts_changed {
                        self.catch_up().await;
                    }
                }
            }
        }
    }

    /// Handles one bus message; returns whether the store has alert changes to read.
    fn on_bus(&self, msg: BusMessage) -> bool {
        let event = match msg {
            BusMessage::Event(e) => e,
            // Events were lost: the store has the alert changes; receipts
            // reach clients with their next `unread` or reload.
            BusMessage::Lagged(_) | BusMessage::Gap => return true,
        };
        match &*event {
            AlertEvent::Created { .. }
            | AlertEvent::Updated { .. }
            | AlertEvent::Resolved { .. } => true,
            AlertEvent::Deleted { alert_id, audience } => {
                let f =
                    text_frame(json!({"type": "alert", "event": "deleted", "alert_id": alert_id}));
                self.send_targets(audience.targets(), f);
                false
            }
            AlertEvent::Broadcast {
                message,
                level,
                data,
                at,
            } => {
                let f = text_frame(
                    json!({"type": "broadcast", "message": message, "level": level, "data": data, "at": at}),
                );
                self.send_targets(&[Target::Everyone], f);
                false
            }
            AlertEvent::Topic {
                topic,
                permission,
                data,
                at,
            } => {
                let f = text_frame(json!({"type": topic, "data": data, "at": at}));
                match permission {
                    None => self.send_targets(&[Target::Everyone], f),
                    Some(p) => {
                        let mut s = self.lock();
                        let ids: Vec<u64> = s
                            .conns
                            .iter()
                            .filter(|(_, c)| c.principal.can(*p))
                            .map(|(id, _)| *id)
                            .collect();
                        s.deliver(Some(ids), |_| f.clone());
                    }
                }
                false
            }
            AlertEvent::Read {
                user_id,
                alert_ids,
                at,
            } => {
                self.receipt(
                    user_id.clone(),
                    json!({"type": "receipt", "alert_ids": alert_ids, "read_at": at}),
                );
                false
            }
            AlertEvent::Dismissed {
                user_id,
                alert_id,
                at,
            } => {
                self.receipt(
                    user_id.clone(),
                    json!({"type": "receipt", "alert_ids": [alert_id], "dismissed_at": at}),
                );
                false
            }
        }
    }

    /// A receipt goes to the user's connections, followed by their new
    /// unread count (counted once per user, off the pump).
    fn receipt(&self, user: String, frame: Value) {
        let principal = {
            let s = self.lock();
            let Some(id) = s.by_user.get(&user).and_then(|ids| ids.iter().next()) else {
                return;
            };
            match s.conns.get(id) {
                Some(c) => c.principal.clone(),
                None => return,
            }
        };
        self.send_user(&user, text_frame(frame));
        let hub = self.clone();
        tokio::spawn(async move {
            if let Ok(count) = hub.inner.kit.unread_count(&principal).await {
                hub.send_user(&user, text_frame(json!({"type": "unread", "count": count})));
            }
        });
    }
}
