//! The notifiers against real receivers: a wiremock stand-in for Slack and
//! webhook endpoints, and the loopback SMTP server `scripts/test` runs
//! (aiosmtpd, writing a maildir).
#![cfg(all(feature = "email", feature = "slack", feature = "webhook"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use alertkit_core::{
    AlertId, Audience, Channel, ErrorKind, NewAlert, Notification, Notifier, Recipient, Severity,
};
use alertkit_notify::webhook::{DEFAULT_TOLERANCE, verify};
use alertkit_notify::{EmailNotifier, SlackNotifier, Template, WebhookNotifier};
use alertkit_testkit::services::service_url;
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &[u8] = b"webhook-test-secret-32-bytes-long!";

fn notification(recipient: Recipient, channel: Channel) -> Notification {
    let alert = NewAlert::new("capacity_warning", Severity::Critical, "VCH20 at 97%")
        .message("Forecast crosses capacity at 14:00")
        .tags(["VCH20", "hanoi"])
        .into_alert(AlertId::new(), chrono::Utc::now(), || {
            Audience::group("planners")
        })
        .unwrap();
    Notification {
        id: uuid::Uuid::now_v7(),
        alert,
        recipient,
        channel,
        attempt: 1,
        digest: None,
    }
}

fn to_webhook(url: String) -> Recipient {
    Recipient {
        user_id: "alice".into(),
        webhook_url: Some(url),
        ..Default::default()
    }
}

// ---- webhook -------------------------------------------------------------------------------

#[tokio::test]
async fn webhook_posts_signed_json_that_verifies() {
    let sink = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&sink)
        .await;
    let n = notification(to_webhook(format!("{}/hook", sink.uri())), Channel::Webhook);
    WebhookNotifier::new(SECRET)
        .unwrap()
        .allow_private(true)
        .unwrap()
        .notify(&n)
        .await
        .unwrap();
    let req = &sink.received_requests().await.unwrap()[0];
    let h = |k: &str| req.headers.get(k).unwrap().to_str().unwrap().to_owned();
    assert_eq!(h("idempotency-key"), n.id.to_string());
    assert_eq!(h("content-type"), "application/json");
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["delivery_id"], json!(n.id));
    assert_eq!(body["alert"]["title"], "VCH20 at 97%");
    assert_eq!(body["alert"]["severity"], "critical");
    // The documented recipe verifies it; a changed byte, another secret or
    // an old timestamp does not.
    let (ts, sig) = (h("x-alertkit-timestamp"), h("x-alertkit-signature"));
    let now = chrono::Utc::now();
    assert!(verify(SECRET, &ts, &req.body, &sig, now, DEFAULT_TOLERANCE));
    let mut tampered = req.body.clone();
    tampered[10] ^= 1;
    assert!(!verify(
        SECRET,
        &ts,
        &tampered,
        &sig,
        now,
        DEFAULT_TOLERANCE
    ));
    assert!(!verify(
        b"another-secret-another-secret!!",
        &ts,
        &req.body,
        &sig,
        now,
        DEFAULT_TOLERANCE
    ));
    let later = now + chrono::Duration::minutes(10);
    assert!(
        !verify(SECRET, &ts, &req.body, &sig, later, DEFAULT_TOLERANCE),
        "replay window"
    );
    assert!(!verify(
        SECRET,
        &ts,
        &req.body,
        "v1=zz",
        now,
        DEFAULT_TOLERANCE
    ));
}

