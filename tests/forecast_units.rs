//! The reference server's forecast modules, compiled here so their unit
//! tests (the model's accuracy against seasonal naive, resampling, the
//! capacity crossing and severity, timestamp parsing) run with
//! `cargo test`. (An example with `test = true` is built as a test harness
//! only, so the process tests would lose the server binary.)
#![cfg(all(
    unix,
    feature = "sqlite",
    feature = "postgres",
    feature = "redis",
    feature = "axum",
    feature = "jwt",
    feature = "email",
    feature = "slack",
    feature = "webhook",
    feature = "scheduler"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

#[path = "../examples/server/forecast/job.rs"]
mod job;
#[path = "../examples/server/forecast/model.rs"]
mod model;
#[cfg(feature = "parquet")]
#[path = "../examples/server/forecast/parquet.rs"]
mod parquet;
#[path = "../examples/server/forecast/upload.rs"]
mod upload;

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

    /// Any timestamp cell parses or is refused with a short message that
    /// quotes at most 40 characters of it (escaped); never a panic.
    #[test]
    fn any_timestamp_cell_parses_or_is_refused_briefly(
        s in proptest::prelude::prop_oneof![
            ".{0,80}",
            "-?[0-9]{0,25}(\\.[0-9]{0,10})?(e-?[0-9]{1,4})?",
            "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?(Z|[+-][0-9]{2}:[0-9]{2})",
        ],
    ) {
        match upload::parse_time(&s) {
            Ok(t) => proptest::prop_assert!(t.timestamp() >= -62_135_596_800),
            Err(msg) => proptest::prop_assert!(msg.chars().count() < 500, "{msg}"),
        }
    }
}
