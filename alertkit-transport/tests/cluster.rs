//! Two server instances sharing one PostgreSQL schema and one Redis, over
//! real sockets: cross-instance delivery, isolation between users, resume
//! after missed alerts (also while both instances keep writing), and a
//! Redis restart in the middle.
//!
//! The hubs here poll the store only once a minute, so live delivery in
//! these tests can only come through Redis (or, after a Redis outage, the
//! catch-up that the reconnect triggers).
#![cfg(all(feature = "axum", feature = "jwt", feature = "redis"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use alertkit_core::{AlertKit, Audience, NewAlert, Principal, Severity};
use alertkit_storage::PostgresAlertStore;
use alertkit_testkit::services::{OwnRedis, free_port, service_url};
use alertkit_transport::ws::hub::{WsConfig, WsHub};
use alertkit_transport::{JwtAuthenticator, RedisBroadcaster, http};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const SECRET: &[u8] = b"cluster-test-secret-cluster-test-secret!";

struct Instance {
    addr: String,
    kit: AlertKit,
}

struct Cluster {
    a: Instance,
    b: Instance,
    auth: Arc<JwtAuthenticator>,
    _schema: SchemaGuard,
}

/// Drops the test's schema when the test ends, even on panic.
struct SchemaGuard {
    url: String,
    schema: String,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                if let Ok(s) = PostgresAlertStore::builder(url)
                    .schema(schema)
                    .max_connections(1)
                    .connect()
                    .await
                {
                    let _ = s.drop_schema().await;
                    s.close().await;
                }
            });
            Ok::<_, std::io::Error>(())
        })
        .join();
    }
}

