//! The scheduler's REST routes over a real socket, behind the transport's
//! JWT layer: every route's success and each error code, with user, viewer
//! and admin tokens.
#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use alertkit_core::{Job, JobContext, JobSpec, Permission, Principal, Result, Schedule, Scheduler};
use alertkit_scheduler::CronScheduler;
use alertkit_storage::MemoryAlertStore;
use alertkit_transport::JwtAuthenticator;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::Semaphore;

const SECRET: &[u8] = b"scheduler-http-test-secret-0123456789";

struct Gated(Arc<Semaphore>);

#[async_trait::async_trait]
impl Job for Gated {
    async fn run(&self, _: JobContext) -> Result<()> {
        self.0.acquire().await.unwrap().forget();
        Ok(())
    }
}

struct Api {
    base: String,
    http: reqwest::Client,
    gate: Arc<Semaphore>,
}

impl Api {
    async fn call(&self, method: &str, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url),
        };
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let body = res.json().await.unwrap_or(Value::Null);
        (status, body)
    }
}

async fn start() -> (Api, String, String, String) {
    let store = Arc::new(MemoryAlertStore::new());
    let sched = CronScheduler::builder(store).build();
    let gate = Arc::new(Semaphore::new(0));
    let every = |id: &str| {
        JobSpec::new(
            id,
            "a job",
            Schedule::Cron {
                expr: "0 0 3 * * *".into(),
                timezone: Some("Europe/Berlin".into()),
            },
        )
    };
    let mut retention = every("retention");
    retention.protected = true;
    sched
        .register(retention, Arc::new(Gated(gate.clone())))
        .await
        .unwrap();
    sched
        .register(every("forecast"), Arc::new(Gated(gate.clone())))
        .await
        .unwrap();
    let auth = Arc::new(JwtAuthenticator::hs256(SECRET).unwrap());
    let app = alertkit_transport::http::authenticated(
        alertkit_scheduler::http::router(Arc::new(sched)),
        auth.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let token = |p: Principal| auth.issue(&p, Duration::from_secs(600)).unwrap();
    let admin = token(Principal::admin("root"));
    let user = token(Principal::user("alice"));
    let viewer = token(
        Principal::user("mgr").with_permissions([Permission::AlertsRead, Permission::AlertsManage]),
    );
    let api = Api {
        base,
        http: reqwest::Client::new(),
        gate,
    };
    (api, admin, user, viewer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_need_a_token_and_a_manager() {
    let (api, admin, user, viewer) = start().await;
    for path in [
        "/api/scheduler/status",
        "/api/scheduler/jobs",
        "/api/scheduler/jobs/forecast",
        "/api/scheduler/jobs/forecast/runs",
    ] {
        let (s, body) = api.call("GET", path, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body["error"]["code"], "unauthenticated");
        let (s, _) = api.call("GET", path, Some("not-a-token")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}: a bad token");
        let (s, body) = api.call("GET", path, Some(&user)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(body["error"]["code"], "forbidden");
        for t in [&admin, &viewer] {
            let (s, _) = api.call("GET", path, Some(t)).await;
            assert_eq!(s, StatusCode::OK, "{path}");
        }
    }
    let (_, jobs) = api.call("GET", "/api/scheduler/jobs", Some(&admin)).await;
    let ids: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["forecast", "retention"]);
    let (_, job) = api
        .call("GET", "/api/scheduler/jobs/retention", Some(&admin))
        .await;
    assert_eq!(job["protected"], true);
    assert_eq!(job["paused"], false);
    assert_eq!(job["schedule"]["expr"], "0 0 3 * * *");
    assert!(job["next_run"].is_string());
    assert!(job["last_run"].is_null());
    for path in [
        "/api/scheduler/jobs/ghost",
        "/api/scheduler/jobs/ghost/runs",
    ] {
        let (s, body) = api.call("GET", path, Some(&admin)).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (_, status) = api
        .call("GET", "/api/scheduler/status", Some(&viewer))
        .await;
    assert_eq!(status["jobs"], 2);
    assert_eq!(status["paused"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_and_run_need_scheduler_manage_and_protect_what_is_protected() {
    let (api, admin, user, viewer) = start().await;
    for action in ["pause", "resume", "run"] {
        let path = format!("/api/scheduler/jobs/forecast/{action}");
        let (s, _) = api.call("POST", &path, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}");
        for t in [&user, &viewer] {
            let (s, _) = api.call("POST", &path, Some(t)).await;
            assert_eq!(
                s,
                StatusCode::FORBIDDEN,
                "{path}: alerts.manage is not enough"
            );
        }
        let (s, _) = api
            .call(
                "POST",
                &format!("/api/scheduler/jobs/ghost/{action}"),
                Some(&admin),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{action}");
    }
    let (s, body) = api
        .call("POST", "/api/scheduler/jobs/retention/pause", Some(&admin))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "protected");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("protected")
    );

    let (s, _) = api
        .call("POST", "/api/scheduler/jobs/forecast/pause", Some(&admin))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, job) = api
        .call("GET", "/api/scheduler/jobs/forecast", Some(&admin))
        .await;
    assert_eq!(
        (job["paused"].as_bool(), job["next_run"].is_null()),
        (Some(true), true)
    );
    let (s, _) = api
        .call("POST", "/api/scheduler/jobs/forecast/resume", Some(&admin))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // Run now: 202 with the run; again while it runs: 409.
    let (s, run) = api
        .call("POST", "/api/scheduler/jobs/forecast/run", Some(&admin))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(run["job_id"], "forecast");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (s, body) = api
        .call("POST", "/api/scheduler/jobs/forecast/run", Some(&admin))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "conflict");
    let (_, status) = api.call("GET", "/api/scheduler/status", Some(&admin)).await;
    assert_eq!(status["running"], 1);
    api.gate.add_permits(1);
    let mut runs = Value::Null;
    for _ in 0..50 {
        runs = api
            .call(
                "GET",
                "/api/scheduler/jobs/forecast/runs?limit=5",
                Some(&admin),
            )
            .await
            .1;
        if runs[0]["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["status"], "succeeded");
    assert_eq!(runs[0]["attempt"], 1);
}
