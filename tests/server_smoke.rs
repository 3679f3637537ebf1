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

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use alertkit::Principal;
use alertkit::transport::JwtAuthenticator;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "smoke-test-secret-smoke-test-secret-0123";

/// `target/<profile>/examples/server`, next to this test's `deps/` directory.
fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let bin = profile_dir.join("examples").join("server");
    assert!(
        bin.exists(),
        "{} is missing: cargo test builds examples; run through cargo test",
        bin.display()
    );
    bin
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next(ws: &mut Ws) -> Message {
    match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        Ok(Some(Ok(m))) => m,
        other => panic!("expected a frame, got {other:?}"),
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_server_serves_rest_and_ws_and_shuts_down_with_1001() {
    let dir =
        std::env::temp_dir().join(format!("alertkit-smoke-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let db = format!("sqlite://{}?mode=rwc", dir.join("smoke.db").display());
    let mut server = Server(
        Command::new(server_binary())
            .env("ALERTKIT_ADDR", &addr)
            .env("DATABASE_URL", &db)
            .env("ALERTKIT_JWT_SECRET", SECRET)
            .env_remove("REDIS_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("http://{addr}/health")).send().await {
            assert_eq!(r.status().as_u16(), 200);
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the server did not answer /health within 10 s");
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

    // SIGTERM: the socket is closed with 1001 and the process exits 0.
    let status = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
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
        if let Some(s) = server.0.try_wait().unwrap() {
            exited = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exited = exited.expect("the server exits within 5 s of SIGTERM");
    assert!(exited.success(), "{exited:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
