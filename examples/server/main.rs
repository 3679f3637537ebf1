//! The alertkit reference server.
//!
//! `cargo run --example server` — zero configuration: SQLite (`alertkit.db`),
//! the in-process bus, a generated JWT secret, with an admin and a demo-user
//! token printed, listening on http://127.0.0.1:8000.
//!
//! Configured only from the environment: `--help` lists every variable
//! with its default (`config.rs`). `DATABASE_URL` takes `sqlite://`,
//! `postgres://` or `mongodb://`; `REDIS_URL` shares live events across
//! replicas; `ALERTKIT_JWT_SECRET` must be shared by them too. With no
//! notification variables set, deliveries are written to the log.
//! Prometheus metrics are at `GET /metrics` (`telemetry.rs`); logs are JSON
//! with `ALERTKIT_LOG_FORMAT=json`, each request and job run a span.
//!
//! It serves the REST API and the WebSocket hub (`/ws`, with resume), and
//! runs the delivery dispatcher. Ctrl-C or SIGTERM shuts down gracefully:
//! every WebSocket is closed with 1001 first, then in-flight requests and
//! sends finish. A bad setting exits with status 2 and one line naming the
//! variable. It runs the built-in scheduled jobs and the forecast pipeline
//! (`forecast/`; `--demo` loads a demo dataset), and produces reports on
//! request (`reports/`). The dashboard is at `/` (`web.rs`, `dashboard/`).

mod api;
mod config;
mod forecast;
mod jobs;
mod notify;
mod reports;
mod telemetry;
mod web;

use std::sync::Arc;
use std::time::Duration;

use alertkit::notify::StaticDirectory;
use alertkit::storage::{PostgresAlertStore, SqliteBuilder};
use alertkit::transport::ws::hub::{WsConfig, WsHub};
use alertkit::transport::{JwtAuthenticator, LocalBroadcaster, RedisBroadcaster, http};
use alertkit::{
    AlertKit, Authenticator, Broadcaster, Directory, Principal, ReportStore, SeriesStore, Store,
};

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// A non-empty environment variable.
pub fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

/// Exits with status 2 and one line naming the variable at fault.
pub fn fail(var: &str, why: &str) -> ! {
    eprintln!("alertkit: bad {var}: {why}");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    // Every start-up error is one line: the bad variable's is printed where
    // it is read (exit 2); anything else that stops the server ends here.
    if let Err(e) = run().await {
        eprintln!("alertkit: {e}");
        std::process::exit(1);
    }
}

/// The stores one database provides: alerts, forecast series, reports.
type Stores = (Arc<dyn Store>, Arc<dyn SeriesStore>, Arc<dyn ReportStore>);

/// Opens `DATABASE_URL` and brings its schema up to date.
async fn open_database(url: &str) -> Stores {
    let bad = |e: alertkit::Error| -> ! { fail("DATABASE_URL", &e.to_string()) };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let pg = PostgresAlertStore::builder(url)
            .connect()
            .await
            .unwrap_or_else(|e| bad(e));
        pg.migrate().await.unwrap_or_else(|e| bad(e));
        (Arc::new(pg.clone()), Arc::new(pg.clone()), Arc::new(pg))
    } else if url.starts_with("sqlite:") {
        let lite = SqliteBuilder::from_url(url)
            .connect()
            .await
            .unwrap_or_else(|e| bad(e));
        lite.migrate().await.unwrap_or_else(|e| bad(e));
        (
            Arc::new(lite.clone()),
            Arc::new(lite.clone()),
            Arc::new(lite),
        )
    } else if url.starts_with("mongodb://") || url.starts_with("mongodb+srv://") {
        // The database is the URL's path (`mongodb://host/alerts`), else `alertkit`.
        let rest = url.split_once("://").map_or("", |(_, r)| r);
        let db = rest
            .split_once('/')
            .map(|(_, p)| p.split('?').next().unwrap_or(""))
            .filter(|d| !d.is_empty())
            .unwrap_or("alertkit");
        let mongo = alertkit::storage::MongoAlertStore::builder(url)
            .database(db)
            .connect()
            .await
            .unwrap_or_else(|e| bad(e));
        // The driver waits 30 s for a server; say sooner what is wrong.
        match tokio::time::timeout(Duration::from_secs(10), mongo.init()).await {
            Ok(r) => r.unwrap_or_else(|e| bad(e)),
            Err(_) => fail("DATABASE_URL", "MongoDB did not answer within 10 s"),
        }
        (
            Arc::new(mongo.clone()),
            Arc::new(mongo.clone()),
            Arc::new(mongo),
        )
    } else {
        fail(
            "DATABASE_URL",
            "unknown scheme: use sqlite://…, postgres://… or mongodb://…",
        )
    }
}

