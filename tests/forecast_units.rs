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
