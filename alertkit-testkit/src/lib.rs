//! The alertkit conformance suite.
//!
//! One `pub async fn` per behaviour of each store role and of
//! [`Broadcaster`](alertkit_core::Broadcaster), in one module per role:
//!
//! | module | role | macro |
//! |---|---|---|
//! | [`alerts`] | [`AlertStore`](alertkit_core::AlertStore) | [`alert_store_conformance!`] |
//! | [`rules`] | [`RuleStore`](alertkit_core::RuleStore) | [`rule_store_conformance!`] |
//! | [`outbox`] | [`Outbox`](alertkit_core::Outbox) (with `AlertStore`, which enqueues) | [`outbox_conformance!`] |
//! | [`jobs`] | [`JobStore`](alertkit_core::JobStore) | [`job_store_conformance!`] |
//! | [`broadcast`] | [`Broadcaster`](alertkit_core::Broadcaster) | [`broadcaster_conformance!`] |
//!
//! [`store_conformance!`] runs the four store roles at once. Each case
//! takes the backend by reference, panics with a description when the
//! backend misbehaves, and assumes a fresh, empty backend (isolate each
//! test: its own schema, database or key prefix). A custom backend runs the
//! macros of the roles it implements.
//!
//! A backend's test file runs them with one macro line per role, which
//! expands to one named `#[tokio::test]` per case (the test crate needs
//! `tokio` with the `macros` and `rt-multi-thread` features):
//!
//! ```
//! use std::sync::Arc;
//! use alertkit_core::{Broadcaster, Store};
//! use alertkit_testkit::services::service_url;
//!
//! async fn store() -> Option<Arc<dyn Store>> {
//!     let url = service_url("DATABASE_URL")?; // fails the run if required and unset
//!     todo!("connect to {url}, create an isolated schema, return the store")
//! }
//! async fn bus() -> Option<Arc<dyn Broadcaster>> {
//!     todo!("a broadcaster on its own channel prefix")
//! }
//!
//! alertkit_testkit::store_conformance!(store());
//! alertkit_testkit::broadcaster_conformance!(bus());
//! # fn main() {}
//! ```
//!
//! The setup expression is evaluated once per test and must yield an
//! `Option` of something that dereferences to the backend (`Arc<S>`,
//! `Box<S>`, `Arc<dyn Store>`, a guard that drops a test schema).
//! `None` means the service is absent and not required: the test returns
//! after [`services::service_url`] has said so loudly (and with
//! `ALERTKIT_REQUIRE_SERVICES=1` it panics instead, so CI never skips).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod alerts;
pub mod broadcast;
pub mod counting;
pub mod fixtures;
pub mod jobs;
pub mod outbox;
pub mod reports;
pub mod rules;
pub mod scenarios;
pub mod series;
pub mod services;

/// Expands to one `#[tokio::test]` per [`alerts`] case, each calling the
/// case with a fresh store from `$setup` (an expression evaluating to a
/// future, e.g. `setup()`).
#[macro_export]
macro_rules! alert_store_conformance {
    ($setup:expr) => {
        $crate::__cases!(alerts, $setup;
            insert_get_round_trip,
            get_missing_is_not_found,
            get_invisible_is_not_found,
            list_is_newest_first,
            filter_since,
            filter_until,
            filter_severity_set,
            filter_min_severity,
            filter_alert_type,
            filter_tag,
            filter_status,
            filter_unread_only,
            dismissed_hidden_unless_included,
            filters_combined,
            pages_cover_the_set_exactly_once,
            pages_stable_under_concurrent_inserts,
            limit_bounds,
            malformed_cursor_is_invalid,
            stats_and_unread_for_two_users_with_broadcast,
            stats_respect_filter,
            mark_read_isolated_between_users,
            mark_read_is_idempotent,
            dismiss_isolated_between_users,
            receipts_on_invisible_alert_are_not_found,
            mark_all_read_with_filter,
            dedup_merges_active_alert,
            dedup_escalates_never_lowers,
            dedup_concurrent_raises_make_one_alert,
            dedup_revives_expired_active_alert,
            dedup_keys_are_independent,
            dedup_is_scoped_to_creator_and_audience,
            dedup_merge_never_shortens_expiry,
            resolve_then_dedup_creates_new_alert,
            resolve_is_idempotent,
            resolve_missing_is_not_found,
            delete_removes_alert_and_receipts,
            expired_alerts_are_invisible,
            purge_expired_and_past_retention,
            purge_in_bounded_batches,
            visibility_user_group_everyone_admin,
            hostile_strings_round_trip,
            page_counts_saturate_at_the_cap,
            changes_follow_raise_merge_resolve,
            receipts_of_one_alert,
            receipts_many_batches_alerts,
            changes_reader_misses_nothing_under_concurrent_writers,
            changes_for_a_viewer_filter_visibility_with_receipts,
        );
    };
}

