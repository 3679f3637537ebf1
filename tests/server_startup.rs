//! Starting the server binary: every bad variable is one line naming it
//! with exit status 2; `--help` lists every variable the sources read;
//! JSON logs carry the request and job spans and the alert id; CORS.
#![cfg(all(
    unix,
    feature = "sqlite",
    feature = "postgres",
    feature = "mongodb",
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

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use alertkit::Principal;
use alertkit::transport::JwtAuthenticator;
use serde_json::{Value, json};

const SECRET: &str = "startup-test-secret-startup-test-secret!";

/// Runs the server with `vars` (on top of a working configuration) and
/// returns its exit status and stderr.
fn run_with(vars: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String, String) {
    let (mut cmd, _addr, dir) = common::command(SECRET);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = cmd.spawn().unwrap().wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(dir);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_bad_variable_is_one_line_naming_it_with_status_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let cases: Vec<(&str, String)> = vec![
        ("DATABASE_URL", "ftp://db.example".into()),
        ("DATABASE_URL", "postgres://127.0.0.1:1/none".into()),
        ("DATABASE_URL", "sqlite:///nonexistent-dir/x/y.db".into()),
        ("REDIS_URL", "not a url".into()),
        ("ALERTKIT_JWT_SECRET", "too-short".into()),
        ("ALERTKIT_LOG_FORMAT", "xml".into()),
        ("ALERTKIT_ADDR", taken_addr.clone()),
        ("ALERTKIT_ADDR", "localhost".into()),
        ("ALERTKIT_RATE_LIMIT", "many".into()),
        (
            "ALERTKIT_CORS_ORIGINS",
            "https://app.example.com/path".into(),
        ),
        ("ALERTKIT_CORS_ORIGINS", "app.example.com".into()),
        ("ALERTKIT_TZ", "Mars/Olympus_Mons".into()),
        ("ALERTKIT_GROUPS", "planners".into()),
        ("SMTP_URL", "carrier-pigeon://coop".into()),
        ("ALERTKIT_ALLOW_PRIVATE_WEBHOOKS", "yes".into()),
        ("ALERTKIT_UPLOAD_MAX_MB", "0".into()),
        ("ALERTKIT_CAPACITY_BOUND", "lower".into()),
        ("ALERTKIT_REPORT_RETENTION_DAYS", "-1".into()),
    ];
    // All at once: the slow ones (a database that does not answer) overlap.
    let runs: Vec<_> = cases
        .iter()
        .map(|(var, value)| {
            let (var, value) = (*var, value.clone());
            std::thread::spawn(move || (var, value.clone(), run_with(&[(var, &value)], &[])))
        })
        .collect();
    for r in runs {
        let (var, value, (code, _out, err)) = r.join().unwrap();
        assert_eq!(
            code,
            Some(2),
            "{var}={value}: status {code:?}, stderr {err:?}"
        );
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{var}={value}: one line, got {err:?}");
        assert!(
            lines[0].starts_with(&format!("alertkit: bad {var}")),
            "{var}={value}: {err:?}"
        );
        for debug in ["panicked", "Error {", "Os {", "kind:", "RUST_BACKTRACE"] {
            assert!(!err.contains(debug), "{var}={value}: debug output {err:?}");
        }
    }
    drop(taken);

    let (code, _, err) = run_with(&[], &["--bogus"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--bogus") && err.contains("--help"), "{err}");
}

/// Every variable named in the server's sources.
fn variables_read() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut stack = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/server"
    ))];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for call in ["env(\"", "number(\"", "var(\""] {
                    for piece in text.split(call).skip(1) {
                        let name: String = piece
                            .chars()
                            .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                            .collect();
                        if piece[name.len()..].starts_with('"') && name.len() > 3 {
                            found.insert(name);
                        }
                    }
                }
            }
        }
    }
    found
}

#[test]
fn help_lists_every_variable_with_its_default() {
    let (code, out, err) = run_with(&[], &["--help"]);
    assert_eq!(code, Some(0), "{err}");
    let read = variables_read();
    assert!(read.len() >= 25, "the scan found the variables: {read:?}");
    for var in &read {
        let line = out
            .lines()
            .position(|l| l.trim_start().starts_with(&format!("{var} ")))
            .unwrap_or_else(|| panic!("--help does not list {var}:\n{out}"));
        let next = out.lines().nth(line + 1).unwrap_or("");
        assert!(
            next.trim_start().starts_with("default:"),
            "{var} has no default line: {next:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_request_span_and_the_alert_id() {
    let (mut cmd, addr, dir) = common::command(SECRET);
    cmd.env("ALERTKIT_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped());
    let mut server = common::start(cmd, addr, dir).await;
    let stdout = server.child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let auth = JwtAuthenticator::hs256(SECRET.as_bytes()).unwrap();
    let admin = auth
        .issue(&Principal::admin("root"), Duration::from_secs(600))
        .unwrap();
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/alerts", server.addr))
        .bearer_auth(&admin)
        .json(&json!({"alert_type": "disk", "severity": "high", "title": "logged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let line = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("no `alert raised` log line within 5 s")
            .expect("the server's stdout closed");
        // Every line is JSON (the banner goes to stdout too; skip it).
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if v["fields"]["message"] == "alert raised" {
            assert_eq!(v["fields"]["alert_id"], json!(id), "{v}");
            assert_eq!(v["span"]["name"], "request", "{v}");
            assert_eq!(v["span"]["route"], "/api/alerts", "{v}");
            assert_eq!(v["span"]["method"], "POST", "{v}");
            assert!(v["level"] == "INFO" && v["timestamp"].is_string(), "{v}");
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_only_the_listed_origins() {
    let (mut cmd, addr, dir) = common::command(SECRET);
    cmd.env(
        "ALERTKIT_CORS_ORIGINS",
        "https://app.example.com, http://localhost:5173",
    );
    let server = common::start(cmd, addr, dir).await;
    let http = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        http.request(
            reqwest::Method::OPTIONS,
            format!("http://{}/api/alerts", server.addr),
        )
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type",
        )
        .send()
    };
    let ok = preflight("https://app.example.com").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let methods = ok.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(methods.contains("POST"), "{methods}");
    assert!(
        ok.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // Unset: no CORS headers at all.
    let (cmd, addr, dir) = common::command(SECRET);
    let plain = common::start(cmd, addr, dir).await;
    let r = http
        .get(format!("http://{}/health", plain.addr))
        .header("Origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_files_are_served_embedded_under_a_strict_policy() {
    let (cmd, addr, dir) = common::command(SECRET);
    let server = common::start(cmd, addr, dir).await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let page = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let h = page.headers().clone();
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = h["content-security-policy"].to_str().unwrap();
    for rule in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(rule), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("/assets/app.js") && !html.contains("<script>"),
        "no inline script"
    );

    let js = http
        .get(format!("{base}/assets/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status().as_u16(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    let etag = js.headers()["etag"].clone();
    let again = http
        .get(format!("{base}/assets/app.js"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 304);
    let lic = http
        .get(format!("{base}/assets/vendor/uPlot.LICENSE"))
        .send()
        .await
        .unwrap();
    assert!(lic.text().await.unwrap().contains("MIT License"));

    // Nothing outside the embedded folder, however the path is spelled.
    for path in [
        "/assets/../Cargo.toml",
        "/assets/..%2fCargo.toml",
        "/assets/%2e%2e/%2e%2e/etc/passwd",
        "/assets/missing.js",
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404, "{path}");
        assert!(!r.text().await.unwrap().contains("[package]"), "{path}");
    }
}