/// Logs as text or JSON (`ALERTKIT_LOG_FORMAT`), filtered by `RUST_LOG`.
fn init_logs() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    match env("ALERTKIT_LOG_FORMAT").as_deref() {
        None | Some("text") => tracing_subscriber::fmt().with_env_filter(filter).init(),
        Some("json") => tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_env_filter(filter)
            .init(),
        Some(other) => fail(
            "ALERTKIT_LOG_FORMAT",
            &format!("{other:?}: use text or json"),
        ),
    }
}

async fn run() -> Result<(), Failure> {
    let mut demo_data = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--demo" => demo_data = true,
            "--help" | "-h" => {
                print!("{}", config::help());
                return Ok(());
            }
            other => {
                eprintln!("alertkit: unknown argument {other:?} (known: --demo, --help)");
                std::process::exit(2);
            }
        }
    }
    init_logs();
    // Before anything emits: metrics recorded earlier would be lost.
    let prometheus = telemetry::install().unwrap_or_else(|e| {
        eprintln!("alertkit: cannot install the metrics recorder: {e}");
        std::process::exit(2)
    });
    let addr = env("ALERTKIT_ADDR").unwrap_or_else(|| "127.0.0.1:8000".into());
    if addr.parse::<std::net::SocketAddr>().is_err() {
        fail(
            "ALERTKIT_ADDR",
            &format!("{addr:?} is not host:port (for example 127.0.0.1:8000)"),
        );
    }
    let cors = config::cors(env("ALERTKIT_CORS_ORIGINS"));
    // Bound before the slow parts start, so a port in use fails at once.
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .unwrap_or_else(|e| fail("ALERTKIT_ADDR", &format!("cannot listen on {addr}: {e}")));

    let database = env("DATABASE_URL").unwrap_or_else(|| "sqlite://alertkit.db?mode=rwc".into());
    // One database holds the alerts, the forecast series and the reports.
    let (store, series, report_store) = open_database(&database).await;
    let bus: Arc<dyn Broadcaster> = match env("REDIS_URL") {
        Some(url) => Arc::new(
            RedisBroadcaster::builder(url)
                .connect()
                .await
                .unwrap_or_else(|e| fail("REDIS_URL", &e.to_string())),
        ),
        None => Arc::new(LocalBroadcaster::new()),
    };
    let (secret, generated) = match env("ALERTKIT_JWT_SECRET") {
        Some(secret) => (secret, false),
        None => (
            format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ),
            true,
        ),
    };
    let mut auth = JwtAuthenticator::hs256(secret.as_bytes())
        .unwrap_or_else(|e| fail("ALERTKIT_JWT_SECRET", &e.to_string()));
    if let Some(iss) = env("ALERTKIT_JWT_ISSUER") {
        auth = auth.issuer(&iss);
    }
    if let Some(aud) = env("ALERTKIT_JWT_AUDIENCE") {
        auth = auth.audience(&aud);
    }
    // Who is in which group, for deliveries to group audiences.
    let groups: Arc<dyn Directory> = Arc::new(
        StaticDirectory::from_groups(&env("ALERTKIT_GROUPS").unwrap_or_default())
            .unwrap_or_else(|e| fail("ALERTKIT_GROUPS", &e.to_string())),
    );
    let kit = AlertKit::builder()
        .store(store.clone())
        .broadcaster(bus)
        .directory(groups.clone())
        // Every replica holding the secret accepts the others' cursors.
        .cursor_key(format!("alertkit list cursors:{secret}"))
        .build()?;
    let rate = env("ALERTKIT_RATE_LIMIT")
        .map(|r| {
            r.parse()
                .unwrap_or_else(|_| fail("ALERTKIT_RATE_LIMIT", "must be a whole number"))
        })
        .unwrap_or(http::DEFAULT_RATE_LIMIT);
    println!(
        "alertkit listening on http://{addr} (store: {}, bus: {})",
        store.backend(),
        if env("REDIS_URL").is_some() {
            "redis"
        } else {
            "in-process"
        }
    );
    if generated {
        let day = Duration::from_secs(24 * 3600);
        let admin = auth.issue(&Principal::admin("admin"), day)?;
        let demo = auth.issue(
            &Principal::user("demo")
                .with_groups(["planners"])
                .with_permissions([alertkit::Permission::ForecastRead]),
            day,
        )?;
        println!("\nNo ALERTKIT_JWT_SECRET: generated one; tokens valid for 24 h.");
        println!(
            "admin token:\n  {admin}\ndemo user token (user `demo`, group `planners`):\n  {demo}\n"
        );
        println!("Try:");
        println!(
            "  curl -s -X POST http://{addr}/api/alerts -H 'Authorization: Bearer {admin}' -H 'content-type: application/json' \\"
        );
        println!(
            "    -d '{{\"alert_type\":\"capacity_warning\",\"severity\":\"high\",\"title\":\"VCH20 near capacity\",\"tags\":[\"VCH20\"],\"audience\":[\"group:planners\"]}}'"
        );
        println!("  curl -s http://{addr}/api/alerts -H 'Authorization: Bearer {demo}'");
        println!("  websocat 'ws://{addr}/ws?token={demo}'");
        println!("Dashboard: http://{addr}/ (paste one of the tokens above to sign in)");
        println!("API reference: http://{addr}/docs (OpenAPI at /openapi.json)");
        if !demo_data {
            println!("Forecast demo data: restart with `cargo run --example server -- --demo`");
        }
    }

    let notify = notify::start(&kit, groups, &secret, &format!("http://{addr}")).await;
    println!("notifications: {}", notify.summary);
    let auth: Arc<dyn Authenticator> = Arc::new(auth);
    let auth_routes = auth.clone();
    let metrics = Arc::new(forecast::metrics::SeriesMetrics(series.clone()));
    let jobs = jobs::start(&kit, auth.clone(), metrics).await;
    let forecast = forecast::Forecast::from_env(kit.clone(), series);
    forecast.register(&*jobs.scheduler).await?;
    if demo_data {
        let n = forecast::demo::load(&*forecast.series, &*jobs.scheduler).await?;
        println!(
            "demo data: {n} points in 3 series (vch20, vch21, api.requests); the forecast is running: \
             a capacity_warning for vch20 appears in GET /api/alerts within a minute"
        );
    }
    let reports =
        reports::ReportRoutes::from_env(report_store, kit.clone(), jobs.scheduler.clone());
    reports.register().await?;
    println!(
        "scheduled jobs: {}, forecast, series_retention, reports, report_retention (GET /api/scheduler/jobs)",
        jobs.summary
    );
    println!("report files: {}/", reports.dir());
    let hub = WsHub::new(kit, WsConfig::default());
    let closer = hub.clone();
    let app = http::router_with_hub(
        hub.clone(),
        auth,
        http::HttpConfig {
            rate_limit_per_minute: rate,
            extra_docs: vec![alertkit::scheduler::http::openapi()],
            health_checks: std::iter::once(jobs.health.clone())
                .chain(notify.health.clone())
                .collect(),
            ..Default::default()
        },
    )
    .merge(
        jobs.routes
            .merge(http::authenticated(
                forecast.routes().merge(reports.routes()),
                auth_routes,
            ))
            .layer(axum::middleware::from_fn(http::record_request)),
    )
    .merge(telemetry::route(prometheus))
    .merge(web::routes());
    let app = match cors {
        Some(layer) => app.layer(layer),
        None => app,
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            println!("shutting down: closing WebSockets with 1001");
            closer.shutdown();
        })
        .await?;
    // Upgraded connections outlive `serve`: let them write their 1001.
    hub.drained(Duration::from_secs(5)).await;
    notify.handle.shutdown().await;
    jobs.handle.shutdown().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
