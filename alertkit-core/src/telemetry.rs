//! The metrics alertkit emits, through the [`metrics`] facade.
//!
//! The library crates only *emit*: nothing is recorded until the
//! application installs a recorder (the reference server installs
//! `metrics-exporter-prometheus` and serves `GET /metrics`). Names and
//! labels:
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `alertkit_alerts_raised_total` | counter | `type`, `severity`, `deduplicated` | raises, new or merged into an active alert |
//! | `alertkit_store_query_seconds` | histogram | `op` | engine calls into the store (`raise`, `raise_many`, `list`, `get`, `stats`, `count`, `mark_read`, `mark_all_read`, `dismiss`, `changes_since` and `receipts_many` for the live pump, `replay` for WebSocket resumes) |
//! | `alertkit_deliveries_total` | counter | `channel`, `outcome` (`sent`, `retry`, `dead`) | delivery attempts and how they ended |
//! | `alertkit_outbox_unfinished` | gauge | | deliveries pending or in flight (the dispatcher reads it every 15 s) |
//! | `alertkit_outbox_oldest_due_seconds` | gauge | | how long the oldest due delivery has waited (0 when none) |
//! | `alertkit_job_runs_total` | counter | `job`, `status` (`succeeded`, `failed`, `retrying`) | finished job runs |
//! | `alertkit_job_run_seconds` | histogram | `job` | how long each run took |
//! | `alertkit_ws_connections` | gauge | | WebSocket connections being served |
//! | `alertkit_ws_frames_sent_total` | counter | | frames written to sockets |
//! | `alertkit_ws_slow_closes_total` | counter | | connections cut with 4008 (queue full) |
//! | `alertkit_ws_fanout_lag_seconds` | histogram | | a change's commit in the store → queued to its sockets |
//! | `alertkit_ws_publish_waits_total` | counter | | times the hub held a fan-out or a broadcast because most queues were filling (the server was behind) |
//! | `alertkit_ws_publish_wait_expired_total` | counter | | times such a hold ran out its bound and delivery went on (slow queues are then cut) |
//! | `alertkit_events_unpublished_total` | counter | `event` | events the bus refused (Redis down, its queue full); clients recover them from the store |
//! | `alertkit_bus_events_dropped_total` | counter | | events the Redis publisher had queued and dropped when a write failed |
//! | `alertkit_http_requests_total` | counter | `route` (the template), `method`, `status` | REST requests |
//! | `alertkit_http_request_seconds` | histogram | `route`, `method` | their latency |

/// See the [module docs](self).
pub const ALERTS_RAISED: &str = "alertkit_alerts_raised_total";
/// See the [module docs](self).
pub const STORE_QUERY_SECONDS: &str = "alertkit_store_query_seconds";
/// See the [module docs](self).
pub const DELIVERIES: &str = "alertkit_deliveries_total";
/// See the [module docs](self).
pub const OUTBOX_UNFINISHED: &str = "alertkit_outbox_unfinished";
/// See the [module docs](self).
pub const OUTBOX_OLDEST_DUE_SECONDS: &str = "alertkit_outbox_oldest_due_seconds";
/// See the [module docs](self).
pub const JOB_RUNS: &str = "alertkit_job_runs_total";
/// See the [module docs](self).
pub const JOB_RUN_SECONDS: &str = "alertkit_job_run_seconds";
/// See the [module docs](self).
pub const WS_CONNECTIONS: &str = "alertkit_ws_connections";
/// See the [module docs](self).
pub const WS_FRAMES_SENT: &str = "alertkit_ws_frames_sent_total";
/// See the [module docs](self).
pub const WS_SLOW_CLOSES: &str = "alertkit_ws_slow_closes_total";
/// See the [module docs](self).
pub const WS_FANOUT_LAG_SECONDS: &str = "alertkit_ws_fanout_lag_seconds";
/// See the [module docs](self).
pub const WS_PUBLISH_WAITS: &str = "alertkit_ws_publish_waits_total";
/// See the [module docs](self).
pub const WS_PUBLISH_WAIT_EXPIRED: &str = "alertkit_ws_publish_wait_expired_total";
/// See the [module docs](self).
pub const EVENTS_UNPUBLISHED: &str = "alertkit_events_unpublished_total";
/// See the [module docs](self).
pub const BUS_EVENTS_DROPPED: &str = "alertkit_bus_events_dropped_total";
/// See the [module docs](self).
pub const HTTP_REQUESTS: &str = "alertkit_http_requests_total";
/// See the [module docs](self).
pub const HTTP_REQUEST_SECONDS: &str = "alertkit_http_request_seconds";

/// Every histogram above, for recorders that need buckets set per metric.
pub const HISTOGRAMS: [&str; 4] = [
    STORE_QUERY_SECONDS,
    WS_FANOUT_LAG_SECONDS,
    HTTP_REQUEST_SECONDS,
    JOB_RUN_SECONDS,
];

/// Records how long a store call took under `op`.
pub fn store_query(op: &'static str, started: std::time::Instant) {
    metrics::histogram!(STORE_QUERY_SECONDS, "op" => op).record(started.elapsed().as_secs_f64());
}

/// Awaits a store call, recording how long it took under `op`.
pub async fn timed<T>(op: &'static str, call: impl std::future::Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let out = call.await;
    store_query(op, started);
    out
}
