//! `GET /metrics` of the real server binary: after a raise, a delivery, a
//! job run and a WebSocket connection, each named series has moved.
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
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use alertkit::transport::JwtAuthenticator;
use alertkit::{Permission, Principal};
use futures::StreamExt;
use serde_json::json;

const SECRET: &str = "metrics-test-secret-metrics-test-secret!";

/// The value of the first sample whose line starts with `series`
/// (`name{labels}`, or a bare name), or 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series || (name.starts_with(series) && !series.ends_with('}')))
                .then(|| value.parse().ok())
                .flatten()
        })
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_named_series_moves() {
    let (cmd, addr, dir) = common::command(SECRET);
    let server = common::start(cmd, addr, dir).await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let auth = JwtAuthenticator::hs256(SECRET.as_bytes()).unwrap();
    let token = |p: Principal| auth.issue(&p, Duration::from_secs(600)).unwrap();
    let admin = token(Principal::admin("root"));
    let alice = token(Principal::user("alice").with_permissions([Permission::AlertsRead]));
    let scrape = || async {
        let r = http.get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        r.text().await.unwrap()
    };

    // A WebSocket connection: the gauge and the frames (its hello).
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws?token={alice}", server.addr))
            .await
            .unwrap();
    let hello = ws.next().await.unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains("hello"));
    let m = scrape().await;
    assert_eq!(sample(&m, "alertkit_ws_connections"), 1.0, "{m}");
    assert!(sample(&m, "alertkit_ws_frames_sent_total") >= 1.0);

    // A raise with an email delivery (the log notifier, no SMTP set).
    let r = http
        .put(format!("{base}/api/me/contacts"))
        .bearer_auth(&alice)
        .json(&json!({"email": "alice@example.test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http
        .put(format!("{base}/api/alerts/subscriptions"))
        .bearer_auth(&alice)
        .json(
            &json!([{"alert_type": "disk_full", "channels": ["in_app", "email"],
                       "min_severity": "low"}]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http
        .post(format!("{base}/api/alerts"))
        .bearer_auth(&admin)
        .json(
            &json!({"alert_type": "disk_full", "severity": "high", "title": "disk",
                      "audience": ["user:alice"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    // Alice's socket gets it: a fan-out was measured.
    let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(frame.to_text().unwrap().contains("disk_full"));

    // A job run.
    let r = http
        .post(format!("{base}/api/scheduler/jobs/rules/run"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);

    // Deliveries and job runs finish in the background: wait for both.
    let deadline = Instant::now() + Duration::from_secs(20);
    let m = loop {
        let m = scrape().await;
        let sent = sample(
            &m,
            "alertkit_deliveries_total{channel=\"email\",outcome=\"sent\"}",
        );
        let ran = sample(
            &m,
            "alertkit_job_runs_total{job=\"rules\",status=\"succeeded\"}",
        );
        if sent >= 1.0 && ran >= 1.0 {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries or job runs did not move:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for series in [
        "alertkit_alerts_raised_total{type=\"disk_full\",severity=\"high\",deduplicated=\"false\"}",
        "alertkit_store_query_seconds_count{op=\"raise\"}",
        // The WebSocket's hello counts unread; the live pump reads changes.
        "alertkit_store_query_seconds_count{op=\"count\"}",
        "alertkit_store_query_seconds_count{op=\"changes_since\"}",
        "alertkit_job_run_seconds_count{job=\"rules\"}",
        "alertkit_ws_fanout_lag_seconds_count",
        "alertkit_http_requests_total{route=\"/api/alerts\",method=\"POST\",status=\"201\"}",
        "alertkit_http_requests_total{route=\"/api/scheduler/jobs/{id}/run\",method=\"POST\",status=\"202\"}",
        "alertkit_http_request_seconds_count{route=\"/api/alerts\",method=\"POST\"}",
    ] {
        assert!(sample(&m, series) >= 1.0, "{series} did not move:\n{m}");
    }
    // The backlog gauges are read when the dispatcher starts (then every
    // 15 s): present from the start.
    for gauge in [
        "alertkit_outbox_unfinished ",
        "alertkit_outbox_oldest_due_seconds ",
    ] {
        assert!(m.contains(gauge), "{gauge} missing:\n{m}");
    }
    assert!(
        m.contains("alertkit_http_request_seconds_bucket{route=\"/api/alerts\",method=\"POST\",le=\"0.005\"}"),
        "histograms have buckets, not summaries"
    );
    // Raw ids never become labels: the route template does.
    let r = http
        .get(format!(
            "{base}/api/alerts/0190a000-0000-7000-8000-000000000000"
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let m = scrape().await;
    assert!(
        sample(
            &m,
            "alertkit_http_requests_total{route=\"/api/alerts/{id}\",method=\"GET\",status=\"404\"}"
        ) >= 1.0,
        "{m}"
    );
    assert!(!m.contains("0190a000"));

    // Closing the socket brings the gauge back down.
    ws.close(None).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while sample(&scrape().await, "alertkit_ws_connections") != 0.0 {
        assert!(
            Instant::now() < deadline,
            "the connection gauge did not drop"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
