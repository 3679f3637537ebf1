//! Faults under steady load, at the process level.
//!
//! **PostgreSQL "restarted".** The
//! reference server binary reaches PostgreSQL through a TCP proxy of the
//! test's own, which drops every connection and refuses new ones for six
//! seconds, as a restart does.
//!
//! - While PostgreSQL is away, `/health` answers 503 with the store
//!   `down`, and raises fail with 503 within the pool's acquire timeout
//!   (5 s): no hang, no 500.
//! - Once it is back, the server recovers by itself (no restart): raises
//!   succeed again and `/health` is `ok`.
//! - Nothing acknowledged is lost, and every email subscribed for a stored
//!   alert is sent, with one `Message-ID` per delivery (a send whose outcome
//!   could not be recorded for longer than the lease may be repeated).
//!
//! **Redis stopped for 30 s** under two replicas: raises on one keep their
//! latency, both `/health` say the bus is degraded, and a client on the
//! other replica gets every alert raised meanwhile once Redis is back, once
//! each, in order, with no restart.
//!
//! **SMTP unreachable for 2 minutes**: emails wait out the backoff, then
//! each is sent once. **A Slack storm** of 429s and 500s: ridden out at
//! one request a second, each message posted once.
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
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alertkit::Principal;
use alertkit::transport::JwtAuthenticator;
use alertkit_testkit::services::service_url;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

const SECRET: &str = "faults-test-secret-faults-test-secret-01";
/// Users the alerts are spread over.
const USERS: usize = 20;
/// How long PostgreSQL is away.
const OUTAGE: Duration = Duration::from_secs(6);

fn token(p: Principal) -> String {
    JwtAuthenticator::hs256(SECRET.as_bytes())
        .unwrap()
        .issue(&p, Duration::from_secs(1800))
        .unwrap()
}

