//! The WebSocket endpoint over real sockets.
#![cfg(all(feature = "axum", feature = "jwt"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use alertkit_core::{AlertKit, Audience, NewAlert, Permission, Principal, Severity};
use alertkit_storage::MemoryAlertStore;
use alertkit_transport::ws::hub::{WsConfig, WsHub};
use alertkit_transport::{JwtAuthenticator, LocalBroadcaster, http};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const SECRET: &[u8] = b"ws-test-secret-ws-test-secret-ws-test!";

struct Env {
    addr: String,
    kit: AlertKit,
    auth: Arc<JwtAuthenticator>,
    hub: WsHub,
}

impl Env {
    fn token(&self, p: Principal) -> String {
        self.auth.issue(&p, Duration::from_secs(600)).unwrap()
    }
    async fn connect(&self, path: &str) -> Ws {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}{path}", self.addr))
            .await
            .unwrap();
        ws
    }
    async fn connect_as(&self, user: &str) -> Ws {
        let t = self.token(Principal::user(user).with_groups(["ops"]));
        self.connect(&format!("/ws?token={t}")).await
    }
}

async fn start() -> Env {
    start_with(WsConfig::default()).await
}

async fn start_with(config: WsConfig) -> Env {
    let kit = AlertKit::builder()
        .store(Arc::new(MemoryAlertStore::new()))
        .broadcaster(Arc::new(LocalBroadcaster::new()))
        .build()
        .unwrap();
    let auth = Arc::new(JwtAuthenticator::hs256(SECRET).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let hub = WsHub::new(kit.clone(), config);
    let app = http::router_with_hub(hub.clone(), auth.clone(), Default::default());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Env {
        addr,
        kit,
        auth,
        hub,
    }
}

async fn recv(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).unwrap(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

async fn quiet(ws: &mut Ws) {
    match tokio::time::timeout(Duration::from_millis(300), ws.next()).await {
        Err(_) => {}
        Ok(other) => panic!("expected nothing, got {other:?}"),
    }
}

async fn raise(env: &Env, title: &str, audience: Audience) -> String {
    let new = NewAlert::new("capacity_warning", Severity::High, title).audience(audience);
    env.kit
        .raise(&Principal::system(), new)
        .await
        .unwrap()
        .alert
        .id
        .to_string()
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

#[tokio::test]
async fn hello_then_only_visible_events() {
    let env = start().await;
    raise(&env, "before", Audience::user("alice")).await;
    let mut alice = env.connect_as("alice").await;
    let hello = recv(&mut alice).await;
    assert_eq!(
        (
            hello["type"].as_str(),
            hello["user_id"].as_str(),
            hello["unread"].as_u64()
        ),
        (Some("hello"), Some("alice"), Some(1))
    );
    let mut bob = env.connect_as("bob").await;
    assert_eq!(recv(&mut bob).await["unread"], json!(0));

    raise(&env, "for alice", Audience::user("alice")).await;
    let m = recv(&mut alice).await;
    assert_eq!(
        (
            m["type"].as_str(),
            m["event"].as_str(),
            m["alert"]["title"].as_str()
        ),
        (Some("alert"), Some("created"), Some("for alice"))
    );
    assert_eq!(m["alert"]["read"], json!(false));
    quiet(&mut bob).await;

    raise(&env, "for ops", Audience::group("ops")).await;
    assert_eq!(recv(&mut alice).await["alert"]["title"], json!("for ops"));
    assert_eq!(
        recv(&mut bob).await["alert"]["title"],
        json!("for ops"),
        "bob is in ops too"
    );
}

#[tokio::test]
async fn receipts_reach_the_users_other_tabs_only() {
    let env = start().await;
    let id = raise(&env, "shared", Audience::everyone()).await;
    let mut tab1 = env.connect_as("alice").await;
    let mut tab2 = env.connect_as("alice").await;
    let mut bob = env.connect_as("bob").await;
    for ws in [&mut tab1, &mut tab2, &mut bob] {
        assert_eq!(recv(ws).await["unread"], json!(1));
    }
    send(&mut tab1, json!({"type": "mark_read", "id": id})).await;
    for ws in [&mut tab1, &mut tab2] {
        let r = recv(ws).await;
        assert_eq!(
            (r["type"].as_str(), r["alert_ids"][0].as_str()),
            (Some("receipt"), Some(id.as_str()))
        );
        assert!(r["read_at"].is_string());
        assert_eq!(recv(ws).await, json!({"type": "unread", "count": 0}));
    }
    quiet(&mut bob).await;
    send(&mut tab2, json!({"type": "dismiss", "id": id})).await;
    assert!(recv(&mut tab1).await["dismissed_at"].is_string());
    send(&mut tab1, json!({"type": "ping"})).await;
    // tab1 also gets the dismiss's unread update; skip to the pong.
    let mut got_pong = false;
    for _ in 0..3 {
        if recv(&mut tab1).await["type"] == "pong" {
            got_pong = true;
            break;
        }
    }
    assert!(got_pong);
    send(&mut tab1, json!({"type": "mark_read", "id": "nope"})).await;
    assert_eq!(recv(&mut tab1).await["code"], json!("invalid"));
}

#[tokio::test]
async fn authentication_by_first_message_and_refusals() {
    let env = start().await;
    let mut ws = env.connect("/ws").await;
    send(
        &mut ws,
        json!({"type": "auth", "token": env.token(Principal::user("carol"))}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["user_id"], json!("carol"));

    let mut bad = env.connect("/ws").await;
    send(&mut bad, json!({"type": "auth", "token": "forged"})).await;
    match tokio::time::timeout(Duration::from_secs(5), bad.next()).await {
        Ok(Some(Ok(Message::Close(Some(f))))) => assert_eq!(f.code, CloseCode::Library(4001)),
        other => panic!("expected close 4001, got {other:?}"),
    }

    let alice = env.token(Principal::user("alice"));
    let mut ok = env
        .connect(&format!("/ws/alerts/alice?token={alice}"))
        .await;
    assert_eq!(recv(&mut ok).await["user_id"], json!("alice"));
    let refused = tokio_tungstenite::connect_async(format!(
        "ws://{}/ws/notifications/bob?token={alice}",
        env.addr
    ))
    .await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_with_4008_others_keep_receiving() {
    let env = start().await;
    let mut slow = env.connect_as("alice").await;
    let mut fast = env.connect_as("bob").await;
    recv(&mut slow).await;
    recv(&mut fast).await;
    // `fast` reads everything in its own task; the flood never runs more than
    // 100 alerts ahead of it (a client that keeps up), while `slow` reads
    // nothing at all.
    let fast_got = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reader = {
        let fast_got = fast_got.clone();
        tokio::spawn(async move {
            while fast_got.load(std::sync::atomic::Ordering::Relaxed) < 3_000 {
                if recv(&mut fast).await["type"] == "alert" {
                    fast_got.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        })
    };
    let big = "x".repeat(8_000);
    for i in 0..3_000usize {
        let new = NewAlert::new("capacity_warning", Severity::High, format!("f{i}"))
            .message(big.clone())
            .audience(Audience::everyone());
        env.kit.raise(&Principal::system(), new).await.unwrap();
        let waited = tokio::time::Instant::now();
        while fast_got.load(std::sync::atomic::Ordering::Relaxed) + 100 < i {
            assert!(
                waited.elapsed() < Duration::from_secs(10),
                "the reading client stalled"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    tokio::time::timeout(Duration::from_secs(20), reader)
        .await
        .expect("fast client got all")
        .unwrap();
    // Now drain `slow`: it ends with close 4008 before all 3000 arrived.
    let mut slow_got = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), slow.next()).await {
            Ok(Some(Ok(Message::Text(_)))) => slow_got += 1,
            Ok(Some(Ok(Message::Close(Some(f))))) => {
                assert_eq!(f.code, CloseCode::Library(4008));
                break;
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("expected close 4008, got {other:?} after {slow_got}"),
        }
    }
    assert!(
        slow_got < 3_000,
        "the slow client got everything ({slow_got}): nothing was cut"
    );
}

#[tokio::test]
async fn stats_count_connections_users_and_messages() {
    let env = start().await;
    let admin = env.token(Principal::admin("root"));
    let stats = || async {
        reqwest::Client::new()
            .get(format!("http://{}/api/ws/stats", env.addr))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let mut a1 = env.connect_as("alice").await;
    let mut a2 = env.connect_as("alice").await;
    let mut b = env.connect_as("bob").await;
    for ws in [&mut a1, &mut a2, &mut b] {
        recv(ws).await;
    }
    let s = stats().await;
    assert_eq!(
        (s["connections"].as_u64(), s["users"].as_u64()),
        (Some(3), Some(2))
    );
    assert!(
        s["messages_sent"].as_u64().unwrap() >= 3,
        "three hellos at least: {s}"
    );
    drop(b);
    // The server notices the close shortly.
    let mut users = 2;
    for _ in 0..50 {
        users = stats().await["users"].as_u64().unwrap();
        if users == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(users, 1);
}

async fn expect_close(ws: &mut Ws, code: u16) {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(f))))) => {
                assert_eq!(u16::from(f.code), code, "{f:?}");
                return;
            }
            Ok(Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_)))) => continue,
            other => panic!("expected close {code}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn admin_broadcast_reaches_every_connection() {
    let env = start().await;
    let mut alice = env.connect_as("alice").await;
    let mut bob = env.connect_as("bob").await;
    recv(&mut alice).await;
    recv(&mut bob).await;
    let http = reqwest::Client::new();
    let post = |token: String, body: Value| {
        http.post(format!("http://{}/api/ws/push/broadcast", env.addr))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let admin = env.token(Principal::admin("root"));
    let r = post(
        admin.clone(),
        json!({"message": "maintenance at 22:00", "level": "warning", "data": {"eta": 30}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    for ws in [&mut alice, &mut bob] {
        let f = recv(ws).await;
        assert_eq!(
            (
                f["type"].as_str(),
                f["message"].as_str(),
                f["level"].as_str()
            ),
            (
                Some("broadcast"),
                Some("maintenance at 22:00"),
                Some("warning")
            )
        );
        assert_eq!(f["data"], json!({"eta": 30}));
        assert!(f["at"].is_string());
    }
    // Level defaults to info.
    post(admin.clone(), json!({"message": "hi"})).await.unwrap();
    assert_eq!(recv(&mut alice).await["level"], "info");
    assert_eq!(recv(&mut bob).await["message"], "hi");
    // Users may not; bad input is refused.
    let user = env.token(Principal::user("alice"));
    assert_eq!(
        post(user, json!({"message": "x"}))
            .await
            .unwrap()
            .status()
            .as_u16(),
        403
    );
    for bad in [
        json!({"message": " "}),
        json!({"message": "x", "level": "loud"}),
        json!({"message": "x", "data": [1]}),
    ] {
        assert_eq!(
            post(admin.clone(), bad).await.unwrap().status().as_u16(),
            422
        );
    }
    let missing = post(admin.clone(), json!({"nope": 1})).await.unwrap();
    assert_eq!(missing.status().as_u16(), 422);
    let r = http
        .post(format!("http://{}/api/ws/push/broadcast", env.addr))
        .bearer_auth(admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    quiet(&mut bob).await;
}

#[tokio::test]
async fn shutdown_closes_every_connection_with_1001() {
    let env = start().await;
    let mut a = env.connect_as("alice").await;
    let mut b = env.connect_as("bob").await;
    recv(&mut a).await;
    recv(&mut b).await;
    env.hub.shutdown();
    expect_close(&mut a, 1001).await;
    expect_close(&mut b, 1001).await;
    // Late arrivals are turned away the same way.
    let mut late = env.connect_as("carol").await;
    expect_close(&mut late, 1001).await;
}

#[tokio::test]
async fn oversized_client_message_closes_with_1009() {
    let env = start().await;
    let mut ws = env.connect_as("alice").await;
    recv(&mut ws).await;
    let big = json!({"type": "ping", "pad": "x".repeat(70 * 1024)});
    send(&mut ws, big).await;
    expect_close(&mut ws, 1009).await;
}

#[tokio::test]
async fn resume_replays_only_what_was_missed_and_refuses_bad_cursors() {
    let env = start_with(WsConfig {
        max_replay: 3,
        ..WsConfig::default()
    })
    .await;
    let mut ws = env.connect_as("alice").await;
    recv(&mut ws).await;
    raise(&env, "seen", Audience::user("alice")).await;
    let cursor = recv(&mut ws).await["cursor"].as_str().unwrap().to_owned();
    drop(ws);
    for i in 0..3 {
        raise(&env, &format!("missed {i}"), Audience::user("alice")).await;
        raise(&env, &format!("bob's {i}"), Audience::user("bob")).await;
    }
    let mut ws = env.connect_as("alice").await;
    let hello = recv(&mut ws).await;
    assert_eq!(hello["unread"], 4);
    send(&mut ws, json!({"type": "resume", "cursor": cursor})).await;
    let titles: Vec<Value> = [
        recv(&mut ws).await,
        recv(&mut ws).await,
        recv(&mut ws).await,
    ]
    .iter()
    .map(|f| f["alert"]["title"].clone())
    .collect();
    assert_eq!(
        titles,
        vec![json!("missed 0"), json!("missed 1"), json!("missed 2")]
    );
    let done = recv(&mut ws).await;
    assert_eq!(
        (done["type"].as_str(), done["replayed"].as_u64()),
        (Some("resumed"), Some(3))
    );
    assert_eq!(done["cursor"], hello["cursor"]);
    // Resuming from the hello cursor replays nothing.
    send(
        &mut ws,
        json!({"type": "resume", "cursor": hello["cursor"]}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["replayed"], 0);
    // Too far behind: told to reload. Junk: refused.
    send(&mut ws, json!({"type": "resume", "cursor": "0"})).await;
    assert_eq!(recv(&mut ws).await["code"], "cursor_expired");
    send(&mut ws, json!({"type": "resume", "cursor": "soon"})).await;
    assert_eq!(recv(&mut ws).await["code"], "invalid");
    quiet(&mut ws).await;
    // A bad ?cursor= is refused before the upgrade.
    let t = env.token(Principal::user("alice"));
    let err =
        tokio_tungstenite::connect_async(format!("ws://{}/ws?token={t}&cursor=x", env.addr)).await;
    assert!(err.is_err());
}

#[tokio::test]
async fn the_hub_serves_on_a_bare_listener_of_its_own() {
    let env = start().await;
    // A second listener carrying only the WebSocket routes, same hub.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = http::ws_router(env.hub.clone(), env.auth.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let t = env.token(Principal::user("alice"));
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token={t}"))
        .await
        .unwrap();
    assert_eq!(recv(&mut ws).await["type"], "hello");
    raise(&env, "via the bare listener", Audience::user("alice")).await;
    assert_eq!(
        recv(&mut ws).await["alert"]["title"],
        "via the bare listener"
    );
    // Only the WebSocket routes are there.
    let r = reqwest::get(format!("http://{addr}/api/alerts"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test]
async fn a_topic_reaches_only_the_connections_holding_its_permission() {
    let env = start().await;
    let reader = env.token(
        Principal::user("pat")
            .with_groups(["planners"])
            .with_permissions([Permission::ForecastRead]),
    );
    let mut pat = env.connect(&format!("/ws?token={reader}")).await;
    // `/ws/live` is an alias of `/ws`.
    let mut live = env.connect(&format!("/ws/live?token={reader}")).await;
    let mut bob = env.connect_as("bob").await;
    for ws in [&mut pat, &mut live, &mut bob] {
        assert_eq!(recv(ws).await["type"], "hello");
    }
    let system = Principal::system();
    env.kit
        .publish_topic(
            &system,
            "forecast",
            Some(Permission::ForecastRead),
            json!({"kind": "predictions", "series": "vch20"}),
        )
        .await
        .unwrap();
    for ws in [&mut pat, &mut live] {
        let f = recv(ws).await;
        assert_eq!(f["type"], "forecast");
        assert_eq!(f["data"]["series"], "vch20");
        assert!(f["at"].is_string());
    }
    quiet(&mut bob).await;
    // Without a permission it reaches everyone.
    env.kit
        .publish_topic(&system, "maintenance", None, json!({"at": "22:00"}))
        .await
        .unwrap();
    for ws in [&mut pat, &mut bob] {
        assert_eq!(recv(ws).await["type"], "maintenance");
    }
    // Publishing needs alerts.broadcast; reserved or malformed topics and
    // oversized data are refused.
    let user = Principal::user("pat").with_permissions([Permission::ForecastRead]);
    let err = env
        .kit
        .publish_topic(&user, "forecast", None, json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), alertkit_core::ErrorKind::Forbidden);
    for bad in ["alert", "hello", "", "Forecast", "a-b", &"x".repeat(33)] {
        let err = env
            .kit
            .publish_topic(&system, bad, None, json!({}))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), alertkit_core::ErrorKind::Invalid, "{bad:?}");
    }
    let big = json!({"blob": "x".repeat(70 * 1024)});
    assert!(
        env.kit
            .publish_topic(&system, "forecast", None, big)
            .await
            .is_err()
    );
    quiet(&mut pat).await;
}

#[tokio::test]
async fn an_admin_disconnects_a_user_who_then_polls_until_the_hold_ends() {
    let env = start().await;
    let admin = env.token(Principal::admin("root"));
    let post = |token: String, body: Value| {
        let url = format!("http://{}/api/ws/disconnect", env.addr);
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let mut a1 = env.connect_as("alice").await;
    let mut a2 = env.connect_as("alice").await;
    let mut bob = env.connect_as("bob").await;
    for ws in [&mut a1, &mut a2, &mut bob] {
        recv(ws).await;
    }

    // Only alerts.manage may; the body is checked.
    let alice = env.token(Principal::user("alice"));
    let r = post(alice.clone(), json!({"user_id": "bob"})).await;
    assert_eq!(r.status(), 403);
    let r = post(
        admin.clone(),
        json!({"user_id": "alice", "retry_after_secs": 3601}),
    )
    .await;
    assert_eq!(r.status(), 422);
    let r = post(admin.clone(), json!({"user_id": ""})).await;
    assert_eq!(r.status(), 422);
    let r = post(admin.clone(), json!({"user_id": "alice", "hold": 5})).await;
    assert_eq!(r.status(), 422, "unknown fields are refused");

    let r = post(
        admin.clone(),
        json!({"user_id": "alice", "retry_after_secs": 2}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"closed": 2}));
    expect_close(&mut a1, 4000).await;
    expect_close(&mut a2, 4000).await;

    // Bob is untouched.
    raise(&env, "for bob", Audience::user("bob")).await;
    assert_eq!(recv(&mut bob).await["alert"]["title"], "for bob");

    // While held: the upgrade is 503 with Retry-After; a first-message
    // login is closed with 4000; REST still answers.
    let url = format!("ws://{}/ws?token={alice}", env.addr);
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 503);
            let wait: u64 = res.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=2).contains(&wait), "{wait}");
        }
        other => panic!("expected 503, got {other:?}"),
    }
    let mut late = env.connect("/ws").await;
    send(&mut late, json!({"type": "auth", "token": alice})).await;
    expect_close(&mut late, 4000).await;
    let r = reqwest::Client::new()
        .get(format!("http://{}/api/alerts", env.addr))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The hold ends by itself.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut back = env.connect_as("alice").await;
    assert_eq!(recv(&mut back).await["type"], "hello");

    // A zero hold closes without holding, and lifts an earlier hold.
    post(
        admin.clone(),
        json!({"user_id": "alice", "retry_after_secs": 600}),
    )
    .await;
    expect_close(&mut back, 4000).await;
    assert!(env.hub.held_for("alice").is_some());
    let r = post(admin.clone(), json!({"user_id": "alice"})).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"closed": 0}));
    assert!(env.hub.held_for("alice").is_none());
    let mut again = env.connect_as("alice").await;
    assert_eq!(recv(&mut again).await["type"], "hello");
}

#[tokio::test]
async fn a_message_larger_than_the_read_buffer_is_still_read() {
    // The read buffer is 4 KiB; a 60 KiB message (under the 64 KiB limit)
    // grows it and is answered, and the connection goes on.
    let env = start().await;
    let mut ws = env.connect_as("alice").await;
    assert_eq!(recv(&mut ws).await["type"], "hello");
    let pad = "x".repeat(60 * 1024);
    send(&mut ws, json!({"type": "ping", "pad": pad})).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
    raise(&env, "after a big message", Audience::user("alice")).await;
    assert_eq!(recv(&mut ws).await["alert"]["title"], "after a big message");
}
