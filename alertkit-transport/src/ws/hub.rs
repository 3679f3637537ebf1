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
//! A connection's queue is bounded in bytes ([`WsConfig::queue_bytes`]).
//! When most queues are filling at once the server is behind, and the pump
//! waits for room (at most [`WsConfig::publish_wait`]) instead of cutting
//! healthy clients; a queue that fills while its peers' do not belongs to a
//! slow client, which is detached and closed with 4008 (the full policy is
//! in [`queue`](super::queue)). Bus events wait in the pump's inbox, not in
//! the bus, so a held pump never makes the bus drop a broadcast.

use alertkit_core::{
    Alert, AlertEvent, AlertKit, AlertView, BusMessage, Principal, Receipt, Target, Viewer,
};
use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

use super::frames::*;
use super::queue::{ConnQueue, Pressure, Pushed};

/// How the WebSocket hub behaves. `WsConfig::default()` is what the router uses.
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// Bytes of frames queued per connection (default 1 MiB; each frame
    /// counts its text plus [`FRAME_OVERHEAD`](super::queue::FRAME_OVERHEAD)).
    /// A connection whose queue is full while most others' are not is cut
    /// with 4008.
    pub queue_bytes: usize,
    /// The longest the hub holds a fan-out (and `POST
    /// /api/ws/push/broadcast` a publish) while more than half of the queues
    /// are past half full, i.e. while the server itself is behind (default
    /// 5 s). Past it, delivery goes on until the pressure clears.
    pub publish_wait: Duration,
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
    /// Each connection's read buffer, in bytes (default 2 KiB). It is
    /// allocated up front for every socket, so it is the largest part of
    /// an idle connection's memory (tungstenite's own default is 128 KiB);
    /// larger client messages still arrive, read in steps of this size
    /// into a buffer that grows for them. Clients send only small
    /// messages (the largest is `auth` with its token).
    pub read_buffer: usize,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            queue_bytes: 1024 * 1024,
            publish_wait: Duration::from_secs(5),
            poll_every: Duration::from_secs(1),
            ping_every: Duration::from_secs(30),
            max_message: 64 * 1024,
            max_replay: 1000,
            client_messages_per_sec: 10,
            client_burst: 50,
            read_buffer: 2 * 1024,
        }
    }
}

/// A connection attached to the hub: its queue and how it is told to close.
#[derive(Debug)]
pub struct Attached {
    /// The hub's id for it (pass to [`WsHub::detach`]).
    pub id: u64,
    /// Its queue of live frames; closed with a code when the hub drops it
    /// (4008 on overflow, 4000 on an administrator's disconnect, 1001 on
    /// shutdown).
    pub(crate) queue: Arc<ConnQueue>,
    /// Every change up to this number was delivered before it attached;
    /// every later one it may see will be queued (the `hello` cursor).
    pub watermark: u64,
}

impl Attached {
    /// Takes the next queued frame without waiting: `None` when the queue
    /// is empty or was closed. For custom writers, tests and benchmarks
    /// (the WebSocket endpoint drains it itself).
    pub fn try_next(&self) -> Option<Frame> {
        match self.queue.next() {
            super::queue::Next::Frame(f) => Some(f),
            _ => None,
        }
    }
}

struct Conn {
    principal: Principal,
    viewer: Viewer,
    queue: Arc<ConnQueue>,
}