/// Expands to one `#[tokio::test]` per [`rules`] case.
#[macro_export]
macro_rules! rule_store_conformance {
    ($setup:expr) => {
        $crate::__cases!(rules, $setup;
            rules_crud,
            subscriptions_replace_and_match,
            contacts_set_replace_and_read,
            routes_put_list_replace_delete,
        );
    };
}

/// Expands to one `#[tokio::test]` per [`outbox`] case. The backend must
/// implement [`AlertStore`](alertkit_core::AlertStore) too: deliveries are
/// enqueued by its raise transaction.
#[macro_export]
macro_rules! outbox_conformance {
    ($setup:expr) => {
        $crate::__cases!(outbox, $setup;
            outbox_enqueued_with_new_alert,
            outbox_only_escalation_notifies_again,
            outbox_claims_lease_and_expire,
            outbox_outcomes,
            outbox_concurrent_claims_never_overlap,
            outbox_follows_alert_deletion,
            outbox_lists_by_status,
            outbox_dead_letters_replay,
            outbox_records_every_attempt,
            outbox_digest_items_wait_and_gather,
            insert_many_matches_single_raises,
            outbox_backlog_counts_unfinished_and_oldest_due,
        );
    };
}

/// Expands to one `#[tokio::test]` per [`jobs`] case.
#[macro_export]
macro_rules! job_store_conformance {
    ($setup:expr) => {
        $crate::__cases!(jobs, $setup;
            job_run_claimed_once_per_tick,
            job_runs_update_and_list,
            job_runs_taken_over_when_the_lease_lapses,
            job_pause_is_stored,
            job_runs_claimed_in_batches,
        );
    };
}

/// Expands to one `#[tokio::test]` per [`series`] case. `$setup` yields
/// a [`SeriesStore`](alertkit_core::SeriesStore) (or `None` when its service
/// is absent and not required).
#[macro_export]
macro_rules! series_store_conformance {
    ($setup:expr) => {
        $crate::__cases!(series, $setup;
            series_points_upsert_and_range,
            series_settings_are_kept,
            series_predictions_replace_by_instant,
            series_purge_in_batches,
            series_large_and_concurrent_writes,
        );
    };
}

/// Expands to one `#[tokio::test]` per [`reports`] case (the
/// [`ReportStore`](alertkit_core::ReportStore) role; the aggregate cases
/// also raise alerts and claim deliveries, so the store must play those
/// roles too).
#[macro_export]
macro_rules! report_store_conformance {
    ($setup:expr) => {
        $crate::__cases!(reports, $setup;
            report_records_round_trip,
            reports_claimed_once_under_lease,
            report_updates_are_fenced,
            reports_purged_when_finished,
            alert_counts_group_by_hour_type_severity_tag,
            delivery_counts_by_channel_and_status,
        );
    };
}

/// All four store roles: [`alert_store_conformance!`],
/// [`rule_store_conformance!`], [`outbox_conformance!`] and
/// [`job_store_conformance!`].
#[macro_export]
macro_rules! store_conformance {
    ($setup:expr) => {
        $crate::alert_store_conformance!($setup);
        $crate::rule_store_conformance!($setup);
        $crate::outbox_conformance!($setup);
        $crate::job_store_conformance!($setup);
    };
}

/// Expands to one `#[tokio::test]` per [`broadcast`] case, each calling the
/// case with a fresh broadcaster from `$setup`.
#[macro_export]
macro_rules! broadcaster_conformance {
    ($setup:expr) => {
        $crate::__cases!(broadcast, $setup;
            subscriber_receives_events_in_order,
            every_subscriber_receives_every_event,
            events_before_subscribing_are_not_delivered,
            lagging_subscriber_is_told,
            dropped_subscriber_does_not_block_publishing,
            every_event_kind_round_trips,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __cases {
    ($module:ident, $setup:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                // `None`: the service is absent and not required (already reported).
                let Some(backend) = $setup.await else { return };
                $crate::$module::$case(&*backend).await;
            }
        )*
    };
}
