//! Soak tool: a long run of mixed load against a running reference server,
//! reporting every interval whether anything grows or slows down.
//!
//! ```sh
//! benches/soak.sh            # builds, starts the server, runs 30 minutes
//! cargo run --release --example soak --features "axum jwt" -- \
//!     --url http://127.0.0.1:8080 --secret "$ALERTKIT_JWT_SECRET" --server-pid 1234 --minutes 30
//! ```
//!
//! It keeps `--clients` WebSocket connections open (users `soak0…`, ten
//! groups), raises `--raise-rate` alerts a second through `POST
//! /api/alerts` (one user, a group or everyone; one in ten critical, which
//! the first 20 users get by email), and reads `--read-rate` times a second
//! (`GET /api/alerts`, `GET /api/alerts/unread/count`) as random users.
//! Each `--report-secs` it prints one JSON line: the server's RSS and open
//! files, p50/p99/max of raises, reads and raise → WebSocket receipt, the
//! errors of each kind, WebSocket reconnects, and the emails sent (from
//! `/metrics`). At the end, a Markdown table of the intervals and the
//! growth from the first interval to the last.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alertkit::Principal;
use alertkit::transport::JwtAuthenticator;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone)]
struct Args {
    url: String,
    secret: String,
    server_pid: Option<u32>,
    minutes: f64,
    clients: usize,
    raise_rate: f64,
    read_rate: f64,
    report_secs: u64,
}

fn args() -> Args {
    let mut a = Args {
        url: "http://127.0.0.1:8080".into(),
        secret: "soak-secret-soak-secret-soak-secret-0001".into(),
        server_pid: None,
        minutes: 30.0,
        clients: 2000,
        raise_rate: 50.0,
        read_rate: 50.0,
        report_secs: 60,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--url" => a.url = v,
            "--secret" => a.secret = v,
            "--server-pid" => a.server_pid = Some(v.parse().expect("--server-pid")),
            "--minutes" => a.minutes = v.parse().expect("--minutes"),
            "--clients" => a.clients = v.parse().expect("--clients"),
            "--raise-rate" => a.raise_rate = v.parse().expect("--raise-rate"),
            "--read-rate" => a.read_rate = v.parse().expect("--read-rate"),
            "--report-secs" => a.report_secs = v.parse().expect("--report-secs"),
            _ => panic!("unknown argument {k}"),
        }
    }
    a
}

const USERS: usize = 500;
const GROUPS: usize = 10;
const EMAILED: usize = 20;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn proc_status(pid: u32, key: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time a process has used (user + system), in clock ticks.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime 14 and stime 15.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// The machine's total and stolen CPU ticks (all CPUs), from `/proc/stat`.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    Some((v.iter().sum(), *v.get(7)?))
}

/// Percent of one CPU used between two readings `secs` apart (100 ticks a
/// second, the Linux default).
fn cpu_pct(before: Option<u64>, after: Option<u64>, secs: f64) -> Option<f64> {
    Some(((after? - before?) as f64 / secs).round())
}

