//! Memory per idle authenticated WebSocket, measured from outside.
//!
//! The bench re-runs itself as a server process (the REST router and hub on
//! the in-memory store, one worker thread), then opens N clients over
//! loopback from this process, waits for each one's `hello`, lets both sides
//! settle, and reads the server's resident set (`VmRSS` in
//! `/proc/<pid>/status`) before and after: (after − before) / N.
//!
//! `cargo bench --bench idle` (N = 1k, 5k, 10k; `ALERTKIT_IDLE_N=…` for
//! others, comma-separated; `ALERTKIT_IDLE_READ_BUFFER=131072` for
//! tungstenite's own default read buffer instead of the hub's). Needs a descriptor limit above N
//! (`ulimit -n`). Linux only. Figures in benches/README.md.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use alertkit::storage::MemoryAlertStore;
use alertkit::transport::ws::hub::{WsConfig, WsHub};
use alertkit::transport::{JwtAuthenticator, LocalBroadcaster, http};
use alertkit::{AlertKit, Principal};
use futures::StreamExt;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const SECRET: &[u8] = b"idle-bench-secret-idle-bench-secret!";
const ROLE: &str = "ALERTKIT_IDLE_SERVER";

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The server side: prints its address, serves until killed.
fn serve() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let kit = AlertKit::builder()
            .store(Arc::new(MemoryAlertStore::new()))
            .broadcaster(Arc::new(LocalBroadcaster::new()))
            .build()
            .unwrap();
        let mut config = WsConfig::default();
        if let Some(n) = std::env::var("ALERTKIT_IDLE_READ_BUFFER")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            config.read_buffer = n;
        }
        let hub = WsHub::new(kit, config);
        let auth = Arc::new(JwtAuthenticator::hs256(SECRET).unwrap());
        let app = http::router_with_hub(
            hub,
            auth,
            http::HttpConfig {
                rate_limit_per_minute: 0,
                ..Default::default()
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap());
        axum::serve(listener, app).await.unwrap();
    });
}

fn main() {
    if std::env::var(ROLE).is_ok() {
        return serve();
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let ns: Vec<usize> = std::env::var("ALERTKIT_IDLE_N")
        .unwrap_or_else(|_| "1000,5000,10000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let auth = JwtAuthenticator::hs256(SECRET).unwrap();
    println!("idle WebSocket memory (server RSS growth per connection)");
    for n in ns {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(ROLE, "1")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let addr = line.trim().to_owned();
        let pid = child.id();
        let per_kib = rt.block_on(async {
            // A first connection warms the router, the hub and its pump.
            let token = auth
                .issue(&Principal::user("warm"), Duration::from_secs(3600))
                .unwrap();
            let config = WebSocketConfig::default().read_buffer_size(4096);
            let url = format!("ws://{addr}/ws?token={token}");
            let (mut warm, _) =
                tokio_tungstenite::connect_async_with_config(&url, Some(config), false)
                    .await
                    .unwrap();
            warm.next().await.unwrap().unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            let before = rss_kib(pid);
            let mut clients = Vec::with_capacity(n);
            for i in 0..n {
                let token = auth
                    .issue(&Principal::user(format!("u{i}")), Duration::from_secs(3600))
                    .unwrap();
                let url = format!("ws://{addr}/ws?token={token}");
                let (mut ws, _) =
                    tokio_tungstenite::connect_async_with_config(&url, Some(config), false)
                        .await
                        .unwrap();
                ws.next().await.unwrap().unwrap(); // hello
                clients.push(ws);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            let after = rss_kib(pid);
            drop(clients);
            (after.saturating_sub(before)) as f64 / n as f64
        });
        println!("  {n:>6} idle connections: {per_kib:6.2} KiB each");
        let _ = child.kill();
        let _ = child.wait();
    }
}