/// A TCP proxy that can drop every connection and refuse new ones.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    /// Connections refused while cut.
    refused: Arc<AtomicUsize>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let refused = Arc::new(AtomicUsize::new(0));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (u, c, r) = (up.clone(), conns.clone(), refused.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !u.load(Ordering::SeqCst) {
                    r.fetch_add(1, Ordering::SeqCst);
                    continue; // dropped: refused
                }
                c.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Proxy {
            addr,
            up,
            refused,
            conns,
            accept,
        }
    }

    /// Drops every connection; refuses new ones until [`Proxy::restore`].
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for h in self.conns.lock().unwrap().drain(..) {
            h.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// One raise's outcome: its number, HTTP status (0: no answer), latency,
/// and the body of a failure.
type Outcome = (usize, u16, Duration, String);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_under_load_fails_fast_and_recovers_by_itself() {
    let Some(smtp) = service_url("SMTP_URL") else {
        return;
    };
    let Some(db) = common::PgDb::create("faults").await else {
        return;
    };
    let maildir = std::env::var("ALERTKIT_MAILDIR").expect("scripts/test sets ALERTKIT_MAILDIR");
    let url = reqwest::Url::parse(&db.url).unwrap();
    let target: SocketAddr = format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port_or_known_default().unwrap_or(5432)
    )
    .parse()
    .unwrap();
    let proxy = Proxy::start(target).await;
    let mut through = url.clone();
    through.set_port(Some(proxy.addr.port())).unwrap();

    let (mut cmd, addr, dir) = common::command(SECRET);
    cmd.env("DATABASE_URL", through.as_str())
        .env("SMTP_URL", &smtp)
        .env("SMTP_FROM", "alerts@alertkit.test")
        .env("ALERTKIT_RATE_LIMIT", "0")
        .env("ALERTKIT_DELIVERY_LEASE_SECS", "3")
        // A send caught by the outage (its recipient's address is read from
        // the store) is retried on the backoff: short here, so that it
        // lands within the test's wait.
        .env("ALERTKIT_DELIVERY_RETRY_SECS", "2,4,8,16,32");
    let _server = common::start(cmd, addr.clone(), dir).await;
    let http = reqwest::Client::new();
    let run = uuid::Uuid::now_v7().simple().to_string();
    // 20 users, each with an address of this run's and `fault` alerts by
    // email (spread, so that the 10 emails/s per address limit is no bound).
    let addresses = format!("-{run}@faults.test");
    common::subscribe_by_email(
        &http,
        &addr,
        |u| token(Principal::user(u)),
        ("o", USERS, &addresses),
        "fault",
    )
    .await;

    // Steady load: 4 clients raising until told to stop.
    let admin = token(Principal::admin("root"));
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(0));
    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (http, admin, stop, next, outcomes, acked, addr) = (
            http.clone(),
            admin.clone(),
            stop.clone(),
            next.clone(),
            outcomes.clone(),
            acked.clone(),
            addr.clone(),
        );
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let n = next.fetch_add(1, Ordering::SeqCst);
                let title = format!("ft-{n:06}");
                let started = Instant::now();
                let r = http
                    .post(format!("http://{addr}/api/alerts"))
                    .bearer_auth(&admin)
                    .json(
                        &json!({"alert_type": "fault", "severity": "high", "title": title,
                                  "audience": [format!("user:o{}", n % USERS)]}),
                    )
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await;
                let status = r.as_ref().map_or(0, |r| r.status().as_u16());
                let elapsed = started.elapsed();
                let mut failure = String::new();
                if status == 201 {
                    let body: Value = r.unwrap().json().await.unwrap();
                    acked
                        .lock()
                        .unwrap()
                        .insert(title, body["id"].as_str().unwrap().to_owned());
                } else {
                    failure = match r {
                        Ok(r) => r.text().await.unwrap_or_default(),
                        Err(e) => e.to_string(),
                    };
                    // Back off a little, as a client would.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                outcomes.lock().unwrap().push((n, status, elapsed, failure));
            }
        }));
    }
    let health = |http: reqwest::Client, addr: String| async move {
        let r = http
            .get(format!("http://{addr}/health"))
            .timeout(Duration::from_secs(15))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap())
    };

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(health(http.clone(), addr.clone()).await.0, 200);
    let before = acked.lock().unwrap().len();
    assert!(before > 0, "no raise succeeded before the outage");

    proxy.cut();
    let cut_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, body) = health(http.clone(), addr.clone()).await;
    assert_eq!(status, 503, "/health while PostgreSQL is away: {body}");
    assert_eq!(body["components"]["store"]["status"], "down", "{body}");
    tokio::time::sleep(OUTAGE.saturating_sub(cut_at.elapsed())).await;
    let during = outcomes.lock().unwrap().len();

    proxy.restore();
    let restored_at = Instant::now();
    let marker = next.load(Ordering::SeqCst);
    let deadline = restored_at + Duration::from_secs(30);
    loop {
        let recovered = outcomes
            .lock()
            .unwrap()
            .iter()
            .any(|(n, s, _, _)| *n >= marker && *s == 201);
        if recovered {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no raise succeeded within 30 s of PostgreSQL coming back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovery = restored_at.elapsed();
    let (status, body) = health(http.clone(), addr.clone()).await;
    assert_eq!(status, 200, "/health after recovery: {body}");
    assert_eq!(body["components"]["store"]["status"], "ok", "{body}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }

    // Failures were 503s, each within the acquire timeout; never a 500.
    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.1 != 201).collect();
    assert!(
        !failed.is_empty(),
        "no raise failed while PostgreSQL was away"
    );
    assert!(
        failed.iter().all(|o| o.1 == 503),
        "failures other than 503: {:?}",
        failed
            .iter()
            .filter(|o| o.1 != 503)
            .take(5)
            .collect::<Vec<_>>()
    );
    let slowest = outcomes.iter().map(|o| o.2).max().unwrap_or_default();
    let _ = &during;
    assert!(
        slowest < Duration::from_secs(8),
        "a raise took {slowest:?} (the pool's acquire timeout is 5 s)"
    );

    // Nothing acknowledged is lost.
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let admin_tok = token(Principal::admin("root"));
    let stored: BTreeSet<String> = common::list_alerts(&http, &addr, &admin_tok, "fault")
        .await
        .iter()
        .map(|a| a["title"].as_str().unwrap().to_owned())
        .collect();
    for t in acked.keys() {
        assert!(stored.contains(t), "acknowledged {t} was lost");
    }

    // Every stored alert's email, each delivery once.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mails = loop {
        let mails = common::mails_by_title(&maildir, &addresses, "ft-");
        if stored.iter().all(|t| mails.contains_key(t)) {
            break mails;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} emails within 60 s of recovery",
            stored.iter().filter(|t| mails.contains_key(*t)).count(),
            stored.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // At least once, one Message-ID per delivery; a message sent while its
    // outcome could not be recorded for longer than the lease (3 s here,
    // the outage 6 s) is sent again: at most the 32 sends in flight.
    let mut resent = 0;
    for (t, ids) in &mails {
        assert!(stored.contains(t), "an email for {t}, which is not stored");
        let distinct: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(
            distinct.len(),
            1,
            "{t}: one delivery, one Message-ID: {ids:?}"
        );
        resent += ids.len() - 1;
    }
    assert!(resent <= 32, "{resent} emails sent again");
    eprintln!(
        "postgres away {OUTAGE:?}: {} raises, {} acknowledged, {} failed with 503 ({during} answered by the end of the outage), \
         slowest {slowest:?}, recovered {recovery:?} after it came back, {} emails, {resent} sent again",
        outcomes.len(),
        acked.len(),
        failed.len(),
        mails.len()
    );
    drop(proxy);
    db.drop_db().await;
}

/// Reads `alert created` frames' titles from `ws` until `want` have come
/// or `wait` passes.
async fn titles_from(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    want: usize,
    wait: Duration,
) -> Vec<String> {
    use futures::StreamExt;
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while got.len() < want {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => {
                let f: Value = serde_json::from_str(t.as_str()).unwrap();
                if f["type"] == "alert" && f["event"] == "created" {
                    got.push(f["alert"]["title"].as_str().unwrap().to_owned());
                }
            }
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_for_30_s_degrades_health_but_not_raises_and_clients_catch_up() {
    let Some(db) = common::PgDb::create("redis_fault").await else {
        return;
    };
    let port = alertkit_testkit::services::free_port();
    let mut redis = alertkit_testkit::services::OwnRedis::start(port);
    let replica = |db: &str, redis: &str| {
        let (mut cmd, addr, dir) = common::command(SECRET);
        cmd.env("DATABASE_URL", db)
            .env("REDIS_URL", redis)
            .env("ALERTKIT_RATE_LIMIT", "0");
        (cmd, addr, dir)
    };
    let (cmd, a, dir) = replica(&db.url, &redis.url());
    let _a = common::start(cmd, a.clone(), dir).await;
    let (cmd, b, dir) = replica(&db.url, &redis.url());
    let _b = common::start(cmd, b.clone(), dir).await;
    let http = reqwest::Client::new();
    let admin = token(Principal::admin("root"));
    let raise = |title: String| {
        let (http, admin, a) = (http.clone(), admin.clone(), a.clone());
        async move {
            let started = Instant::now();
            let r = http
                .post(format!("http://{a}/api/alerts"))
                .bearer_auth(&admin)
                .json(
                    &json!({"alert_type": "redis_fault", "severity": "high", "title": title,
                              "audience": ["user:watcher"]}),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 201);
            started.elapsed()
        }
    };
    let health = |addr: String| {
        let http = http.clone();
        async move {
            let r = http
                .get(format!("http://{addr}/health"))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // A client on B; alerts raised on A reach it through Redis.
    let url = format!("ws://{b}/ws?token={}", token(Principal::user("watcher")));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut normal = Vec::new();
    for i in 0..20 {
        normal.push(raise(format!("before {i}")).await);
    }
    assert_eq!(
        titles_from(&mut ws, 20, Duration::from_secs(10))
            .await
            .len(),
        20
    );

    redis.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let outage = Instant::now();
    let mut during = Vec::new();
    let mut n = 0;
    while outage.elapsed() < Duration::from_secs(30) {
        during.push(raise(format!("during {n}")).await);
        n += 1;
        if n % 20 == 0 {
            for addr in [&a, &b] {
                let (status, body) = health(addr.clone()).await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["status"], "degraded", "{body}");
                assert_eq!(body["components"]["bus"]["status"], "degraded", "{body}");
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Raises did not wait for Redis: their slowest stays near the normal
    // ones' (a raise that waited out the 1 s publish timeout would show).
    let p = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() * 99 / 100]
    };
    let (normal_p99, during_p99) = (p(&mut normal), p(&mut during));
    // (Bounds wide enough for a loaded CI machine: waiting for Redis would
    // cost each raise a whole second.)
    assert!(
        during_p99 < Duration::from_millis(900).max(normal_p99 * 2),
        "raises slowed while Redis was down: p99 {during_p99:?}, normally {normal_p99:?}"
    );

    // Redis is back on the same port: both replicas recover by themselves,
    // and the client on B gets every alert raised during the outage, once,
    // in order.
    let _redis = alertkit_testkit::services::OwnRedis::start(port);
    let got = titles_from(&mut ws, n, Duration::from_secs(30)).await;
    let want: Vec<String> = (0..n).map(|i| format!("during {i}")).collect();
    assert_eq!(got, want, "the client on B after Redis came back");
    let deadline = Instant::now() + Duration::from_secs(15);
    for addr in [&a, &b] {
        loop {
            let (status, body) = health(addr.clone()).await;
            if status == 200 && body["status"] == "ok" {
                break;
            }
            assert!(Instant::now() < deadline, "not ok again: {body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    raise("after".into()).await;
    assert_eq!(
        titles_from(&mut ws, 1, Duration::from_secs(10)).await,
        ["after"]
    );
    eprintln!(
        "redis down 30 s: {n} raises on A, p99 {during_p99:?} (normally {normal_p99:?}); \
         the client on B got all {n} after Redis came back"
    );
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_for_2_minutes_delays_emails_by_the_backoff_then_sends_each_once() {
    let Some(smtp) = service_url("SMTP_URL") else {
        return;
    };
    let maildir = std::env::var("ALERTKIT_MAILDIR").expect("scripts/test sets ALERTKIT_MAILDIR");
    let sink = reqwest::Url::parse(&smtp).unwrap();
    let target: SocketAddr = format!("{}:{}", sink.host_str().unwrap(), sink.port().unwrap())
        .parse()
        .unwrap();
    let proxy = Proxy::start(target).await;
    // Retries after 5, 10, 20, 40 and 80 s (±20 %): attempts at about 0, 5,
    // 15, 35, 75 and 155 s, so the sixth lands after a 2-minute outage.
    let (mut cmd, addr, dir) = common::command(SECRET);
    cmd.env("SMTP_URL", format!("smtp://{}", proxy.addr))
        .env("SMTP_FROM", "alerts@alertkit.test")
        .env("ALERTKIT_RATE_LIMIT", "0")
        .env("ALERTKIT_DELIVERY_RETRY_SECS", "5,10,20,40,80");
    let _server = common::start(cmd, addr.clone(), dir).await;
    let http = reqwest::Client::new();
    let run = uuid::Uuid::now_v7().simple().to_string();
    let addresses = format!("-{run}@smtp-fault.test");
    common::subscribe_by_email(
        &http,
        &addr,
        |u| token(Principal::user(u)),
        ("m", USERS, &addresses),
        "smtp_fault",
    )
    .await;

    proxy.cut();
    let down_at = Instant::now();
    let admin = token(Principal::admin("root"));
    const ALERTS: usize = 40;
    let mut slowest = Duration::ZERO;
    for n in 0..ALERTS {
        let started = Instant::now();
        let r = http
            .post(format!("http://{addr}/api/alerts"))
            .bearer_auth(&admin)
            .json(&json!({"alert_type": "smtp_fault", "severity": "high",
                          "title": format!("sm-{n:06}"), "audience": [format!("user:m{}", n % USERS)]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        slowest = slowest.max(started.elapsed());
    }
    // Raises never touch SMTP (a loaded machine may still be slow).
    assert!(
        slowest < Duration::from_secs(3),
        "a raise waited for SMTP: {slowest:?}"
    );

    // While it is down: /health says SMTP is degraded (its probe is cached
    // for 30 s), and attempts follow the backoff: no storm.
    let mut degraded = false;
    while down_at.elapsed() < Duration::from_secs(120) {
        let body: Value = http
            .get(format!("http://{addr}/health"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        degraded |= body["components"]["smtp"]["status"] == "degraded";
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    assert!(degraded, "/health never showed SMTP degraded in 2 minutes");
    let attempts = proxy.refused.load(Ordering::SeqCst);
    // Five attempts each fall within the two minutes (0, 5, 15, 35, 75 s),
    // plus the health probes (at most one per 30 s).
    assert!(
        attempts <= ALERTS * 5 + 8,
        "{attempts} connection attempts in 2 minutes for {ALERTS} emails"
    );
    assert!(
        attempts >= ALERTS,
        "{attempts}: the emails were not even tried"
    );
    assert!(
        common::mails_by_title(&maildir, &addresses, "sm-").is_empty(),
        "mail got through a cut link"
    );

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mails = loop {
        let mails = common::mails_by_title(&maildir, &addresses, "sm-");
        if mails.len() == ALERTS {
            break mails;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {ALERTS} emails 90 s after SMTP came back",
            mails.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let back_after = down_at.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mails_now = common::mails_by_title(&maildir, &addresses, "sm-");
    for (t, ids) in &mails_now {
        assert_eq!(ids.len(), 1, "{t} sent {} times", ids.len());
    }
    assert_eq!(mails_now.len(), mails.len());
    eprintln!(
        "smtp down 120 s: {attempts} connection attempts refused for {ALERTS} emails; \
         all {ALERTS} sent once, the last {back_after:?} after the outage began"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_storm_of_429s_and_500s_is_ridden_out_at_one_request_a_second() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    const ALERTS: usize = 15;
    const RATE_LIMITED: u64 = 20;
    const FAILING: u64 = 20;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/T/B/X"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "2")
                .set_body_string("rate_limited"),
        )
        .up_to_n_times(RATE_LIMITED)
        .with_priority(1)
        .mount(&slack)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/T/B/X"))
        .respond_with(ResponseTemplate::new(500).set_body_string("oops"))
        .up_to_n_times(FAILING)
        .with_priority(2)
        .mount(&slack)
        .await;
    Mock::given(method("POST"))
        .and(path("/services/T/B/X"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .with_priority(3)
        .mount(&slack)
        .await;
    let (mut cmd, addr, dir) = common::command(SECRET);
    cmd.env(
        "SLACK_WEBHOOK_URL",
        format!("{}/services/T/B/X", slack.uri()),
    )
    .env("ALERTKIT_ALLOW_PRIVATE_WEBHOOKS", "1")
    .env("ALERTKIT_RATE_LIMIT", "0")
    .env("ALERTKIT_DELIVERY_RETRY_SECS", "2,4,8,16,32");
    let _server = common::start(cmd, addr.clone(), dir).await;
    let http = reqwest::Client::new();
    let admin = token(Principal::admin("root"));
    for n in 0..ALERTS {
        let r = http
            .post(format!("http://{addr}/api/alerts"))
            .bearer_auth(&admin)
            .json(&json!({"alert_type": "slack_storm", "severity": "high",
                          "title": format!("sl-{n:06}"), "audience": ["everyone"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    // Every failure retried until each alert is posted once: 40 failed
    // requests and 15 good ones, at the webhook's pace.
    let total = (RATE_LIMITED + FAILING) as usize + ALERTS;
    let started = Instant::now();
    let mut arrivals = Vec::new();
    let mut seen = 0;
    while seen < total {
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "{seen} of {total} requests within 150 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = slack.received_requests().await.unwrap_or_default().len();
        arrivals.extend(std::iter::repeat_n(started.elapsed(), now - seen));
        seen = now;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let requests = slack.received_requests().await.unwrap_or_default();
    assert_eq!(
        requests.len(),
        total,
        "a message posted twice, or a request too many"
    );
    // The requests answered 200 are the last 15: one per alert.
    let posted: BTreeSet<String> = requests[total - ALERTS..]
        .iter()
        .map(|r| {
            let body = String::from_utf8_lossy(&r.body);
            let i = body.find("sl-").expect("the alert's title in the message");
            body[i..i + 9].to_owned()
        })
        .collect();
    assert_eq!(posted.len(), ALERTS, "each alert posted once: {posted:?}");
    // No storm: at most 1 request a second to the webhook (2 in any
    // window, for the 50 ms sampling).
    for (i, t) in arrivals.iter().enumerate() {
        let in_window = arrivals[i..]
            .iter()
            .take_while(|u| **u < *t + Duration::from_secs(1))
            .count();
        assert!(
            in_window <= 2,
            "{in_window} requests within a second at {t:?}"
        );
    }
    eprintln!(
        "slack storm: {total} requests over {:?} for {ALERTS} alerts, each posted once",
        arrivals.last().copied().unwrap_or_default()
    );
}
