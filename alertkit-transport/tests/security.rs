//! Regression tests for the authorization and input holes a hostile review
//! found, over real HTTP and WebSocket, on every backend where the store is
//! involved (memory, SQLite, PostgreSQL, MongoDB-wire).
#![cfg(all(feature = "axum", feature = "jwt"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use alertkit_core::{AlertKit, Audience, NewAlert, Permission, Principal, Severity, Store};
use alertkit_storage::{MemoryAlertStore, MongoAlertStore, PostgresAlertStore, SqliteAlertStore};
use alertkit_testkit::counting::CountingStore;
use alertkit_testkit::services::service_url;
use alertkit_transport::ws::hub::{WsConfig, WsHub};
use alertkit_transport::{Claims, JwtAuthenticator, LocalBroadcaster, http};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &[u8] = b"security-test-secret-security-test!!";

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

// ---- backends -----------------------------------------------------------------------------

/// A store on one backend, cleaned up (schema, database, file) when dropped.
struct Backend {
    name: &'static str,
    store: Arc<dyn Store>,
    cleanup: Option<Box<dyn FnOnce() + Send>>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(c) = self.cleanup.take() {
            c();
        }
    }
}

/// Runs async cleanup on a thread of its own (drop cannot await).
fn blocking(f: impl std::future::Future<Output = ()> + Send + 'static) {
    let _ = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(f);
        }
    })
    .join();
}

async fn memory() -> Backend {
    Backend {
        name: "memory",
        store: Arc::new(MemoryAlertStore::new()),
        cleanup: None,
    }
}

async fn sqlite() -> Backend {
    let path =
        std::env::temp_dir().join(format!("alertkit-sec-{}.db", uuid::Uuid::now_v7().simple()));
    let store = SqliteAlertStore::builder(&path).connect().await.unwrap();
    store.migrate().await.unwrap();
    Backend {
        name: "sqlite",
        store: Arc::new(store),
        cleanup: Some(Box::new(move || {
            for ext in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
            }
        })),
    }
}

async fn postgres() -> Option<Backend> {
    let url = service_url("DATABASE_URL")?;
    let schema = format!("aksec_{}", uuid::Uuid::now_v7().simple());
    let store = PostgresAlertStore::builder(&url)
        .schema(&schema)
        .max_connections(4)
        .connect()
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let dropper = store.clone();
    Some(Backend {
        name: "postgres",
        store: Arc::new(store),
        cleanup: Some(Box::new(move || {
            blocking(async move {
                let _ = dropper.drop_schema().await;
            })
        })),
    })
}

async fn mongodb() -> Option<Backend> {
    let url = service_url("MONGODB_URL")?;
    let db = format!("aksec_{}", uuid::Uuid::now_v7().simple());
    let store = MongoAlertStore::builder(&url)
        .database(&db)
        .connect()
        .await
        .unwrap();
    store.init().await.unwrap();
    let dropper = store.clone();
    Some(Backend {
        name: "mongodb",
        store: Arc::new(store),
        cleanup: Some(Box::new(move || {
            blocking(async move {
                let _ = dropper.drop_database().await;
            })
        })),
    })
}

/// Every backend whose service is here (all of them under
/// `ALERTKIT_REQUIRE_SERVICES=1`, which fails instead of skipping).
async fn backends() -> Vec<Backend> {
    let mut out = vec![memory().await, sqlite().await];
    out.extend(postgres().await);
    out.extend(mongodb().await);
    out
}

// ---- a server -----------------------------------------------------------------------------

struct Srv {
    base: String,
    addr: String,
    client: reqwest::Client,
    kit: AlertKit,
    auth: Arc<JwtAuthenticator>,
}

async fn serve(store: Arc<dyn Store>) -> Srv {
    serve_with(
        store,
        JwtAuthenticator::hs256(SECRET).unwrap(),
        Default::default(),
    )
    .await
}

async fn serve_with(
    store: Arc<dyn Store>,
    auth: JwtAuthenticator,
    config: http::HttpConfig,
) -> Srv {
    let kit = AlertKit::builder()
        .store(store)
        .broadcaster(Arc::new(LocalBroadcaster::new()))
        .build()
        .unwrap();
    let auth = Arc::new(auth);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = http::router_with(kit.clone(), auth.clone(), config);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Srv {
        base: format!("http://{addr}"),
        addr,
        client: reqwest::Client::new(),
        kit,
        auth,
    }
}

