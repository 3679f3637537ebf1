//! Scale-out at the process level: three reference-server replicas on one
//! PostgreSQL database and one Redis, 3,000 WebSocket clients spread over
//! them, 10,000 alerts raised through REST round-robin to mixed audiences
//! (one user, a group, everyone), and one replica SIGKILLed in the middle.
//!
//! - Every alert acknowledged with 201 is stored; at most the requests in
//!   flight at the kill are stored without an acknowledgement.
//! - Each client ends holding exactly the stored alerts visible to it, each
//!   once: the clients of the killed replica reconnect to another one and
//!   resume from their last cursor, without a gap or a repeat.
//! - Each subscribed email is sent once per recipient (one `Message-ID` per
//!   delivery), including the deliveries the killed replica had claimed,
//!   which the others take over once their 3 s lease lapses; at most the
//!   32 sends it had in flight may be sent twice.
//! - The `rules` job (every 2 s here) runs each tick once across the
//!   replicas, with no tick skipped, through the kill.
#![cfg(all(
    unix,
    feature = "postgres",
    feature = "redis",
    feature = "axum",
    feature = "jwt",
    feature = "email"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alertkit::Principal;
use alertkit::transport::JwtAuthenticator;
use alertkit_testkit::services::{OwnRedis, free_port, service_url};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "scale-test-secret-scale-test-secret-0001";
const REPLICAS: usize = 3;
/// The replica killed mid-run.
const VICTIM: usize = 1;
const USERS: usize = 300;
/// Connections per user (so 3,000 clients).
const CONNS: usize = 10;
const GROUPS: usize = 20;
const ALERTS: usize = 10_000;
/// Acknowledged raises before the kill.
const KILL_AFTER: usize = 5_000;
const RAISERS: usize = 16;
/// Users with an email address, subscribed to critical alerts: u0 to u29.
const SUBSCRIBED: usize = 30;
const IN_FLIGHT_SENDS: usize = 32;
const RULES_EVERY_SECS: i64 = 2;

fn token(p: Principal) -> String {
    JwtAuthenticator::hs256(SECRET.as_bytes())
        .unwrap()
        .issue(&p, Duration::from_secs(1800))
        .unwrap()
}

fn group_of(user: usize) -> String {
    format!("g{}", user % GROUPS)
}

/// Alert `n`'s audience and whether it is critical.
fn plan(n: usize) -> (String, bool) {
    if n.is_multiple_of(500) {
        ("everyone".into(), false)
    } else if n % 10 == 1 {
        let g = (n / 10) % GROUPS;
        (format!("group:g{g}"), g.is_multiple_of(2))
    } else {
        (format!("user:u{}", (n / 3) % USERS), n % 10 == 3)
    }
}

fn visible(audience: &str, user: usize) -> bool {
    audience == "everyone"
        || audience == format!("group:{}", group_of(user))
        || audience == format!("user:u{user}")
}

/// The quoted string after `"key":"` in a frame (the frames are the
/// server's compact JSON; a full parse of 300k frames in a debug build
/// would be the slowest part of the test).
fn field<'a>(frame: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":\"");
    let start = frame.find(&pat)? + pat.len();
    let len = frame[start..].find('"')?;
    Some(&frame[start..start + len])
}

/// What one client saw.
#[derive(Default)]
struct Seen {
    /// Alert number → `created` frames received.
    alerts: HashMap<u32, u8>,
    cursor: Option<String>,
    reconnects: usize,
    /// Frames that must never come (`cursor_expired`, `gap`, an error).
    bad: Vec<String>,
}

