//! The reference server's notifications, as a newcomer would try them: the
//! `examples/server` binary started with `SMTP_URL` (the loopback SMTP sink
//! `scripts/test` runs), `SLACK_WEBHOOK_URL` (a local stand-in for Slack)
//! and `ALERTKIT_GROUPS`. A user who sets their email and subscribes to
//! critical `capacity_warning` alerts gets exactly one email per raised
//! alert; the default Slack route gets every high and critical one; bad
//! values stop the server with a line naming the variable.
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

use std::process::Stdio;
use std::time::{Duration, Instant};

use alertkit::Principal;
use alertkit::transport::JwtAuthenticator;
use alertkit_testkit::services::service_url;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "notify-test-secret-notify-test-secret-01";

/// Messages in the SMTP sink's maildir addressed to `to`.
fn mails_to(maildir: &str, to: &str) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(dir) = std::fs::read_dir(format!("{maildir}/{sub}")) else {
            continue;
        };
        for f in dir.flatten() {
            let text = std::fs::read_to_string(f.path()).unwrap_or_default();
            if text.contains(&format!("To: {to}")) {
                out.push(text);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_gets_one_email_per_alert_and_the_team_one_slack_message() {
    let Some(smtp) = service_url("SMTP_URL") else {
        return;
    };
    let maildir = std::env::var("ALERTKIT_MAILDIR").expect("scripts/test sets ALERTKIT_MAILDIR");
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/T/B/X"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    let (mut cmd, addr, dir) = common::command(SECRET);
    cmd.env("SMTP_URL", &smtp)
        .env("SMTP_FROM", "alerts@alertkit.test")
        .env(
            "SLACK_WEBHOOK_URL",
            format!("{}/services/T/B/X", slack.uri()),
        )
        .env("ALERTKIT_ALLOW_PRIVATE_WEBHOOKS", "1")
        .env("ALERTKIT_GROUPS", "planners=alice,dave");
    let server = common::start(cmd, addr.clone(), dir).await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let auth = JwtAuthenticator::hs256(SECRET.as_bytes()).unwrap();
    let token = |p: Principal| auth.issue(&p, Duration::from_secs(600)).unwrap();
    let alice = token(Principal::user("alice").with_groups(["planners"]));
    let admin = token(Principal::admin("root"));
    // A unique address, so other runs' mail in the shared sink does not count.
    let email = format!("alice-{}@example.test", uuid::Uuid::now_v7().simple());

    let put = |url: String, tok: &str, body: Value| {
        http.put(url).bearer_auth(tok.to_owned()).json(&body).send()
    };
    let r = put(
        format!("{base}/api/me/contacts"),
        &alice,
        json!({"email": email}),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = put(
        format!("{base}/api/alerts/subscriptions"),
        &alice,
        json!([{"alert_type": "capacity_warning", "channels": ["in_app", "email"],
                "min_severity": "critical"}]),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let raise = |sev: &str, key: &str| {
        http.post(format!("{base}/api/alerts"))
            .bearer_auth(&admin)
            .json(&json!({"alert_type": "capacity_warning", "severity": sev,
                          "title": format!("{key} over capacity"),
                          "audience": ["group:planners"], "dedup_key": key}))
            .send()
    };
    for key in ["VCH1", "VCH2", "VCH3"] {
        assert_eq!(raise("critical", key).await.unwrap().status().as_u16(), 201);
    }
    // A repeat of a raised alert merges: no second email.
    assert_eq!(
        raise("critical", "VCH1").await.unwrap().status().as_u16(),
        201
    );
    // Too mild for alice's subscription, enough for the Slack route.
    assert_eq!(raise("high", "VCH9").await.unwrap().status().as_u16(), 201);

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mails = mails_to(&maildir, &email).len();
        let posts = slack.received_requests().await.unwrap().len();
        if (mails, posts) == (3, 4) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Give a stray extra message time to show up before counting for good.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mails = mails_to(&maildir, &email);
    assert_eq!(
        mails.len(),
        3,
        "one email per critical alert, none for the repeat"
    );
    for key in ["VCH1", "VCH2", "VCH3"] {
        let subject = format!("Subject: [CRITICAL] {key} over capacity");
        assert_eq!(
            mails.iter().filter(|m| m.contains(&subject)).count(),
            1,
            "{key}"
        );
    }
    let posts = slack.received_requests().await.unwrap();
    let mut texts: Vec<String> = posts
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["text"].to_string())
        .collect();
    texts.sort();
    assert_eq!(
        texts.len(),
        4,
        "the Slack route: 3 critical + 1 high, once each"
    );
    assert!(texts.iter().any(|t| t.contains("[HIGH] VCH9")));
}

#[tokio::test]
async fn bad_notification_settings_stop_the_server_naming_the_variable() {
    for (var, value) in [
        ("SLACK_WEBHOOK_URL", "ftp://hooks.example/x"),
        ("ALERTKIT_GROUPS", "planners"),
        ("SMTP_URL", "smtp://mail.example.com:25"),
        ("ALERTKIT_ALLOW_PRIVATE_WEBHOOKS", "yes"),
    ] {
        let (mut cmd, _addr, dir) = common::command(SECRET);
        cmd.env(var, value).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{var}={value}: the server started instead of refusing");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        let _ = std::fs::remove_dir_all(dir);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {stderr}");
        assert!(stderr.contains(var), "{var}={value}: {stderr}");
    }
}
