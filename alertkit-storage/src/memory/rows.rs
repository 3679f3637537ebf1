//! The in-memory "tables": what the store holds, keyed for each access path.

use super::*;

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) alerts: HashMap<AlertId, Alert>,
    /// Every alert by (created_at, id): the list order, newest last.
    pub(super) order: BTreeSet<(DateTime<Utc>, AlertId)>,
    /// dedup scope ([`Alert::dedup_scope`]) → the active alert holding it.
    pub(super) active_keys: HashMap<String, AlertId>,
    /// alert → user → receipt.
    pub(super) receipts: HashMap<AlertId, HashMap<String, Receipt>>,
    pub(super) rules: BTreeMap<Uuid, AlertRule>,
    pub(super) subscriptions: BTreeMap<String, Vec<Subscription>>,
    /// user → contact details.
    pub(super) contacts: HashMap<String, Recipient>,
    /// delivery → its recorded attempts, oldest first.
    pub(super) attempts: HashMap<Uuid, Vec<alertkit_core::DeliveryAttempt>>,
    /// Team routes by id.
    pub(super) routes: BTreeMap<Uuid, Route>,
    pub(super) deliveries: BTreeMap<Uuid, Delivery>,
    /// (alert, user, channel, severity) of every delivery: the outbox's unique key.
    pub(super) delivery_keys: BTreeSet<(AlertId, String, Channel, Severity)>,
    /// (job, tick) → run.
    pub(super) job_runs: BTreeMap<(String, DateTime<Utc>), JobRun>,
    /// Series by name: settings and newest point.
    pub(super) series: BTreeMap<String, alertkit_core::SeriesInfo>,
    /// (series, instant) → value.
    pub(super) points: BTreeMap<(String, DateTime<Utc>), f64>,
    /// (series, instant) → prediction.
    pub(super) predictions: BTreeMap<(String, DateTime<Utc>), alertkit_core::Prediction>,
    /// Reports by id.
    pub(super) reports: BTreeMap<Uuid, alertkit_core::Report>,
    /// Paused job ids.
    pub(super) paused_jobs: std::collections::BTreeSet<String>,
    /// The last change sequence number handed out.
    pub(super) seq: u64,
    /// Change sequence number → alert (each alert under its latest number).
    pub(super) by_seq: BTreeMap<u64, AlertId>,
}