/// What fan-out needs of a connection, packed densely: alerts for everyone
/// walk these, not the map of larger entries.
struct Slot {
    id: u64,
    user: Arc<str>,
    queue: Arc<ConnQueue>,
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
        conn.queue.close(0);
        Some(conn)
    }

    /// Queues a frame, chosen per user, for the connections `ids` (all
    /// when `None`). A full queue detaches its connection and closes it
    /// with 4008; a closed one is detached. Returns how many were queued.
    fn deliver(
        &mut self,
        ids: Option<Vec<u64>>,
        mut frame_for: impl FnMut(&str) -> Frame,
    ) -> usize {
        let mut queued = 0;
        let mut failed = Vec::new();
        let mut offer = |slot: &Slot| match slot.queue.push(frame_for(&slot.user)) {
            Pushed::Queued => queued += 1,
            Pushed::Full => failed.push((slot.id, true)),
            Pushed::Closed => failed.push((slot.id, false)),
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
            if full && let Some(c) = self.conns.get(&id) {
                metrics::counter!(alertkit_core::telemetry::WS_SLOW_CLOSES).increment(1);
                c.queue.close(CLOSE_TOO_SLOW);
            }
            self.remove(id);
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
    pressure: Arc<Pressure>,
    /// Bus events received and not yet fanned out (the pump's inbox).
    backlog: AtomicUsize,
    /// Publishes let through [`WsHub::publish_room`] whose broadcast or
    /// topic event the pump has not fanned out yet (they may still be in
    /// the bus, where the inbox cannot see them).
    admitted: AtomicUsize,
}

/// Bus events the pump may hold before `POST /api/ws/push/broadcast`
/// waits for it.
const MAX_BACKLOG: usize = 1024;

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
                pressure: Arc::new(Pressure::default()),
                backlog: AtomicUsize::new(0),
                admitted: AtomicUsize::new(0),
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
        let queue = Arc::new(ConnQueue::new(
            self.inner.config.queue_bytes,
            self.inner.pressure.clone(),
        ));
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
            queue: queue.clone(),
        });
        s.dense_at.insert(id, at);
        s.conns.insert(
            id,
            Conn {
                principal,
                viewer,
                queue: queue.clone(),
            },
        );
        Attached {
            id,
            queue,
            watermark: s.watermark,
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
            if let Some(c) = s.conns.get(id) {
                c.queue.close(CLOSE_DISCONNECTED);
            }
            s.remove(*id);
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
            c.queue.close(CLOSE_GOING_AWAY);
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

    /// Waits, bounded, while the server is behind (see [`queue`](super::queue)).
    async fn room(&self) {
        if self
            .inner
            .pressure
            .room(self.inner.config.publish_wait)
            .await
        {
            metrics::counter!(alertkit_core::telemetry::WS_PUBLISH_WAITS).increment(1);
        }
    }

    /// Waits, bounded by [`WsConfig::publish_wait`], until the hub can take
    /// another broadcast or topic event: its queues are not mostly filling
    /// and fewer than 1024 published events wait to be fanned out here.
    /// Call it right before each [`AlertKit::broadcast`] (or
    /// [`AlertKit::publish_topic`]) that should be slowed rather than
    /// cut clients in a burst; `POST /api/ws/push/broadcast` does. Without
    /// it, a publisher that never yields can outrun the bus's buffer (the
    /// in-process bus keeps 4096 events per subscriber).
    pub async fn publish_room(&self) {
        let deadline = tokio::time::Instant::now() + self.inner.config.publish_wait;
        let mut waited = false;
        while self
            .inner
            .backlog
            .load(Ordering::Acquire)
            .max(self.inner.admitted.load(Ordering::Acquire))
            > MAX_BACKLOG
            && tokio::time::Instant::now() < deadline
        {
            waited = true;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if waited {
            metrics::counter!(alertkit_core::telemetry::WS_PUBLISH_WAITS).increment(1);
        }
        self.room().await;
        self.inner.admitted.fetch_add(1, Ordering::AcqRel);
    }

    /// Reads one batch of changes past the watermark from the store and
    /// fans it out, waiting for room before each. Returns whether more may
    /// be waiting.
    async fn catch_up(&self) -> bool {
        const BATCH: u32 = 500;
        if !self.read_start().await {
            return false;
        }
        let after = self.lock().watermark;
        let batch = match self.inner.kit.change_feed(after, BATCH).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "ws hub: reading changes failed; retrying on the next tick");
                return false;
            }
        };
        for change in &batch {
            self.room().await;
            self.fan_out(&change.alert, &change.receipts);
        }
        batch.len() >= BATCH as usize
    }

    /// The pump: bus events go to an inbox at once (so the bus never
    /// drops one while the pump waits for room), and are fanned out in
    /// order, one per turn, each after waiting for room; alert changes are
    /// read from the store when the bus rings or the poll interval passes.
    async fn pump(self) {
        let mut shutdown = self.shutdown_signal();
        let mut poll = tokio::time::interval(self.inner.config.poll_every);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut bus = None;
        let mut inbox: std::collections::VecDeque<BusMessage> = Default::default();
        // Alert changes may be waiting in the store.
        let mut dirty = true;
        let mut turns = 0u32;
        loop {
            if bus.is_none() {
                match self.inner.kit.subscribe().await {
                    Ok(b) => {
                        bus = Some(b);
                        // Whatever was published while unsubscribed is in the store.
                        dirty = true;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "ws hub: bus unavailable; polling the store")
                    }
                }
            }
            let work = dirty || !inbox.is_empty();
            tokio::select! {
                biased;
                _ = shutdown.changed() => return,
                msg = async { match bus.as_mut() { Some(b) => b.next().await, None => std::future::pending().await } } => {
                    let Some(first) = msg else {
                        bus = None;
                        continue;
                    };
                    // Take everything already waiting.
                    inbox.push_back(first);
                    while let Some(m) = bus.as_mut().and_then(|b| b.next().now_or_never().flatten()) {
                        inbox.push_back(m);
                    }
                }
                _ = poll.tick() => dirty = true,
                _ = self.room(), if work => {
                    // Bus events first, but the store is read at least
                    // every 64 of them, so a stream of broadcasts cannot
                    // starve alerts.
                    match inbox.pop_front() {
                        Some(m) if !dirty || turns < 64 => {
                            turns += 1;
                            dirty |= self.on_bus(m);
                        }
                        m => {
                            if let Some(m) = m {
                                inbox.push_front(m);
                            }
                            turns = 0;
                            dirty = self.catch_up().await;
                        }
                    }
                }
            }
            self.inner.backlog.store(inbox.len(), Ordering::Release);
            if inbox.capacity() > 64 && inbox.is_empty() {
                inbox = Default::default();
            }
            // Fan-out is synchronous: without this the pump could run on
            // through its inbox with an exhausted cooperative budget, under
            // which the bus reads as empty, until the bus dropped events.
            tokio::task::consume_budget().await;
        }
    }

    /// Handles one bus message; returns whether the store has alert changes to read.
    fn on_bus(&self, msg: BusMessage) -> bool {
        if let BusMessage::Event(e) = &msg
            && matches!(**e, AlertEvent::Broadcast { .. } | AlertEvent::Topic { .. })
        {
            // Events published elsewhere count down too: the count only
            // ever errs towards letting a publisher through.
            let _ = self
                .inner
                .admitted
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
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
