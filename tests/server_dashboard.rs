//! The dashboard in a real browser: Debian's headless Chromium driven
//! through chromedriver (WebDriver, fantoccini) against the server binary.
//! `scripts/test` installs `chromium` and `chromium-driver` when missing;
//! without them this test fails, it does not skip.
//!
//! Screenshots of the main views are written to `target/screenshots/`.
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

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alertkit::transport::JwtAuthenticator;
use alertkit::{Permission, Principal};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const SECRET: &str = "dashboard-test-secret-dashboard-test-secret";

/// chromedriver on a loopback port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver leads its own process group, and the browser it
        // started is in it: kill the whole group, so a failing test leaves
        // no Chromium behind.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn driver() -> Driver {
    let port = common::free_port();
    let child = Command::new("chromedriver")
        .process_group(0)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("chromedriver cannot start ({e}): run scripts/test, which installs Debian's chromium and chromium-driver")
        });
    let d = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("chromedriver did not listen within 5 s");
}

async fn browser(d: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,900", "--no-first-run"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&d.url)
        .await
        .unwrap()
}

fn screenshots() -> PathBuf {
    // target/<profile>/deps/this-test → target/screenshots
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// Evaluates `js` (a function body that returns a value) in the page.
async fn eval(c: &Client, js: &str) -> Value {
    c.execute(js, vec![]).await.unwrap()
}

/// Waits (at most `within`) until `js` returns `true`; how long it took.
async fn until(c: &Client, js: &str, within: Duration, what: &str) -> Duration {
    let t = Instant::now();
    loop {
        if eval(c, js).await == json!(true) {
            return t.elapsed();
        }
        if t.elapsed() > within {
            let state = eval(c, "return {mode: document.querySelector('#mode').dataset.mode, badge: document.querySelector('#badge').dataset.count, items: [...document.querySelectorAll('#alerts li')].map(l => l.dataset.id), banner: document.querySelector('#banner').textContent, signin: document.querySelector('#signin-error').textContent, jobs: document.querySelector('#jobs-status').textContent, forecast: document.querySelector('#forecast-status').textContent, jobrow: (document.querySelector('#jobs tr[data-job=sla_watch]') || {}).outerHTML}").await;
            panic!("{what}: not within {within:?}; page: {state}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Clicks the element `css` selects.
async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn mode(c: &Client) -> String {
    eval(c, "return document.querySelector('#mode').dataset.mode")
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

async fn badge(c: &Client) -> u64 {
    eval(
        c,
        "return Number(document.querySelector('#badge').dataset.count)",
    )
    .await
    .as_u64()
    .unwrap()
}

async fn sign_in(c: &Client, base: &str, token: &str) {
    c.goto(&format!("{base}/")).await.unwrap();
    let field = c.wait().for_element(Locator::Css("#token")).await.unwrap();
    field.send_keys(token).await.unwrap();
    click(c, "#signin-form button[type=submit]").await;
    until(
        c,
        "return !document.querySelector('#app').hidden && document.querySelector('#mode').dataset.mode === 'live'",
        Duration::from_secs(10),
        "signed in and live",
    )
    .await;
    // The token is in this tab's session storage, not in the address.
    assert!(!c.current_url().await.unwrap().as_str().contains("ey"));
}

struct Rest {
    http: reqwest::Client,
    base: String,
    admin: String,
}

impl Rest {
    async fn raise(&self, title: &str, severity: &str) -> String {
        let r = self
            .http
            .post(format!("{}/api/alerts", self.base))
            .bearer_auth(&self.admin)
            .json(
                &json!({"alert_type": "capacity_warning", "severity": severity,
                          "title": title, "tags": ["VCH20"], "audience": ["user:alice"]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap_or(Value::Null)
    }

    async fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }
}

fn shown(id: &str) -> String {
    format!("return document.querySelectorAll('#alerts li[data-id=\"{id}\"]').length === 1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser() {
    let (mut cmd, addr, dir) = common::command(SECRET);
    // Two tabs and an admin session of one test share a user's budget;
    // the limit itself is tested elsewhere.
    cmd.env("ALERTKIT_RATE_LIMIT", "0");
    let server = common::start(cmd, addr, dir).await;
    let base = format!("http://{}", server.addr);
    let auth = JwtAuthenticator::hs256(SECRET.as_bytes()).unwrap();
    let token = |p: Principal| auth.issue(&p, Duration::from_secs(3600)).unwrap();
    let rest = Rest {
        http: reqwest::Client::new(),
        base: base.clone(),
        admin: token(Principal::admin("root")),
    };
    let alice = token(
        Principal::user("alice")
            .with_groups(["planners"])
            .with_permissions([Permission::AlertsRead, Permission::ForecastRead]),
    );
    let first = rest.raise("Older alert", "low").await;

    let d = driver().await;
    let c = browser(&d).await;

    // 1. Sign in with a token.
    sign_in(&c, &base, &alice).await;
    until(&c, &shown(&first), Duration::from_secs(5), "the first page").await;
    assert_eq!(badge(&c).await, 1);

    // 2. An alert raised through the REST API appears live within 1 s,
    //    and the badge goes up.
    let t = Instant::now();
    let live = rest.raise("VCH20 near capacity", "high").await;
    until(&c, &shown(&live), Duration::from_secs(5), "the live alert").await;
    let took = t.elapsed();
    assert!(took < Duration::from_secs(1), "took {took:?}");
    until(
        &c,
        "return document.querySelector('#badge').dataset.count === '2'",
        Duration::from_secs(1),
        "badge 2",
    )
    .await;
    // Newest first, severity shown, announced to screen readers.
    let order = eval(
        &c,
        "return [...document.querySelectorAll('#alerts li')].map(l => l.dataset.id)",
    )
    .await;
    assert_eq!(order, json!([live, first]));
    let sev = eval(
        &c,
        &format!(
            "return document.querySelector('#alerts li[data-id=\"{live}\"]').dataset.severity"
        ),
    )
    .await;
    assert_eq!(sev, "high");
    let said = eval(
        &c,
        "return document.querySelector('#announcer').textContent",
    )
    .await;
    assert!(
        said.as_str().unwrap().contains("VCH20 near capacity"),
        "{said}"
    );
    shot(&c, "alerts").await;

    // 3. Mark it read: the badge drops here and in a second tab.
    let tab1 = c.window().await.unwrap();
    let tab2 = c.new_window(true).await.unwrap().handle;
    c.switch_to_window(tab2.clone()).await.unwrap();
    sign_in(&c, &base, &alice).await;
    until(&c, &shown(&live), Duration::from_secs(5), "tab 2's list").await;
    assert_eq!(badge(&c).await, 2);
    c.switch_to_window(tab1.clone()).await.unwrap();
    click(
        &c,
        &format!("#alerts li[data-id=\"{live}\"] button[aria-label^=\"Mark read\"]"),
    )
    .await;
    until(
        &c,
        "return document.querySelector('#badge').dataset.count === '1'",
        Duration::from_secs(2),
        "badge 1 in tab 1",
    )
    .await;
    c.switch_to_window(tab2.clone()).await.unwrap();
    until(
        &c,
        &format!("return document.querySelector('#badge').dataset.count === '1' && document.querySelector('#alerts li[data-id=\"{live}\"]').dataset.read === 'true'"),
        Duration::from_secs(2),
        "badge 1 and the alert read in tab 2",
    )
    .await;
    c.close_window().await.unwrap();
    c.switch_to_window(tab1).await.unwrap();

    // 4. The server closes the socket (and holds the user off for 8 s):
    //    polling takes over and shows a new alert.
    let closed = rest
        .post(
            "/api/ws/disconnect",
            json!({"user_id": "alice", "retry_after_secs": 8}),
        )
        .await;
    // Tab 1's socket, and tab 2's if the server has not yet seen it close.
    assert!(closed["closed"].as_u64().unwrap() >= 1, "{closed}");
    until(
        &c,
        "return document.querySelector('#mode').dataset.mode === 'polling'",
        Duration::from_secs(2),
        "polling mode",
    )
    .await;
    let polled = rest.raise("Raised while polling", "medium").await;
    until(
        &c,
        &shown(&polled),
        Duration::from_secs(5),
        "the polled alert",
    )
    .await;
    assert_eq!(
        mode(&c).await,
        "polling",
        "shown by polling, not by a new socket"
    );
    until(
        &c,
        "return document.querySelector('#badge').dataset.count === '2'",
        Duration::from_secs(5),
        "badge 2 after the poll",
    )
    .await;
    // More changes while away: the socket's resume must bring them, once.
    let away = rest
        .raise("Raised just before live resumes", "critical")
        .await;

    // 5. Live mode resumes (the hold ends; the client reconnects with its
    //    cursor): no duplicate, no gap.
    until(
        &c,
        "return document.querySelector('#mode').dataset.mode === 'live'",
        Duration::from_secs(30),
        "live again",
    )
    .await;
    until(
        &c,
        &shown(&away),
        Duration::from_secs(5),
        "the alert raised while away",
    )
    .await;
    let after = rest.raise("Raised after resuming", "info").await;
    until(
        &c,
        &shown(&after),
        Duration::from_secs(2),
        "the alert raised after resuming",
    )
    .await;
    let ids = eval(
        &c,
        "return [...document.querySelectorAll('#alerts li')].map(l => l.dataset.id)",
    )
    .await;
    assert_eq!(
        ids,
        json!([after, away, polled, live, first]),
        "each alert once, newest first"
    );
    until(
        &c,
        "return document.querySelector('#badge').dataset.count === '4'",
        Duration::from_secs(2),
        "badge 4",
    )
    .await;

    // The page at 360 px.
    c.set_window_size(360, 800).await.unwrap();
    let overflow = eval(
        &c,
        "return document.documentElement.scrollWidth <= window.innerWidth",
    )
    .await;
    assert_eq!(overflow, json!(true), "no horizontal scrolling at 360 px");
    shot(&c, "alerts-360px").await;
    c.set_window_size(1280, 900).await.unwrap();

    // 6. As an admin: pause a job and trigger it.
    click(&c, "#signout").await;
    sign_in(&c, &base, &rest.admin).await;
    click(&c, "#tab-admin").await;
    until(
        &c,
        "return !!document.querySelector('#jobs tr[data-job=\"sla_watch\"]')",
        Duration::from_secs(5),
        "the jobs table",
    )
    .await;
    click(
        &c,
        "#jobs tr[data-job=\"sla_watch\"] button[aria-label=\"Pause sla_watch\"]",
    )
    .await;
    until(&c, "const r = document.querySelector('#jobs tr[data-job=\"sla_watch\"] [data-state]'); return !!r && r.dataset.state === 'paused'", Duration::from_secs(5), "sla_watch paused").await;
    assert_eq!(
        rest.get("/api/scheduler/jobs/sla_watch").await["paused"],
        true
    );
    click(
        &c,
        "#jobs tr[data-job=\"sla_watch\"] button[aria-label=\"Run sla_watch now\"]",
    )
    .await;
    until(
        &c,
        "return document.querySelectorAll('#runs tbody tr[data-status]').length >= 1",
        Duration::from_secs(5),
        "a run listed",
    )
    .await;
    let runs = rest.get("/api/scheduler/jobs/sla_watch/runs?limit=5").await;
    assert!(
        !runs.as_array().unwrap().is_empty(),
        "the trigger made a run: {runs}"
    );
    until(
        &c,
        "return document.querySelector('#ws-stats').textContent.includes('connections')",
        Duration::from_secs(5),
        "WS stats",
    )
    .await;
    shot(&c, "admin").await;

    // The forecast view draws a chart once a series has data.
    let now = chrono::Utc::now();
    let csv: String = std::iter::once("timestamp,series,value\n".to_owned())
        .chain((0..48).map(|i| {
            let at = now - chrono::Duration::minutes(30 * (48 - i));
            format!("{},vch20,{}\n", at.to_rfc3339(), 50 + (i % 12))
        }))
        .collect();
    let r = rest
        .http
        .post(format!("{base}/api/forecast/upload"))
        .bearer_auth(&rest.admin)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    click(&c, "#tab-forecast").await;
    until(
        &c,
        "return !!document.querySelector('#chart canvas')",
        Duration::from_secs(5),
        "the chart",
    )
    .await;
    shot(&c, "forecast").await;

    c.close().await.unwrap();
}