#[tokio::test]
async fn webhook_errors_map_to_retry_classes() {
    let sink = MockServer::start().await;
    let cases = [
        (429, Some("7"), ErrorKind::RateLimited, Some(7)),
        (503, None, ErrorKind::Unavailable, None),
        (408, None, ErrorKind::Unavailable, None),
        (410, None, ErrorKind::Invalid, None),
        (400, None, ErrorKind::Invalid, None),
    ];
    let notifier = WebhookNotifier::new(SECRET)
        .unwrap()
        .allow_private(true)
        .unwrap();
    for (status, retry, kind, wait) in cases {
        let p = format!("/s{status}");
        let mut res = ResponseTemplate::new(status);
        if let Some(r) = retry {
            res = res.insert_header("retry-after", r);
        }
        Mock::given(path(p.clone()))
            .respond_with(res)
            .mount(&sink)
            .await;
        let n = notification(to_webhook(format!("{}{p}", sink.uri())), Channel::Webhook);
        let e = notifier.notify(&n).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{status}");
        assert_eq!(e.retry_after(), wait.map(Duration::from_secs), "{status}");
        assert_eq!(e.is_retryable(), kind != ErrorKind::Invalid, "{status}");
    }
    // Nobody listening: retryable. Not http(s), or no URL: permanent.
    let closed = notification(
        to_webhook("http://127.0.0.1:9/hook".into()),
        Channel::Webhook,
    );
    assert!(notifier.notify(&closed).await.unwrap_err().is_retryable());
    let ftp = notification(to_webhook("ftp://127.0.0.1/x".into()), Channel::Webhook);
    assert_eq!(
        notifier.notify(&ftp).await.unwrap_err().kind(),
        ErrorKind::Invalid
    );
    let none = notification(Recipient::default(), Channel::Webhook);
    assert_eq!(
        notifier.notify(&none).await.unwrap_err().kind(),
        ErrorKind::Invalid
    );
}

// ---- Slack ---------------------------------------------------------------------------------

fn slack_to(id: &str) -> Recipient {
    Recipient {
        user_id: "alice".into(),
        slack_id: Some(id.into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn slack_webhook_gets_block_kit_with_severity_colour() {
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/T/B/X"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&slack)
        .await;
    let notifier = SlackNotifier::new()
        .unwrap()
        .allow_private(true)
        .unwrap()
        .default_webhook(format!("{}/services/T/B/X", slack.uri()))
        .unwrap()
        .template(Template::with_app_url("https://alerts.test"));
    let n = notification(
        Recipient {
            user_id: "team".into(),
            ..Default::default()
        },
        Channel::Slack,
    );
    notifier.notify(&n).await.unwrap();
    let body: Value =
        serde_json::from_slice(&slack.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(body["text"], "[CRITICAL] VCH20 at 97%");
    let att = &body["attachments"][0];
    assert_eq!(att["color"], "#E01E5A");
    let blocks = att["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["text"], "VCH20 at 97%");
    assert_eq!(
        blocks[1]["text"]["text"],
        "Forecast crosses capacity at 14:00"
    );
    let fields = blocks[2]["fields"].to_string();
    assert!(fields.contains("capacity_warning") && fields.contains("VCH20, hanoi"));
    let link = blocks.last().unwrap()["elements"][0]["url"]
        .as_str()
        .unwrap();
    assert_eq!(link, format!("https://alerts.test/alerts/{}", n.alert.id));
}

#[tokio::test]
async fn slack_webhook_errors_map_to_retry_classes() {
    let slack = MockServer::start().await;
    let cases: [(u16, &str, Option<&str>, ErrorKind); 5] = [
        (429, "rate_limited", Some("2"), ErrorKind::RateLimited),
        (500, "", None, ErrorKind::Unavailable),
        (400, "invalid_payload", None, ErrorKind::Invalid),
        (404, "channel_not_found", None, ErrorKind::Invalid),
        (403, "invalid_token", None, ErrorKind::Invalid),
    ];
    let notifier = SlackNotifier::new().unwrap().allow_private(true).unwrap();
    for (status, text, retry, kind) in cases {
        let p = format!("/services/{status}");
        let mut res = ResponseTemplate::new(status).set_body_string(text);
        if let Some(r) = retry {
            res = res.insert_header("retry-after", r);
        }
        Mock::given(path(p.clone()))
            .respond_with(res)
            .mount(&slack)
            .await;
        let n = notification(slack_to(&format!("{}{p}", slack.uri())), Channel::Slack);
        let e = notifier.notify(&n).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{status} {text}");
        if status == 429 {
            assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
        }
    }
}

#[tokio::test]
async fn slack_api_posts_to_member_ids_and_maps_api_errors() {
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .and(header("authorization", "Bearer xoxb-test"))
        .and(body_partial_json(json!({"channel": "U123"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&slack)
        .await;
    for (channel, answer, kind) in [
        (
            "C404",
            json!({"ok": false, "error": "channel_not_found"}),
            ErrorKind::Invalid,
        ),
        (
            "CAUTH",
            json!({"ok": false, "error": "invalid_auth"}),
            ErrorKind::Invalid,
        ),
        (
            "CBAD",
            json!({"ok": false, "error": "invalid_payload"}),
            ErrorKind::Invalid,
        ),
        (
            "CFAIL",
            json!({"ok": false, "error": "internal_error"}),
            ErrorKind::Unavailable,
        ),
    ] {
        Mock::given(path("/api/chat.postMessage"))
            .and(body_partial_json(json!({"channel": channel})))
            .respond_with(ResponseTemplate::new(200).set_body_json(answer))
            .mount(&slack)
            .await;
        let notifier = SlackNotifier::new()
            .unwrap()
            .allow_private(true)
            .unwrap()
            .bot_token("xoxb-test")
            .api_base(format!("{}/api", slack.uri()));
        let e = notifier
            .notify(&notification(slack_to(channel), Channel::Slack))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), kind, "{channel}");
    }
    Mock::given(path("/api/chat.postMessage"))
        .and(body_partial_json(json!({"channel": "CSLOW"})))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "3")
                .set_body_json(json!({"ok": false, "error": "ratelimited"})),
        )
        .mount(&slack)
        .await;
    let notifier = SlackNotifier::new()
        .unwrap()
        .allow_private(true)
        .unwrap()
        .bot_token("xoxb-test")
        .api_base(format!("{}/api", slack.uri()));
    let e = notifier
        .notify(&notification(slack_to("CSLOW"), Channel::Slack))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.retry_after()),
        (ErrorKind::RateLimited, Some(Duration::from_secs(3)))
    );
    notifier
        .notify(&notification(slack_to("U123"), Channel::Slack))
        .await
        .unwrap();
    // A member id without a bot token cannot be reached: permanent.
    let no_token = SlackNotifier::new().unwrap().allow_private(true).unwrap();
    let e = no_token
        .notify(&notification(slack_to("U123"), Channel::Slack))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
}

// ---- email ---------------------------------------------------------------------------------

/// The messages in the SMTP sink's maildir whose Message-ID names `id`.
pub fn received(maildir: &str, id: uuid::Uuid) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(dir) = std::fs::read_dir(format!("{maildir}/{sub}")) else {
            continue;
        };
        for f in dir.flatten() {
            let text = std::fs::read_to_string(f.path()).unwrap_or_default();
            if text.contains(&format!("<{id}@alertkit>")) {
                out.push(text);
            }
        }
    }
    out
}