impl Srv {
    fn token(&self, p: Principal) -> String {
        self.auth.issue(&p, Duration::from_secs(600)).unwrap()
    }
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        let v = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{status} without a JSON body: {text:?}"));
        (status, v)
    }
    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, Some(token), None)
            .await
    }
    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(token), Some(body))
            .await
    }
    async fn ws(&self, path: &str) -> Ws {
        tokio_tungstenite::connect_async(format!("ws://{}{path}", self.addr))
            .await
            .unwrap()
            .0
    }
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no error body>")
}

fn raiser(id: &str) -> Principal {
    Principal::user(id).with_permissions([Permission::AlertsCreate])
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

/// Reads until the close frame; returns its code.
async fn close_code(ws: &mut Ws, within: Duration) -> u16 {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(f))))) => return f.code.into(),
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

// ---- dedup-key hijack ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dedup_key_cannot_hijack_another_principals_alert() {
    for b in backends().await {
        let srv = serve(b.store.clone()).await;
        let admin = srv.token(Principal::admin("root"));
        let mallory = srv.token(raiser("mallory"));
        let alice = srv.token(Principal::user("alice"));
        let notice = json!({"alert_type": "maintenance", "severity": "info", "title": "Maintenance tonight",
            "message": "22:00-23:00", "audience": ["everyone"], "dedup_key": "maint",
            "expires_at": (chrono::Utc::now() + chrono::Duration::hours(4)).to_rfc3339()});
        let (s, first) = srv.post("/api/alerts", &admin, notice.clone()).await;
        assert_eq!(s, StatusCode::CREATED, "{}", b.name);

        // Same key, as herself: her own alert; the notice is untouched.
        let hijack = json!({"alert_type": "maintenance", "severity": "critical", "title": "Pay here",
            "message": "phishing", "dedup_key": "maint",
            "expires_at": (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc3339()});
        let (s, own) = srv.post("/api/alerts", &mallory, hijack.clone()).await;
        assert_eq!(s, StatusCode::CREATED);
        assert_eq!(own["deduplicated"], false, "{}", b.name);
        assert_ne!(own["id"], first["id"]);
        // For a user she is allowed to alert: again her own, and the
        // response shows nothing of it (she is not in its audience).
        let mut at_alice = hijack.clone();
        at_alice["audience"] = json!(["user:alice"]);
        let (s, hidden) = srv.post("/api/alerts", &mallory, at_alice.clone()).await;
        assert_eq!(s, StatusCode::CREATED);
        assert_eq!(hidden["visible"], false, "{}: {hidden}", b.name);
        assert!(hidden.get("title").is_none() && hidden.get("deduplicated").is_none());
        let (_, again) = srv.post("/api/alerts", &mallory, at_alice).await;
        assert_eq!(again["id"], hidden["id"], "her own repeat merges");
        assert!(again.get("occurrences").is_none());
        // For everyone: refused outright.
        let mut at_all = hijack.clone();
        at_all["audience"] = json!(["everyone"]);
        let (s, v) = srv.post("/api/alerts", &mallory, at_all).await;
        assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "forbidden"));

        let id = first["id"].as_str().unwrap();
        let (_, notice_now) = srv.get(&format!("/api/alerts/{id}"), &alice).await;
        assert_eq!(notice_now["title"], "Maintenance tonight", "{}", b.name);
        assert_eq!(notice_now["severity"], "info");
        assert_eq!(notice_now["occurrences"], 1);
        assert_eq!(notice_now["expires_at"], first["expires_at"]);

        // The owner's repeat merges, and never shortens the expiry.
        let mut shorter = notice.clone();
        shorter["expires_at"] =
            json!((chrono::Utc::now() + chrono::Duration::minutes(5)).to_rfc3339());
        let (_, merged) = srv.post("/api/alerts", &admin, shorter).await;
        assert_eq!(merged["deduplicated"], true, "{}", b.name);
        assert_eq!(merged["id"], first["id"]);
        assert_eq!(merged["expires_at"], first["expires_at"], "{}", b.name);
    }
}

