//! Starting the reference server binary as a real process, for the
//! process-level tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `target/<profile>/examples/server`, next to this test's `deps/` directory.
pub fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let bin = profile_dir.join("examples").join("server");
    assert!(
        bin.exists(),
        "{} is missing: cargo test builds examples; run through cargo test",
        bin.display()
    );
    bin
}

/// A running server process, killed when dropped, with its scratch directory.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The server's command on a fresh SQLite file and a free port, with
/// `secret` and no Redis; the caller adds variables and spawns it.
pub fn command(secret: &str) -> (Command, String, PathBuf) {
    let dir = std::env::temp_dir().join(format!("alertkit-proc-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let db = format!("sqlite://{}?mode=rwc", dir.join("server.db").display());
    let mut cmd = Command::new(server_binary());
    cmd.env("ALERTKIT_ADDR", &addr)
        .env("DATABASE_URL", &db)
        .env("ALERTKIT_JWT_SECRET", secret)
        .env_remove("REDIS_URL")
        .env_remove("SMTP_URL")
        .env_remove("SLACK_WEBHOOK_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    (cmd, addr, dir)
}

/// Spawns `cmd` and waits (at most 10 s) until `/health` answers 200.
pub async fn start(mut cmd: Command, addr: String, dir: PathBuf) -> Server {
    let server = Server {
        child: cmd.spawn().unwrap(),
        addr,
        dir,
    };
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = http
            .get(format!("http://{}/health", server.addr))
            .send()
            .await
        {
            assert_eq!(r.status().as_u16(), 200);
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not answer /health within 10 s");
}

/// A database of its own on the test PostgreSQL, dropped afterwards.
pub struct PgDb {
    admin_url: String,
    name: String,
    /// Its URL.
    pub url: String,
}

impl PgDb {
    /// Creates `alertkit_<what>_<uuid>`; `None` when PostgreSQL is not
    /// configured (and not required).
    pub async fn create(what: &str) -> Option<PgDb> {
        let admin_url = alertkit_testkit::services::service_url("DATABASE_URL")?;
        let name = format!("alertkit_{what}_{}", uuid::Uuid::now_v7().simple());
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let base = admin_url.rsplit_once('/').unwrap().0.to_owned();
        let url = format!("{base}/{name}");
        Some(PgDb {
            admin_url,
            name,
            url,
        })
    }

    /// Drops it.
    pub async fn drop_db(self) {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&self.admin_url)
            .await
            .unwrap();
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut conn)
        .await;
    }
}

/// Messages in the SMTP sink's maildir whose text contains `to` (an
/// address, or the part of addresses unique to one run), by the alert title
/// they carry (`prefix` and six digits, one title per message): title →
/// the `Message-ID` of each message received, duplicates included.
pub fn mails_by_title(
    maildir: &str,
    to: &str,
    prefix: &str,
) -> std::collections::HashMap<String, Vec<String>> {
    let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
    let len = prefix.len() + 6;
    for sub in ["new", "cur"] {
        let Ok(dir) = std::fs::read_dir(format!("{maildir}/{sub}")) else {
            continue;
        };
        for f in dir.flatten() {
            let text = std::fs::read_to_string(f.path()).unwrap_or_default();
            if !text.contains(to) {
                continue;
            }
            let titles: std::collections::BTreeSet<&str> = text
                .match_indices(prefix)
                .filter_map(|(i, _)| text.get(i..i + len))
                .filter(|t| t[prefix.len()..].bytes().all(|b| b.is_ascii_digit()))
                .collect();
            assert_eq!(titles.len(), 1, "one alert per message: {titles:?}");
            let id = text
                .lines()
                .find_map(|l| {
                    l.strip_prefix("Message-ID: ")
                        .or_else(|| l.strip_prefix("Message-Id: "))
                })
                .unwrap_or_else(|| panic!("a message without Message-ID:\n{text}"))
                .trim()
                .to_owned();
            let t = titles.into_iter().next().unwrap_or_default().to_owned();
            out.entry(t).or_default().push(id);
        }
    }
    out
}

/// Every alert of `alert_type` that `token`'s holder may see, through
/// `GET /api/alerts`, page by page.
pub async fn list_alerts(
    http: &reqwest::Client,
    addr: &str,
    token: &str,
    alert_type: &str,
) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("http://{addr}/api/alerts?alert_type={alert_type}&limit=200");
        if let Some(c) = &cursor {
            // Opaque: encode what a query string cannot carry as it is.
            let c = c
                .replace('%', "%25")
                .replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D");
            url.push_str(&format!("&cursor={c}"));
        }
        let page: serde_json::Value = http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        out.extend(page["alerts"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) if page["has_more"] == true => cursor = Some(c.to_owned()),
            _ => return out,
        }
    }
}

/// Gives each user `<prefix><k>` (k below `users`) the email address
/// `<prefix><k><suffix>` and subscribes them to `alert_type` (high and
/// above) by email, through the server's REST API. `token` mints a token
/// for a user id.
pub async fn subscribe_by_email(
    http: &reqwest::Client,
    addr: &str,
    token: impl Fn(&str) -> String,
    (prefix, users, suffix): (&str, usize, &str),
    alert_type: &str,
) {
    for k in 0..users {
        let tok = token(&format!("{prefix}{k}"));
        for (path, body) in [
            (
                "/api/me/contacts",
                serde_json::json!({"email": format!("{prefix}{k}{suffix}")}),
            ),
            (
                "/api/alerts/subscriptions",
                serde_json::json!([{"alert_type": alert_type, "channels": ["in_app", "email"],
                                    "min_severity": "high"}]),
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
}