/// The messages for `id` once at least one has arrived (at most 5 s).
async fn wait_for_mail(maildir: &str, id: uuid::Uuid) -> Vec<String> {
    let mut got = Vec::new();
    for _ in 0..50 {
        got = received(maildir, id);
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    got
}

#[tokio::test]
async fn email_arrives_with_both_bodies_and_a_stable_message_id() {
    let Some(url) = service_url("SMTP_URL") else {
        return;
    };
    let maildir = std::env::var("ALERTKIT_MAILDIR").expect("scripts/test sets ALERTKIT_MAILDIR");
    let notifier = EmailNotifier::from_url(&url, "Alertkit <alerts@alertkit.test>")
        .unwrap()
        .template(Template::with_app_url("https://alerts.test"));
    let to = Recipient {
        user_id: "alice".into(),
        email: Some("alice@example.test".into()),
        ..Default::default()
    };
    let n = notification(to, Channel::Email);
    notifier.notify(&n).await.unwrap();
    let got = wait_for_mail(&maildir, n.id).await;
    assert_eq!(got.len(), 1, "exactly one message");
    let m = &got[0];
    assert!(m.contains("To: alice@example.test"), "{m}");
    assert!(m.contains("From: Alertkit <alerts@alertkit.test>"));
    assert!(m.contains("Subject: [CRITICAL] VCH20 at 97%"));
    assert!(m.contains(&format!("Message-ID: <{}@alertkit>", n.id)));
    assert!(m.contains("multipart/alternative"));
    assert!(m.contains("text/plain") && m.contains("text/html"));
    assert!(m.contains("Forecast crosses capacity at 14:00"));
    assert!(m.contains(&format!("https://alerts.test/alerts/{}", n.alert.id)));
    // A bad address is permanent; a server that is not there is retryable.
    let bad = Recipient {
        user_id: "bob".into(),
        email: Some("not an address".into()),
        ..Default::default()
    };
    let e = notifier
        .notify(&notification(bad, Channel::Email))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    let down = EmailNotifier::from_url("smtp://127.0.0.1:9", "a@alertkit.test").unwrap();
    let to = Recipient {
        user_id: "alice".into(),
        email: Some("alice@example.test".into()),
        ..Default::default()
    };
    assert!(
        down.notify(&notification(to, Channel::Email))
            .await
            .unwrap_err()
            .is_retryable()
    );
}

#[tokio::test]
async fn private_and_loopback_destinations_are_refused_unless_allowed() {
    let sink = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&sink)
        .await;
    let strict_hook = WebhookNotifier::new(SECRET).unwrap();
    let strict_slack = SlackNotifier::new().unwrap();
    let port = sink.address().port();
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://localhost:{port}/hook"),
        format!("http://[::1]:{port}/hook"),
        "http://10.1.2.3/hook".to_owned(),
        "http://192.168.0.10/hook".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://100.64.0.1/hook".to_owned(),
        "http://[::ffff:127.0.0.1]/hook".to_owned(),
    ] {
        let e = strict_hook
            .notify(&notification(to_webhook(url.clone()), Channel::Webhook))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{url}: {e}");
        let e = strict_slack
            .notify(&notification(slack_to(&url), Channel::Slack))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{url}: {e}");
    }
    assert!(
        sink.received_requests().await.unwrap().is_empty(),
        "nothing reached the sink"
    );
    // Allowed explicitly (tests, closed networks): it goes through.
    let open = WebhookNotifier::new(SECRET)
        .unwrap()
        .allow_private(true)
        .unwrap();
    open.notify(&notification(
        to_webhook(format!("http://127.0.0.1:{port}/hook")),
        Channel::Webhook,
    ))
    .await
    .unwrap();
    assert_eq!(sink.received_requests().await.unwrap().len(), 1);
    for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
        assert!(
            alertkit_notify::http::is_public(ip.parse().unwrap()),
            "{ip}"
        );
    }
}