struct Shared {
    addrs: Vec<String>,
    dead: [AtomicBool; REPLICAS],
    hello: AtomicUsize,
    stop: AtomicBool,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A client of `user` on `replica`, following its frames until stopped;
/// when its replica dies it moves to the next live one and resumes.
async fn client(shared: Arc<Shared>, mut replica: usize, user: usize, seen: Arc<Mutex<Seen>>) {
    let tok = token(Principal::user(format!("u{user}")).with_groups([group_of(user)]));
    let mut first = true;
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        while shared.dead[replica].load(Ordering::Relaxed) {
            replica = (replica + 1) % REPLICAS;
        }
        let cursor = seen.lock().unwrap().cursor.clone();
        let url = match cursor {
            Some(c) => format!("ws://{}/ws?token={tok}&cursor={c}", shared.addrs[replica]),
            None => format!("ws://{}/ws?token={tok}", shared.addrs[replica]),
        };
        let mut ws: Ws = match tokio_tungstenite::connect_async(url).await {
            Ok((ws, _)) => ws,
            Err(_) => {
                // The replica died under us: the main task marks it.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        while let Some(Ok(msg)) = ws.next().await {
            let Message::Text(text) = msg else { continue };
            let text = text.as_str();
            let kind = field(text, "type").unwrap_or_default();
            let mut s = seen.lock().unwrap();
            match kind {
                "hello" => {
                    if s.cursor.is_none() {
                        s.cursor = field(text, "cursor").map(str::to_owned);
                    }
                    if first {
                        first = false;
                        shared.hello.fetch_add(1, Ordering::Relaxed);
                    }
                }
                "alert" if field(text, "event") == Some("created") => {
                    let title = field(text, "title").unwrap_or_default();
                    if let Some(n) = title.strip_prefix("sc-").and_then(|n| n.parse().ok()) {
                        *s.alerts.entry(n).or_default() += 1;
                    }
                    s.cursor = field(text, "cursor").map(str::to_owned);
                }
                "cursor_expired" | "gap" | "error" => s.bad.push(text.chars().take(200).collect()),
                _ => {}
            }
        }
        seen.lock().unwrap().reconnects += 1;
    }
}

/// The groups' members, for deliveries to group audiences
/// (`ALERTKIT_GROUPS`).
fn groups() -> String {
    (0..GROUPS)
        .map(|g| {
            let members: Vec<String> = (g..USERS)
                .step_by(GROUPS)
                .map(|u| format!("u{u}"))
                .collect();
            format!("g{g}={}", members.join(","))
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// Starts one replica on the shared database and Redis.
async fn replica(db: &str, redis: &str, smtp: &str) -> common::Server {
    let (mut cmd, addr, dir) = common::command(SECRET);
    cmd.env("DATABASE_URL", db)
        .env("REDIS_URL", redis)
        .env("SMTP_URL", smtp)
        .env("SMTP_FROM", "alerts@alertkit.test")
        .env("ALERTKIT_RATE_LIMIT", "0")
        .env("ALERTKIT_DELIVERY_LEASE_SECS", "3")
        .env("ALERTKIT_RULES_EVERY_SECS", RULES_EVERY_SECS.to_string())
        .env("ALERTKIT_GROUPS", groups());
    common::start(cmd, addr, dir).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_act_as_one_through_a_sigkill() {
    let Some(smtp) = service_url("SMTP_URL") else {
        return;
    };
    let Some(db) = common::PgDb::create("scale").await else {
        return;
    };
    let maildir = std::env::var("ALERTKIT_MAILDIR").expect("scripts/test sets ALERTKIT_MAILDIR");
    let redis = OwnRedis::start(free_port());
    let run = uuid::Uuid::now_v7().simple().to_string();
    let http = reqwest::Client::new();
    let admin = token(Principal::admin("root"));

    // One after the other: the first creates the schema.
    let mut servers = Vec::new();
    for _ in 0..REPLICAS {
        servers.push(replica(&db.url, &redis.url(), &smtp).await);
    }
    let shared = Arc::new(Shared {
        addrs: servers.iter().map(|s| s.addr.clone()).collect(),
        dead: Default::default(),
        hello: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    });
    let started = Utc::now();

    for k in 0..SUBSCRIBED {
        let tok = token(Principal::user(format!("u{k}")).with_groups([group_of(k)]));
        let addr = &shared.addrs[k % REPLICAS];
        for (path, body) in [
            (
                "/api/me/contacts",
                json!({"email": format!("u{k}-{run}@scale.test")}),
            ),
            (
                "/api/alerts/subscriptions",
                json!([{"alert_type": "scale", "channels": ["in_app", "email"],
                        "min_severity": "critical"}]),
            ),
        ] {
            let r = http
                .put(format!("http://{addr}{path}"))
                .bearer_auth(&tok)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200, "{path}");
        }
    }

    // 3,000 clients, each user's ten spread over the replicas.
    let t0 = Instant::now();
    let mut clients = Vec::new();
    for c in 0..USERS * CONNS {
        let (user, replica) = (c % USERS, c % REPLICAS);
        let seen = Arc::new(Mutex::new(Seen::default()));
        let task = tokio::spawn(client(shared.clone(), replica, user, seen.clone()));
        clients.push((user, replica, seen, task));
        if c % 100 == 99 {
            tokio::task::yield_now().await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while shared.hello.load(Ordering::Relaxed) < USERS * CONNS {
        assert!(
            Instant::now() < deadline,
            "{} of {} clients connected within 120 s",
            shared.hello.load(Ordering::Relaxed),
            USERS * CONNS
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connected = Instant::now();

    // 10,000 raises from 16 clients, round-robin over the live replicas;
    // a request cut by the kill is not retried (its alert is unacknowledged).
    let next = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(Mutex::new(BTreeMap::<usize, String>::new()));
    let mut raisers = Vec::new();
    for _ in 0..RAISERS {
        let (http, admin, next, acked, shared) = (
            http.clone(),
            admin.clone(),
            next.clone(),
            acked.clone(),
            shared.clone(),
        );
        raisers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= ALERTS {
                    return;
                }
                let mut r = n % REPLICAS;
                while shared.dead[r].load(Ordering::Relaxed) {
                    r = (r + 1) % REPLICAS;
                }
                let (audience, critical) = plan(n);
                let sent = http
                    .post(format!("http://{}/api/alerts", shared.addrs[r]))
                    .bearer_auth(&admin)
                    .json(&json!({"alert_type": "scale",
                                  "severity": if critical { "critical" } else { "high" },
                                  "title": format!("sc-{n:06}"), "audience": [audience]}))
                    .timeout(Duration::from_secs(20))
                    .send()
                    .await;
                let Ok(resp) = sent else { continue };
                if resp.status().as_u16() == 201 {
                    let body: Value = resp.json().await.unwrap();
                    acked
                        .lock()
                        .unwrap()
                        .insert(n, body["id"].as_str().unwrap().to_owned());
                } else {
                    let status = resp.status();
                    panic!(
                        "raise {n}: {status} {}",
                        resp.text().await.unwrap_or_default()
                    );
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    while acked.lock().unwrap().len() < KILL_AFTER {
        assert!(Instant::now() < deadline, "the raises stalled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let jitter = (uuid::Uuid::new_v4().as_u128() % 40) as u64;
    tokio::time::sleep(Duration::from_millis(jitter)).await;
    shared.dead[VICTIM].store(true, Ordering::Relaxed);
    let victim = &mut servers[VICTIM];
    victim.child.kill().unwrap(); // SIGKILL
    victim.child.wait().unwrap();
    let killed_at = Utc::now();
    for r in raisers {
        r.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let raised = Instant::now();

    // The store is the truth: every acknowledged alert is in it, and the
    // unacknowledged ones in it are at most those in flight at the kill.
    let live = &shared.addrs[(VICTIM + 1) % REPLICAS];
    let mut stored: BTreeMap<usize, (String, String, bool)> = BTreeMap::new();
    for a in common::list_alerts(&http, live, &admin, "scale").await {
        let n: usize = a["title"].as_str().unwrap()[3..].parse().unwrap();
        let prev = stored.insert(
            n,
            (
                a["id"].as_str().unwrap().to_owned(),
                a["audience"][0].as_str().unwrap().to_owned(),
                a["severity"] == "critical",
            ),
        );
        assert!(prev.is_none(), "sc-{n:06} stored twice");
    }
    for (n, id) in &acked {
        assert_eq!(
            stored.get(n).map(|s| &s.0),
            Some(id),
            "acknowledged sc-{n:06} is not in the store"
        );
    }
    let unacked = stored.len() - acked.len();
    assert!(
        unacked <= RAISERS,
        "{unacked} stored without an acknowledgement: more than the {RAISERS} in flight at the kill"
    );

    // Every client: exactly the stored alerts visible to it, once each.
    let want: Vec<BTreeSet<u32>> = (0..USERS)
        .map(|u| {
            stored
                .iter()
                .filter(|(_, (_, aud, _))| visible(aud, u))
                .map(|(n, _)| *n as u32)
                .collect()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let behind = clients
            .iter()
            .filter(|(u, _, seen, _)| seen.lock().unwrap().alerts.len() < want[*u].len())
            .count();
        if behind == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{behind} of {} clients still miss alerts 90 s after the last raise",
            clients.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A late duplicate would arrive now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut frames = 0;
    let mut moved = 0;
    for (u, replica, seen, _) in &clients {
        let s = seen.lock().unwrap();
        assert!(s.bad.is_empty(), "u{u}: unexpected frames {:?}", s.bad);
        let got: BTreeSet<u32> = s.alerts.keys().copied().collect();
        if got != want[*u] {
            let missing: Vec<_> = want[*u].difference(&got).take(5).collect();
            let extra: Vec<_> = got.difference(&want[*u]).take(5).collect();
            panic!("u{u} on replica {replica}: missing {missing:?}, not visible {extra:?}");
        }
        let twice: Vec<_> = s.alerts.iter().filter(|(_, c)| **c > 1).take(5).collect();
        assert!(twice.is_empty(), "u{u}: received more than once: {twice:?}");
        if *replica == VICTIM {
            assert!(s.reconnects >= 1, "u{u} never noticed its replica die");
            moved += 1;
        }
        frames += s.alerts.len();
    }
    let delivered = Instant::now();

    // Emails: one per (critical alert, subscribed recipient), each
    // delivery's Message-ID once but for the victim's sends in flight.
    let subscribed = |aud: &str| (0..SUBSCRIBED).filter(|&u| visible(aud, u)).count();
    let want_mail: BTreeMap<String, usize> = stored
        .iter()
        .filter(|(_, (_, aud, critical))| *critical && subscribed(aud) > 0)
        .map(|(n, (_, aud, _))| (format!("sc-{n:06}"), subscribed(aud)))
        .collect();
    let to = format!("-{run}@scale.test");
    let deadline = Instant::now() + Duration::from_secs(90);
    let mails = loop {
        let got = common::mails_by_title(&maildir, &to, "sc-");
        let done = want_mail.iter().all(|(t, n)| {
            got.get(t)
                .is_some_and(|ids| ids.iter().collect::<BTreeSet<_>>().len() >= *n)
        });
        if done {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} alerts' emails all arrived within 90 s",
            want_mail
                .iter()
                .filter(|(t, n)| got.get(*t).is_some_and(|ids| ids
                    .iter()
                    .collect::<BTreeSet<_>>()
                    .len()
                    >= **n))
                .count(),
            want_mail.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let mut resent = 0;
    for (t, ids) in &mails {
        let distinct = ids.iter().collect::<BTreeSet<_>>().len();
        assert_eq!(
            Some(&distinct),
            want_mail.get(t),
            "{t}: one Message-ID per subscribed recipient"
        );
        resent += ids.len() - distinct;
    }
    assert!(
        resent <= IN_FLIGHT_SENDS,
        "{resent} emails sent twice: more than the {IN_FLIGHT_SENDS} in flight at the kill"
    );

    // The `rules` job: one run per 2 s tick from start to now, none twice,
    // none skipped across the kill.
    let runs: Vec<Value> = http
        .get(format!(
            "http://{live}/api/scheduler/jobs/rules/runs?limit=1000"
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ticks: Vec<DateTime<Utc>> = runs
        .iter()
        .map(|r| r["scheduled_at"].as_str().unwrap().parse().unwrap())
        .filter(|t| *t >= started)
        .collect();
    let distinct: BTreeSet<_> = ticks.iter().collect();
    assert_eq!(distinct.len(), ticks.len(), "a tick ran twice: {ticks:?}");
    let ordered: Vec<_> = distinct.into_iter().collect();
    for w in ordered.windows(2) {
        assert_eq!(
            (*w[1] - *w[0]).num_seconds(),
            RULES_EVERY_SECS,
            "ticks skipped between {} and {}",
            w[0],
            w[1]
        );
    }
    assert!(
        ordered.first().is_some_and(|t| **t < killed_at)
            && ordered.last().is_some_and(|t| **t > killed_at),
        "the ticks do not span the kill at {killed_at}: {ordered:?}"
    );
    for r in &runs {
        let at: DateTime<Utc> = r["scheduled_at"].as_str().unwrap().parse().unwrap();
        if at >= started && at + chrono::Duration::seconds(10) < Utc::now() {
            assert_eq!(r["status"], "succeeded", "{r}");
        }
    }

    eprintln!(
        "scale: {} clients connected in {:.1} s; {} raised ({} acknowledged, {unacked} \
         unacknowledged stored) in {:.1} s; {frames} alerts received, {moved} clients moved off \
         the killed replica; all delivered {:.1} s after the last raise; {} emails ({resent} \
         resent); {} rules ticks",
        clients.len(),
        (connected - t0).as_secs_f64(),
        stored.len(),
        acked.len(),
        (raised - connected).as_secs_f64(),
        (delivered - raised).as_secs_f64(),
        mails.values().map(Vec::len).sum::<usize>(),
        ordered.len()
    );
    shared.stop.store(true, Ordering::Relaxed);
    for (_, _, _, task) in clients {
        task.abort();
    }
    drop(servers);
    db.drop_db().await;
}
