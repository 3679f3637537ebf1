//! A crash in the middle of a burst, at the process level: the reference
//! server binary is SIGKILLed while 16 clients raise alerts through REST
//! (a burst of up to 10,000), started again on the same database, killed
//! again mid-burst, and started a third time.
//!
//! - Every alert acknowledged with 201 is in the store; the alerts stored
//!   beyond those are at most the requests in flight at the kill, and each
//!   is whole (its user sees it, its email goes out).
//! - Every email subscribed for a stored alert (each alert has one)
//!   reaches the SMTP sink: each
//!   delivery's `Message-ID` once per delivery. A message being sent at the
//!   kill may be sent again after the restart (at-least-once sending with
//!   a stable `Message-ID`, see `docs/guarantees.md`); at most the
//!   dispatcher's 32 in flight can be.
//! - WebSocket clients connected before the first crash resume on the last
//!   server from their last cursor and, with what they had, hold every
//!   alert visible to them exactly once.
//!
//! Run on SQLite and on PostgreSQL, one after the other.
#![cfg(all(
    unix,
    feature = "sqlite",
    feature = "postgres",
    feature = "redis",
    feature = "axum",
    feature = "jwt",
    feature = "email",
    feature = "slack",
    feature = "webhook"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alertkit::Principal;
use alertkit::transport::JwtAuthenticator;
use alertkit_testkit::services::service_url;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "crash-test-secret-crash-test-secret-0001";
/// Raises attempted at most.
const BURST: usize = 10_000;
/// Concurrent raising clients.
const CLIENTS: usize = 16;
/// Acknowledged raises before each kill.
const KILL_AFTER: usize = 3_000;
/// Kills in one run.
const KILLS: usize = 2;
/// Users the alerts are spread over, each subscribed to them by email.
const USERS: usize = 100;
/// Users watching over WebSocket through the crash.
const WATCHERS: usize = 4;
/// The dispatcher's sends in flight at most (its default concurrency).
const IN_FLIGHT_SENDS: usize = 32;

/// One test at a time: each runs a server flat out on this 2-core machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn token(p: Principal) -> String {
    JwtAuthenticator::hs256(SECRET.as_bytes())
        .unwrap()
        .issue(&p, Duration::from_secs(1800))
        .unwrap()
}

fn user(k: usize) -> String {
    format!("u{k}")
}

/// Which user alert `n` is for, and whether it is critical (else high).
fn plan(n: usize) -> (usize, bool) {
    (n % USERS, n.is_multiple_of(5))
}

fn title(n: usize) -> String {
    format!("cr-{n:06}")
}

/// A WebSocket watcher's alerts (title → times received) and last cursor.
#[derive(Default)]
struct Seen {
    titles: BTreeMap<String, usize>,
    cursor: Option<String>,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: &str, who: &str, cursor: Option<&str>) -> Ws {
    let tok = token(Principal::user(who));
    let url = match cursor {
        Some(c) => format!("ws://{addr}/ws?token={tok}&cursor={c}"),
        None => format!("ws://{addr}/ws?token={tok}"),
    };
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// Reads `alert created` frames into `seen` until the socket ends or
/// `until` says enough.
async fn watch(ws: &mut Ws, seen: &tokio::sync::Mutex<Seen>, until: impl Fn(&Seen) -> bool) {
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(text) = msg else { continue };
        let f: Value = serde_json::from_str(&text).unwrap();
        let mut s = seen.lock().await;
        if f["type"] == "hello" && s.cursor.is_none() {
            s.cursor = f["cursor"].as_str().map(str::to_owned);
        }
        if f["type"] == "alert" && f["event"] == "created" {
            let t = f["alert"]["title"].as_str().unwrap().to_owned();
            *s.titles.entry(t).or_default() += 1;
            s.cursor = f["cursor"].as_str().map(str::to_owned);
        }
        if until(&s) {
            return;
        }
    }
}

/// Every `crash` alert in the store: title → (id, user, critical).
async fn stored(http: &reqwest::Client, addr: &str) -> BTreeMap<String, (String, String, bool)> {
    let admin = token(Principal::admin("root"));
    let mut out = BTreeMap::new();
    for a in common::list_alerts(http, addr, &admin, "crash").await {
        let t = a["title"].as_str().unwrap().to_owned();
        let to = a["audience"][0]
            .as_str()
            .unwrap()
            .trim_start_matches("user:");
        let critical = a["severity"] == "critical";
        let prev = out.insert(
            t,
            (
                a["id"].as_str().unwrap().to_owned(),
                to.to_owned(),
                critical,
            ),
        );
        assert!(prev.is_none(), "an alert listed twice");
    }
    out
}

