//! Hostile input against the REST API: Schemathesis (PyPI, pinned by
//! `scripts/services.sh`) generates requests from the server's own
//! `/openapi.json` — valid ones, which must be accepted, and invalid ones,
//! which must be refused with a documented 4xx — and checks every answer
//! against the document with its default checks (no 5xx, documented status
//! codes and content types, response schemas, …). It runs once with an
//! admin token and once with a plain user's, against the reference server
//! binary on SQLite, bounded by `--max-examples` and a fixed seed (so a
//! failure is reproducible; `ALERTKIT_SCHEMATHESIS_SEED` picks another).
//!
//! The document must describe the API exactly: the test fails on any
//! failure of any kind. Two rules JSON Schema cannot state are handled by
//! `tests/schemathesis/hooks.py` (an `expires_at` in the future; list
//! cursors are minted by the server). The WebSocket upgrade routes are
//! left out: a plain GET to them is not an upgrade, and
//! `alertkit-transport/tests/ws_fuzz.rs` fuzzes the socket itself.
#![cfg(all(unix, feature = "sqlite", feature = "axum", feature = "jwt"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use alertkit::Principal;
use alertkit::transport::JwtAuthenticator;

const SECRET: &str = "schemathesis-secret-schemathesis-0123456";

/// The Schemathesis CLI: `$SCHEMATHESIS`, else the virtualenv
/// `scripts/services.sh` makes. `None` (after a notice) when neither
/// exists and services are not required.
fn schemathesis() -> Option<PathBuf> {
    let path = std::env::var_os("SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/schemathesis")
        });
    if path.exists() {
        return Some(path);
    }
    assert!(
        !alertkit_testkit::services::services_required(),
        "{} is missing and ALERTKIT_REQUIRE_SERVICES=1: run scripts/services.sh",
        path.display()
    );
    eprintln!("SKIPPED: {} is missing; run scripts/test", path.display());
    None
}

/// One bounded run with `token`; panics with Schemathesis's report on any
/// failure.
fn run(bin: &PathBuf, addr: &str, who: &str, token: &str) {
    let seed = std::env::var("ALERTKIT_SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261125".into());
    let hooks = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis");
    let out = Command::new(bin)
        .args([
            "run",
            &format!("http://{addr}/openapi.json"),
            "--header",
            &format!("Authorization: Bearer {token}"),
            "--exclude-path-regex",
            "^/ws($|/)",
            "--max-examples",
            "40",
            "--seed",
            &seed,
            "--request-timeout",
            "10",
            "--max-failures",
            "20",
            "--no-color",
        ])
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", &hooks)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let summary = report.lines().last().unwrap_or_default();
    eprintln!("schemathesis as {who} (seed {seed}): {summary}");
    assert!(
        out.status.success() && !summary.contains("failure") && !summary.contains("error"),
        "schemathesis as {who} (seed {seed}) found problems:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It did test: every REST operation of the document was reached.
    assert!(
        report.contains("Tested: "),
        "no summary of tested operations:\n{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_accepts_what_its_document_allows_and_refuses_the_rest() {
    let Some(bin) = schemathesis() else { return };
    let (mut cmd, addr, dir) = common::command(SECRET);
    // Schemathesis sends thousands of requests as one user.
    cmd.env("ALERTKIT_RATE_LIMIT", "1000000");
    let server = common::start(cmd, addr.clone(), dir).await;
    let auth = JwtAuthenticator::hs256(SECRET.as_bytes()).unwrap();
    let day = Duration::from_secs(24 * 3600);
    let admin = auth.issue(&Principal::admin("admin"), day).unwrap();
    let user = auth
        .issue(&Principal::user("demo").with_groups(["planners"]), day)
        .unwrap();
    let addr2 = addr.clone();
    tokio::task::spawn_blocking(move || {
        run(&bin, &addr2, "admin", &admin);
        run(&bin, &addr2, "user", &user);
    })
    .await
    .unwrap();
    // And the server is still healthy afterwards.
    let health = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    drop(server);
}
