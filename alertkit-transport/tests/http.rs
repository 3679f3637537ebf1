//! The REST router over real HTTP on a loopback port: each route's success
//! and the error codes it returns, with user and admin tokens.
#![cfg(all(feature = "axum", feature = "jwt"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use alertkit_core::{AlertKit, NewAlert, Permission, Principal, Severity};
use alertkit_storage::MemoryAlertStore;
use alertkit_transport::{JwtAuthenticator, LocalBroadcaster, http};
use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_NONE_MATCH, RETRY_AFTER};
use serde_json::{Value, json};

const SECRET: &[u8] = b"http-test-secret-http-test-secret!!";

struct Api {
    base: String,
    client: reqwest::Client,
    admin: String,
    alice: String,
    bob: String,
    raiser: String,
}

async fn start() -> Api {
    start_with(http::HttpConfig::default()).await
}

async fn start_with(config: http::HttpConfig) -> Api {
    let kit = AlertKit::builder()
        .store(Arc::new(MemoryAlertStore::new()))
        .broadcaster(Arc::new(LocalBroadcaster::new()))
        .build()
        .unwrap();
    let auth = Arc::new(JwtAuthenticator::hs256(SECRET).unwrap());
    let token = |p: Principal| auth.issue(&p, Duration::from_secs(600)).unwrap();
    let api = Api {
        base: String::new(),
        client: reqwest::Client::new(),
        admin: token(Principal::admin("root")),
        alice: token(Principal::user("alice").with_groups(["ops"])),
        bob: token(Principal::user("bob")),
        raiser: token(Principal::user("svc").with_permissions([Permission::AlertsCreate])),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = http::router_with(kit, auth, config);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Api {
        base: format!("http://{addr}"),
        ..api
    }
}

impl Api {
    async fn call(
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
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, Some(token), None)
            .await
    }
    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(token), Some(body))
            .await
    }
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no error body>")
}

fn alert(title: &str, severity: &str, audience: &[&str]) -> Value {
    json!({"alert_type": "capacity_warning", "severity": severity, "title": title, "message": "m",
           "tags": ["VCH20"], "audience": audience})
}

#[tokio::test]
async fn health_and_authentication() {
    let api = start().await;
    let (s, v) = api.call(reqwest::Method::GET, "/health", None, None).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    for component in ["store", "bus", "dispatcher"] {
        assert_eq!(v["components"][component]["status"], "ok", "{v}");
    }
    assert_eq!(v["components"]["dispatcher"]["unfinished"], 0);
    for probe in ["/health/live", "/health/ready"] {
        let (s, v) = api.call(reqwest::Method::GET, probe, None, None).await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::OK, Some("ok")),
            "{probe}"
        );
    }
    let (s, v) = api
        .call(reqwest::Method::GET, "/api/alerts", None, None)
        .await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "unauthenticated"));
    let (s, _) = api.get("/api/alerts", "not.a.token").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = api
        .call(
            reqwest::Method::GET,
            &format!("/api/alerts?token={}", api.alice),
            None,
            None,
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "?token= is for WebSocket upgrades only"
    );
}

