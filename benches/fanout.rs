//! Fan-out of the WebSocket hub: deliveries per second.
//!
//! - `hub/N`: one alert for everyone fanned out in-process to N attached
//!   connections (N = 1k, 10k, 100k), each queue then drained — the hub's
//!   own cost (one encoding, N shared-byte handoffs).
//! - `ws_loopback/1000`: 1,000 real WebSocket clients on loopback; each
//!   iteration fans out 10 alerts and waits until every client has read all
//!   10 (10,000 deliveries through the server's writers, the kernel and the
//!   clients' readers, all on this machine).
//!
//! `cargo bench --bench fanout`; figures in benches/README.md.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alertkit::storage::MemoryAlertStore;
use alertkit::transport::ws::hub::{Attached, WsConfig, WsHub};
use alertkit::transport::{JwtAuthenticator, LocalBroadcaster, http};
use alertkit::{Alert, AlertId, AlertKit, Audience, NewAlert, Principal, Severity};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;

fn kit() -> AlertKit {
    AlertKit::builder()
        .store(Arc::new(MemoryAlertStore::new()))
        .broadcaster(Arc::new(LocalBroadcaster::new()))
        .build()
        .unwrap()
}

fn alert(seq: u64) -> Alert {
    let mut a = NewAlert::new("capacity_warning", Severity::High, "VCH20 near capacity")
        .message("Forecast p90 exceeds 95% of capacity within 6 h")
        .tags(["VCH20"])
        .audience(Audience::everyone())
        .into_alert(AlertId::new(), chrono::Utc::now(), Audience::everyone)
        .unwrap();
    a.seq = seq;
    a
}

fn config() -> WsConfig {
    WsConfig {
        poll_every: Duration::from_secs(3600),
        ..WsConfig::default()
    }
}

fn in_process(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("hub");
    group.sample_size(20);
    for n in [1_000usize, 10_000, 100_000] {
        let hub = WsHub::new(kit(), config());
        let subs: Vec<Attached> = rt.block_on(async {
            let mut v = Vec::with_capacity(n);
            for i in 0..n {
                v.push(hub.attach(Principal::user(format!("u{i}"))).await);
            }
            v
        });
        let none = HashMap::new();
        let mut seq = 1_000_000;
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                seq += 1;
                let queued = hub.fan_out(&alert(seq), &none);
                assert_eq!(queued, n);
                for s in &subs {
                    assert!(s.try_next().is_some());
                }
            })
        });
    }
    group.finish();
}

fn loopback(c: &mut Criterion) {
    const CLIENTS: usize = 1_000;
    const PER_ITER: u64 = 10;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let hub = WsHub::new(kit(), config());
    let auth =
        Arc::new(JwtAuthenticator::hs256(b"fanout-bench-secret-fanout-bench-secret").unwrap());
    let received = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = http::router_with_hub(hub.clone(), auth.clone(), Default::default());
        tokio::spawn(async move { axum::serve(listener, app).await });
        for i in 0..CLIENTS {
            let token = auth
                .issue(&Principal::user(format!("u{i}")), Duration::from_secs(3600))
                .unwrap();
            let (mut ws, _) =
                tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token={token}"))
                    .await
                    .unwrap();
            ws.next().await.unwrap().unwrap(); // hello
            let received = received.clone();
            tokio::spawn(async move {
                while let Some(Ok(m)) = ws.next().await {
                    if m.is_text() {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let mut seq = 1_000_000;
    let mut group = c.benchmark_group("ws_loopback");
    group.sample_size(20);
    group.throughput(Throughput::Elements(CLIENTS as u64 * PER_ITER));
    group.bench_function(BenchmarkId::from_parameter(CLIENTS), |b| {
        b.iter_custom(|iters| {
            let none = HashMap::new();
            let start = Instant::now();
            for _ in 0..iters {
                let target = received.load(Ordering::Relaxed) + CLIENTS as u64 * PER_ITER;
                for _ in 0..PER_ITER {
                    seq += 1;
                    assert_eq!(hub.fan_out(&alert(seq), &none), CLIENTS, "a client was cut");
                }
                rt.block_on(async {
                    while received.load(Ordering::Relaxed) < target {
                        tokio::task::yield_now().await;
                    }
                });
            }
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, in_process, loopback);
criterion_main!(benches);