/// Raises from 16 clients (each until its first failed request) until
/// `kill_at` are acknowledged in all, then SIGKILLs the server at a moment
/// of its own, not right after an acknowledgement.
async fn burst_then_kill(
    http: &reqwest::Client,
    server: &mut common::Server,
    next: &Arc<AtomicUsize>,
    acked: &Arc<std::sync::Mutex<BTreeMap<String, String>>>,
    kill_at: usize,
) {
    let admin = token(Principal::admin("root"));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (http, admin, next, acked, addr) = (
            http.clone(),
            admin.clone(),
            next.clone(),
            acked.clone(),
            server.addr.clone(),
        );
        clients.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= BURST {
                    return;
                }
                let (k, critical) = plan(n);
                let r = http
                    .post(format!("http://{addr}/api/alerts"))
                    .bearer_auth(&admin)
                    .json(&json!({"alert_type": "crash",
                                  "severity": if critical { "critical" } else { "high" },
                                  "title": title(n), "audience": [format!("user:{}", user(k))]}))
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                let Ok(r) = r else { return };
                if r.status().as_u16() != 201 {
                    return;
                }
                let Ok(body) = r.json::<Value>().await else {
                    return;
                };
                let id = body["id"].as_str().unwrap().to_owned();
                acked.lock().unwrap().insert(title(n), id);
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.lock().unwrap().len() < kill_at {
        assert!(Instant::now() < deadline, "the burst stalled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let jitter = (uuid::Uuid::new_v4().as_u128() % 40) as u64;
    tokio::time::sleep(Duration::from_millis(jitter)).await;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    for c in clients {
        c.await.unwrap();
    }
}

async fn crash_mid_burst(database_url: &str) {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(smtp) = service_url("SMTP_URL") else {
        return;
    };
    let maildir = std::env::var("ALERTKIT_MAILDIR").expect("scripts/test sets ALERTKIT_MAILDIR");
    let run = uuid::Uuid::now_v7().simple().to_string();
    let env = |cmd: &mut std::process::Command| {
        cmd.env("DATABASE_URL", database_url)
            .env("SMTP_URL", &smtp)
            .env("SMTP_FROM", "alerts@alertkit.test")
            .env("ALERTKIT_RATE_LIMIT", "0")
            .env("ALERTKIT_DELIVERY_LEASE_SECS", "3");
    };
    let (mut cmd, addr, dir) = common::command(SECRET);
    env(&mut cmd);
    let mut server = common::start(cmd, addr.clone(), dir).await;
    let http = reqwest::Client::new();

    // Each user: an address of this run's, and `crash` alerts by email.
    for k in 0..USERS {
        let tok = token(Principal::user(user(k)));
        let r = http
            .put(format!("http://{addr}/api/me/contacts"))
            .bearer_auth(&tok)
            .json(&json!({"email": format!("{}-{run}@crash.test", user(k))}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let r = http
            .put(format!("http://{addr}/api/alerts/subscriptions"))
            .bearer_auth(&tok)
            .json(
                &json!([{"alert_type": "crash", "channels": ["in_app", "email"],
                           "min_severity": "high"}]),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }

    // Watchers, connected before the burst.
    let mut watchers = Vec::new();
    for k in 0..WATCHERS {
        let seen = Arc::new(tokio::sync::Mutex::new(Seen::default()));
        let mut ws = connect(&addr, &user(k), None).await;
        let s = seen.clone();
        let task = tokio::spawn(async move { watch(&mut ws, &s, |_| false).await });
        watchers.push((seen, task));
    }

    // The burst, killed twice: after 3,000 acknowledgements, then after
    // 3,000 more on the restarted server. Each kill lands at a moment of
    // its own, so the two give a write-in-progress two chances to be cut.
    let next = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(std::sync::Mutex::new(BTreeMap::<String, String>::new()));
    let mut before = Vec::new();
    for round in 1..=KILLS {
        if round > 1 {
            let (mut cmd, addr, dir) = common::command(SECRET);
            env(&mut cmd);
            server = common::start(cmd, addr, dir).await;
        }
        burst_then_kill(&http, &mut server, &next, &acked, KILL_AFTER * round).await;
        if round == 1 {
            for (seen, task) in std::mem::take(&mut watchers) {
                // The socket ended with the process.
                tokio::time::timeout(Duration::from_secs(10), task)
                    .await
                    .expect("a watcher's socket outlived the server")
                    .unwrap();
                before.push(seen);
            }
        }
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let attempted = next.load(Ordering::Relaxed).min(BURST);
    assert!(
        attempted < BURST,
        "the last kill came after the burst ended"
    );

    // Started again on the same database.
    let (mut cmd, addr2, dir2) = common::command(SECRET);
    env(&mut cmd);
    let _second = common::start(cmd, addr2.clone(), dir2).await;
    let all = stored(&http, &addr2).await;
    for (t, id) in &acked {
        assert_eq!(
            all.get(t).map(|s| &s.0),
            Some(id),
            "acknowledged {t} is not in the store"
        );
    }
    let unacked = all.len() - acked.len();
    assert!(
        unacked <= CLIENTS * KILLS,
        "{unacked} stored but never acknowledged: more than the {CLIENTS} requests in flight at each kill"
    );
    for t in all.keys() {
        let n: usize = t[3..].parse().unwrap();
        assert!(n < attempted, "{t} stored but never sent");
    }

    // Watchers resume from their last cursor: with what they had, every
    // alert visible to them, once.
    for (k, seen) in before.into_iter().enumerate() {
        let want: BTreeSet<String> = all
            .iter()
            .filter(|(_, (_, to, _))| *to == user(k))
            .map(|(t, _)| t.clone())
            .collect();
        let cursor = seen.lock().await.cursor.clone();
        let mut ws = connect(&addr2, &user(k), cursor.as_deref()).await;
        let done = |s: &Seen| s.titles.len() >= want.len();
        if !done(&*seen.lock().await) {
            tokio::time::timeout(Duration::from_secs(30), watch(&mut ws, &seen, done))
                .await
                .unwrap_or_else(|_| {
                    panic!("{} did not get every alert back after resuming", user(k))
                });
        }
        let s = seen.lock().await;
        let got: BTreeSet<String> = s.titles.keys().cloned().collect();
        assert_eq!(got, want, "{}: alerts held after resuming", user(k));
        let twice: Vec<_> = s.titles.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "{}: received more than once: {twice:?}",
            user(k)
        );
    }

    // Every subscribed email, each delivery's Message-ID once but for a
    // resend of what was in flight at the kill, and nothing else.
    let want: BTreeSet<&String> = all.keys().collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    let got = loop {
        let got = common::mails_by_title(&maildir, &format!("-{run}@crash.test"), "cr-");
        if std::env::var("CRASH_DEBUG").is_ok() {
            for t in all.keys().filter(|t| !acked.contains_key(*t)) {
                eprintln!("unacked {t}: mail {:?}", got.get(t));
            }
        }
        if want.iter().all(|t| got.contains_key(*t)) {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} subscribed emails arrived within 90 s",
            want.iter().filter(|t| got.contains_key(**t)).count(),
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // A stray late message would show up now.
    drop(got);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = common::mails_by_title(&maildir, &format!("-{run}@crash.test"), "cr-");
    let extra: Vec<_> = got.keys().filter(|t| !want.contains(t)).collect();
    assert!(
        extra.is_empty(),
        "emails for alerts not subscribed or not stored: {extra:?}"
    );
    let mut resent = 0;
    for (t, ids) in &got {
        let distinct: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(
            distinct.len(),
            1,
            "{t}: one delivery, one Message-ID: {ids:?}"
        );
        resent += ids.len() - 1;
    }
    assert!(
        resent <= IN_FLIGHT_SENDS * KILLS,
        "{resent} emails sent twice: more than the {IN_FLIGHT_SENDS} in flight at each kill"
    );
    eprintln!(
        "crash: {attempted} raises attempted, {} acknowledged, {unacked} stored unacknowledged, \
         {} emails, {resent} resent after the kill",
        acked.len(),
        want.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_burst_on_sqlite_loses_nothing_acknowledged() {
    let dir =
        std::env::temp_dir().join(format!("alertkit-crash-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("crash.db").display());
    crash_mid_burst(&url).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_burst_on_postgres_loses_nothing_acknowledged() {
    let Some(db) = common::PgDb::create("crash").await else {
        return;
    };
    crash_mid_burst(&db.url).await;
    db.drop_db().await;
}