#[tokio::test]
async fn create_list_get_and_their_errors() {
    let api = start().await;
    let (s, v) = api
        .post(
            "/api/alerts",
            &api.admin,
            alert("for ops", "high", &["group:ops"]),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(v["deduplicated"], json!(false));
    assert_eq!(v["read"], json!(false));
    let id = v["id"].as_str().unwrap().to_owned();
    let mut keyed = alert("k", "warning", &["user:alice"]);
    keyed["dedup_key"] = json!("cap:VCH20");
    let (_, first) = api.post("/api/alerts", &api.raiser, keyed.clone()).await;
    let (s, v) = api.post("/api/alerts", &api.raiser, keyed).await;
    // The raiser is not in the audience: it learns the id, nothing more.
    assert_eq!(
        (s, &v["visible"], &v["id"], v.get("deduplicated")),
        (StatusCode::CREATED, &json!(false), &first["id"], None)
    );
    let (_, v) = api
        .get(
            &format!("/api/alerts/{}", first["id"].as_str().unwrap()),
            &api.alice,
        )
        .await;
    assert_eq!(
        (&v["occurrences"], &v["severity"], &v["created_by"]),
        (&json!(2), &json!("medium"), &json!("svc"))
    );

    // Errors on create.
    let (s, v) = api
        .post("/api/alerts", &api.alice, alert("x", "low", &[]))
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::FORBIDDEN, "forbidden"),
        "alice lacks alerts.create"
    );
    let (s, v) = api
        .post("/api/alerts", &api.raiser, alert("x", "low", &["everyone"]))
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::FORBIDDEN, "forbidden"),
        "everyone needs alerts.broadcast"
    );
    let (s, v) = api
        .post("/api/alerts", &api.admin, alert("  ", "low", &[]))
        .await;
    assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid"));
    let (s, _) = api
        .post("/api/alerts", &api.admin, alert("x", "urgent", &[]))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "unknown severity");
    let res = api
        .client
        .post(format!("{}/api/alerts", api.base))
        .bearer_auth(&api.admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let huge = alert(&"x".repeat(100_000), "low", &[]);
    let (s, v) = api.post("/api/alerts", &api.admin, huge).await;
    assert_eq!((s, code(&v)), (StatusCode::PAYLOAD_TOO_LARGE, "too_large"));

    // Lists.
    let (s, v) = api.get("/api/alerts", &api.alice).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            v["total"].as_u64(),
            v["unread_count"].as_u64(),
            v["has_more"].as_bool()
        ),
        (Some(2), Some(2), Some(false))
    );
    for key in ["alert_type", "severity", "message", "timestamp", "read"] {
        assert!(v["alerts"][0].get(key).is_some(), "missing {key}");
    }
    let (_, v) = api
        .get(
            "/api/alerts?severity=high,critical&product_code=VCH20",
            &api.alice,
        )
        .await;
    assert_eq!(v["total"], json!(1));
    let (_, v) = api.get("/api/alerts?limit=1", &api.alice).await;
    assert_eq!(
        (
            v["alerts"].as_array().map(Vec::len),
            v["has_more"].as_bool()
        ),
        (Some(1), Some(true))
    );
    let cursor = v["next_cursor"].as_str().unwrap().to_owned();
    let (_, v) = api
        .get(&format!("/api/alerts?limit=1&cursor={cursor}"), &api.alice)
        .await;
    assert_eq!(v["has_more"], json!(false));
    let (_, v) = api.get("/api/alerts", &api.bob).await;
    assert_eq!(v["total"], json!(0), "bob sees neither");
    for bad in [
        "limit=0",
        "limit=201",
        "limit=x",
        "since=yesterday",
        "severity=urgent",
        "cursor=garbage",
        "unread_only=maybe",
    ] {
        let (s, v) = api.get(&format!("/api/alerts?{bad}"), &api.alice).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{bad}"
        );
    }

    // One alert.
    let (s, v) = api.get(&format!("/api/alerts/{id}"), &api.alice).await;
    assert_eq!((s, v["title"].as_str()), (StatusCode::OK, Some("for ops")));
    let (s, v) = api.get(&format!("/api/alerts/{id}"), &api.bob).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::NOT_FOUND, "not_found"),
        "invisible is 404"
    );
    let (s, _) = api.get("/api/alerts/not-an-id", &api.alice).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn receipts_counts_stats_and_delete() {
    let api = start().await;
    let (_, a) = api
        .post("/api/alerts", &api.admin, alert("a", "high", &["everyone"]))
        .await;
    let (_, b) = api
        .post(
            "/api/alerts",
            &api.admin,
            alert("b", "low", &["user:alice"]),
        )
        .await;
    let (a, b) = (
        a["id"].as_str().unwrap().to_owned(),
        b["id"].as_str().unwrap().to_owned(),
    );

    let (_, v) = api.get("/api/alerts/unread/count", &api.alice).await;
    assert_eq!(v, json!({"unread": 2}));
    let (s, v) = api
        .post(
            &format!("/api/alerts/{a}/mark-read"),
            &api.alice,
            json!({"user_id": "alice"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["read_at"].is_string());
    let (s, v) = api
        .post(
            &format!("/api/alerts/{a}/mark-read"),
            &api.alice,
            json!({"user_id": "bob"}),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::FORBIDDEN, "forbidden"),
        "user_id must match the token"
    );
    let (s, _) = api
        .call(
            reqwest::Method::POST,
            &format!("/api/alerts/{b}/mark-read"),
            Some(&api.bob),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "bob cannot see b");
    let (_, v) = api.get("/api/alerts/unread/count", &api.alice).await;
    assert_eq!(v, json!({"unread": 1}));
    let (_, v) = api.get("/api/alerts/unread/count", &api.bob).await;
    assert_eq!(v, json!({"unread": 1}), "bob's state is his own");
    let (_, v) = api.get("/api/alerts/unread", &api.alice).await;
    assert_eq!(v["alerts"][0]["title"], json!("b"));

    let (s, v) = api
        .call(
            reqwest::Method::POST,
            &format!("/api/alerts/{b}/dismiss"),
            Some(&api.alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["dismissed_at"].is_string());
    let (_, v) = api
        .get("/api/alerts?include_dismissed=true", &api.alice)
        .await;
    assert_eq!(v["total"], json!(2));
    let (_, v) = api.get("/api/alerts", &api.alice).await;
    assert_eq!(v["total"], json!(1));

    let (s, v) = api
        .call(
            reqwest::Method::POST,
            "/api/alerts/mark-all-read",
            Some(&api.bob),
            None,
        )
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!({"marked": 1})));
    let (_, v) = api.get("/api/alerts/stats", &api.admin).await;
    assert_eq!(
        (v["total"].as_u64(), v["by_severity"]["high"].as_u64()),
        (Some(2), Some(1))
    );

    let (s, v) = api
        .call(
            reqwest::Method::DELETE,
            &format!("/api/alerts/{a}"),
            Some(&api.alice),
            None,
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "forbidden"));
    let (s, _) = api
        .call(
            reqwest::Method::DELETE,
            &format!("/api/alerts/{a}"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = api
        .call(
            reqwest::Method::DELETE,
            &format!("/api/alerts/{a}"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rules_and_subscriptions() {
    let api = start().await;
    let rule = json!({"name": "queue", "kind": "threshold", "conditions": {"metric": "q", "op": ">", "value": 100},
                      "template": {"alert_type": "high_workload", "severity": "high", "title": "Queue high"}});
    let (s, v) = api
        .post("/api/alerts/rules", &api.alice, rule.clone())
        .await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "forbidden"));
    let (s, v) = api
        .post("/api/alerts/rules", &api.admin, rule.clone())
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let id = v["id"].as_str().unwrap().to_owned();
    let (s, v) = api
        .post("/api/alerts/rules", &api.admin, rule.clone())
        .await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "conflict"));
    let mut changed = rule.clone();
    changed["enabled"] = json!(false);
    let (s, v) = api
        .call(
            reqwest::Method::PUT,
            &format!("/api/alerts/rules/{id}"),
            Some(&api.admin),
            Some(changed),
        )
        .await;
    assert_eq!((s, v["enabled"].as_bool()), (StatusCode::OK, Some(false)));
    let (s, v) = api.get("/api/alerts/rules", &api.alice).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::FORBIDDEN, "forbidden"),
        "rules are for managers"
    );
    let (s, v) = api.get("/api/alerts/rules", &api.admin).await;
    assert_eq!((s, v.as_array().map(Vec::len)), (StatusCode::OK, Some(1)));
    let (s, _) = api
        .call(
            reqwest::Method::DELETE,
            &format!("/api/alerts/rules/{id}"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = api
        .call(
            reqwest::Method::DELETE,
            &format!("/api/alerts/rules/{id}"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let subs = json!([{"user_id": "", "alert_type": "sla_breached", "channels": ["email", "in_app"], "min_severity": "high"}]);
    let (s, v) = api
        .call(
            reqwest::Method::PUT,
            "/api/alerts/subscriptions",
            Some(&api.alice),
            Some(subs),
        )
        .await;
    assert_eq!(
        (s, v[0]["user_id"].as_str()),
        (StatusCode::OK, Some("alice"))
    );
    let (_, v) = api.get("/api/alerts/subscriptions", &api.alice).await;
    assert_eq!(v[0]["channels"], json!(["email", "in_app"]));
    let others = json!([{"user_id": "bob", "alert_type": "x", "channels": ["email"]}]);
    let (s, _) = api
        .call(
            reqwest::Method::PUT,
            "/api/alerts/subscriptions",
            Some(&api.alice),
            Some(others),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let none = json!([{"user_id": "", "alert_type": "x", "channels": []}]);
    let (s, _) = api
        .call(
            reqwest::Method::PUT,
            "/api/alerts/subscriptions",
            Some(&api.alice),
            Some(none),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn etag_gives_304_until_something_changes() {
    let api = start().await;
    let (_, a) = api
        .post(
            "/api/alerts",
            &api.admin,
            alert("a", "high", &["user:alice"]),
        )
        .await;
    for path in [
        "/api/alerts",
        "/api/alerts/unread",
        "/api/alerts/unread/count",
    ] {
        let url = format!("{}{path}", api.base);
        let first = api
            .client
            .get(&url)
            .bearer_auth(&api.alice)
            .send()
            .await
            .unwrap();
        assert_eq!(first.status(), StatusCode::OK);
        let tag = first.headers()[ETAG].to_str().unwrap().to_owned();
        let again = api
            .client
            .get(&url)
            .bearer_auth(&api.alice)
            .header(IF_NONE_MATCH, &tag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(again.headers()[ETAG].to_str().unwrap(), tag);
        assert!(again.text().await.unwrap().is_empty());
    }
    let url = format!("{}/api/alerts/unread/count", api.base);
    let tag = api
        .client
        .get(&url)
        .bearer_auth(&api.alice)
        .send()
        .await
        .unwrap()
        .headers()[ETAG]
        .to_str()
        .unwrap()
        .to_owned();
    api.call(
        reqwest::Method::POST,
        &format!("/api/alerts/{}/mark-read", a["id"].as_str().unwrap()),
        Some(&api.alice),
        None,
    )
    .await;
    let changed = api
        .client
        .get(&url)
        .bearer_auth(&api.alice)
        .header(IF_NONE_MATCH, &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK, "a read changes the count");
    assert_ne!(changed.headers()[ETAG].to_str().unwrap(), tag);
}

#[tokio::test]
async fn rate_limit_is_per_user_with_retry_after() {
    let api = start_with(http::HttpConfig {
        rate_limit_per_minute: 3,
        ..Default::default()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(
            api.get("/api/alerts/unread/count", &api.alice).await.0,
            StatusCode::OK
        );
    }
    let res = api
        .client
        .get(format!("{}/api/alerts/unread/count", api.base))
        .bearer_auth(&api.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(code(&body), "rate_limited");
    assert_eq!(
        api.get("/api/alerts/unread/count", &api.bob).await.0,
        StatusCode::OK,
        "bob has his own budget"
    );
}

#[tokio::test]
async fn health_and_routes_are_503_when_the_store_is_down() {
    let Some(url) = alertkit_testkit::services::service_url("DATABASE_URL") else {
        return;
    };
    let store = alertkit_storage::PostgresAlertStore::builder(url)
        .max_connections(1)
        .connect()
        .await
        .unwrap();
    store.close().await;
    let kit = AlertKit::builder()
        .store(Arc::new(store))
        .broadcaster(Arc::new(LocalBroadcaster::new()))
        .build()
        .unwrap();
    let auth = Arc::new(JwtAuthenticator::hs256(SECRET).unwrap());
    let token = auth
        .issue(&Principal::user("alice"), Duration::from_secs(60))
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = http::router(kit, auth);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    let r = client
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "down");
    assert_eq!(v["components"]["store"]["status"], "down");
    assert!(
        v["components"]["store"]["error"]
            .as_str()
            .unwrap()
            .contains("closed"),
        "{v}"
    );
    assert_eq!(v["components"]["bus"]["status"], "ok", "{v}");
    let ready = client
        .get(format!("http://{addr}/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let live = client
        .get(format!("http://{addr}/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK, "the process itself is alive");
    let r = client
        .get(format!("http://{addr}/api/alerts"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = r.json().await.unwrap();
    assert_eq!(code(&v), "unavailable");
}

/// The properties a component schema declares, following `allOf` and refs.
fn schema_props(doc: &Value, name: &str) -> std::collections::BTreeSet<String> {
    let schema = &doc["components"]["schemas"][name];
    assert!(schema.is_object(), "no schema {name}");
    let mut out = std::collections::BTreeSet::new();
    let own = |s: &Value| -> Vec<String> {
        s["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    };
    out.extend(own(schema));
    for part in schema["allOf"].as_array().into_iter().flatten() {
        match part["$ref"].as_str() {
            Some(r) => out.extend(schema_props(doc, r.rsplit('/').next().unwrap())),
            None => out.extend(own(part)),
        }
    }
    out
}

fn keys(v: &Value) -> std::collections::BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn openapi_describes_every_route_and_the_real_json() {
    let api = start().await;
    let (s, doc) = api
        .call(reqwest::Method::GET, "/openapi.json", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    // Every route of the router, with its methods.
    let expected = [
        ("/health", vec!["get"]),
        ("/health/live", vec!["get"]),
        ("/health/ready", vec!["get"]),
        ("/api/alerts", vec!["get", "post"]),
        ("/api/alerts/unread", vec!["get"]),
        ("/api/alerts/unread/count", vec!["get"]),
        ("/api/alerts/stats", vec!["get"]),
        ("/api/alerts/mark-all-read", vec!["post"]),
        ("/api/alerts/{id}", vec!["delete", "get"]),
        ("/api/alerts/{id}/mark-read", vec!["post"]),
        ("/api/alerts/{id}/dismiss", vec!["post"]),
        ("/api/alerts/rules", vec!["get", "post"]),
        ("/api/alerts/rules/{id}", vec!["delete", "put"]),
        ("/api/alerts/subscriptions", vec!["get", "put"]),
        ("/ws", vec!["get"]),
        ("/ws/live", vec!["get"]),
        ("/ws/alerts/{user_id}", vec!["get"]),
        ("/ws/notifications/{user_id}", vec!["get"]),
        ("/api/ws/stats", vec!["get"]),
        ("/api/ws/push/broadcast", vec!["post"]),
        ("/api/ws/disconnect", vec!["post"]),
        ("/api/me/contacts", vec!["get", "put"]),
        ("/api/deliveries", vec!["get"]),
        ("/api/deliveries/{id}/retry", vec!["post"]),
        ("/api/deliveries/{id}/attempts", vec!["get"]),
        ("/api/notify/routes", vec!["get", "post"]),
        ("/api/notify/routes/{id}", vec!["delete", "put"]),
    ];
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.len(), expected.len(), "{:?}", paths.keys());
    for (path, methods) in expected {
        let item = paths.get(path).unwrap_or_else(|| panic!("{path} missing"));
        let mut got: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        got.retain(|k| ["get", "post", "put", "delete"].contains(k));
        got.sort_unstable();
        assert_eq!(got, methods, "{path}");
        for m in methods {
            assert!(
                item[m]["responses"]
                    .as_object()
                    .is_some_and(|r| !r.is_empty()),
                "{m} {path}"
            );
            // Every authenticated route documents 401, 429 and 503.
            let authed = !path.starts_with("/health");
            for code in ["401", "429"] {
                assert_eq!(
                    item[m]["responses"][code].is_object(),
                    authed,
                    "{code} on {m} {path}"
                );
            }
            if path != "/health/live" {
                assert!(item[m]["responses"]["503"].is_object(), "503 on {m} {path}");
            }
        }
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert_eq!(doc["paths"]["/health"]["get"]["security"], json!([{}]));

    // The schemas match what the API really sends.
    let (_, created) = api
        .post(
            "/api/alerts",
            &api.admin,
            json!({"alert_type": "t", "severity": "high", "title": "x", "audience": ["everyone"],
                   "resource": {"type": "host", "id": "h1"}, "expires_at": "2099-01-01T00:00:00Z",
                   "dedup_key": "k"}),
        )
        .await;
    let mut view = created.clone();
    view.as_object_mut().unwrap().remove("deduplicated");
    assert_eq!(keys(&view), schema_props(&doc, "AlertView"));
    assert_eq!(keys(&created), schema_props(&doc, "CreatedAlert"));
    let (_, page) = api.get("/api/alerts", &api.alice).await;
    assert_eq!(keys(&page), schema_props(&doc, "AlertPage"));
    let (_, stats) = api.get("/api/alerts/stats", &api.alice).await;
    assert_eq!(keys(&stats), schema_props(&doc, "Stats"));
    let new_alert = serde_json::to_value(NewAlert::new("t", Severity::Low, "x")).unwrap();
    assert_eq!(keys(&new_alert), schema_props(&doc, "NewAlert"));
    let (_, count) = api.get("/api/alerts/unread/count", &api.alice).await;
    assert_eq!(keys(&count), schema_props(&doc, "UnreadCount"));

    // And a browsable page, served offline.
    let r = reqwest::get(format!("{}/docs/", api.base)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("swagger"));
}

#[tokio::test]
async fn contacts_are_ones_own_and_deliveries_are_for_managers() {
    let api = start().await;
    let (s, v) = api.get("/api/me/contacts", &api.alice).await;
    assert_eq!(
        (s, &v["user_id"], &v["email"]),
        (StatusCode::OK, &json!("alice"), &Value::Null)
    );
    let mine = json!({"email": "alice@example.test", "slack_id": "U1", "webhook_url": "https://hooks.test/a"});
    let (s, v) = api
        .call(
            reqwest::Method::PUT,
            "/api/me/contacts",
            Some(&api.alice),
            Some(mine.clone()),
        )
        .await;
    assert_eq!(
        (s, &v["user_id"], &v["email"]),
        (StatusCode::OK, &json!("alice"), &mine["email"])
    );
    let (_, v) = api.get("/api/me/contacts", &api.alice).await;
    assert_eq!(v["webhook_url"], "https://hooks.test/a");
    let (_, v) = api.get("/api/me/contacts", &api.bob).await;
    assert_eq!(v["email"], Value::Null, "bob sees his own, not alice's");
    // Someone else's, or invalid addresses.
    for (body, status) in [
        (
            json!({"user_id": "bob", "email": "x@y.test"}),
            StatusCode::FORBIDDEN,
        ),
        (
            json!({"email": "no-at-sign"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"email": "a b@c.test"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"webhook_url": "file:///etc/passwd"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"email": 5}), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (s, v) = api
            .call(
                reqwest::Method::PUT,
                "/api/me/contacts",
                Some(&api.alice),
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, status, "{body}: {v}");
    }

    // Deliveries: managers only; without a filter, the latest of every
    // status; the limit is 1 to 1000.
    let (s, v) = api.get("/api/deliveries?status=dead", &api.alice).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "forbidden"));
    let (s, v) = api.get("/api/deliveries?status=dead", &api.admin).await;
    assert_eq!((s, v.as_array().map(Vec::len)), (StatusCode::OK, Some(0)));
    let (s, v) = api.get("/api/deliveries", &api.admin).await;
    assert_eq!((s, v.as_array().map(Vec::len)), (StatusCode::OK, Some(0)));
    for bad in [
        "/api/deliveries?limit=0",
        "/api/deliveries?status=dead&limit=1001",
        "/api/deliveries?status=lost",
        "/api/deliveries?alert_id=x",
        "/api/deliveries?status=dead&limit=x",
    ] {
        let (s, v) = api.get(bad, &api.admin).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{bad}"
        );
    }
    let id = uuid::Uuid::now_v7();
    let (s, v) = api
        .get(&format!("/api/deliveries/{id}/attempts"), &api.alice)
        .await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "forbidden"));
    let (s, v) = api
        .get(&format!("/api/deliveries/{id}/attempts"), &api.admin)
        .await;
    assert_eq!((s, v.as_array().map(Vec::len)), (StatusCode::OK, Some(0)));
    let (s, v) = api
        .post(
            &format!("/api/deliveries/{id}/retry"),
            &api.alice,
            json!({}),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "forbidden"));
    let (s, v) = api
        .post(
            &format!("/api/deliveries/{id}/retry"),
            &api.admin,
            json!({}),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "not_found"));
}

#[tokio::test]
async fn team_routes_are_for_managers_and_validated() {
    let api = start().await;
    let route = json!({"name": "ops slack", "min_severity": "high", "alert_types": ["capacity_warning"],
                       "destination": {"kind": "slack", "webhook_url": "https://hooks.slack.test/T/B/X"}});
    let (s, v) = api
        .post("/api/notify/routes", &api.alice, route.clone())
        .await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "forbidden"));
    let (s, created) = api
        .post("/api/notify/routes", &api.admin, route.clone())
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["destination"]["kind"], "slack");
    let id = created["id"].as_str().unwrap().to_owned();
    let (s, list) = api.get("/api/notify/routes", &api.admin).await;
    assert_eq!(
        (s, list.as_array().map(Vec::len)),
        (StatusCode::OK, Some(1))
    );
    let (s, _) = api.get("/api/notify/routes", &api.alice).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let mut changed = route.clone();
    changed["destination"] = json!({"kind": "email", "addresses": ["a@x.test", "b@x.test"]});
    let (s, v) = api
        .call(
            reqwest::Method::PUT,
            &format!("/api/notify/routes/{id}"),
            Some(&api.admin),
            Some(changed),
        )
        .await;
    assert_eq!(
        (s, &v["destination"]["addresses"][1]),
        (StatusCode::OK, &json!("b@x.test"))
    );
    assert_eq!(v["created_at"], created["created_at"]);
    for bad in [
        json!({"name": "", "destination": {"kind": "webhook", "url": "https://h.test"}}),
        json!({"name": "x", "destination": {"kind": "slack", "webhook_url": "ftp://plain.test"}}),
        json!({"name": "x", "destination": {"kind": "email", "addresses": []}}),
        json!({"name": "x", "destination": {"kind": "webhook", "url": "gopher://h.test"}}),
        json!({"name": "x", "destination": {"kind": "pager"}}),
    ] {
        let (s, v) = api
            .post("/api/notify/routes", &api.admin, bad.clone())
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
    }
    let path = format!("/api/notify/routes/{id}");
    let (s, _) = api
        .call(reqwest::Method::DELETE, &path, Some(&api.admin), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = api
        .call(reqwest::Method::DELETE, &path, Some(&api.admin), None)
        .await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "not_found"));
}

/// A bus that delivers locally but does not answer pings (Redis down).
struct DeafBus(LocalBroadcaster);

#[async_trait::async_trait]
impl alertkit_core::Broadcaster for DeafBus {
    async fn publish(&self, event: alertkit_core::AlertEvent) -> alertkit_core::Result<()> {
        self.0.publish(event).await
    }
    async fn subscribe(&self) -> alertkit_core::Result<alertkit_core::EventStream> {
        self.0.subscribe().await
    }
    async fn ping(&self) -> alertkit_core::Result<()> {
        Err(alertkit_core::Error::Unavailable(
            "redis: connection refused".into(),
        ))
    }
}

#[tokio::test]
async fn health_is_degraded_not_down_when_the_bus_is_down_or_deliveries_wait() {
    let store = Arc::new(MemoryAlertStore::new());
    let clock = Arc::new(alertkit_core::ManualClock::new(
        chrono::DateTime::parse_from_rfc3339("2026-03-02T12:00:00Z")
            .unwrap()
            .into(),
    ));
    let kit = AlertKit::builder()
        .store(store.clone())
        .clock(clock.clone())
        .broadcaster(Arc::new(DeafBus(LocalBroadcaster::new())))
        .build()
        .unwrap();
    let auth = Arc::new(JwtAuthenticator::hs256(SECRET).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = http::router(kit.clone(), auth);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let get = |path: &'static str| async move {
        let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    let (s, v) = get("/health").await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("degraded")),
        "{v}"
    );
    assert_eq!(v["components"]["bus"]["status"], "degraded");
    assert!(
        v["components"]["bus"]["error"]
            .as_str()
            .unwrap()
            .contains("refused")
    );
    assert_eq!(v["components"]["store"]["status"], "ok");
    assert_eq!(
        get("/health/ready").await.0,
        StatusCode::OK,
        "the store answers"
    );

    // A delivery due 6 minutes ago and never sent: the dispatcher lags.
    let alert = alertkit_testkit::fixtures::alert(
        NewAlert::new("disk", Severity::High, "x").audience(alertkit_core::Audience::everyone()),
        kit.now(),
    );
    alertkit_core::AlertStore::insert_or_dedup(
        &*store,
        alert,
        &[alertkit_core::DeliveryTarget::new(
            "alice",
            alertkit_core::Channel::Email,
        )],
        kit.now(),
    )
    .await
    .unwrap();
    clock.advance(chrono::Duration::minutes(6));
    let (_, v) = get("/health").await;
    assert_eq!(v["components"]["dispatcher"]["status"], "degraded", "{v}");
    assert_eq!(v["components"]["dispatcher"]["unfinished"], 1);
    assert_eq!(v["components"]["dispatcher"]["oldest_due_seconds"], 360);
}

/// A component whose state the test sets.
struct Switch(std::sync::atomic::AtomicBool);

#[async_trait::async_trait]
impl alertkit_core::HealthCheck for Switch {
    fn name(&self) -> &str {
        "printer"
    }
    async fn check(&self) -> alertkit_core::ComponentHealth {
        let mut details = serde_json::Map::new();
        details.insert("pages".into(), json!(7));
        if self.0.load(std::sync::atomic::Ordering::SeqCst) {
            alertkit_core::ComponentHealth::ok(details)
        } else {
            alertkit_core::ComponentHealth::degraded("out of paper", details)
        }
    }
}

#[tokio::test]
async fn extra_health_checks_are_reported_and_only_degrade() {
    let switch = Arc::new(Switch(std::sync::atomic::AtomicBool::new(true)));
    let api = start_with(http::HttpConfig {
        health_checks: vec![switch.clone()],
        ..Default::default()
    })
    .await;
    let (status, body) = api.call(reqwest::Method::GET, "/health", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(
        body["components"]["printer"],
        json!({"status": "ok", "pages": 7})
    );
    switch.0.store(false, std::sync::atomic::Ordering::SeqCst);
    let (status, body) = api.call(reqwest::Method::GET, "/health", None, None).await;
    assert_eq!(
        status, 200,
        "an extra component never takes the service down"
    );
    assert_eq!(body["status"], "degraded");
    assert_eq!(
        body["components"]["printer"],
        json!({"status": "degraded", "error": "out of paper", "pages": 7})
    );
    assert_eq!(body["components"]["store"]["status"], "ok");
}
