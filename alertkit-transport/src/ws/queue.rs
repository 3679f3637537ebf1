//! A connection's queue of live frames, bounded in bytes, and the hub-wide
//! pressure that tells a busy server from a slow client.
//!
//! **The policy.** Every connection has a queue of at most
//! [`WsConfig::queue_bytes`](crate::ws::WsConfig::queue_bytes) (default
//! 1 MiB, counting each frame's text plus [`FRAME_OVERHEAD`]). A queue past
//! half its limit is *high* until its writer drains it to a quarter. When
//! more than half of all queues are high at once, the server itself is
//! behind (a burst of publishes outran the writers), and the hub's pump
//! waits, at most [`WsConfig::publish_wait`](crate::ws::WsConfig::publish_wait),
//! before fanning the next change out; `POST /api/ws/push/broadcast` waits
//! the same way before publishing. So healthy clients keep up through a
//! burst instead of being cut. A queue that is full while most are not
//! belongs to a client behind its peers: it is closed with 4008. If the
//! wait runs out (most clients really are stuck), the pump delivers anyway
//! until the pressure clears, which cuts the stuck ones.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::frames::Frame;

/// What a queued frame costs beyond its text, in bytes (its slot, the
/// shared buffer's header), for the byte bound.
pub const FRAME_OVERHEAD: usize = 64;

/// Queue capacity (in frames) kept after a burst drains; a larger one is
/// released, so a burst does not leave memory behind.
const KEEP_SLOTS: usize = 16;

/// The hub-wide count of high queues.
#[derive(Debug, Default)]
pub(crate) struct Pressure {
    /// Queues attached (not closed).
    queues: AtomicUsize,
    /// Queues past their high-water mark.
    high: AtomicUsize,
    /// Notified when a queue drops below its low-water mark.
    room: Notify,
    episode: Mutex<Episode>,
}

#[derive(Debug, Default, Clone, Copy)]
enum Episode {
    /// Not behind (or not waited yet).
    #[default]
    Clear,
    /// Waiting for room until then.
    Waiting(Instant),
    /// Waited the longest allowed: deliver until the pressure clears.
    Overridden,
}

impl Pressure {
    /// Whether more than half of the queues are high.
    pub(crate) fn behind(&self) -> bool {
        let high = self.high.load(Ordering::Acquire);
        high > 0 && high.saturating_mul(2) > self.queues.load(Ordering::Acquire)
    }