// ---- digests -------------------------------------------------------------------------------

/// A daily digest of three alerts, most severe first, one title hostile.
fn digest_notification(recipient: Recipient, channel: Channel) -> Notification {
    let mk = |sev, title: &str| {
        NewAlert::new("capacity_warning", sev, title)
            .into_alert(AlertId::new(), chrono::Utc::now(), Audience::everyone)
            .unwrap()
    };
    let alerts = vec![
        mk(Severity::Critical, "VCH20 at 97%"),
        mk(Severity::High, "VCH21 <b>near</b> & <!here>"),
        mk(Severity::Medium, "VCH22 at 80%"),
    ];
    let mut n = Notification::single(
        uuid::Uuid::now_v7(),
        alerts[0].clone(),
        recipient,
        channel,
        1,
    );
    n.digest = Some(alertkit_notify::DigestBatch {
        period: alertkit_core::Digest::Daily,
        alerts,
    });
    n
}

#[tokio::test]
async fn a_digest_email_lists_the_alerts_most_severe_first_in_both_bodies() {
    let Some(url) = service_url("SMTP_URL") else {
        return;
    };
    let maildir = std::env::var("ALERTKIT_MAILDIR").expect("scripts/test sets ALERTKIT_MAILDIR");
    let notifier = EmailNotifier::from_url(&url, "alerts@alertkit.test")
        .unwrap()
        .template(Template::with_app_url("https://alerts.test"));
    let to = Recipient {
        user_id: "alice".into(),
        email: Some("alice@example.test".into()),
        ..Default::default()
    };
    let n = digest_notification(to, Channel::Email);
    notifier.notify(&n).await.unwrap();
    let got = wait_for_mail(&maildir, n.id).await;
    assert_eq!(got.len(), 1, "exactly one message");
    // Undo quoted-printable's soft line breaks and `=3D`, as a mail reader would.
    let m = &got[0]
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    assert!(
        m.contains("Subject: Daily digest: 3 alerts (1 critical, 1 high, 1 medium)"),
        "{m}"
    );
    assert!(m.contains(&format!("Message-ID: <{}@alertkit>", n.id)));
    let (c, h, md) = (
        m.find("[CRITICAL] VCH20").expect("critical line"),
        m.find("[HIGH] VCH21").expect("high line"),
        m.find("[MEDIUM] VCH22").expect("medium line"),
    );
    assert!(c < h && h < md, "most severe first in the text body");
    assert!(
        m.contains("VCH21 &lt;b&gt;near&lt;/b&gt; &amp;"),
        "escaped in HTML"
    );
    let d = n.digest.as_ref().unwrap();
    assert!(m.contains(&format!("https://alerts.test/alerts/{}", d.alerts[2].id)));
}

