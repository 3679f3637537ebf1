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

/// CSV-shaped text: a header or not, rows of cells that are numbers, times,
/// names, empty, quoted, or anything.
fn csv_text() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let cell = prop_oneof![
        "-?[0-9]{0,12}(\\.[0-9]{0,6})?",
        "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]Z",
        "[a-z0-9._-]{0,20}",
        "\"[^\"]{0,10}\"",
        ".{0,12}",
        Just(String::new()),
    ];
    let row = prop::collection::vec(cell, 0..5).prop_map(|c| c.join(","));
    let header = prop_oneof![
        Just("timestamp,series,value".to_owned()),
        Just("series,timestamp,value,extra".to_owned()),
        "[a-z,]{0,30}",
    ];
    (header, prop::collection::vec(row, 0..30), prop::bool::ANY).prop_map(|(h, rows, crlf)| {
        let nl = if crlf { "\r\n" } else { "\n" };
        std::iter::once(h).chain(rows).collect::<Vec<_>>().join(nl)
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// Any upload body is stored whole or refused with row errors that
    /// name lines of the file (at most 100 of them); never a panic, and a
    /// refused upload stores nothing.
    #[test]
    fn any_csv_upload_is_stored_whole_or_refused_by_line(
        text in proptest::prelude::prop_oneof![csv_text(), ".{0,300}"],
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let store = alertkit::storage::MemoryAlertStore::new();
            let lines = text.lines().count().max(1) as u64;
            let got = upload::upload(
                axum::body::Body::from(text.clone()),
                upload::Format::Csv,
                1 << 20,
                &store,
            )
            .await;
            let stored: u64 = {
                use alertkit::SeriesStore as _;
                let mut n = 0;
                for s in store.series().await.unwrap() {
                    let (from, to) = (chrono::DateTime::<chrono::Utc>::MIN_UTC, chrono::DateTime::<chrono::Utc>::MAX_UTC);
                    n += store.points(&s.name, from, to, u32::MAX).await.unwrap().len() as u64;
                }
                n
            };
            match got {
                Ok(summary) => {
                    // Rows at the same (series, instant) replace each other.
                    proptest::prop_assert!(summary.rows > 0);
                    proptest::prop_assert!(stored > 0 && stored <= summary.rows, "{stored} of {} stored: {text:?}", summary.rows);
                }
                Err(upload::Refused::Rows { errors, bad_rows, .. }) => {
                    proptest::prop_assert_eq!(stored, 0);
                    proptest::prop_assert!(!errors.is_empty() && errors.len() <= upload::MAX_ERRORS);
                    proptest::prop_assert!(errors.len() as u64 <= bad_rows.max(1));
                    for e in &errors {
                        proptest::prop_assert!(e.line <= lines + 1, "line {} of {lines}: {:?}", e.line, text);
                        proptest::prop_assert!(e.message.chars().count() < 500);
                    }
                }
                Err(other) => proptest::prop_assert!(false, "{other:?} for {text:?}"),
            }
            Ok(())
        })?;
    }
}
