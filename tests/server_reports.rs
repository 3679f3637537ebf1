//! Reports through the real server binary: 100,000 alerts reported on
//! SQLite and on PostgreSQL (the CSV parses with the expected totals), two
//! instances sharing one PostgreSQL database and one directory taking
//! concurrent requests (each report runs once), the file route's answers to
//! traversal attempts, strangers and missing tokens, and a request flood.
#![cfg(all(
    unix,
    feature = "sqlite",
    feature = "postgres",
    feature = "redis",
    feature = "axum",
    feature = "jwt",
    feature = "email",
    feature = "slack",
    feature = "webhook",
    feature = "scheduler"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use alertkit::storage::{PostgresAlertStore, SqliteAlertStore};
use alertkit::transport::JwtAuthenticator;
use alertkit::{AlertStore, Audience, NewAlert, Permission, Principal, Severity};
use alertkit_testkit::fixtures;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

const SECRET: &str = "reports-test-secret-reports-test-secret!";
const TYPES: [&str; 4] = ["disk_full", "cpu_high", "mem_high", "net_down"];
const TAGS: [&str; 5] = ["vch20", "vch21", "pk16", "api", "db"];

fn token(p: Principal) -> String {
    JwtAuthenticator::hs256(SECRET.as_bytes())
        .unwrap()
        .issue(&p, Duration::from_secs(900))
        .unwrap()
}