// ---- cursors ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_or_mutated_cursors_are_400_on_every_backend() {
    for b in backends().await {
        let srv = serve(b.store.clone()).await;
        let alice = srv.token(Principal::user("alice"));
        for i in 0..3 {
            let n =
                NewAlert::new("t", Severity::Low, format!("a{i}")).audience(Audience::everyone());
            srv.kit.raise(&Principal::system(), n).await.unwrap();
        }
        let (s, p1) = srv.get("/api/alerts?limit=1", &alice).await;
        assert_eq!(s, StatusCode::OK);
        let cursor = p1["next_cursor"].as_str().unwrap().to_owned();
        let (s, p2) = srv
            .get(&format!("/api/alerts?limit=1&cursor={cursor}"), &alice)
            .await;
        assert_eq!(
            (s, p2["alerts"].as_array().unwrap().len()),
            (StatusCode::OK, 1),
            "{}",
            b.name
        );

        let (body, tag) = cursor.rsplit_once('.').unwrap();
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
        let parts: Vec<&str> = raw.split('.').collect();
        let enc = |s: String| URL_SAFE_NO_PAD.encode(s);
        let mut flipped: Vec<char> = cursor.chars().collect();
        flipped[2] = if flipped[2] == 'A' { 'B' } else { 'A' };
        let crafted = [
            // Forged totals under the real tag.
            format!("{}.{tag}", enc(format!("{}.{}.1.0", parts[0], parts[1]))),
            // Extreme timestamps, unsigned and under the real tag.
            enc(format!("{}.{}", i64::MAX, parts[1])),
            format!("{}.{tag}", enc(format!("{}.{}", i64::MAX, parts[1]))),
            format!("{}.{tag}", enc(format!("-{}.{}", i64::MAX, parts[1]))),
            // The store's own cursor without the tag; a flipped character.
            body.to_owned(),
            flipped.into_iter().collect(),
            "%00".into(),
            "A".repeat(500),
        ];
        for c in crafted {
            let (s, v) = srv.get(&format!("/api/alerts?cursor={c}"), &alice).await;
            assert_eq!(
                (s, code(&v)),
                (StatusCode::BAD_REQUEST, "bad_request"),
                "{}: {c}",
                b.name
            );
            let (s, _) = srv
                .get(&format!("/api/alerts/unread?cursor={c}"), &alice)
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST);
        }
        // Extreme times in filters are refused the same way.
        for q in ["since=9999-12-31T23:59:59Z", "until=0000-01-01T00:00:00Z"] {
            let (s, _) = srv.get(&format!("/api/alerts?{q}"), &alice).await;
            assert_ne!(s, StatusCode::INTERNAL_SERVER_ERROR, "{}: {q}", b.name);
        }
    }
}

// ---- tokens, limits, permissions ----------------------------------------------------------

#[tokio::test]
async fn tokens_in_urls_work_only_on_websocket_upgrades() {
    let srv = serve(Arc::new(MemoryAlertStore::new())).await;
    let alice = srv.token(Principal::user("alice"));
    let (s, v) = srv
        .send(
            reqwest::Method::GET,
            &format!("/api/alerts?token={alice}"),
            None,
            None,
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "unauthenticated"));
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("WebSocket")
    );
    // Even together with a good header.
    let (s, _) = srv.get(&format!("/api/alerts?token={alice}"), &alice).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let mut ws = srv.ws(&format!("/ws?token={alice}")).await;
    assert_eq!(recv(&mut ws).await["type"], "hello");
}

