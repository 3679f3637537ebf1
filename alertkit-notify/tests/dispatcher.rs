//! The dispatcher under faults, counting what the receiving servers
//! actually got: Slack rate limits, SMTP down then up, a dispatcher killed
//! mid-batch, two dispatchers on one PostgreSQL store, dead letters
//! replayed, per-destination pacing.
#![cfg(all(feature = "email", feature = "slack", feature = "webhook"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alertkit_core::{
    Alert, AlertId, AlertStore, Audience, Channel, DeliveryStatus, DeliveryTarget, NewAlert,
    Outbox, Recipient, Severity, Store,
};
use alertkit_notify::{
    Dispatcher, DispatcherConfig, EmailNotifier, RetryPolicy, SlackNotifier, StaticDirectory,
    StoreDirectory, WebhookNotifier,
};
use alertkit_storage::{MemoryAlertStore, PostgresAlertStore};
use alertkit_testkit::services::service_url;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// When each request came, and its `Idempotency-Key`.
type Seen = Arc<Mutex<Vec<(Instant, Option<String>)>>>;

/// Answers with a script of statuses (the last repeats) and records when
/// each request came, and its idempotency key.
#[derive(Clone, Default)]
struct Sink {
    script: Arc<Vec<(u16, Option<&'static str>)>>,
    seen: Seen,
    delay: Duration,
}

impl Sink {
    fn new(script: Vec<(u16, Option<&'static str>)>) -> Self {
        Sink {
            script: Arc::new(script),
            ..Default::default()
        }
    }
    fn seen(&self) -> Vec<(Instant, Option<String>)> {
        self.seen.lock().unwrap().clone()
    }
    fn keys(&self) -> Vec<String> {
        self.seen().into_iter().filter_map(|(_, k)| k).collect()
    }
}

impl Respond for Sink {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut seen = self.seen.lock().unwrap();
        let key = req
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        seen.push((Instant::now(), key));
        let i = (seen.len() - 1).min(self.script.len().saturating_sub(1));
        let (status, retry) = self.script.get(i).copied().unwrap_or((200, None));
        let mut res = ResponseTemplate::new(status).set_delay(self.delay);
        if let Some(r) = retry {
            res = res.insert_header("retry-after", r);
        }
        res
    }
}

async fn sink(s: &Sink) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(s.clone())
        .mount(&server)
        .await;
    server
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        delays: vec![Duration::from_millis(200); 5],
        jitter: 0.0,
    }
}

fn config(per_destination: HashMap<Channel, u32>) -> DispatcherConfig {
    DispatcherConfig {
        batch: 200,
        lease: Duration::from_secs(1),
        poll_every: Duration::from_millis(50),
        concurrency: 16,
        retry: fast_retries(),
        per_destination,
    }
}

fn alert(i: usize) -> Alert {
    NewAlert::new(
        "sla_breached",
        Severity::High,
        format!("ticket {i} breached"),
    )
    .into_alert(AlertId::new(), chrono::Utc::now(), Audience::everyone)
    .unwrap()
}

/// Enqueues `n` alerts, each with a delivery to every target.
async fn enqueue(store: &dyn AlertStore, n: usize, targets: &[DeliveryTarget]) -> Vec<Alert> {
    let items: Vec<_> = (0..n).map(|i| (alert(i), targets.to_vec())).collect();
    let mut out = Vec::new();
    for chunk in items.chunks(500) {
        let raised = store
            .insert_many(chunk.to_vec(), chrono::Utc::now())
            .await
            .unwrap();
        out.extend(raised.into_iter().map(|r| r.alert));
    }
    out
}

async fn count(outbox: &dyn Outbox, status: DeliveryStatus) -> usize {
    outbox.deliveries_in(status, 100_000).await.unwrap().len()
}