#[tokio::test]
async fn a_digest_goes_to_slack_as_one_message_and_to_webhooks_signed() {
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(2)
        .mount(&slack)
        .await;
    SlackNotifier::new()
        .unwrap()
        .allow_private(true)
        .unwrap()
        .default_webhook(format!("{}/services/T/B/X", slack.uri()))
        .unwrap()
        .template(Template::with_app_url("https://alerts.test"))
        .notify(&digest_notification(
            Recipient {
                user_id: "team".into(),
                ..Default::default()
            },
            Channel::Slack,
        ))
        .await
        .unwrap();
    let reqs = slack.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(
        body["text"],
        "Daily digest: 3 alerts (1 critical, 1 high, 1 medium)"
    );
    let att = &body["attachments"][0];
    assert_eq!(att["color"], "#E01E5A", "coloured by the most severe");
    let blocks = att["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 4, "a header and one line per alert");
    let lines: Vec<String> = blocks[1..]
        .iter()
        .map(|b| b["text"]["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(lines[0].starts_with("*critical*") && lines[0].contains("VCH20"));
    assert!(
        lines[1].contains("VCH21 &lt;b&gt;near&lt;/b&gt; &amp; &lt;!here&gt;"),
        "a title cannot mention @here or forge a link: {}",
        lines[1]
    );
    assert!(lines[2].starts_with("*medium*"));

    let n = digest_notification(
        to_webhook(format!("{}/hook", slack.uri())),
        Channel::Webhook,
    );
    WebhookNotifier::new(SECRET)
        .unwrap()
        .allow_private(true)
        .unwrap()
        .notify(&n)
        .await
        .unwrap();
    let reqs = slack.received_requests().await.unwrap();
    let req = &reqs[1];
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["digest"]["period"], "daily");
    let titles: Vec<&str> = body["digest"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles[0], "VCH20 at 97%");
    assert_eq!(titles.len(), 3);
    let h = |k: &str| req.headers.get(k).unwrap().to_str().unwrap().to_owned();
    assert_eq!(h("idempotency-key"), n.id.to_string());
    assert!(verify(
        SECRET,
        &h("x-alertkit-timestamp"),
        &req.body,
        &h("x-alertkit-signature"),
        chrono::Utc::now(),
        DEFAULT_TOLERANCE
    ));
}

#[tokio::test]
async fn the_smtp_health_check_reports_reachability_and_caches_its_probe() {
    use alertkit_core::{ComponentStatus, HealthCheck};
    let Some(url) = service_url("SMTP_URL") else {
        return;
    };
    let up = EmailNotifier::from_url(&url, "a@alertkit.test")
        .unwrap()
        .health_check();
    assert_eq!(up.name(), "smtp");
    let h = up.check().await;
    assert_eq!(h.status, ComponentStatus::Ok, "{h:?}");
    assert_eq!(h.error, None);

    // A closed port: degraded with the reason, and the answer is reused
    // (no second probe) within 30 s, so it still says so once the port opens.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let down = EmailNotifier::from_url(&format!("smtp://127.0.0.1:{port}"), "a@alertkit.test")
        .unwrap()
        .health_check();
    let h = down.check().await;
    assert_eq!(h.status, ComponentStatus::Degraded);
    assert!(h.error.as_deref().unwrap().contains("SMTP"), "{h:?}");
    let _reopened = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let again = down.check().await;
    assert_eq!(
        again.status,
        ComponentStatus::Degraded,
        "cached, not probed again"
    );
    assert!(again.details.contains_key("checked_seconds_ago"));
}