/// `n` alerts for everyone over the 24 hours before `end`, one tag each,
/// types and severities in rotation, raised in batches of 2,000.
async fn seed(store: &dyn AlertStore, n: usize, end: DateTime<Utc>) {
    let sevs = [Severity::Low, Severity::Medium, Severity::High];
    let mut batch = Vec::new();
    for i in 0..n {
        let at = end - chrono::Duration::seconds(1 + (i as i64 * 86_000 / n as i64));
        let a = fixtures::alert(
            NewAlert::new(TYPES[i % 4], sevs[i % 3], format!("alert {i}"))
                .tags([TAGS[i % 5]])
                .audience(Audience::everyone()),
            at,
        );
        batch.push((a, Vec::new()));
        if batch.len() == 2_000 {
            store
                .insert_many(std::mem::take(&mut batch), end)
                .await
                .unwrap();
        }
    }
    if !batch.is_empty() {
        store.insert_many(batch, end).await.unwrap();
    }
}

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    fn new(addr: &str) -> Self {
        Client {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn trigger(&self, token: &str, body: Value) -> (u16, Value) {
        self.send(
            self.http
                .post(format!("{}/api/reports/trigger", self.base))
                .bearer_auth(token)
                .json(&body),
        )
        .await
    }

    async fn status(&self, token: &str, id: &str) -> (u16, Value) {
        self.send(
            self.http
                .get(format!("{}/api/reports/status?report_id={id}", self.base))
                .bearer_auth(token),
        )
        .await
    }

    /// Polls until the report is finished (at most 120 s: a hang guard).
    async fn finished(&self, token: &str, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (code, body) = self.status(token, id).await;
            assert_eq!(code, 200, "{body}");
            if matches!(body["status"].as_str(), Some("COMPLETED" | "FAILED")) {
                return body;
            }
            assert!(Instant::now() < deadline, "report {id} still {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn raw(&self, token: Option<&str>, path: &str) -> reqwest::Response {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }
}

fn window(end: DateTime<Utc>) -> (String, String) {
    (
        (end - chrono::Duration::days(1)).to_rfc3339(),
        end.to_rfc3339(),
    )
}

/// Requests an alerts report over the seeded day, waits for it, and checks
/// the CSV against the generator: 100,000 rows' worth of alerts, by type,
/// severity and tag.
async fn report_100k(c: &Client, end: DateTime<Utc>, backend: &str) {
    let admin = token(Principal::admin("root"));
    let (from, to) = window(end);
    let started = Instant::now();
    let (code, body) = c
        .trigger(&admin, json!({"kind": "alerts", "from": from, "to": to}))
        .await;
    assert_eq!(
        (code, body["status"].as_str()),
        (202, Some("PENDING")),
        "{body}"
    );
    let id = body["report_id"].as_str().unwrap().to_owned();
    let done = c.finished(&admin, &id).await;
    let took = started.elapsed();
    assert_eq!(done["status"], "COMPLETED", "{done}");
    println!("{backend}: report over 100,000 alerts completed in {took:?}");

    let url = done["url"].as_str().unwrap();
    let r = c.raw(Some(&admin), url).await;
    assert_eq!(r.status().as_u16(), 200);
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"alerts-report-")
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    let csv = r.text().await.unwrap();
    let mut rd = csv::Reader::from_reader(csv.as_bytes());
    let mut by_type = BTreeMap::new();
    let mut by_tag = BTreeMap::new();
    let mut by_severity = BTreeMap::new();
    let mut total = 0u64;
    let mut hours = std::collections::BTreeSet::new();
    for row in rd.records() {
        let row = row.unwrap();
        let n: u64 = row[4].parse().unwrap();
        assert_eq!(row[5].parse::<u64>().unwrap(), n, "one occurrence each");
        hours.insert(row[0].to_owned());
        *by_type.entry(row[1].to_owned()).or_insert(0u64) += n;
        *by_severity.entry(row[2].to_owned()).or_insert(0u64) += n;
        *by_tag.entry(row[3].to_owned()).or_insert(0u64) += n;
        total += n;
    }
    assert_eq!(total, 100_000);
    assert_eq!(done["rows"].as_u64(), Some(rd.position().line() - 2));
    assert!((24..=25).contains(&hours.len()), "{} hours", hours.len());
    assert!(by_type.values().all(|n| *n == 25_000), "{by_type:?}");
    assert!(by_tag.values().all(|n| *n == 20_000), "{by_tag:?}");
    assert_eq!(by_severity.len(), 3);
    assert!(
        by_severity.values().all(|n| (33_333..=33_334).contains(n)),
        "{by_severity:?}"
    );
    let json: Value = c
        .raw(Some(&admin), done["files"]["json"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(json["totals"]["alerts"], 100_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_over_100k_alerts_on_sqlite() {
    let (cmd, addr, dir) = common::command(SECRET);
    let end = Utc::now();
    {
        let path = dir.join("server.db");
        let store = SqliteAlertStore::builder(&path).connect().await.unwrap();
        store.migrate().await.unwrap();
        seed(&store, 100_000, end).await;
        store.close().await;
    }
    let mut cmd = cmd;
    cmd.env("ALERTKIT_REPORT_DIR", dir.join("reports"));
    let server = common::start(cmd, addr, dir).await;
    report_100k(&Client::new(&server.addr), end, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_over_100k_alerts_on_postgres() {
    let Some(db) = common::PgDb::create("reports").await else {
        return;
    };
    let end = Utc::now();
    {
        let store = PostgresAlertStore::builder(&db.url)
            .connect()
            .await
            .unwrap();
        store.migrate().await.unwrap();
        seed(&store, 100_000, end).await;
        store.close().await;
    }
    let (mut cmd, addr, dir) = common::command(SECRET);
    cmd.env("DATABASE_URL", &db.url)
        .env("ALERTKIT_REPORT_DIR", dir.join("reports"));
    let server = common::start(cmd, addr, dir).await;
    report_100k(&Client::new(&server.addr), end, "postgres").await;
    drop(server);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_run_each_report_once() {
    let Some(db) = common::PgDb::create("reports").await else {
        return;
    };
    let shared = std::env::temp_dir().join(format!("alertkit-reports-{}", uuid::Uuid::now_v7()));
    let mut servers = Vec::new();
    for _ in 0..2 {
        let (mut cmd, addr, dir) = common::command(SECRET);
        cmd.env("DATABASE_URL", &db.url)
            .env("ALERTKIT_REPORT_DIR", &shared);
        servers.push(common::start(cmd, addr, dir).await);
    }
    let clients: Vec<Client> = servers.iter().map(|s| Client::new(&s.addr)).collect();
    let admin = token(Principal::admin("root"));
    let admins: Vec<String> = (0..4)
        .map(|i| token(Principal::admin(format!("root{i}"))))
        .collect();
    let now = Utc::now();
    let (from, to) = window(now);
    // 10 requests on each instance at once, alerts and deliveries mixed,
    // from four admins (each well within the per-user request limit).
    let requests = (0..20).map(|i| {
        let c = &clients[i % 2];
        let kind = if i % 3 == 0 { "deliveries" } else { "alerts" };
        let body = json!({"kind": kind, "from": from, "to": to});
        let by = admins[i % 4].clone();
        async move { c.trigger(&by, body).await }
    });
    let ids: Vec<String> = futures::future::join_all(requests)
        .await
        .into_iter()
        .map(|(code, body)| {
            assert_eq!(code, 202, "{body}");
            body["report_id"].as_str().unwrap().to_owned()
        })
        .collect();
    for (i, id) in ids.iter().enumerate() {
        // Either instance answers for any report.
        let done = clients[(i + 1) % 2].finished(&admin, id).await;
        assert_eq!(done["status"], "COMPLETED", "{done}");
        assert_eq!(done["attempts"], 1, "run once: {done}");
        for f in ["csv", "json"] {
            assert!(shared.join(format!("{id}.{f}")).exists());
        }
    }
    drop(servers);
    let _ = std::fs::remove_dir_all(&shared);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_files_refuse_traversal_strangers_and_anonymous_callers() {
    let (mut cmd, addr, dir) = common::command(SECRET);
    let reports = dir.join("reports");
    cmd.env("ALERTKIT_REPORT_DIR", &reports);
    let server = common::start(cmd, addr, dir.clone()).await;
    let c = Client::new(&server.addr);
    let planner = token(
        Principal::user("pam")
            .with_groups(["planners"])
            .with_permissions([Permission::ReportsCreate]),
    );
    let stranger = token(Principal::user("sam").with_permissions([Permission::ReportsCreate]));
    let reader = token(Principal::user("rita"));
    let (from, to) = window(Utc::now());

    // Permissions and bad requests.
    let alerts = json!({"kind": "alerts", "from": from, "to": to});
    assert_eq!(c.trigger(&reader, alerts.clone()).await.0, 403);
    let (code, body) = c
        .trigger(
            &planner,
            json!({"kind": "deliveries", "from": from, "to": to}),
        )
        .await;
    assert_eq!(code, 403, "deliveries need alerts.manage: {body}");
    for bad in [
        json!({"kind": "alerts", "from": to, "to": from}),
        json!({"kind": "alerts", "from": "2020-01-01T00:00:00Z", "to": "2024-01-01T00:00:00Z"}),
        json!({"kind": "weekly", "from": from, "to": to}),
        json!({"kind": "alerts", "from": from, "to": to, "filter": {"tags": ["a\u{0}"]}}),
        json!({"kind": "alerts", "from": from, "to": to, "extra": 1}),
        json!({"kind": "alerts", "from": "yesterday", "to": to}),
    ] {
        let (code, body) = c.trigger(&planner, bad.clone()).await;
        assert!(code == 400 || code == 422, "{bad} → {code} {body}");
    }
    let (code, body) = c.trigger(&planner, alerts).await;
    assert_eq!(code, 202, "{body}");
    let id = body["report_id"].as_str().unwrap().to_owned();
    let done = c.finished(&planner, &id).await;
    assert_eq!(done["status"], "COMPLETED");
    // Traversal: raw, encoded, double-encoded, absolute; all 4xx, and the
    // secret next to the directory is never served.
    std::fs::write(dir.join("secret.txt"), "top secret").unwrap();
    for path in [
        "/files/reports/../secret.txt",
        "/files/reports/..%2fsecret.txt",
        "/files/reports/..%2F..%2Fetc%2Fpasswd",
        "/files/reports/%2e%2e%2fsecret.txt",
        "/files/reports/%252e%252e%252fsecret.txt",
        "/files/reports/%2Fetc%2Fpasswd",
        "/files/reports//etc/passwd",
        "/files/reports/secret.txt",
        &format!("/files/reports/{id}.csv%00.txt"),
        &format!("/files/reports/{id}.CSV"),
    ] {
        let r = c.raw(Some(&planner), path).await;
        let code = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!((400..500).contains(&code), "{path} → {code} {text}");
        assert!(
            !text.contains("top secret") && !text.contains("root:"),
            "{path}"
        );
    }
    // Status and files: the requester only.
    let csv = format!("/files/reports/{id}.csv");
    assert_eq!(c.raw(Some(&planner), &csv).await.status().as_u16(), 200);
    assert_eq!(c.raw(Some(&stranger), &csv).await.status().as_u16(), 404);
    assert_eq!(c.status(&stranger, &id).await.0, 404);
    assert_eq!(c.raw(Some(&reader), &csv).await.status().as_u16(), 403);
    assert_eq!(c.raw(None, &csv).await.status().as_u16(), 401);
    assert_eq!(
        c.raw(Some("not-a-token"), &csv).await.status().as_u16(),
        401
    );
    let unknown = uuid::Uuid::now_v7();
    assert_eq!(c.status(&planner, &unknown.to_string()).await.0, 404);
    assert_eq!(c.status(&planner, "../x").await.0, 400);
    assert!(Path::new(&reports).join(format!("{id}.json")).exists());

    // A flood of requests: 10 a minute per user (8 made above), then 429
    // with Retry-After; another user is not held back.
    let mut codes = Vec::new();
    for _ in 0..4 {
        let r = c
            .http
            .post(format!("{}/api/reports/trigger", c.base))
            .bearer_auth(&planner)
            .json(&json!({"kind": "alerts", "from": from, "to": to}))
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
        if r.status().as_u16() == 429 {
            let wait: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&wait), "{wait}");
        }
    }
    assert_eq!(codes, [202, 202, 429, 429]);
    let other = token(Principal::admin("ada"));
    let (code, _) = c
        .trigger(&other, json!({"kind": "alerts", "from": from, "to": to}))
        .await;
    assert_eq!(code, 202);
}