#[tokio::test]
async fn the_websocket_requires_alerts_read() {
    let srv = serve(Arc::new(MemoryAlertStore::new())).await;
    let nobody = Principal {
        permissions: Default::default(),
        ..Principal::user("mallory")
    };
    let t = srv.token(nobody);
    match tokio_tungstenite::connect_async(format!("ws://{}/ws?token={t}", srv.addr)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
    // Authenticating with the first message instead: closed with 4001.
    let mut ws = srv.ws("/ws").await;
    ws.send(Message::Text(
        json!({"type": "auth", "token": t}).to_string().into(),
    ))
    .await
    .unwrap();
    assert_eq!(close_code(&mut ws, Duration::from_secs(5)).await, 4001);
}

#[tokio::test]
async fn second_tabs_and_reconnects_are_not_rate_limited_and_zero_means_off() {
    let kit = AlertKit::builder()
        .store(Arc::new(MemoryAlertStore::new()))
        .broadcaster(Arc::new(LocalBroadcaster::new()))
        .build()
        .unwrap();
    let auth = Arc::new(JwtAuthenticator::hs256(SECRET).unwrap());
    let hub = WsHub::new(kit, WsConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = http::ws_router(hub, auth.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let t = auth
        .issue(&Principal::user("alice"), Duration::from_secs(600))
        .unwrap();
    for tab in 0..5 {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token={t}"))
            .await
            .unwrap_or_else(|e| panic!("tab {tab}: {e}"));
        assert_eq!(recv(&mut ws).await["type"], "hello");
    }

    let srv = serve_with(
        Arc::new(MemoryAlertStore::new()),
        JwtAuthenticator::hs256(SECRET).unwrap(),
        http::HttpConfig {
            rate_limit_per_minute: 0,
            ..Default::default()
        },
    )
    .await;
    let alice = srv.token(Principal::user("alice"));
    for _ in 0..150 {
        let (s, _) = srv.get("/api/alerts/unread/count", &alice).await;
        assert_eq!(s, StatusCode::OK, "0 turns the limit off");
    }
}

#[tokio::test]
async fn ws_stats_and_listing_rules_need_manage() {
    let srv = serve(Arc::new(MemoryAlertStore::new())).await;
    let user = srv.token(raiser("svc"));
    let admin = srv.token(Principal::admin("root"));
    for path in ["/api/ws/stats", "/api/alerts/rules"] {
        let (s, v) = srv.get(path, &user).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{path}"
        );
        assert_eq!(srv.get(path, &admin).await.0, StatusCode::OK, "{path}");
    }
}

fn raw_token(claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

#[tokio::test]
async fn issuer_audience_and_nbf_are_enforced_over_http() {
    let strict = JwtAuthenticator::hs256(SECRET)
        .unwrap()
        .issuer("https://idp.test")
        .audience("alertkit")
        .leeway(0);
    let srv = serve_with(
        Arc::new(MemoryAlertStore::new()),
        strict,
        Default::default(),
    )
    .await;
    let now = chrono::Utc::now().timestamp();
    let base = json!({"sub": "alice", "perms": ["alerts.read"], "exp": now + 600,
                      "iss": "https://idp.test", "aud": "alertkit"});
    assert_eq!(
        srv.get("/api/alerts", &raw_token(&base)).await.0,
        StatusCode::OK
    );
    let mut cases = Vec::new();
    for (field, value) in [
        ("aud", json!("other-service")),
        ("iss", json!("https://evil.test")),
        ("nbf", json!(now + 300)),
        ("exp", json!(now - 5)),
    ] {
        let mut c = base.clone();
        c[field] = value;
        cases.push((field, c));
    }
    for field in ["aud", "iss"] {
        let mut c = base.clone();
        c.as_object_mut().unwrap().remove(field);
        cases.push((field, c));
    }
    for (field, c) in cases {
        let (s, v) = srv.get("/api/alerts", &raw_token(&c)).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{field}: {c}"
        );
    }
    // A token for another audience cannot open a WebSocket either.
    let mut other = base.clone();
    other["aud"] = json!("other-service");
    match tokio_tungstenite::connect_async(format!(
        "ws://{}/ws?token={}",
        srv.addr,
        raw_token(&other)
    ))
    .await
    {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 401),
        other => panic!("expected 401, got {other:?}"),
    }
    let _ = Claims::for_principal(&Principal::user("x"), 0); // the claims type stays public
}

// ---- error bodies -------------------------------------------------------------------------

#[tokio::test]
async fn every_error_has_a_json_body_and_one_filter_one_status() {
    let srv = serve(Arc::new(MemoryAlertStore::new())).await;
    let alice = srv.token(Principal::user("alice"));
    let admin = srv.token(Principal::admin("root"));
    let c = &srv.client;
    let huge = "x".repeat(100 * 1024);
    let checks: Vec<(reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            c.post(format!(
                "{}/api/alerts/{}/mark-read",
                srv.base,
                uuid::Uuid::now_v7()
            ))
            .bearer_auth(&alice)
            .body(huge.clone()),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            c.post(format!("{}/api/alerts", srv.base))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body(format!("{{\"title\":\"{huge}\"}}")),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            c.post(format!("{}/api/alerts", srv.base))
                .bearer_auth(&admin)
                .header("content-type", "text/plain")
                .body("{}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            c.get(format!("{}/no/such/route", srv.base)),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            c.patch(format!("{}/api/alerts", srv.base))
                .bearer_auth(&alice),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            c.get(format!("{}/api/alerts?limit=abc", srv.base))
                .bearer_auth(&alice),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            c.get(format!("{}/ws/alerts/%FF%FE", srv.base))
                .bearer_auth(&alice),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ];
    for (req, status, want) in checks {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), status);
        assert_eq!(
            res.headers()["content-type"].to_str().unwrap(),
            "application/json"
        );
        let v: Value = res.json().await.unwrap();
        assert_eq!(code(&v), want, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // The same invalid filter gets the same status on list, stats and mark-all-read.
    for filter in [
        "tag=%01",
        "severity=bogus",
        "status=gone",
        "since=yesterday",
        "min_severity=9",
    ] {
        for (method, path) in [
            (reqwest::Method::GET, "/api/alerts"),
            (reqwest::Method::GET, "/api/alerts/unread"),
            (reqwest::Method::GET, "/api/alerts/stats"),
            (reqwest::Method::POST, "/api/alerts/mark-all-read"),
        ] {
            let (s, v) = srv
                .send(method, &format!("{path}?{filter}"), Some(&alice), None)
                .await;
            assert_eq!(
                (s, code(&v)),
                (StatusCode::BAD_REQUEST, "bad_request"),
                "{path}?{filter}"
            );
        }
    }
}

// ---- WebSocket sessions -------------------------------------------------------------------

#[tokio::test]
async fn a_session_closes_with_4001_when_its_token_expires() {
    let srv = serve_with(
        Arc::new(MemoryAlertStore::new()),
        JwtAuthenticator::hs256(SECRET).unwrap().leeway(1),
        Default::default(),
    )
    .await;
    let exp = chrono::Utc::now().timestamp() + 2;
    let t = raw_token(&json!({"sub": "alice", "perms": ["alerts.read"], "exp": exp}));
    let mut ws = srv.ws(&format!("/ws?token={t}")).await;
    assert_eq!(recv(&mut ws).await["type"], "hello");
    let started = std::time::Instant::now();
    assert_eq!(close_code(&mut ws, Duration::from_secs(8)).await, 4001);
    // Not before exp + leeway (wall-clock seconds, so allow rounding).
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_message_flood_closes_with_1008_and_the_server_stays_healthy() {
    let srv = serve(Arc::new(MemoryAlertStore::new())).await;
    let alice = srv.token(Principal::user("alice"));
    let mut flooder = srv.ws(&format!("/ws?token={alice}")).await;
    assert_eq!(recv(&mut flooder).await["type"], "hello");
    let bogus = uuid::Uuid::now_v7();
    for _ in 0..400 {
        let m = json!({"type": "mark_read", "id": bogus}).to_string();
        if flooder.send(Message::Text(m.into())).await.is_err() {
            break;
        }
    }
    assert_eq!(
        close_code(&mut flooder, Duration::from_secs(10)).await,
        1008
    );
    // A polite client in the same second is fine, and so is the server.
    let mut polite = srv.ws(&format!("/ws?token={alice}")).await;
    assert_eq!(recv(&mut polite).await["type"], "hello");
    for _ in 0..5 {
        polite
            .send(Message::Text(json!({"type": "ping"}).to_string().into()))
            .await
            .unwrap();
        assert_eq!(recv(&mut polite).await["type"], "pong");
    }
    let (s, _) = srv.send(reqwest::Method::GET, "/health", None, None).await;
    assert_eq!(s, StatusCode::OK);
}

// ---- resume cost --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_1000_alerts_costs_a_bounded_number_of_store_calls() {
    let store = Arc::new(CountingStore::new(MemoryAlertStore::new()));
    // A queue deep enough for the live frames that arrive during the replay.
    let config = http::HttpConfig {
        ws: WsConfig {
            queue_bytes: 16 * 1024 * 1024,
            ..Default::default()
        },
        ..Default::default()
    };
    let srv = serve_with(
        store.clone(),
        JwtAuthenticator::hs256(SECRET).unwrap(),
        config,
    )
    .await;
    let alice = srv.token(Principal::user("alice").with_groups(["ops"]));
    let mut ws = srv.ws(&format!("/ws?token={alice}")).await;
    let hello = recv(&mut ws).await;
    let cursor = hello["cursor"].as_str().unwrap().to_owned();
    drop(ws);
    // 1000 for alice (half to her group), and 500 she may not see.
    let mut batch = Vec::new();
    for i in 0..1500 {
        let audience = match i % 3 {
            0 => Audience::user("alice"),
            1 => Audience::group("ops"),
            _ => Audience::user("bob"),
        };
        batch.push(NewAlert::new("t", Severity::Low, format!("n{i}")).audience(audience));
    }
    srv.kit
        .raise_many(&Principal::system(), batch)
        .await
        .unwrap();
    let mut ws = srv.ws(&format!("/ws?token={alice}")).await;
    assert_eq!(recv(&mut ws).await["type"], "hello");
    store.reset();
    ws.send(Message::Text(
        json!({"type": "resume", "cursor": cursor})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    // Replayed up to the hello cursor, then live: 1000 distinct alerts.
    let mut ids = std::collections::HashSet::new();
    let mut resumed = false;
    while ids.len() < 1000 || !resumed {
        let f = recv(&mut ws).await;
        match f["type"].as_str() {
            Some("resumed") => resumed = true,
            Some("alert") => {
                assert!(ids.insert(f["alert"]["id"].as_str().unwrap().to_owned()));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ids.len(), 1000);
    let calls = store.snapshot();
    assert!(
        store.calls("changes_for") <= 2 && store.calls("get") == 0 && store.calls("receipts") == 0,
        "resume made {calls:?}"
    );
}
