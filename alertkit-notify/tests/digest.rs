//! Digests end to end with the manual clock: a user on a daily digest gets
//! one message at midnight in their own time zone listing that day's
//! alerts, highest severity first, and nothing for an empty day; a digest
//! failing once is retried whole and still sent once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use alertkit_core::{
    AlertKit, Audience, Channel, Digest, Error, ManualClock, NewAlert, Notification, Notifier,
    Principal, Recipient, Result, Severity, Subscription,
};
use alertkit_notify::{
    Dispatcher, DispatcherConfig, RecordingNotifier, RetryPolicy, StoreDirectory,
};
use alertkit_storage::MemoryAlertStore;
use alertkit_transport::LocalBroadcaster;
use chrono::{DateTime, Utc};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

struct Setup {
    kit: AlertKit,
    clock: Arc<ManualClock>,
    root: Principal,
}

/// An engine on the manual clock; alice (Ho Chi Minh City, UTC+7) wants a
/// daily email digest of everything, bob (UTC) every alert at once.
async fn setup(start: &str) -> Setup {
    let clock = Arc::new(ManualClock::new(utc(start)));
    let kit = AlertKit::builder()
        .store(Arc::new(MemoryAlertStore::new()))
        .clock(clock.clone())
        .broadcaster(Arc::new(LocalBroadcaster::new()))
        .build()
        .unwrap();
    for (user, tz, digest) in [
        ("alice", Some("Asia/Ho_Chi_Minh"), Some(Digest::Daily)),
        ("bob", None, None),
    ] {
        let p = Principal::user(user);
        kit.set_contacts(
            &p,
            Recipient {
                email: Some(format!("{user}@example.test")),
                time_zone: tz.map(str::to_owned),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let mut sub = Subscription::new(user, "*", [Channel::InApp, Channel::Email]);
        sub.digest = digest;
        kit.set_subscriptions(&p, vec![sub]).await.unwrap();
    }
    Setup {
        kit,
        clock,
        root: Principal::admin("root"),
    }
}

impl Setup {
    async fn raise(&self, at: &str, sev: Severity, title: &str) {
        self.clock.set(utc(at));
        self.kit
            .raise(
                &self.root,
                NewAlert::new("capacity_warning", sev, title).audience(Audience::everyone()),
            )
            .await
            .unwrap();
    }

    fn dispatcher(&self, n: Arc<dyn Notifier>, retry: RetryPolicy) -> Dispatcher {
        Dispatcher::builder(
            self.kit.outbox(),
            Arc::new(StoreDirectory::new(self.kit.rule_store())),
        )
        .clock(self.clock.clone())
        .notifier(n)
        .config(DispatcherConfig {
            retry,
            ..Default::default()
        })
        .build()
        .unwrap()
    }

    /// Sets the clock and drains what is due.
    async fn run_at(&self, d: &Dispatcher, at: &str) {
        self.clock.set(utc(at));
        while d.run_once().await.unwrap() > 0 {}
    }
}

/// The titles a digest notification lists, in order.
fn digest_titles(n: &Notification) -> Vec<&str> {
    n.digest
        .as_ref()
        .expect("a digest")
        .alerts
        .iter()
        .map(|a| a.title.as_str())
        .collect()
}

fn to(sent: &[Notification], user: &str) -> Vec<Notification> {
    sent.iter()
        .filter(|n| n.recipient.user_id == user)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_daily_digest_goes_out_once_at_local_midnight_and_not_for_an_empty_day() {
    // 2026-03-02 in Ho Chi Minh City runs from 17:00 UTC on the 1st to 17:00 UTC on the 2nd.
    let s = setup("2026-03-02T02:00:00Z").await;
    s.raise("2026-03-02T02:00:00Z", Severity::Medium, "morning: medium")
        .await;
    s.raise("2026-03-02T05:00:00Z", Severity::Critical, "noon: critical")
        .await;
    s.raise("2026-03-02T16:59:00Z", Severity::High, "23:59 local: high")
        .await;
    let rec = Arc::new(RecordingNotifier::new(Channel::Email));
    let d = s.dispatcher(rec.clone(), RetryPolicy::default());

    s.run_at(&d, "2026-03-02T16:59:59Z").await;
    let sent = rec.sent();
    assert_eq!(to(&sent, "bob").len(), 3, "bob gets each alert at once");
    assert!(to(&sent, "bob").iter().all(|n| n.digest.is_none()));
    assert!(
        to(&sent, "alice").is_empty(),
        "nothing for alice before her midnight"
    );

    // Midnight in Ho Chi Minh City: one message listing the day, most severe first.
    s.run_at(&d, "2026-03-02T17:00:00Z").await;
    let alice = to(&rec.sent(), "alice");
    assert_eq!(alice.len(), 1, "one digest");
    let digest = alice[0].digest.as_ref().expect("a digest");
    assert_eq!(digest.period, Digest::Daily);
    let titles = digest_titles(&alice[0]);
    assert_eq!(
        titles,
        ["noon: critical", "23:59 local: high", "morning: medium"]
    );
    assert_eq!(alice[0].alert.title, "noon: critical");
    assert_eq!(
        alice[0].recipient.email.as_deref(),
        Some("alice@example.test")
    );

    // Next day: one alert after local midnight goes into the next digest only.
    s.raise("2026-03-02T17:30:00Z", Severity::Low, "next day: low")
        .await;
    s.run_at(&d, "2026-03-03T16:00:00Z").await;
    assert_eq!(
        to(&rec.sent(), "alice").len(),
        1,
        "nothing before the next midnight"
    );
    s.run_at(&d, "2026-03-03T17:00:00Z").await;
    let alice = to(&rec.sent(), "alice");
    assert_eq!(alice.len(), 2);
    let titles = digest_titles(&alice[1]);
    assert_eq!(titles, ["next day: low"]);

    // An empty day: nothing at its midnight, nor later.
    s.run_at(&d, "2026-03-04T17:00:00Z").await;
    s.run_at(&d, "2026-03-06T17:00:00Z").await;
    assert_eq!(
        to(&rec.sent(), "alice").len(),
        2,
        "no message for an empty day"
    );
    assert_eq!(to(&rec.sent(), "bob").len(), 4);
}

/// Fails the first `failures` digests with a retryable error, then records.
struct Flaky {
    failures: Mutex<u32>,
    inner: RecordingNotifier,
}

#[async_trait::async_trait]
impl Notifier for Flaky {
    fn channel(&self) -> Channel {
        Channel::Email
    }
    async fn notify(&self, n: &Notification) -> Result<()> {
        {
            let mut f = self.failures.lock().unwrap();
            if *f > 0 && n.digest.is_some() {
                *f -= 1;
                return Err(Error::Unavailable("smtp down".into()));
            }
        }
        self.inner.notify(n).await
    }
}

#[tokio::test]
async fn a_failed_digest_is_retried_whole_with_the_same_id_and_sent_once() {
    let s = setup("2026-03-02T02:00:00Z").await;
    for (i, sev) in [Severity::Info, Severity::High, Severity::Medium]
        .into_iter()
        .enumerate()
    {
        s.raise(&format!("2026-03-02T0{i}:30:00Z"), sev, &format!("a{i}"))
            .await;
    }
    let flaky = Arc::new(Flaky {
        failures: Mutex::new(1),
        inner: RecordingNotifier::new(Channel::Email),
    });
    let retry = RetryPolicy {
        delays: vec![std::time::Duration::from_secs(60)],
        jitter: 0.0,
    };
    let d = s.dispatcher(flaky.clone(), retry);
    s.run_at(&d, "2026-03-02T17:00:00Z").await;
    assert!(
        to(&flaky.inner.sent(), "alice").is_empty(),
        "the first try failed"
    );
    // Before the retry is due nothing goes; at the retry, one whole digest.
    s.run_at(&d, "2026-03-02T17:00:59Z").await;
    assert!(to(&flaky.inner.sent(), "alice").is_empty());
    s.run_at(&d, "2026-03-02T17:01:00Z").await;
    s.run_at(&d, "2026-03-02T18:00:00Z").await;
    let alice = to(&flaky.inner.sent(), "alice");
    assert_eq!(alice.len(), 1, "sent once");
    assert_eq!(alice[0].attempt, 2);
    assert_eq!(alice[0].digest.as_ref().unwrap().alerts.len(), 3, "whole");
    // Every item is sent, each with its two attempts recorded.
    let outbox = s.kit.outbox();
    let items = outbox
        .deliveries_in(alertkit_core::DeliveryStatus::Sent, 100)
        .await
        .unwrap();
    let alice_items: Vec<_> = items.iter().filter(|d| d.user_id == "alice").collect();
    assert_eq!(alice_items.len(), 3);
    for item in alice_items {
        let attempts = outbox.attempts(item.id).await.unwrap();
        let outcomes: Vec<&str> = attempts.iter().map(|a| a.outcome.as_str()).collect();
        assert_eq!(outcomes, ["retry", "sent"]);
    }
    // The message id is the digest's lowest item id, the same on both tries.
    let lowest = items
        .iter()
        .filter(|d| d.user_id == "alice")
        .map(|d| d.id)
        .min()
        .unwrap();
    assert_eq!(alice[0].id, lowest);
}

#[tokio::test]
async fn an_immediate_subscription_on_the_same_channel_wins_over_the_digest() {
    let s = setup("2026-03-02T02:00:00Z").await;
    // Carol wants everything daily, and capacity warnings at once.
    let carol = Principal::user("carol");
    s.kit
        .set_contacts(
            &carol,
            Recipient {
                email: Some("carol@example.test".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut daily = Subscription::new("carol", "*", [Channel::Email]);
    daily.digest = Some(Digest::Daily);
    let now = Subscription::new("carol", "capacity_warning", [Channel::Email]);
    s.kit
        .set_subscriptions(&carol, vec![daily, now])
        .await
        .unwrap();
    s.raise("2026-03-02T03:00:00Z", Severity::High, "cap").await;
    s.clock.set(utc("2026-03-02T03:00:00Z"));
    s.kit
        .raise(
            &s.root,
            NewAlert::new("sla_breached", Severity::High, "sla").audience(Audience::everyone()),
        )
        .await
        .unwrap();
    let rec = Arc::new(RecordingNotifier::new(Channel::Email));
    let d = s.dispatcher(rec.clone(), RetryPolicy::default());
    s.run_at(&d, "2026-03-02T03:00:01Z").await;
    let carol_now = to(&rec.sent(), "carol");
    assert_eq!(carol_now.len(), 1);
    assert_eq!(carol_now[0].alert.title, "cap");
    assert!(carol_now[0].digest.is_none());
    // Her day ends at midnight UTC (no time zone set): the digest holds
    // only the alert she did not get at once.
    s.run_at(&d, "2026-03-03T00:00:00Z").await;
    let carol_all = to(&rec.sent(), "carol");
    assert_eq!(carol_all.len(), 2);
    let titles = digest_titles(&carol_all[1]);
    assert_eq!(titles, ["sla"]);
}
