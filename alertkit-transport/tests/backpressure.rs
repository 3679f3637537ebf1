//! Backpressure: a burst of publishes slows the publisher instead of
//! cutting clients that read; a client that does not read is still cut
//! with 4008 (the policy in `alertkit_transport::ws::queue`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use alertkit_core::{AlertKit, Principal};
use alertkit_storage::MemoryAlertStore;
use alertkit_transport::ws::hub::{WsConfig, WsHub};
use alertkit_transport::{JwtAuthenticator, LocalBroadcaster, http};
use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const SECRET: &[u8] = b"backpressure-test-secret-backpressure!";
const CLIENTS: usize = 1_000;
const BURST: usize = 5_000;
const PUBLISHERS: usize = 8;

/// The `n` of a `broadcast` frame (`data.n`), found without a JSON parse:
/// a thousand clients read five million frames here.
fn burst_n(text: &str) -> Option<usize> {
    if !text.starts_with("{\"type\":\"broadcast\"") && !text.contains("\"type\":\"broadcast\"") {
        return None;
    }
    let at = text.find("\"n\":")? + 4;
    let digits: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// How the burst is published.
#[derive(Clone, Copy, Debug)]
enum Publish {
    /// `POST /api/ws/push/broadcast`, 8 requests at a time.
    Rest,
    /// `WsHub::publish_room` then `AlertKit::broadcast`, in-process, as
    /// fast as they return: far faster than a thousand sockets can be
    /// written, so the hub must hold back.
    InProcess,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_burst_of_5000_broadcasts_cuts_no_reading_client_of_1000_and_loses_none() {
    burst(Publish::Rest, WsConfig::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_burst_of_5000_broadcasts_is_held_back_not_cut() {
    burst(Publish::InProcess, WsConfig::default()).await;
}

async fn burst(publish: Publish, config: WsConfig) {
    let kit = AlertKit::builder()
        .store(Arc::new(MemoryAlertStore::new()))
        .broadcaster(Arc::new(LocalBroadcaster::new()))
        .build()
        .unwrap();
    let auth = Arc::new(JwtAuthenticator::hs256(SECRET).unwrap());
    let hub = WsHub::new(kit.clone(), config);
    let http_config = http::HttpConfig {
        rate_limit_per_minute: 0,
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = http::router_with_hub(hub.clone(), auth.clone(), http_config);
    // Send buffers of a real network's size: on loopback the kernel would
    // otherwise hold megabytes for the client that does not read.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = socket2::SockRef::from(&*tcp).set_send_buffer_size(64 * 1024);
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let token = |user: String| {
        auth.issue(&Principal::user(user), Duration::from_secs(600))
            .unwrap()
    };

    // The client that never reads, with a small receive window so the
    // kernel does not absorb the burst for it.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (mut stuck, _) = tokio_tungstenite::client_async(
        format!("ws://{addr}/ws?token={}", token("stuck".into())),
        stream,
    )
    .await
    .unwrap();
    assert!(matches!(stuck.next().await, Some(Ok(Message::Text(_)))));

    // A thousand clients that read everything, each in its own task.
    let mut readers = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!(
            "ws://{addr}/ws?token={}",
            token(format!("u{i}"))
        ))
        .await
        .unwrap();
        readers.push(tokio::spawn(async move {
            let mut seen = vec![false; BURST];
            let mut got = 0;
            while got < BURST {
                match tokio::time::timeout(Duration::from_secs(60), ws.next()).await {
                    Ok(Some(Ok(Message::Text(t)))) => {
                        if let Some(n) = burst_n(t.as_str()) {
                            assert!(n < BURST && !seen[n], "client {i}: {n} twice");
                            seen[n] = true;
                            got += 1;
                        }
                    }
                    Ok(Some(Ok(Message::Close(f)))) => {
                        panic!("client {i} was closed after {got}: {f:?}")
                    }
                    Ok(Some(Ok(_))) => {}
                    other => panic!("client {i} stalled after {got}: {other:?}"),
                }
            }
            ws
        }));
    }

    // The burst: 5,000 broadcasts through the REST API, 8 at a time.
    let admin = auth
        .issue(&Principal::admin("root"), Duration::from_secs(600))
        .unwrap();
    let client = reqwest::Client::new();
    let pad = "x".repeat(150);
    let started = std::time::Instant::now();
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let (client, admin, pad) = (client.clone(), admin.clone(), pad.clone());
            let (kit, hub) = (kit.clone(), hub.clone());
            tokio::spawn(async move {
                for n in (p..BURST).step_by(PUBLISHERS) {
                    let message = format!("burst {n}");
                    let data = serde_json::json!({"n": n, "pad": pad});
                    match publish {
                        Publish::Rest => {
                            let res = client
                                .post(format!("http://{addr}/api/ws/push/broadcast"))
                                .bearer_auth(&admin)
                                .json(&serde_json::json!({"message": message, "data": data}))
                                .send()
                                .await
                                .unwrap();
                            assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
                        }
                        Publish::InProcess => {
                            hub.publish_room().await;
                            kit.broadcast(&Principal::system(), &message, None, data)
                                .await
                                .unwrap()
                        }
                    }
                }
            })
        })
        .collect();
    for p in publishers {
        p.await.unwrap();
    }
    let published_in = started.elapsed();

    // Every reading client got all 5,000, each once, and is still open.
    let mut open = Vec::with_capacity(CLIENTS);
    for r in readers {
        open.push(r.await.unwrap());
    }
    let delivered_in = started.elapsed();
    eprintln!(
        "{publish:?}: {BURST} broadcasts published in {published_in:?}, all {} deliveries in {delivered_in:?}",
        BURST * CLIENTS
    );
    let stats = hub.stats();
    assert_eq!(
        stats["connections"],
        serde_json::json!(CLIENTS),
        "no reading client was cut (the stuck one was): {stats}"
    );

    // The client that never read was cut with 4008 before the burst ended.
    let mut stuck_got = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), stuck.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                if burst_n(t.as_str()).is_some() {
                    stuck_got += 1;
                }
            }
            Ok(Some(Ok(Message::Close(Some(f))))) => {
                assert_eq!(f.code, CloseCode::Library(4008));
                break;
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("expected close 4008, got {other:?} after {stuck_got}"),
        }
    }
    assert!(stuck_got < BURST, "the stuck client was never cut");
    drop(open);
}
