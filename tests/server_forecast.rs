//! The reference server's forecast pipeline, end to end through the real
//! binary: upload actuals as CSV, set capacities, run the forecast job
//! through the scheduler API, and find exactly the expected
//! `capacity_warning` alerts; a second run adds none, and lower actuals
//! resolve them. Also: uploads with bad rows, wrong types, empty or
//! oversized bodies, permissions, and the history route.
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

use std::fmt::Write;
use std::time::{Duration, Instant};

use alertkit::transport::JwtAuthenticator;
use alertkit::{Permission, Principal};
use serde_json::{Value, json};

const SECRET: &str = "forecast-test-secret-forecast-test-secret";

/// 14 days at 5 minutes ending now: `grow` climbs a daily cycle towards
/// its capacity of 100 (its forecast crosses 90 within the day), `flat`
/// stays near 40. `level` shifts `grow`.
fn dataset(grow_level: f64) -> String {
    let now = chrono::Utc::now().timestamp() / 300 * 300;
    let start = now - 14 * 86_400;
    let mut csv = String::from("timestamp,series,value\n");
    let mut i = 0u64;
    for t in (start..=now).step_by(300) {
        let day = (t - start) as f64 / 86_400.0;
        let cycle = (2.0 * std::f64::consts::PI * (t % 86_400) as f64 / 86_400.0).sin();
        // Deterministic jitter instead of noise.
        i += 1;
        let jitter = ((i * 7919) % 100) as f64 / 100.0 - 0.5;
        let grow = grow_level + 15.0 * cycle + 1.5 * day + jitter;
        let flat = 40.0 + 10.0 * cycle + jitter;
        writeln!(csv, "{t},grow,{grow:.2}").unwrap();
        writeln!(csv, "{t},flat,{flat:.2}").unwrap();
    }
    csv
}

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn upload(&self, token: &str, ctype: &str, body: String) -> (u16, Value) {
        self.send(
            self.http
                .post(format!("{}/api/forecast/upload", self.base))
                .bearer_auth(token)
                .header("content-type", ctype)
                .body(body),
        )
        .await
    }

    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        self.send(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(token),
        )
        .await
    }

    /// Triggers the forecast job and waits for its run to end.
    async fn run_forecast(&self, admin: &str) -> Value {
        let (status, run) = self
            .send(
                self.http
                    .post(format!("{}/api/scheduler/jobs/forecast/run", self.base))
                    .bearer_auth(admin),
            )
            .await;
        assert_eq!(status, 202, "{run}");
        let id = run["id"].as_str().unwrap().to_owned();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, runs) = self.get(admin, "/api/scheduler/jobs/forecast/runs").await;
            let this = runs
                .as_array()
                .and_then(|r| r.iter().find(|r| r["id"] == id.as_str()).cloned());
            if let Some(r) = this
                && (r["status"] == "succeeded" || r["status"] == "failed")
            {
                return r;
            }
            assert!(Instant::now() < deadline, "the forecast run did not end");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn warnings(&self, token: &str) -> Vec<Value> {
        let (status, page) = self
            .get(token, "/api/alerts?alert_type=capacity_warning&limit=50")
            .await;
        assert_eq!(status, 200, "{page}");
        page["alerts"].as_array().cloned().unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_forecast_warn_once_then_resolve() {
    let (cmd, addr, dir) = common::command(SECRET);
    let server = common::start(cmd, addr, dir).await;
    let c = Client {
        base: format!("http://{}", server.addr),
        http: reqwest::Client::new(),
    };
    let auth = JwtAuthenticator::hs256(SECRET.as_bytes()).unwrap();
    let token = |p: Principal| auth.issue(&p, Duration::from_secs(600)).unwrap();
    let admin = token(Principal::admin("root"));
    let planner = token(
        Principal::user("pat")
            .with_groups(["planners"])
            .with_permissions([Permission::AlertsRead, Permission::ForecastRead]),
    );
    let outsider = token(Principal::user("olga").with_groups(["support"]));

    // Permissions: reading needs forecast.read, uploading forecast.manage.
    assert_eq!(c.get(&outsider, "/api/forecast/series").await.0, 403);
    // (A small body: the 403 comes before the body is read, and a client
    // still sending a large one may see the connection close instead.)
    let small = "timestamp,series,value\n1795514400,grow,1\n".to_owned();
    assert_eq!(c.upload(&planner, "text/csv", small).await.0, 403);
    let (status, body) = c
        .send(c.http.get(format!("{}/api/forecast/series", c.base)))
        .await;
    assert_eq!(status, 401, "{body}");

    let (status, summary) = c.upload(&admin, "text/csv", dataset(60.0)).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["series"]["grow"], 4033);
    assert_eq!(summary["rows"], 8066);
    for name in ["grow", "flat"] {
        let (status, info) = c
            .send(
                c.http
                    .put(format!("{}/api/forecast/series/{name}", c.base))
                    .bearer_auth(&admin)
                    .json(&json!({"capacity": 100.0, "unit": "%"})),
            )
            .await;
        assert_eq!(status, 200, "{info}");
    }

    let run = c.run_forecast(&admin).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let warnings = c.warnings(&planner).await;
    assert_eq!(
        warnings.len(),
        1,
        "one warning, for grow only: {warnings:?}"
    );
    let w = &warnings[0];
    assert_eq!(w["tags"], json!(["grow"]));
    assert_eq!(w["status"], "active");
    assert!(["high", "critical"].contains(&w["severity"].as_str().unwrap()));
    assert!(c.warnings(&outsider).await.is_empty(), "planners only");

    let (_, series) = c.get(&planner, "/api/forecast/series").await;
    let grow = series["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "grow")
        .unwrap()
        .clone();
    assert_eq!(grow["last_forecast"]["status"], "forecast", "{grow}");
    assert_eq!(grow["last_forecast"]["predictions"], 288);
    assert!(grow["last_forecast"]["crosses_at"].is_string());

    let (status, h) = c
        .get(&planner, "/api/forecast/history?series=grow&range=6h")
        .await;
    assert_eq!(status, 200, "{h}");
    assert_eq!(
        h["actual"].as_array().unwrap().len(),
        73,
        "6 h of 5-minute points"
    );
    assert_eq!(
        h["predicted"].as_array().unwrap().len(),
        288,
        "the next 24 h"
    );
    let p0 = &h["predicted"][0];
    assert!(p0["lower"].as_f64().unwrap() <= p0["value"].as_f64().unwrap());
    assert!(p0["value"].as_f64().unwrap() <= p0["upper"].as_f64().unwrap());
    assert_eq!(
        c.get(&planner, "/api/forecast/history?series=grow&range=2y")
            .await
            .0,
        400
    );
    assert_eq!(
        c.get(&planner, "/api/forecast/history?series=nope").await.0,
        404
    );

    // A second run: still one alert, not a second one.
    let run = c.run_forecast(&admin).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let again = c.warnings(&planner).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0]["id"], w["id"]);
    assert_eq!(again[0]["status"], "active");

    // Lower actuals: the forecast no longer crosses, the warning resolves.
    let (status, _) = c.upload(&admin, "text/csv", dataset(20.0)).await;
    assert_eq!(status, 200);
    let run = c.run_forecast(&admin).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let after = c.warnings(&planner).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["id"], w["id"]);
    assert_eq!(after[0]["status"], "resolved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_are_refused_and_change_nothing() {
    let (mut cmd, addr, dir) = common::command(SECRET);
    cmd.env("ALERTKIT_UPLOAD_MAX_MB", "1");
    let server = common::start(cmd, addr, dir).await;
    let c = Client {
        base: format!("http://{}", server.addr),
        http: reqwest::Client::new(),
    };
    let auth = JwtAuthenticator::hs256(SECRET.as_bytes()).unwrap();
    let admin = auth
        .issue(&Principal::admin("root"), Duration::from_secs(600))
        .unwrap();

    let bad = "timestamp,series,value\n\
               2026-11-24T10:00:00Z,cpu,1\n\
               yesterday,cpu,2\n\
               1795514400,cpu,abc\n\
               1795514400,,3\n\
               1795514400,a/../b,3\n\
               1795514400,cpu,NaN\n"
        .to_owned();
    let (status, body) = c.upload(&admin, "text/csv", bad).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid");
    assert_eq!(body["rows"], 6);
    assert_eq!(body["bad_rows"], 5);
    let lines: Vec<u64> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 4, 5, 6, 7], "by line number: {body}");

    // More than 100 bad rows: the first 100 are listed.
    let mut many = String::from("timestamp,series,value\n");
    for _ in 0..250 {
        many.push_str("nope,cpu,1\n");
    }
    let (status, body) = c.upload(&admin, "text/csv", many).await;
    assert_eq!(status, 422);
    assert_eq!(body["bad_rows"], 250);
    assert_eq!(body["errors"].as_array().unwrap().len(), 100);

    let (status, body) = c.upload(&admin, "text/csv", String::new()).await;
    assert_eq!(status, 422, "empty: {body}");
    let (status, body) = c
        .upload(&admin, "text/csv", "timestamp,series,value\n".into())
        .await;
    assert_eq!(status, 422, "header only: {body}");
    let (status, body) = c
        .upload(&admin, "text/csv", "when,what\n1,2\n".into())
        .await;
    assert_eq!(status, 422, "bad header: {body}");
    assert_eq!(body["errors"][0]["line"], 1);
    let (status, body) = c.upload(&admin, "application/json", "{}".into()).await;
    assert_eq!(status, 415, "{body}");
    assert_eq!(body["error"]["code"], "unsupported_media_type");
    let big = "timestamp,series,value\n".to_owned() + &"1795514400,cpu,1\n".repeat(70_000);
    let (status, body) = c.upload(&admin, "text/csv", big).await;
    assert_eq!(status, 413, "over ALERTKIT_UPLOAD_MAX_MB=1: {body}");

    let (_, series) = c.get(&admin, "/api/forecast/series").await;
    assert_eq!(series["series"], json!([]), "nothing was stored");
    let (status, body) = c
        .send(
            c.http
                .put(format!("{}/api/forecast/series/a%20b", c.base))
                .bearer_auth(&admin)
                .json(&json!({"capacity": 100.0})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = c
        .send(
            c.http
                .put(format!("{}/api/forecast/series/cpu", c.base))
                .bearer_auth(&admin)
                .json(&json!({"capacity": -1.0})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_flag_shows_a_capacity_warning_within_a_minute() {
    let (mut cmd, addr, dir) = common::command(SECRET);
    cmd.arg("--demo");
    let started = Instant::now();
    let server = common::start(cmd, addr, dir).await;
    let c = Client {
        base: format!("http://{}", server.addr),
        http: reqwest::Client::new(),
    };
    let auth = JwtAuthenticator::hs256(SECRET.as_bytes()).unwrap();
    let planner = auth
        .issue(
            &Principal::user("demo")
                .with_groups(["planners"])
                .with_permissions([Permission::ForecastRead]),
            Duration::from_secs(600),
        )
        .unwrap();
    loop {
        let warnings = c.warnings(&planner).await;
        if let Some(w) = warnings.first() {
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert_eq!(w["tags"], json!(["vch20"]));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no capacity warning within a minute"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_, series) = c.get(&planner, "/api/forecast/series").await;
    let names: Vec<&str> = series["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api.requests", "vch20", "vch21"]);

    // Threshold rules read the series' newest points (vch20 ends at 75.84,
    // vch21 at 45.44, api.requests at 1275.5 in the demo data).
    let admin = auth
        .issue(&Principal::admin("root"), Duration::from_secs(600))
        .unwrap();
    let (status, rule) = c
        .send(
            c.http
                .post(format!("{}/api/alerts/rules", c.base))
                .bearer_auth(&admin)
                .json(&json!({
                    "name": "hot series", "kind": "threshold", "enabled": true,
                    "conditions": {"metric": "series", "op": ">", "value": 70, "audience": ["group:planners"]},
                    "template": {"alert_type": "series_high", "severity": "medium",
                                 "title": "{series} is at {value}", "audience": ["group:planners"]},
                })),
        )
        .await;
    assert_eq!(status, 201, "{rule}");
    let (status, _) = c
        .send(
            c.http
                .post(format!("{}/api/scheduler/jobs/rules/run", c.base))
                .bearer_auth(&admin),
        )
        .await;
    assert_eq!(status, 202);
    let deadline = Instant::now() + Duration::from_secs(20);
    let titles = loop {
        let (_, page) = c.get(&planner, "/api/alerts?alert_type=series_high").await;
        let mut titles: Vec<String> = page["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["title"].as_str().unwrap().to_owned())
            .collect();
        if titles.len() >= 2 || Instant::now() > deadline {
            titles.sort();
            break titles;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(titles, ["api.requests is at 1275.5", "vch20 is at 75.84"]);
}

/// A Parquet file of `rows` (timestamp ms, series, value), or with the
/// `value` column left out.
#[cfg(feature = "parquet")]
fn parquet_file(rows: &[(i64, Option<&str>, Option<f64>)], with_value: bool) -> Vec<u8> {
    use std::sync::Arc;

    use arrow_array::{
        ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray,
    };
    let mut cols: Vec<(&str, ArrayRef)> = vec![
        (
            "timestamp",
            Arc::new(
                TimestampMillisecondArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            ),
        ),
        (
            "series",
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
        ),
    ];
    if with_value {
        cols.push((
            "value",
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
        ));
    }
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    out
}

#[cfg(feature = "parquet")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_uploads_are_read_and_checked_by_row() {
    let (cmd, addr, dir) = common::command(SECRET);
    let server = common::start(cmd, addr, dir).await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let admin = JwtAuthenticator::hs256(SECRET.as_bytes())
        .unwrap()
        .issue(&Principal::admin("root"), Duration::from_secs(600))
        .unwrap();
    let post = |body: Vec<u8>| {
        http.post(format!("{base}/api/forecast/upload"))
            .bearer_auth(&admin)
            .header("content-type", "application/vnd.apache.parquet")
            .body(body)
            .send()
    };
    let t = 1_795_514_400_000;
    let good = parquet_file(
        &[
            (t, Some("cpu"), Some(1.5)),
            (t + 60_000, Some("cpu"), Some(2.5)),
            (t, Some("mem"), Some(70.0)),
        ],
        true,
    );
    let r = post(good).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["rows"], 3, "{body}");
    assert_eq!(body["series"], json!({"cpu": 2, "mem": 1}));
    assert_eq!(body["from"], "2026-11-24T10:00:00Z");

    let bad = parquet_file(
        &[
            (t, Some("cpu"), Some(1.0)),
            (t, None, Some(2.0)),
            (t, Some("cpu"), None),
            (t, Some("a b"), Some(f64::NAN)),
        ],
        true,
    );
    let r = post(bad).await.unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let body: Value = r.json().await.unwrap();
    let rows: Vec<u64> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, [2, 3, 4], "by data row: {body}");

    let r = post(parquet_file(&[(t, Some("cpu"), Some(1.0))], false))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("value is missing"),
        "{body}"
    );

    let r = post(b"not parquet at all".to_vec()).await.unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Parquet"),
        "{body}"
    );

    // Only the good file was stored.
    let r = http
        .get(format!("{base}/api/forecast/series"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let series: Value = r.json().await.unwrap();
    assert_eq!(series["series"].as_array().unwrap().len(), 2, "{series}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forecast_frames_reach_forecast_readers_over_the_websocket() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    let (cmd, addr, dir) = common::command(SECRET);
    let server = common::start(cmd, addr, dir).await;
    let c = Client {
        base: format!("http://{}", server.addr),
        http: reqwest::Client::new(),
    };
    let auth = JwtAuthenticator::hs256(SECRET.as_bytes()).unwrap();
    let token = |p: Principal| auth.issue(&p, Duration::from_secs(600)).unwrap();
    let admin = token(Principal::admin("root"));
    let reader = token(Principal::user("pat").with_permissions([Permission::ForecastRead]));
    let other = token(Principal::user("olga"));
    let connect = |t: String| {
        let url = format!("ws://{}/ws/live?token={t}", server.addr);
        async move { tokio_tungstenite::connect_async(url).await.unwrap().0 }
    };
    let (mut pat, mut olga) = (connect(reader).await, connect(other).await);
    /// The next `forecast` frame within `secs`, skipping others.
    async fn next_forecast<S>(ws: &mut S, secs: u64) -> Option<Value>
    where
        S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let msg = tokio::time::timeout_at(deadline, ws.next())
                .await
                .ok()??
                .ok()?;
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(t.as_str()).ok()?;
                if v["type"] == "forecast" {
                    return Some(v);
                }
            }
        }
    }
    let (status, _) = c.upload(&admin, "text/csv", dataset(60.0)).await;
    assert_eq!(status, 200);
    let f = next_forecast(&mut pat, 10).await.expect("an actuals frame");
    assert_eq!(f["data"]["kind"], "actuals");
    assert_eq!(f["data"]["series"]["grow"], 4033);
    c.run_forecast(&admin).await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let f = next_forecast(&mut pat, 30)
            .await
            .expect("a predictions frame");
        assert_eq!(f["data"]["kind"], "predictions");
        assert_eq!(f["data"]["points"].as_array().unwrap().len(), 288);
        seen.push(f["data"]["series"].as_str().unwrap().to_owned());
    }
    seen.sort();
    assert_eq!(seen, ["flat", "grow"]);
    assert!(
        next_forecast(&mut olga, 1).await.is_none(),
        "no forecast frames without forecast.read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_retention_deletes_old_points_only() {
    let (mut cmd, addr, dir) = common::command(SECRET);
    cmd.env("ALERTKIT_SERIES_RETENTION_DAYS", "30");
    let server = common::start(cmd, addr, dir).await;
    let c = Client {
        base: format!("http://{}", server.addr),
        http: reqwest::Client::new(),
    };
    let admin = JwtAuthenticator::hs256(SECRET.as_bytes())
        .unwrap()
        .issue(&Principal::admin("root"), Duration::from_secs(600))
        .unwrap();
    let now = chrono::Utc::now().timestamp() / 60 * 60;
    let mut csv = String::from("timestamp,series,value\n");
    for i in 0..100 {
        writeln!(csv, "{},old,1", now - 200 * 86_400 + i * 60).unwrap();
        writeln!(csv, "{},new,2", now - i * 60).unwrap();
    }
    assert_eq!(c.upload(&admin, "text/csv", csv).await.0, 200);
    let count = |h: Value| h["actual"].as_array().map_or(0, Vec::len);
    assert_eq!(
        count(
            c.get(&admin, "/api/forecast/history?series=old&range=7d")
                .await
                .1
        ),
        100
    );
    let (status, run) = c
        .send(
            c.http
                .post(format!(
                    "{}/api/scheduler/jobs/series_retention/run",
                    c.base
                ))
                .bearer_auth(&admin),
        )
        .await;
    assert_eq!(status, 202, "{run}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(
        c.get(&admin, "/api/forecast/history?series=old&range=7d")
            .await
            .1,
    ) > 0
    {
        assert!(Instant::now() < deadline, "old points still there");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        count(
            c.get(&admin, "/api/forecast/history?series=new&range=7d")
                .await
                .1
        ),
        100
    );
}
