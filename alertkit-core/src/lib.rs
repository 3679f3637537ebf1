//! The core of [alertkit](https://docs.rs/alertkit): the alert model, the
//! backend traits, the error type, the clock and the engine.
//!
//! This crate has no I/O of its own. Backends live in sibling crates
//! (`alertkit-storage`, `alertkit-transport`, `alertkit-notify`,
//! `alertkit-scheduler`), each implementing a trait defined here:
//!
//! | trait | what it does |
//! |---|---|
//! | [`AlertStore`] | durable alerts, per-user receipts, the change feed, retention |
//! | [`RuleStore`] | rules and subscriptions |
//! | [`Outbox`] | deliveries: claimed under a lease, completed, dead letters |
//! | [`JobStore`] | job runs and the once-per-tick claim |
//! | [`Store`] | all four store roles (blanket impl): what [`AlertKit`] takes |
//! | [`Broadcaster`] | events to every instance and live connection |
//! | [`Notifier`] | one delivery on one external channel |
//! | [`Scheduler`] | cron and interval jobs, once per tick across instances |
//!
//! [`AlertKit`] is the engine an application talks to: it validates input,
//! checks the acting [`Principal`]'s permissions, writes to the store and
//! publishes [`AlertEvent`]s. It is also the only door the transport layer
//! uses ([`AlertKit::change_feed`], [`AlertKit::replay`],
//! [`AlertKit::health`]); role-specific consumers get their role from it
//! ([`AlertKit::outbox`], [`AlertKit::job_store`]).
//!
//! ```
//! use alertkit_core::{Severity, NewAlert, Audience};
//!
//! let warning = NewAlert::new("capacity_warning", Severity::High, "VCH20 near capacity")
//!     .message("Forecast crosses 95% in 6 hours")
//!     .tags(["VCH20"])
//!     .audience(Audience::group("planners"))
//!     .dedup_key("capacity:VCH20");
//! assert!(warning.validate(chrono::Utc::now()).is_ok());
//! ```

pub mod alert;
pub mod audience;
pub mod broadcast;
pub mod clock;
pub mod delivery;
pub mod engine;
pub mod error;
pub mod evaluate;
pub mod event;
pub mod health;
pub mod hooks;
pub mod id;
pub mod notify;
pub mod principal;
pub mod query;
pub mod report;
pub mod route;
pub mod rule;
pub mod scheduler;
pub mod series;
pub mod store;
pub mod telemetry;
pub mod whole;

pub use alert::{Alert, AlertStatus, AlertView, NewAlert, Receipt, Resource};
pub use audience::{Audience, Target};
pub use broadcast::{Broadcaster, BusMessage, EventStream};
pub use clock::{Clock, ManualClock, SystemClock};
pub use delivery::{
    ClaimedDelivery, Delivery, DeliveryAttempt, DeliveryOutcome, DeliveryStatus, DeliveryTarget,
    DigestSlot,
};
pub use engine::{AlertKit, AlertKitBuilder, Change, Health};
pub use error::{Error, ErrorKind, Result};
pub use evaluate::{
    Comparison, DeadlineItem, DeadlineSource, Evaluation, MetricSource, RuleEvaluator, Sample,
    SlaConditions, ThresholdConditions,
};
pub use event::AlertEvent;
pub use health::{ComponentHealth, ComponentStatus, HealthCheck};
pub use hooks::{Authenticator, Directory};
pub use id::AlertId;
pub use notify::{DigestBatch, Notification, Notifier, Recipient, time_zone_names};
pub use principal::{Permission, Principal, Viewer};
pub use query::{AlertFilter, AlertQuery, Cursor, CursorPosition, Page, Stats};
pub use report::{
    AlertCount, DeliveryCount, Report, ReportFilter, ReportKind, ReportRequest, ReportStatus,
    ReportStore,
};
pub use route::{Destination, NewRoute, Route};
pub use rule::{AlertRule, Channel, Digest, MAX_RULE_SECS, NewRule, RuleKind, Subscription};
pub use scheduler::{
    Job, JobContext, JobInfo, JobRun, JobSpec, MisfirePolicy, Overlap, RunStatus, Schedule,
    Scheduler,
};
pub use series::{Point, Prediction, SeriesInfo, SeriesSettings, SeriesStore};
pub use severity::Severity;
pub use store::{AlertStore, Backlog, JobStore, Outbox, Raised, RuleStore, Store};

pub mod severity;

#[cfg(test)]
mod engine_tests;
