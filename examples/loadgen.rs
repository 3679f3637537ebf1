//! Load tool: N WebSocket clients on loopback, publishes through the
//! server's own API, per-message latency, deliveries/s, lost and duplicated
//! messages, and the server's RSS per idle connection.
//!
//! ```sh
//! cargo run --release --example loadgen --features "axum jwt" -- \
//!     --target alertkit --url http://127.0.0.1:8080 --clients 1000 --messages 2000
//! ```
//!
//! Targets:
//! - `alertkit`: `GET /ws?token=…` (tokens minted with `--secret`, the
//!   server's `ALERTKIT_JWT_SECRET`), publishing with `POST
//!   /api/ws/push/broadcast` (`--publish broadcast`) or durable alerts for
//!   everyone with `POST /api/alerts` (`--publish alerts`);
//! - `peer`: any server that accepts `GET /ws` and broadcasts the body of
//!   `POST /broadcast` to every socket as is (`benches/peers/`).
//!
//! Each message carries `lg_seq` (its number) and `lg_t` (when it was sent,
//! in nanoseconds since the Unix epoch); each client checks every number
//! arrives once. Clients bind to `--sources` loopback addresses
//! (127.0.0.1, 127.0.0.2, …) so that more than one address's ports are
//! used. `--server-pid` makes it read the server's `VmRSS` after the first
//! `--warmup` clients (default 100) and after the rest connect: RSS per
//! idle connection is the marginal cost, without the server's one-time
//! costs of its first connections. `--rate` is messages per second (0: as fast as
//! `--publishers` concurrent requests go). Prints one JSON line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alertkit::Principal;
use alertkit::transport::JwtAuthenticator;
use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone)]
struct Args {
    target: String,
    url: String,
    clients: usize,
    messages: usize,
    rate: f64,
    publishers: usize,
    warmup: usize,
    sources: u8,
    secret: String,
    publish: String,
    server_pid: Option<u32>,
    pad: usize,
}

fn args() -> Args {
    let mut a = Args {
        target: "alertkit".into(),
        url: "http://127.0.0.1:8080".into(),
        clients: 1000,
        messages: 2000,
        rate: 0.0,
        publishers: 4,
        warmup: 100,
        sources: 8,
        secret: "loadgen-secret-loadgen-secret-loadgen!".into(),
        publish: "broadcast".into(),
        server_pid: None,
        pad: 100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--target" => a.target = v,
            "--url" => a.url = v,
            "--clients" => a.clients = v.parse().expect("--clients"),
            "--messages" => a.messages = v.parse().expect("--messages"),
            "--rate" => a.rate = v.parse().expect("--rate"),
            "--publishers" => a.publishers = v.parse().expect("--publishers"),
            "--warmup" => a.warmup = v.parse().expect("--warmup"),
            "--sources" => a.sources = v.parse().expect("--sources"),
            "--secret" => a.secret = v,
            "--publish" => a.publish = v,
            "--server-pid" => a.server_pid = Some(v.parse().expect("--server-pid")),
            "--pad" => a.pad = v.parse().expect("--pad"),
            other => panic!("unknown argument {other} (see the file's docs)"),
        }
    }
    a
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The number after `"key":` in `text`.
fn field(text: &str, key: &str) -> Option<u64> {
    let at = text.find(key)? + key.len();
    let digits: String = text[at..]
        .trim_start_matches([':', ' '])
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// What one client saw.
struct Seen {
    got: Vec<bool>,
    dups: u64,
    latencies_us: Vec<u32>,
    closed: bool,
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(a));
}