    fn episode(&self) -> MutexGuard<'_, Episode> {
        self.episode.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Returns when the server is not behind, or when it has been waiting
    /// for room longer than `max_wait` in this episode of pressure (then
    /// at once, until the pressure has cleared). Returns whether it waited.
    pub(crate) async fn room(&self, max_wait: Duration) -> bool {
        let mut waited = false;
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.behind() {
                *self.episode() = Episode::Clear;
                return waited;
            }
            let deadline = {
                let mut e = self.episode();
                let now = Instant::now();
                match *e {
                    Episode::Clear => {
                        *e = Episode::Waiting(now + max_wait);
                        now + max_wait
                    }
                    Episode::Waiting(at) if at > now => at,
                    Episode::Waiting(_) => {
                        *e = Episode::Overridden;
                        metrics::counter!(alertkit_core::telemetry::WS_PUBLISH_WAIT_EXPIRED)
                            .increment(1);
                        return waited;
                    }
                    Episode::Overridden => return waited,
                }
            };
            waited = true;
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

/// What [`ConnQueue::push`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// Over the byte limit: the client is too slow.
    Full,
    /// The connection is closing.
    Closed,
}

/// What a connection takes from its queue.
#[derive(Debug)]
pub(crate) enum Next {
    Frame(Frame),
    Empty,
    /// The hub closed it, with this close code.
    Kicked(u16),
}

/// One connection's queue: see the [module docs](self).
#[derive(Debug)]
pub(crate) struct ConnQueue {
    state: Mutex<State>,
    ready: Notify,
    limit: usize,
    pressure: Arc<Pressure>,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Frame>,
    bytes: usize,
    high: bool,
    /// Set when closed: the close code for the writer (0: detached quietly).
    kicked: Option<u16>,
}

impl ConnQueue {
    /// A queue of at most `limit` bytes, counted in `pressure`.
    pub(crate) fn new(limit: usize, pressure: Arc<Pressure>) -> Self {
        pressure.queues.fetch_add(1, Ordering::AcqRel);
        ConnQueue {
            state: Mutex::new(State::default()),
            ready: Notify::new(),
            limit: limit.max(1),
            pressure,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a frame unless that would pass the byte limit (a frame larger
    /// than the whole limit still goes into an empty queue).
    pub(crate) fn push(&self, frame: Frame) -> Pushed {
        let cost = frame.text.len() + FRAME_OVERHEAD;
        let mut s = self.lock();
        if s.kicked.is_some() {
            return Pushed::Closed;
        }
        if s.bytes + cost > self.limit && !s.frames.is_empty() {
            return Pushed::Full;
        }
        s.bytes += cost;
        s.frames.push_back(frame);
        if !s.high && s.bytes > self.limit / 2 {
            s.high = true;
            self.pressure.high.fetch_add(1, Ordering::AcqRel);
        }
        drop(s);
        self.ready.notify_one();
        Pushed::Queued
    }

    /// Takes the next frame (or the close code once kicked).
    pub(crate) fn next(&self) -> Next {
        let mut s = self.lock();
        if let Some(code) = s.kicked {
            return Next::Kicked(code);
        }
        let Some(frame) = s.frames.pop_front() else {
            return Next::Empty;
        };
        s.bytes -= frame.text.len() + FRAME_OVERHEAD;
        if s.frames.is_empty() && s.frames.capacity() > KEEP_SLOTS {
            s.frames = VecDeque::new();
        }
        if s.high && s.bytes <= self.limit / 4 {
            s.high = false;
            self.pressure.high.fetch_sub(1, Ordering::AcqRel);
            self.pressure.room.notify_waiters();
        }
        Next::Frame(frame)
    }

    /// Waits until there may be something to take.
    pub(crate) async fn ready(&self) {
        self.ready.notified().await
    }

    /// Closes the queue: drops what is queued; the writer's next take
    /// returns `Kicked(code)`. The first code wins; idempotent.
    pub(crate) fn close(&self, code: u16) {
        let mut s = self.lock();
        if s.kicked.is_some() {
            return;
        }
        s.kicked = Some(code);
        s.frames = VecDeque::new();
        s.bytes = 0;
        if s.high {
            s.high = false;
            self.pressure.high.fetch_sub(1, Ordering::AcqRel);
        }
        self.pressure.queues.fetch_sub(1, Ordering::AcqRel);
        self.pressure.room.notify_waiters();
        drop(s);
        self.ready.notify_one();
    }

    /// Bytes queued now.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

impl Drop for ConnQueue {
    fn drop(&mut self) {
        // A queue dropped without a close still leaves the count right.
        self.close(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::ws::Utf8Bytes;

    fn frame(n: usize) -> Frame {
        Frame {
            text: Utf8Bytes::from("x".repeat(n)),
            seq: 0,
        }
    }

    #[test]
    fn the_bound_is_in_bytes_and_a_drained_burst_releases_its_slots() {
        let p = Arc::new(Pressure::default());
        let q = ConnQueue::new(40 * (100 + FRAME_OVERHEAD), p.clone());
        for _ in 0..40 {
            assert_eq!(q.push(frame(100)), Pushed::Queued);
        }
        assert_eq!(q.push(frame(1)), Pushed::Full);
        assert!(p.behind(), "one queue, and it is high");
        while let Next::Frame(_) = q.next() {}
        assert_eq!(q.bytes(), 0);
        assert!(!p.behind());
        assert_eq!(q.lock().frames.capacity(), 0, "the burst's slots are freed");
        // A frame larger than the whole bound still passes alone.
        assert_eq!(q.push(frame(5_000)), Pushed::Queued);
    }

    #[test]
    fn a_closed_queue_refuses_and_reports_its_code_once_counted_out() {
        let p = Arc::new(Pressure::default());
        let slow = ConnQueue::new(1000, p.clone());
        let ok = ConnQueue::new(1000, p.clone());
        let _third = ConnQueue::new(1000, p.clone());
        while slow.push(frame(100)) == Pushed::Queued {}
        assert!(!p.behind(), "one high queue of three is a slow client");
        assert_eq!(ok.push(frame(600)), Pushed::Queued);
        assert!(p.behind(), "two of three are high: the server is behind");
        slow.close(4008);
        slow.close(1001);
        assert!(
            matches!(slow.next(), Next::Kicked(4008)),
            "the first code wins"
        );
        assert_eq!(slow.push(frame(1)), Pushed::Closed);
        assert!(!p.behind());
        drop(slow);
        assert_eq!(
            p.queues.load(Ordering::Acquire),
            2,
            "closed once, counted once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn room_waits_for_the_writers_and_at_most_the_bound_per_episode() {
        let p = Arc::new(Pressure::default());
        let q = Arc::new(ConnQueue::new(1000, p.clone()));
        q.push(frame(600));
        // A writer drains it after 100 ms: room returns then.
        let drainer = {
            let q = q.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                while let Next::Frame(_) = q.next() {}
            })
        };
        let t = Instant::now();
        assert!(p.room(Duration::from_secs(5)).await);
        assert_eq!(t.elapsed(), Duration::from_millis(100));
        drainer.await.unwrap();
        // Nobody drains now: room gives up after the bound, then stops
        // waiting until the pressure clears.
        q.push(frame(600));
        let t = Instant::now();
        p.room(Duration::from_secs(5)).await;
        assert_eq!(t.elapsed(), Duration::from_secs(5));
        let t = Instant::now();
        assert!(!p.room(Duration::from_secs(5)).await);
        assert_eq!(t.elapsed(), Duration::ZERO);
        while let Next::Frame(_) = q.next() {}
        assert!(!p.room(Duration::from_secs(5)).await);
        q.push(frame(600));
        let t = Instant::now();
        p.room(Duration::from_secs(1)).await;
        assert_eq!(
            t.elapsed(),
            Duration::from_secs(1),
            "a new episode waits again"
        );
    }
}