/// Waits until `n` deliveries are sent (at most `within`).
async fn until_sent(outbox: &dyn Outbox, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while count(outbox, DeliveryStatus::Sent).await < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} sent in {within:?}; dead: {}",
            count(outbox, DeliveryStatus::Sent).await,
            count(outbox, DeliveryStatus::Dead).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn webhook_users(dir: &StaticDirectory, base: &str, n: usize) -> Vec<DeliveryTarget> {
    (0..n)
        .map(|u| {
            let user = format!("u{u}");
            dir.set(Recipient {
                user_id: user.clone(),
                webhook_url: Some(format!("{base}/hook/{u}")),
                ..Default::default()
            });
            DeliveryTarget::new(user, Channel::Webhook)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_429_with_retry_after_waits_then_succeeds() {
    let s = Sink::new(vec![(429, Some("2")), (200, None)]);
    let slack = sink(&s).await;
    let store = Arc::new(MemoryAlertStore::new());
    let dir = Arc::new(StaticDirectory::new());
    dir.set(Recipient {
        user_id: "ops".into(),
        slack_id: Some(format!("{}/services/T/B/X", slack.uri())),
        ..Default::default()
    });
    enqueue(&*store, 1, &[DeliveryTarget::new("ops", Channel::Slack)]).await;
    let d = Dispatcher::builder(store.clone(), dir)
        .notifier(Arc::new(
            SlackNotifier::new().unwrap().allow_private(true).unwrap(),
        ))
        .config(config(HashMap::new()))
        .build()
        .unwrap();
    let running = d.spawn();
    until_sent(&*store, 1, Duration::from_secs(10)).await;
    running.shutdown().await;
    let seen = s.seen();
    assert_eq!(seen.len(), 2, "one 429, then one success");
    let waited = seen[1].0 - seen[0].0;
    assert!(waited >= Duration::from_secs(2), "waited only {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_then_up_delivers_once() {
    let Some(url) = service_url("SMTP_URL") else {
        return;
    };
    let maildir = std::env::var("ALERTKIT_MAILDIR").unwrap();
    let target = url.trim_start_matches("smtp://").to_owned();
    // A port with nothing behind it yet.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let store = Arc::new(MemoryAlertStore::new());
    let dir = Arc::new(StaticDirectory::new());
    dir.set(Recipient {
        user_id: "alice".into(),
        email: Some("alice@example.test".into()),
        ..Default::default()
    });
    enqueue(&*store, 1, &[DeliveryTarget::new("alice", Channel::Email)]).await;
    let email =
        EmailNotifier::from_url(&format!("smtp://127.0.0.1:{port}"), "a@alertkit.test").unwrap();
    let d = Dispatcher::builder(store.clone(), dir)
        .notifier(Arc::new(email))
        .config(config(HashMap::new()))
        .build()
        .unwrap();
    let running = d.spawn();
    // Down: attempts fail and are rescheduled.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let pending = store
        .deliveries_in(DeliveryStatus::Pending, 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert!(pending[0].attempts >= 2, "{:?}", pending[0]);
    assert!(
        pending[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("SMTP")
    );
    // Up: a proxy to the real SMTP server appears on that port.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let proxy = tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    until_sent(&*store, 1, Duration::from_secs(10)).await;
    running.shutdown().await;
    proxy.abort();
    let id = store.deliveries_in(DeliveryStatus::Sent, 10).await.unwrap()[0].id;
    let mut got = 0;
    for sub in ["new", "cur"] {
        for f in std::fs::read_dir(format!("{maildir}/{sub}"))
            .unwrap()
            .flatten()
        {
            if std::fs::read_to_string(f.path())
                .unwrap_or_default()
                .contains(&format!("<{id}@alertkit>"))
            {
                got += 1;
            }
        }
    }
    assert_eq!(got, 1, "delivered exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_killed_mid_batch_and_restarted_sends_everything() {
    let mut s = Sink::new(vec![(200, None)]);
    s.delay = Duration::from_millis(300);
    let server = sink(&s).await;
    let store = Arc::new(MemoryAlertStore::new());
    let dir = Arc::new(StaticDirectory::new());
    let targets = webhook_users(&dir, &server.uri(), 3);
    enqueue(&*store, 20, &targets).await; // 60 deliveries
    let make = || {
        Dispatcher::builder(store.clone(), dir.clone())
            .notifier(Arc::new(
                WebhookNotifier::new(b"kill-test-secret-kill-test".to_vec())
                    .unwrap()
                    .allow_private(true)
                    .unwrap(),
            ))
            .config(DispatcherConfig {
                batch: 20,
                concurrency: 8,
                ..config(HashMap::new())
            })
            .build()
            .unwrap()
    };
    let first = make().spawn();
    tokio::time::sleep(Duration::from_millis(450)).await;
    first.abort(); // a crash: sends in flight are cut off, leases held
    let sent_before = count(&*store, DeliveryStatus::Sent).await;
    assert!(sent_before < 60, "the crash came mid-batch");
    let second = make().spawn();
    until_sent(&*store, 60, Duration::from_secs(30)).await;
    second.shutdown().await;
    let keys = s.keys();
    let distinct: HashSet<_> = keys.iter().collect();
    assert_eq!(distinct.len(), 60, "every delivery reached the receiver");
    // Only what was on the wire when the process died can come twice, and
    // it carries the same Idempotency-Key, so the receiver drops it.
    assert!(
        keys.len() - distinct.len() <= 8,
        "{} repeats",
        keys.len() - distinct.len()
    );
    assert_eq!(count(&*store, DeliveryStatus::Dead).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_error_dead_letters_and_a_replay_sends_once() {
    let s = Sink::new(vec![(410, None), (200, None)]);
    let server = sink(&s).await;
    let store = Arc::new(MemoryAlertStore::new());
    let dir = Arc::new(StaticDirectory::new());
    let targets = webhook_users(&dir, &server.uri(), 1);
    enqueue(&*store, 1, &targets).await;
    let d = Dispatcher::builder(store.clone(), dir)
        .notifier(Arc::new(
            WebhookNotifier::new(b"dead-letter-secret-dead".to_vec())
                .unwrap()
                .allow_private(true)
                .unwrap(),
        ))
        .config(config(HashMap::new()))
        .build()
        .unwrap();
    assert_eq!(d.run_once().await.unwrap(), 1);
    let dead = store.deliveries_in(DeliveryStatus::Dead, 10).await.unwrap();
    assert_eq!(dead.len(), 1, "410 is permanent: dead at once");
    assert!(dead[0].last_error.as_deref().unwrap().contains("410"));
    assert_eq!(
        d.run_once().await.unwrap(),
        0,
        "dead letters are not retried"
    );
    store
        .retry_delivery(dead[0].id, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(d.run_once().await.unwrap(), 1);
    assert_eq!(count(&*store, DeliveryStatus::Sent).await, 1);
    assert_eq!(s.seen().len(), 2, "one refusal, one success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_messages_to_one_webhook_are_paced_at_one_per_second() {
    let s = Sink::new(vec![(200, None)]);
    let slack = sink(&s).await;
    let store = Arc::new(MemoryAlertStore::new());
    let dir = Arc::new(StaticDirectory::new());
    dir.set(Recipient {
        user_id: "ops".into(),
        slack_id: Some(format!("{}/services/T/B/X", slack.uri())),
        ..Default::default()
    });
    enqueue(&*store, 3, &[DeliveryTarget::new("ops", Channel::Slack)]).await;
    let d = Dispatcher::builder(store.clone(), dir)
        .notifier(Arc::new(
            SlackNotifier::new().unwrap().allow_private(true).unwrap(),
        ))
        .config(config(HashMap::from([(Channel::Slack, 1)])))
        .build()
        .unwrap();
    assert_eq!(d.run_once().await.unwrap(), 3);
    let seen = s.seen();
    assert_eq!(seen.len(), 3);
    let mut at: Vec<_> = seen.iter().map(|(t, _)| *t).collect();
    at.sort();
    for w in at.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(900),
            "{:?}",
            w[1] - w[0]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_on_one_postgres_store_send_5000_once_each() {
    let Some(url) = service_url("DATABASE_URL") else {
        return;
    };
    let schema = format!("aknotify_{}", uuid::Uuid::now_v7().simple());
    let open = || async {
        let s = PostgresAlertStore::builder(&url)
            .schema(&schema)
            .max_connections(8)
            .connect()
            .await
            .unwrap();
        s.migrate().await.unwrap();
        s
    };
    let (a, b) = (open().await, open().await);
    let dropper = a.clone();
    let result = async move {
        let s = Sink::new(vec![(200, None)]);
        let server = sink(&s).await;
        let dir = Arc::new(StaticDirectory::new());
        let targets = webhook_users(&dir, &server.uri(), 5);
        enqueue(&a, 1000, &targets).await; // 5000 deliveries
        let spawn = |store: Arc<dyn Store>| {
            Dispatcher::builder(store, dir.clone())
                .notifier(Arc::new(
                    WebhookNotifier::new(b"two-dispatchers-secret".to_vec())
                        .unwrap()
                        .allow_private(true)
                        .unwrap(),
                ))
                .config(DispatcherConfig {
                    lease: Duration::from_secs(30),
                    ..config(HashMap::new())
                })
                .build()
                .unwrap()
                .spawn()
        };
        let (one, two) = (spawn(Arc::new(a.clone())), spawn(Arc::new(b.clone())));
        until_sent(&a, 5000, Duration::from_secs(240)).await;
        one.shutdown().await;
        two.shutdown().await;
        let keys = s.keys();
        let distinct: HashSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), 5000, "none missing");
        assert_eq!(keys.len(), 5000, "none sent twice");
    };
    let outcome = tokio::spawn(result).await;
    let _ = dropper.drop_schema().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_route_gets_one_message_per_alert_and_one_per_escalation() {
    use alertkit_core::{AlertKit, Destination, NewRoute, Principal};
    let s = Sink::new(vec![(200, None)]);
    let slack = sink(&s).await;
    let store = Arc::new(MemoryAlertStore::new());
    let kit = AlertKit::builder()
        .store(store.clone())
        .broadcaster(Arc::new(quiet_bus::Bus))
        .build()
        .unwrap();
    let admin = Principal::admin("root");
    kit.create_route(
        &admin,
        NewRoute {
            name: "ops".into(),
            enabled: true,
            alert_types: vec!["capacity_warning".into()],
            min_severity: Severity::High,
            tags: vec![],
            destination: Destination::Slack {
                webhook_url: format!("https://example.invalid/{}", "unused"),
            },
        },
    )
    .await
    .unwrap();
    // The route's webhook is the sink (plain http is refused by validation,
    // so it is stored directly, as a migration or an admin tool might).
    let mut route = kit.routes(&admin).await.unwrap().remove(0);
    route.spec.destination = Destination::Slack {
        webhook_url: format!("{}/services/T/B/X", slack.uri()),
    };
    alertkit_core::RuleStore::put_route(&*store, route)
        .await
        .unwrap();
    let raise = |sev, title: &str| {
        NewAlert::new("capacity_warning", sev, title)
            .audience(Audience::everyone())
            .dedup_key("cap:VCH20")
    };
    kit.raise(&admin, raise(Severity::High, "VCH20 at 91%"))
        .await
        .unwrap();
    kit.raise(&admin, raise(Severity::High, "VCH20 at 92%"))
        .await
        .unwrap(); // dedup: nothing new
    kit.raise(&admin, raise(Severity::Critical, "VCH20 at 99%"))
        .await
        .unwrap(); // escalation
    kit.raise(
        &admin,
        NewAlert::new("capacity_warning", Severity::Medium, "below the route")
            .audience(Audience::everyone()),
    )
    .await
    .unwrap();
    let d = Dispatcher::builder(store.clone(), Arc::new(StoreDirectory::new(store.clone())))
        .notifier(Arc::new(
            SlackNotifier::new().unwrap().allow_private(true).unwrap(),
        ))
        .config(config(HashMap::new()))
        .build()
        .unwrap();
    while d.run_once().await.unwrap() > 0 {}
    assert_eq!(s.seen().len(), 2, "the first raise and the escalation");
    assert_eq!(count(&*store, DeliveryStatus::Sent).await, 2);
}

/// In-test broadcasters: one that drops everything, one in process.
mod quiet_bus {
    use std::sync::Arc;

    use alertkit_core::{AlertEvent, Broadcaster, BusMessage, EventStream, Result};
    use futures::StreamExt;

    pub struct Bus;

    /// Events to every subscriber of this process.
    pub struct Local(pub tokio::sync::broadcast::Sender<Arc<AlertEvent>>);

    #[async_trait::async_trait]
    impl Broadcaster for Local {
        async fn publish(&self, e: AlertEvent) -> Result<()> {
            let _ = self.0.send(Arc::new(e));
            Ok(())
        }
        async fn subscribe(&self) -> Result<EventStream> {
            let rx = self.0.subscribe();
            Ok(Box::pin(receiver_stream(rx).map(BusMessage::Event)))
        }
    }

    fn receiver_stream(
        rx: tokio::sync::broadcast::Receiver<Arc<AlertEvent>>,
    ) -> impl futures::Stream<Item = Arc<AlertEvent>> + Send {
        futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(e) => return Some((e, rx)),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return None,
                }
            }
        })
    }

    #[async_trait::async_trait]
    impl Broadcaster for Bus {
        async fn publish(&self, _: AlertEvent) -> Result<()> {
            Ok(())
        }
        async fn subscribe(&self) -> Result<EventStream> {
            Ok(Box::pin(futures::stream::empty()))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raise_wakes_the_dispatcher_without_waiting_for_the_poll() {
    use alertkit_core::{AlertKit, Principal, Subscription};
    let s = Sink::new(vec![(200, None)]);
    let server = sink(&s).await;
    let store = Arc::new(MemoryAlertStore::new());
    let bus = Arc::new(quiet_bus::Local(tokio::sync::broadcast::channel(64).0));
    let kit = AlertKit::builder()
        .store(store.clone())
        .broadcaster(bus.clone())
        .build()
        .unwrap();
    let alice = Principal::user("alice");
    kit.set_contacts(
        &alice,
        Recipient {
            webhook_url: Some(format!("{}/hook", server.uri())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    kit.set_subscriptions(
        &alice,
        vec![Subscription {
            user_id: String::new(),
            alert_type: "sla_breached".into(),
            enabled: true,
            channels: vec![Channel::Webhook],
            min_severity: Severity::Info,
            digest: None,
        }],
    )
    .await
    .unwrap();
    let running = Dispatcher::builder(store.clone(), Arc::new(StoreDirectory::new(store.clone())))
        .notifier(Arc::new(
            WebhookNotifier::new(b"wake-test-secret-wake-test".to_vec())
                .unwrap()
                .allow_private(true)
                .unwrap(),
        ))
        .config(DispatcherConfig {
            poll_every: Duration::from_secs(60),
            ..config(HashMap::new())
        })
        .wake_on(bus)
        .build()
        .unwrap()
        .spawn();
    tokio::time::sleep(Duration::from_millis(200)).await; // the first (empty) round
    let t = Instant::now();
    let n =
        NewAlert::new("sla_breached", Severity::High, "ticket 7").audience(Audience::user("alice"));
    kit.raise(&Principal::system(), n).await.unwrap();
    until_sent(&*store, 1, Duration::from_secs(5)).await;
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "woken by the raise, not the 60 s poll"
    );
    running.shutdown().await;
    assert_eq!(s.seen().len(), 1);
}