async fn run(a: Args) {
    let host = a
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let addr: SocketAddr = tokio::net::lookup_host(&host)
        .await
        .unwrap()
        .next()
        .unwrap();
    let auth = JwtAuthenticator::hs256(a.secret.as_bytes()).unwrap();
    // The first `--warmup` clients pay the server's one-time costs (its
    // first allocations per worker, tables growing from empty); RSS per
    // idle connection is measured over the rest: the marginal cost.
    let warmup = a.warmup.min(a.clients / 2);
    let mut rss_before = None;

    // Connect every client, each from one of the source addresses.
    let received = Arc::new(AtomicU64::new(0));
    let last_rx = Arc::new(AtomicU64::new(0));
    let mut sockets = Vec::with_capacity(a.clients);
    for i in 0..a.clients {
        if i == warmup {
            tokio::time::sleep(Duration::from_millis(500)).await;
            rss_before = a.server_pid.and_then(rss_kib);
        }
        let src = Ipv4Addr::new(127, 0, 0, 1 + (i % a.sources.max(1) as usize) as u8);
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(SocketAddr::new(src.into(), 0)).unwrap();
        let stream = sock.connect(addr).await.unwrap();
        let url = match a.target.as_str() {
            "alertkit" => {
                let token = auth
                    .issue(
                        &Principal::user(format!("lg{i}")),
                        Duration::from_secs(7200),
                    )
                    .unwrap();
                format!("ws://{host}/ws?token={token}")
            }
            _ => format!("ws://{host}/ws"),
        };
        let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
        if a.target == "alertkit" {
            // `hello` first.
            let _ = ws.next().await;
        }
        sockets.push(ws);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = a.server_pid.and_then(rss_kib);
    let per_conn_kib = match (rss_before, rss_after) {
        (Some(b), Some(f)) => Some(f.saturating_sub(b) as f64 / (a.clients - warmup) as f64),
        _ => None,
    };

    let readers: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| {
            let (received, last_rx, m) = (received.clone(), last_rx.clone(), a.messages);
            tokio::spawn(async move {
                let mut seen = Seen {
                    got: vec![false; m],
                    dups: 0,
                    latencies_us: Vec::with_capacity(m),
                    closed: false,
                };
                let mut count = 0;
                while count < m {
                    match tokio::time::timeout(Duration::from_secs(15), ws.next()).await {
                        Ok(Some(Ok(Message::Text(t)))) => {
                            let now = now_ns();
                            let (Some(n), Some(sent)) =
                                (field(&t, "\"lg_seq\""), field(&t, "\"lg_t\""))
                            else {
                                continue;
                            };
                            let n = n as usize;
                            if n >= m {
                                continue;
                            }
                            if seen.got[n] {
                                seen.dups += 1;
                                continue;
                            }
                            seen.got[n] = true;
                            count += 1;
                            let us = now.saturating_sub(sent) / 1000;
                            seen.latencies_us.push(us.min(u32::MAX as u64) as u32);
                            received.fetch_add(1, Ordering::Relaxed);
                            last_rx.fetch_max(now, Ordering::Relaxed);
                        }
                        Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                            seen.closed = true;
                            break;
                        }
                        Ok(Some(Ok(_))) => {}
                        Err(_) => break,
                    }
                }
                seen
            })
        })
        .collect();

    // Publish.
    let admin = auth
        .issue(&Principal::admin("loadgen"), Duration::from_secs(7200))
        .unwrap();
    // The publishers get a thread of their own, so the readers' backlog
    // does not delay the publishing (both stay on the tool's core).
    let started_ns = now_ns();
    let started = Instant::now();
    let publisher = {
        let (a, admin) = (a.clone(), admin.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let http = reqwest::Client::new();
                let pad = "x".repeat(a.pad);
                let next = Arc::new(AtomicU64::new(0));
                let publishers: Vec<_> = (0..a.publishers.max(1))
                    .map(|_| {
                        let (http, admin, pad, next, a) = (
                            http.clone(),
                            admin.clone(),
                            pad.clone(),
                            next.clone(),
                            a.clone(),
                        );
                        tokio::spawn(async move {
                            loop {
                                let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                                if n >= a.messages {
                                    return;
                                }
                                if a.rate > 0.0 {
                                    let due = started + Duration::from_secs_f64(n as f64 / a.rate);
                                    tokio::time::sleep_until(due.into()).await;
                                }
                                let data =
                                    serde_json::json!({"lg_seq": n, "lg_t": now_ns(), "pad": pad});
                                let req = match (a.target.as_str(), a.publish.as_str()) {
                                    ("alertkit", "alerts") => http
                                        .post(format!("{}/api/alerts", a.url))
                                        .bearer_auth(&admin)
                                        .json(&serde_json::json!({
                                            "alert_type": "loadgen", "severity": "low",
                                            "title": format!("load {n}"),
                                            "audience": ["everyone"],
                                            "metadata": data,
                                        })),
                                    ("alertkit", _) => http
                                        .post(format!("{}/api/ws/push/broadcast", a.url))
                                        .bearer_auth(&admin)
                                        .json(
                                            &serde_json::json!({"message": "load", "data": data}),
                                        ),
                                    _ => http.post(format!("{}/broadcast", a.url)).json(&data),
                                };
                                let res = req.send().await.unwrap();
                                assert!(
                                    res.status().is_success(),
                                    "publish {n}: {} {}",
                                    res.status(),
                                    res.text().await.unwrap_or_default()
                                );
                            }
                        })
                    })
                    .collect();
                for p in publishers {
                    p.await.unwrap();
                }
            })
        })
    };
    let published_s = tokio::task::spawn_blocking(move || {
        publisher.join().unwrap();
        started.elapsed().as_secs_f64()
    })
    .await
    .unwrap();

    let mut lat: Vec<u32> = Vec::new();
    let (mut lost, mut dups, mut closed) = (0u64, 0u64, 0u64);
    for r in readers {
        let s = r.await.unwrap();
        lost += s.got.iter().filter(|g| !**g).count() as u64;
        dups += s.dups;
        closed += u64::from(s.closed);
        lat.extend(s.latencies_us);
    }
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let delivered = received.load(Ordering::Relaxed);
    let span_s = (last_rx.load(Ordering::Relaxed).saturating_sub(started_ns)) as f64 / 1e9;
    let out = serde_json::json!({
        "target": a.target,
        "publish": a.publish,
        "clients": a.clients,
        "messages": a.messages,
        "published_s": published_s,
        "delivered": delivered,
        "deliveries_per_s": if span_s > 0.0 { delivered as f64 / span_s } else { 0.0 },
        "lost": lost,
        "duplicated": dups,
        "closed": closed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": lat.last().copied().unwrap_or(0) as f64 / 1000.0,
        "idle_rss_kib_per_conn": per_conn_kib,
    });
    println!("{out}");
}