fn open_files(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// Latencies (µs) and error counts of one interval.
#[derive(Default)]
struct Interval {
    raise_us: Vec<u64>,
    read_us: Vec<u64>,
    push_us: Vec<u64>,
    raise_errors: u64,
    read_errors: u64,
}

fn pct(v: &mut [u64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i] as f64 / 1000.0
}

struct Stats {
    now: Mutex<Interval>,
    reconnects: AtomicU64,
    raised: AtomicU64,
    received: AtomicU64,
}

fn token(auth: &JwtAuthenticator, user: usize) -> String {
    auth.issue(
        &Principal::user(format!("soak{user}")).with_groups([format!("sg{}", user % GROUPS)]),
        Duration::from_secs(24 * 3600),
    )
    .unwrap()
}

/// One WebSocket client for its whole life: reconnects (resuming from its
/// last cursor) when its socket ends.
async fn client(host: String, tok: String, stats: Arc<Stats>) {
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("ws://{host}/ws?token={tok}&cursor={c}"),
            None => format!("ws://{host}/ws?token={tok}"),
        };
        if let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url).await {
            while let Some(Ok(msg)) = ws.next().await {
                let Message::Text(text) = msg else { continue };
                // Only the fields needed, without parsing the whole frame:
                // the tool must keep up with thousands of frames a second
                // on one core, or it, not the server, is what is measured.
                let kind = field(&text, "type");
                if kind == Some("hello") && cursor.is_none() {
                    cursor = field(&text, "cursor").map(str::to_owned);
                }
                if kind == Some("alert") && field(&text, "event") == Some("created") {
                    cursor = field(&text, "cursor").map(str::to_owned);
                    if let Some(t) = number(&text, "t") {
                        let us = now_ns().saturating_sub(t) / 1000;
                        stats.now.lock().unwrap().push_us.push(us);
                    }
                    stats.received.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        stats.reconnects.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The quoted string after `"key":"` (the server writes compact JSON).
fn field<'a>(frame: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":\"");
    let start = frame.find(&pat)? + pat.len();
    let len = frame[start..].find('"')?;
    Some(&frame[start..start + len])
}

/// The whole number after `"key":`.
fn number(frame: &str, key: &str) -> Option<u64> {
    let pat = format!("\"{key}\":");
    let start = frame.find(&pat)? + pat.len();
    let digits: String = frame[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// `alertkit_deliveries_total` with `outcome="sent"`, summed, from `/metrics`.
async fn emails_sent(http: &reqwest::Client, base: &str) -> u64 {
    let Ok(r) = http.get(format!("{base}/metrics")).send().await else {
        return 0;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("alertkit_deliveries_total") && l.contains("outcome=\"sent\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(a));
}

async fn run(a: Args) {
    let base = a.url.trim_end_matches('/').to_owned();
    let host = base.trim_start_matches("http://").to_owned();
    let auth = JwtAuthenticator::hs256(a.secret.as_bytes()).unwrap();
    let admin = auth
        .issue(&Principal::admin("soak"), Duration::from_secs(24 * 3600))
        .unwrap();
    let http = reqwest::Client::new();
    let stats = Arc::new(Stats {
        now: Mutex::new(Interval::default()),
        reconnects: AtomicU64::new(0),
        raised: AtomicU64::new(0),
        received: AtomicU64::new(0),
    });

    // The first users get critical alerts by email.
    for u in 0..EMAILED {
        let tok = token(&auth, u);
        for (path, body) in [
            (
                "/api/me/contacts",
                json!({"email": format!("soak{u}@soak.test")}),
            ),
            (
                "/api/alerts/subscriptions",
                json!([{"alert_type": "soak", "channels": ["in_app", "email"], "min_severity": "critical"}]),
            ),
        ] {
            let r = http
                .put(format!("{base}{path}"))
                .bearer_auth(&tok)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
        }
    }
    for c in 0..a.clients {
        tokio::spawn(client(host.clone(), token(&auth, c % USERS), stats.clone()));
        if c % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Raises.
    {
        let (http, base, admin, stats, rate) = (
            http.clone(),
            base.clone(),
            admin.clone(),
            stats.clone(),
            a.raise_rate,
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                n += 1;
                let audience = match n % 20 {
                    0 => "everyone".to_owned(),
                    1..=6 => format!("group:sg{}", n % GROUPS as u64),
                    _ => format!("user:soak{}", (n * 7) % USERS as u64),
                };
                let body = json!({
                    "alert_type": "soak",
                    "severity": if n % 10 == 3 { "critical" } else { "high" },
                    "title": format!("soak {n}"),
                    "audience": [audience],
                    "metadata": {"t": now_ns()},
                });
                let (http, base, admin, stats) =
                    (http.clone(), base.clone(), admin.clone(), stats.clone());
                tokio::spawn(async move {
                    let t = Instant::now();
                    let r = http
                        .post(format!("{base}/api/alerts"))
                        .bearer_auth(&admin)
                        .json(&body)
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await;
                    let us = t.elapsed().as_micros() as u64;
                    let mut s = stats.now.lock().unwrap();
                    match r {
                        Ok(r) if r.status().as_u16() == 201 => {
                            s.raise_us.push(us);
                            stats.raised.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => s.raise_errors += 1,
                    }
                });
            }
        });
    }
    // Reads.
    {
        let (http, base, stats, rate) = (http.clone(), base.clone(), stats.clone(), a.read_rate);
        let tokens: Arc<Vec<String>> = Arc::new((0..USERS).map(|u| token(&auth, u)).collect());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            let mut n: usize = 0;
            loop {
                tick.tick().await;
                n += 1;
                let tok = tokens[(n * 13) % USERS].clone();
                let path = if n.is_multiple_of(2) {
                    "/api/alerts?limit=50"
                } else {
                    "/api/alerts/unread/count"
                };
                let (http, base, stats) = (http.clone(), base.clone(), stats.clone());
                tokio::spawn(async move {
                    let t = Instant::now();
                    let r = http
                        .get(format!("{base}{path}"))
                        .bearer_auth(&tok)
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await;
                    let ok = match r {
                        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                        _ => false,
                    };
                    let us = t.elapsed().as_micros() as u64;
                    let mut s = stats.now.lock().unwrap();
                    if ok {
                        s.read_us.push(us);
                    } else {
                        s.read_errors += 1;
                    }
                });
            }
        });
    }

    let start = Instant::now();
    let total = Duration::from_secs_f64(a.minutes * 60.0);
    let mut rows: Vec<Value> = Vec::new();
    let pid = a.server_pid.map(|p| p.to_string());
    let mut server_cpu = pid.as_deref().and_then(cpu_ticks);
    let mut tool_cpu = cpu_ticks("self");
    let mut machine = machine_ticks();
    while start.elapsed() < total {
        tokio::time::sleep(Duration::from_secs(a.report_secs)).await;
        let mut iv = std::mem::take(&mut *stats.now.lock().unwrap());
        let secs = a.report_secs as f64;
        let (s, t, m) = (
            pid.as_deref().and_then(cpu_ticks),
            cpu_ticks("self"),
            machine_ticks(),
        );
        let steal = match (machine, m) {
            (Some((t0, s0)), Some((t1, s1))) if t1 > t0 => {
                Some((100.0 * (s1 - s0) as f64 / (t1 - t0) as f64).round())
            }
            _ => None,
        };
        let (server_pct, tool_pct) = (cpu_pct(server_cpu, s, secs), cpu_pct(tool_cpu, t, secs));
        (server_cpu, tool_cpu, machine) = (s, t, m);
        let row = json!({
            "server_cpu_pct": server_pct,
            "tool_cpu_pct": tool_pct,
            "steal_pct": steal,
            "minute": (start.elapsed().as_secs_f64() / 60.0 * 10.0).round() / 10.0,
            "rss_mib": a.server_pid.and_then(|p| proc_status(p, "VmRSS:")).map(|k| k as f64 / 1024.0),
            "open_files": a.server_pid.and_then(open_files),
            "threads": a.server_pid.and_then(|p| proc_status(p, "Threads:")),
            "raises": iv.raise_us.len(),
            "raise_p50_ms": pct(&mut iv.raise_us, 0.5),
            "raise_p99_ms": pct(&mut iv.raise_us, 0.99),
            "reads": iv.read_us.len(),
            "read_p99_ms": pct(&mut iv.read_us, 0.99),
            "push_p50_ms": pct(&mut iv.push_us, 0.5),
            "push_p99_ms": pct(&mut iv.push_us, 0.99),
            "push_max_ms": pct(&mut iv.push_us, 1.0),
            "received": iv.push_us.len(),
            "raise_errors": iv.raise_errors,
            "read_errors": iv.read_errors,
            "reconnects": stats.reconnects.load(Ordering::Relaxed),
            "emails_sent": emails_sent(&http, &base).await,
        });
        println!("{row}");
        rows.push(row);
    }

    println!(
        "\n| minute | server / tool CPU % | steal % | RSS MiB | open files | raises | raise p99 ms | read p99 ms | push p50 / p99 ms | errors | reconnects | emails sent |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} / {} | {} | {:.1} | {} | {} | {:.1} | {:.1} | {:.1} / {:.1} | {} | {} | {} |",
            r["minute"],
            r["server_cpu_pct"],
            r["tool_cpu_pct"],
            r["steal_pct"],
            r["rss_mib"].as_f64().unwrap_or(0.0),
            r["open_files"],
            r["raises"],
            r["raise_p99_ms"].as_f64().unwrap_or(0.0),
            r["read_p99_ms"].as_f64().unwrap_or(0.0),
            r["push_p50_ms"].as_f64().unwrap_or(0.0),
            r["push_p99_ms"].as_f64().unwrap_or(0.0),
            r["raise_errors"].as_u64().unwrap_or(0) + r["read_errors"].as_u64().unwrap_or(0),
            r["reconnects"],
            r["emails_sent"],
        );
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        println!(
            "\nfrom the first interval to the last: RSS {:.1} → {:.1} MiB, open files {} → {}, \
             raise p99 {:.1} → {:.1} ms, push p99 {:.1} → {:.1} ms; {} raised, {} received over WebSocket",
            first["rss_mib"].as_f64().unwrap_or(0.0),
            last["rss_mib"].as_f64().unwrap_or(0.0),
            first["open_files"],
            last["open_files"],
            first["raise_p99_ms"].as_f64().unwrap_or(0.0),
            last["raise_p99_ms"].as_f64().unwrap_or(0.0),
            first["push_p99_ms"].as_f64().unwrap_or(0.0),
            last["push_p99_ms"].as_f64().unwrap_or(0.0),
            stats.raised.load(Ordering::Relaxed),
            stats.received.load(Ordering::Relaxed),
        );
    }
}
