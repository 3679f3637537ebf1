//! Smoke test of the reference server: the `examples/server` binary that
//! `cargo test` builds is started as a real process on SQLite, used over
//! HTTP and WebSocket, and stopped with SIGTERM (WebSockets close with 1001,
//! the process exits cleanly).
#![cfg(all(
    unix,
    feature = "sqlite",
    feature = "postgres",
    feature = "redis",
    feature = "axum",
    feature = "jwt"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::Duration;

use alertkit::Principal;
use alertkit::transport::JwtAuthenticator;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "smoke-test-secret-smoke-test-secret-0123";

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next(ws: &mut Ws) -> Message {
    match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        Ok(Some(Ok(m))) => m,
        other => panic!("expected a frame, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_server_serves_rest_and_ws_and_shuts_down_with_1001() {
    let (cmd, addr, dir) = common::command(SECRET);
    let mut server = common::start(cmd, addr.clone(), dir).await;
    let http = reqwest::Client::new();
    // A person opening the printed address gets a page saying where to go.
    let landing = http.get(format!("http://{addr}/")).send().await.unwrap();
    assert_eq!(landing.status().as_u16(), 200);
    assert!(landing.text().await.unwrap().contains("/docs"));

    let auth = JwtAuthenticator::hs256(SECRET.as_bytes()).unwrap();
    let admin = auth
        .issue(&Principal::admin("admin"), Duration::from_secs(600))
        .unwrap();
    let demo = auth
        .issue(
            &Principal::user("demo").with_groups(["planners"]),
            Duration::from_secs(600),
        )
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token={demo}"))
        .await
        .unwrap();
    let hello: Value = match next(&mut ws).await {
        Message::Text(t) => serde_json::from_str(t.as_str()).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (hello["type"].as_str(), hello["user_id"].as_str()),
        (Some("hello"), Some("demo"))
    );

    let r = http
        .post(format!("http://{addr}/api/alerts"))
        .bearer_auth(&admin)
        .json(&json!({
            "alert_type": "capacity_warning", "severity": "high",
            "title": "VCH20 near capacity", "audience": ["group:planners"]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let frame: Value = match next(&mut ws).await {
        Message::Text(t) => serde_json::from_str(t.as_str()).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(frame["alert"]["title"], "VCH20 near capacity");
    let list: Value = http
        .get(format!("http://{addr}/api/alerts"))
        .bearer_auth(&demo)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 1);

    // The scheduler: the built-in retention job, protected, in the API and its document.
    let jobs: Value = http
        .get(format!("http://{addr}/api/scheduler/jobs"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "forecast",
            "report_retention",
            "reports",
            "retention",
            "rules",
            "series_retention",
            "sla_watch"
        ],
        "by id"
    );
    assert_eq!(jobs[3]["protected"], true, "retention");
    assert_eq!(jobs[0]["protected"], false, "forecast");
    let r = http
        .post(format!("http://{addr}/api/scheduler/jobs/retention/pause"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "protected");
    let r = http
        .get(format!("http://{addr}/api/scheduler/jobs"))
        .bearer_auth(&demo)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        403,
        "a plain user cannot read the scheduler"
    );
    let run: Value = http
        .post(format!("http://{addr}/api/scheduler/jobs/retention/run"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(run["job_id"], "retention");
    let doc: Value = http
        .get(format!("http://{addr}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/api/scheduler/jobs",
        "/api/scheduler/jobs/{id}/run",
        "/api/alerts",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} in /openapi.json");
    }

    // SIGTERM: the socket is closed with 1001 and the process exits 0.
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    loop {
        match next(&mut ws).await {
            Message::Close(Some(f)) => {
                assert_eq!(u16::from(f.code), 1001);
                break;
            }
            Message::Ping(_) | Message::Pong(_) | Message::Text(_) => continue,
            other => panic!("expected close 1001, got {other:?}"),
        }
    }
    drop(ws);
    let mut exited = None;
    for _ in 0..100 {
        if let Some(s) = server.child.try_wait().unwrap() {
            exited = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exited = exited.expect("the server exits within 5 s of SIGTERM");
    assert!(exited.success(), "{exited:?}");
}
