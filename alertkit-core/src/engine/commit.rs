//! Group commit: concurrent single raises coalesced into one store write.
//!
//! [`AlertKit::raise`] hands its validated alert to the committers and
//! waits for its own result. A free committer takes every raise waiting
//! (up to [`MAX_BATCH`]), plans their deliveries with one read of the
//! routes and one read of the subscribers per alert type and severity, and
//! stores them with one [`AlertStore::insert_many`](crate::AlertStore::insert_many)
//! transaction. There is no timer: raises queue only while the committers
//! are busy, so a lone raise is written at once and a crowd shares the
//! transactions' cost. Two committers work in turn: one writes its batch
//! while the other plans the next, and writes never overlap. Overlapping
//! writes would gain nothing: the change counter serializes them until
//! commit on PostgreSQL, and SQLite has one writer. So the batch written
//! per commit (and per disk flush) is as large as the callers make it. Each caller still gets its own [`Raised`] or error:
//! when a batched write fails, its raises are retried one by one, so one
//! bad raise cannot fail its neighbours.
//!
//! Ordering and guarantees are those of `insert_many`: one transaction, so
//! its alerts take consecutive change numbers and become visible together;
//! a raise is acknowledged only after its transaction committed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{mpsc, oneshot};

use super::{AlertKit, Inner};
use crate::alert::Alert;
use crate::error::{Error, Result};
use crate::route::Route;
use crate::rule::Subscription;
use crate::severity::Severity;
use crate::store::Raised;

/// Most raises written in one transaction.
pub const MAX_BATCH: usize = 256;

/// Batches in flight at once: one writing, one planning.
pub const COMMITTERS: usize = 2;

/// Subscribers read once per alert type and severity within a batch.
pub(super) type SubscriberMemo = HashMap<(String, Severity), Vec<Subscription>>;

/// One raise waiting for the committer.
pub(super) struct Pending {
    alert: Alert,
    done: oneshot::Sender<Result<Raised>>,
}

/// The way to the committer task (started on the first raise, restarted
/// if its runtime went away).
#[derive(Default)]
pub(super) struct Committer {
    tx: Mutex<Option<mpsc::UnboundedSender<Pending>>>,
}

impl AlertKit {
    /// Stores one validated raise through the group commit.
    pub(super) async fn commit_one(&self, alert: Alert) -> Result<Raised> {
        let (done, rx) = oneshot::channel();
        let unsent = self.hand_over(Pending { alert, done });
        if let Some(p) = unsent {
            // No Tokio runtime to run the committer on: write it alone.
            return self
                .store_alone(p.alert, &tokio::sync::Mutex::new(()))
                .await;
        }
        rx.await.unwrap_or_else(|_| {
            Err(Error::Unavailable(
                "the raise was interrupted before it was acknowledged (the runtime is shutting down)"
                    .into(),
            ))
        })
    }

    /// Sends a raise to the committer, starting it when it is not running;
    /// gives the raise back when no runtime can run it.
    fn hand_over(&self, pending: Pending) -> Option<Pending> {
        let mut slot = self
            .inner
            .committer
            .tx
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let pending = match slot.as_ref() {
            Some(tx) => tx.send(pending).err()?.0,
            None => pending,
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Some(pending);
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let turn = Arc::new(tokio::sync::Mutex::new(()));
        for _ in 0..COMMITTERS {
            runtime.spawn(run(Arc::downgrade(&self.inner), rx.clone(), turn.clone()));
        }
        let unsent = tx.send(pending).err().map(|e| e.0);
        *slot = Some(tx);
        unsent
    }

    /// Plans and stores one raise in its own transaction.
    async fn store_alone(&self, alert: Alert, turn: &tokio::sync::Mutex<()>) -> Result<Raised> {
        self.store_batch(vec![alert], turn)
            .await?
            .pop()
            .ok_or_else(|| Error::Unavailable("the store returned no result for a raise".into()))
    }

    /// Writes a batch; answers every raise in it. `turn` makes the
    /// committers' writes take turns.
    async fn commit_batch(&self, batch: Vec<Pending>, turn: &tokio::sync::Mutex<()>) {
        let (alerts, dones): (Vec<Alert>, Vec<_>) =
            batch.into_iter().map(|p| (p.alert, p.done)).unzip();
        // A copy for the one-by-one retry; a lone raise is never retried.
        let spare = (alerts.len() > 1).then(|| alerts.clone());
        let result = self.store_batch(alerts, turn).await;
        match (result, spare) {
            (Ok(raised), _) if raised.len() == dones.len() => {
                for (done, r) in dones.into_iter().zip(raised) {
                    let _ = done.send(Ok(r));
                }
            }
            (Err(e), None) => {
                if let Some(done) = dones.into_iter().next() {
                    let _ = done.send(Err(e));
                }
            }
            (_, spare) => {
                // Each on its own, so every caller gets its own answer.
                for (done, alert) in dones.into_iter().zip(spare.unwrap_or_default()) {
                    let r = self.store_alone(alert, turn).await;
                    let _ = done.send(r);
                }
            }
        }
    }

    async fn store_batch(
        &self,
        alerts: Vec<Alert>,
        turn: &tokio::sync::Mutex<()>,
    ) -> Result<Vec<Raised>> {
        let now = self.now();
        let routes: Vec<Route> = self.inner.store.routes().await?;
        let mut memo = SubscriberMemo::new();
        let mut items = Vec::with_capacity(alerts.len());
        for alert in alerts {
            let targets = self.plan_deliveries(&alert, &routes, &mut memo).await?;
            items.push((alert, targets));
        }
        let _turn = turn.lock().await;
        let started = std::time::Instant::now();
        let raised = match items.len() {
            1 => match items.pop() {
                Some((alert, targets)) => self
                    .inner
                    .store
                    .insert_or_dedup(alert, &targets, now)
                    .await
                    .map(|r| vec![r]),
                None => Ok(Vec::new()),
            },
            _ => self.inner.store.insert_many(items, now).await,
        };
        crate::telemetry::store_query("raise", started);
        raised
    }
}

/// One committer: takes everything waiting, writes it, again.
async fn run(
    inner: Weak<Inner>,
    rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>>,
    turn: Arc<tokio::sync::Mutex<()>>,
) {
    loop {
        let batch = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { return };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
            batch
        };
        // Raises whose caller gave up are still written: they may already
        // be in flight elsewhere, and a raise is cheap to keep.
        let Some(inner) = inner.upgrade() else { return };
        AlertKit { inner }.commit_batch(batch, &turn).await;
    }
}