async fn instance(
    pg: &str,
    schema: &str,
    redis: &str,
    prefix: &str,
    auth: Arc<JwtAuthenticator>,
) -> Instance {
    let store = PostgresAlertStore::builder(pg)
        .schema(schema)
        .max_connections(8)
        .connect()
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let bus = RedisBroadcaster::builder(redis)
        .prefix(prefix)
        .connect()
        .await
        .unwrap();
    let kit = AlertKit::builder()
        .store(Arc::new(store))
        .broadcaster(Arc::new(bus))
        .build()
        .unwrap();
    let hub = WsHub::new(
        kit.clone(),
        WsConfig {
            poll_every: Duration::from_secs(60),
            ..WsConfig::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = http::router_with_hub(hub, auth, Default::default());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Instance { addr, kit }
}

async fn cluster_on(redis: &str) -> Option<Cluster> {
    let pg = service_url("DATABASE_URL")?;
    let schema = format!("akc_{}", uuid::Uuid::now_v7().simple());
    let guard = SchemaGuard {
        url: pg.clone(),
        schema: schema.clone(),
    };
    let prefix = format!("akc-{}", uuid::Uuid::now_v7().simple());
    let auth = Arc::new(JwtAuthenticator::hs256(SECRET).unwrap());
    let a = instance(&pg, &schema, redis, &prefix, auth.clone()).await;
    let b = instance(&pg, &schema, redis, &prefix, auth.clone()).await;
    Some(Cluster {
        a,
        b,
        auth,
        _schema: guard,
    })
}

async fn cluster() -> Option<Cluster> {
    let redis = service_url("REDIS_URL")?;
    cluster_on(&redis).await
}

impl Cluster {
    async fn connect(&self, on: &Instance, user: &str, cursor: Option<&str>) -> Ws {
        let t = self
            .auth
            .issue(&Principal::user(user), Duration::from_secs(600))
            .unwrap();
        let q = cursor.map(|c| format!("&cursor={c}")).unwrap_or_default();
        let url = format!("ws://{}/ws?token={t}{q}", on.addr);
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let hello = recv(&mut ws).await;
        assert_eq!(hello["type"], "hello", "{hello}");
        ws
    }
}

async fn raise(on: &Instance, title: &str, user: &str) {
    let new =
        NewAlert::new("capacity_warning", Severity::High, title).audience(Audience::user(user));
    on.kit.raise(&Principal::system(), new).await.unwrap();
}

async fn recv_within(ws: &mut Ws, wait: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(wait, ws.next()).await {
            Err(_) => return None,
            Ok(Some(Ok(Message::Text(t)))) => {
                return Some(serde_json::from_str(t.as_str()).unwrap());
            }
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(other) => panic!("expected a text frame, got {other:?}"),
        }
    }
}

async fn recv(ws: &mut Ws) -> Value {
    recv_within(ws, Duration::from_secs(10))
        .await
        .expect("a frame within 10 s")
}

/// The next `alert` frame (skipping `unread` and the like).
async fn next_alert(ws: &mut Ws, wait: Duration) -> Option<Value> {
    loop {
        let f = recv_within(ws, wait).await?;
        if f["type"] == "alert" {
            return Some(f);
        }
    }
}

fn cursor_of(f: &Value) -> u64 {
    f["cursor"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_raised_on_a_reaches_b_and_only_its_user() {
    let Some(c) = cluster().await else { return };
    let mut x = c.connect(&c.b, "x", None).await;
    let mut y = c.connect(&c.b, "y", None).await;
    let mut x_on_a = c.connect(&c.a, "x", None).await;

    raise(&c.a, "for x", "x").await;
    let f = next_alert(&mut x, Duration::from_secs(10))
        .await
        .expect("x on B gets A's alert");
    assert_eq!(
        (f["event"].as_str(), f["alert"]["title"].as_str()),
        (Some("created"), Some("for x"))
    );
    let f = next_alert(&mut x_on_a, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(f["alert"]["title"], "for x");

    raise(&c.b, "for y", "y").await;
    let f = next_alert(&mut y, Duration::from_secs(10))
        .await
        .expect("y gets B's alert");
    assert_eq!(f["alert"]["title"], "for y");
    // Neither ever sees the other's alert.
    assert!(
        next_alert(&mut x, Duration::from_millis(500))
            .await
            .is_none()
    );
    assert!(
        next_alert(&mut x_on_a, Duration::from_millis(100))
            .await
            .is_none()
    );
    assert!(
        next_alert(&mut y, Duration::from_millis(100))
            .await
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_replays_100_missed_alerts_from_both_instances_once_in_order() {
    let Some(c) = cluster().await else { return };
    let mut x = c.connect(&c.a, "x", None).await;
    raise(&c.b, "seen", "x").await;
    let seen = next_alert(&mut x, Duration::from_secs(10)).await.unwrap();
    let cursor = seen["cursor"].as_str().unwrap().to_owned();
    x.close(None).await.unwrap();

    // 100 for x from both instances at once, with y's alerts in between.
    let raises = (0..100u32).map(|i| {
        let on = if i.is_multiple_of(2) { &c.a } else { &c.b };
        async move {
            raise(on, &format!("missed {i}"), "x").await;
            if i.is_multiple_of(10) {
                raise(on, &format!("not for x {i}"), "y").await;
            }
        }
    });
    futures::future::join_all(raises).await;

    // Reconnect to the other instance and resume by message.
    let mut x = c.connect(&c.b, "x", None).await;
    x.send(Message::Text(
        json!({"type": "resume", "cursor": cursor})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let mut titles = Vec::new();
    let mut last = cursor.parse::<u64>().unwrap();
    let resumed = loop {
        let f = recv(&mut x).await;
        match f["type"].as_str() {
            Some("alert") => {
                assert!(cursor_of(&f) > last, "cursors go up: {f}");
                last = cursor_of(&f);
                titles.push(f["alert"]["title"].as_str().unwrap().to_owned());
            }
            Some("resumed") => break f,
            _ => panic!("unexpected {f}"),
        }
    };
    assert_eq!(titles.len(), 100, "{titles:?}");
    let distinct: HashSet<&String> = titles.iter().collect();
    assert_eq!(distinct.len(), 100, "each once");
    assert!(
        titles.iter().all(|t| t.starts_with("missed ")),
        "{titles:?}"
    );
    assert_eq!(resumed["replayed"], 100);
    assert!(cursor_of(&resumed) >= last);

    // And it carries on live, without repeating any of them.
    raise(&c.a, "after", "x").await;
    let f = next_alert(&mut x, Duration::from_secs(10)).await.unwrap();
    assert_eq!(f["alert"]["title"], "after");
    assert!(cursor_of(&f) > last);
    assert!(
        next_alert(&mut x, Duration::from_millis(500))
            .await
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_while_both_instances_keep_writing_has_no_gap_and_no_repeat() {
    let Some(c) = cluster().await else { return };
    let mut x = c.connect(&c.a, "x", None).await;
    raise(&c.a, "first", "x").await;
    let cursor = next_alert(&mut x, Duration::from_secs(10)).await.unwrap()["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    x.close(None).await.unwrap();

    const EACH: usize = 60;
    let writer = |on: &'static str| {
        let inst = if on == "a" { &c.a } else { &c.b };
        async move {
            for i in 0..EACH {
                raise(inst, &format!("{on}{i}"), "x").await;
                if i.is_multiple_of(3) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    };
    let reader = async {
        // Reconnect part-way through the writes, with the cursor in the URL.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut x = c.connect(&c.b, "x", Some(&cursor)).await;
        let mut got = Vec::new();
        let mut last = cursor.parse::<u64>().unwrap();
        while got.len() < 2 * EACH {
            let Some(f) = recv_within(&mut x, Duration::from_secs(10)).await else {
                break;
            };
            if f["type"] == "alert" {
                assert!(cursor_of(&f) > last, "strictly in order: {f}");
                last = cursor_of(&f);
                got.push(f["alert"]["title"].as_str().unwrap().to_owned());
            }
        }
        // Nothing more arrives: no repeats after the last one.
        assert!(
            next_alert(&mut x, Duration::from_millis(500))
                .await
                .is_none()
        );
        got
    };
    let (got, _, _) = futures::join!(reader, writer("a"), writer("b"));
    let distinct: HashSet<&String> = got.iter().collect();
    assert_eq!(got.len(), 2 * EACH, "every alert after the cursor: {got:?}");
    assert_eq!(distinct.len(), 2 * EACH, "each once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_on_b_is_cut_with_4008_while_others_keep_receiving() {
    let Some(c) = cluster().await else { return };
    let mut slow = c.connect(&c.b, "x", None).await;
    let mut reader = c.connect(&c.b, "x", None).await;
    let mut other = c.connect(&c.a, "x", None).await;
    // Raised on A in batches; the reader keeps up, `slow` never reads.
    const BATCHES: usize = 60;
    const BATCH: usize = 100;
    let mut got = 0;
    let mut got_other = 0;
    for b in 0..BATCHES {
        let batch = (0..BATCH)
            .map(|i| {
                NewAlert::new("flood", Severity::Low, format!("flood {b}-{i}"))
                    .message("x".repeat(3000))
                    .audience(Audience::user("x"))
            })
            .collect();
        c.a.kit
            .raise_many(&Principal::system(), batch)
            .await
            .unwrap();
        while got < (b + 1) * BATCH {
            next_alert(&mut reader, Duration::from_secs(20))
                .await
                .unwrap_or_else(|| panic!("the reading client stalled at {got}"));
            got += 1;
        }
        while got_other < (b + 1) * BATCH {
            next_alert(&mut other, Duration::from_secs(20))
                .await
                .unwrap_or_else(|| panic!("the client on A stalled at {got_other}"));
            got_other += 1;
        }
    }
    // The slow client's stream ends with close 4008 before all arrived.
    let mut slow_got = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(20), slow.next()).await {
            Ok(Some(Ok(Message::Text(_)))) => slow_got += 1,
            Ok(Some(Ok(Message::Close(Some(f))))) => {
                assert_eq!(u16::from(f.code), 4008, "{f:?}");
                break;
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("expected close 4008, got {other:?} after {slow_got}"),
        }
    }
    assert!(slow_got < BATCHES * BATCH, "{slow_got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_live_delivery_recovers_and_resume_fills_the_gap() {
    // Needs PostgreSQL; Redis is the test's own.
    if service_url("DATABASE_URL").is_none() {
        return;
    }
    let port = free_port();
    let mut redis = OwnRedis::start(port);
    let c = cluster_on(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap();
    let mut x = c.connect(&c.b, "x", None).await;
    let mut y = c.connect(&c.b, "y", None).await;
    raise(&c.a, "before x", "x").await;
    raise(&c.a, "before y", "y").await;
    assert_eq!(
        next_alert(&mut x, Duration::from_secs(10)).await.unwrap()["alert"]["title"],
        "before x"
    );
    let y_cursor = next_alert(&mut y, Duration::from_secs(10)).await.unwrap()["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    y.close(None).await.unwrap();

    // Redis goes away; A keeps raising (its publishes fail, the store has them).
    redis.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..5 {
        raise(&c.a, &format!("down {i}"), "x").await;
        raise(&c.a, &format!("down {i}"), "y").await;
    }
    let mut redis = OwnRedis::start(port);

    // B's subscription comes back, reports the gap, and its hub catches up
    // from the store: x gets the five it missed, in order.
    let mut got = Vec::new();
    while got.len() < 5 {
        let f = next_alert(&mut x, Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("missed alerts after the restart; got {got:?}"));
        got.push(f["alert"]["title"].as_str().unwrap().to_owned());
    }
    assert_eq!(got, (0..5).map(|i| format!("down {i}")).collect::<Vec<_>>());

    // Live delivery through Redis works again (A's publisher reconnected).
    let mut live = None;
    for attempt in 0..20 {
        raise(&c.a, &format!("live {attempt}"), "x").await;
        if let Some(f) = next_alert(&mut x, Duration::from_millis(500)).await {
            live = Some(f);
            break;
        }
    }
    let live = live.expect("live delivery recovers after the restart");
    assert!(
        live["alert"]["title"]
            .as_str()
            .unwrap()
            .starts_with("live ")
    );

    // y, who was away for all of it, resumes and gets exactly its five.
    let mut y = c.connect(&c.b, "y", Some(&y_cursor)).await;
    let mut replayed = Vec::new();
    loop {
        let f = recv(&mut y).await;
        match f["type"].as_str() {
            Some("alert") => replayed.push(f["alert"]["title"].as_str().unwrap().to_owned()),
            Some("resumed") => break,
            _ => {}
        }
    }
    assert_eq!(
        replayed,
        (0..5).map(|i| format!("down {i}")).collect::<Vec<_>>()
    );
    redis.stop();
}
