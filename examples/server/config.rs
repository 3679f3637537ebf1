//! Every environment variable the server reads, with its default: what
//! `--help` prints (and a test checks that the sources read no other).

use axum::http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// `(variable, default, meaning)`.
pub const VARS: &[(&str, &str, &str)] = &[
    ("ALERTKIT_ADDR", "127.0.0.1:8000", "listen address"),
    (
        "DATABASE_URL",
        "sqlite://alertkit.db?mode=rwc",
        "sqlite://…, postgres://… or mongodb://…/<db> (MongoDB needs a replica set)",
    ),
    (
        "REDIS_URL",
        "(none: in-process bus)",
        "share live events across instances",
    ),
    (
        "ALERTKIT_JWT_SECRET",
        "(generated; tokens printed)",
        "HS256 secret, at least 32 bytes; also keys list cursors, so replicas must share it",
    ),
    (
        "ALERTKIT_JWT_ISSUER",
        "(not checked)",
        "tokens must carry this iss",
    ),
    (
        "ALERTKIT_JWT_AUDIENCE",
        "(not checked)",
        "tokens must carry this aud",
    ),
    (
        "ALERTKIT_RATE_LIMIT",
        "60",
        "requests per minute per user; 0 turns it off",
    ),
    (
        "ALERTKIT_CORS_ORIGINS",
        "(none: same origin only)",
        "comma-separated origins allowed to call the API from a browser (https://app.example.com), or *",
    ),
    (
        "ALERTKIT_LOG_FORMAT",
        "text",
        "text or json (one JSON object per line)",
    ),
    ("RUST_LOG", "info", "log filter (tracing EnvFilter syntax)"),
    (
        "ALERTKIT_GROUPS",
        "(none)",
        "group members for email/Slack/webhook deliveries: planners=alice,bob;ops=carol",
    ),
    (
        "SMTP_URL",
        "(none: emails are logged)",
        "smtp://host:port or smtps://user:pass@host",
    ),
    ("SMTP_FROM", "alertkit@localhost", "sender of emails"),
    (
        "SLACK_WEBHOOK_URL",
        "(none: Slack messages are logged)",
        "incoming webhook for the default Slack route",
    ),
    (
        "SLACK_BOT_TOKEN",
        "(none)",
        "bot token for chat.postMessage to users",
    ),
    (
        "ALERTKIT_WEBHOOK_SECRET",
        "(derived from the JWT secret)",
        "HMAC key signing outgoing webhooks",
    ),
    (
        "ALERTKIT_ALLOW_PRIVATE_WEBHOOKS",
        "0",
        "1 lets webhooks target private and loopback addresses",
    ),
    (
        "ALERTKIT_APP_URL",
        "http://<ALERTKIT_ADDR>",
        "link base in notifications",
    ),
    (
        "ALERTKIT_TZ",
        "UTC",
        "IANA time zone of the built-in cron jobs",
    ),
    (
        "ALERTKIT_ADMIN_GROUP",
        "admins",
        "who hears of failing jobs",
    ),
    (
        "ALERTKIT_MANAGER_GROUP",
        "managers",
        "who gets the daily summary",
    ),
    (
        "ALERTKIT_SUMMARY_GROUPS",
        "(none)",
        "comma-separated groups summarised daily",
    ),
    (
        "ALERTKIT_RULES_EVERY_SECS",
        "60",
        "how often the `rules` job evaluates the threshold rules, in seconds",
    ),
    (
        "ALERTKIT_DELIVERY_RETRY_SECS",
        "60,300,900",
        "waits before each retry of a failed delivery (then a dead letter), comma-separated seconds",
    ),
    (
        "ALERTKIT_DELIVERY_LEASE_SECS",
        "120",
        "how long a claimed delivery is held; after a crash, its deliveries are retried once this has passed",
    ),
    (
        "ALERTKIT_UPLOAD_MAX_MB",
        "64",
        "largest forecast upload, in MiB (1 to 4096)",
    ),
    (
        "ALERTKIT_FORECAST_WINDOW_DAYS",
        "14",
        "history the forecast fits on",
    ),
    (
        "ALERTKIT_FORECAST_HORIZON_HOURS",
        "24",
        "how far it predicts",
    ),
    (
        "ALERTKIT_CAPACITY_SHARE",
        "0.9",
        "warn when the forecast reaches this share of capacity",
    ),
    (
        "ALERTKIT_CAPACITY_BOUND",
        "point",
        "point or upper: compare the prediction or its upper bound",
    ),
    (
        "ALERTKIT_FORECAST_GROUP",
        "planners",
        "who gets capacity warnings",
    ),
    (
        "ALERTKIT_SERIES_RETENTION_DAYS",
        "90",
        "how long series points are kept",
    ),
    (
        "ALERTKIT_REPORT_DIR",
        "alertkit-reports",
        "where report files go",
    ),
    (
        "ALERTKIT_REPORT_RETENTION_DAYS",
        "7",
        "how long reports and their files are kept",
    ),
];

/// The `--help` text.
pub fn help() -> String {
    let width = VARS.iter().map(|(k, _, _)| k.len()).max().unwrap_or(0);
    let mut out = String::from(
        "alertkit reference server\n\n\
         usage: server [--demo] [--help]\n  \
         --demo   load three demo series (14 days) and run the forecast at once\n  \
         --help   this text\n\n\
         Configured only from the environment (empty counts as unset):\n\n",
    );
    for (k, default, meaning) in VARS {
        out.push_str(&format!(
            "  {k:width$}  {meaning}\n  {:width$}    default: {default}\n",
            ""
        ));
    }
    out.push_str(
        "\nA bad value stops the server with exit status 2 and one line naming the variable.\n\
         Dashboard at /, API reference at /docs, metrics at /metrics, health at /health.\n",
    );
    out
}

/// The CORS layer for `ALERTKIT_CORS_ORIGINS`, or `None` when unset (the
/// browser's same-origin policy then applies unchanged). Bearer tokens, not
/// cookies, so credentials are never allowed.
pub fn cors(value: Option<String>) -> Option<CorsLayer> {
    let value = value?;
    let allow = if value.trim() == "*" {
        AllowOrigin::any()
    } else {
        let mut origins = Vec::new();
        for o in value.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let ok = (o.starts_with("http://") || o.starts_with("https://"))
                && !o
                    .trim_end_matches('/')
                    .split_once("://")
                    .is_some_and(|(_, h)| h.contains('/'))
                && !o.contains(['?', '#', ' ']);
            if !ok {
                crate::fail(
                    "ALERTKIT_CORS_ORIGINS",
                    &format!("{o:?} is not an origin (scheme://host[:port], no path)"),
                );
            }
            match HeaderValue::from_str(o.trim_end_matches('/')) {
                Ok(v) => origins.push(v),
                Err(_) => crate::fail("ALERTKIT_CORS_ORIGINS", &format!("{o:?} is not an origin")),
            }
        }
        if origins.is_empty() {
            crate::fail("ALERTKIT_CORS_ORIGINS", "lists no origin");
        }
        AllowOrigin::list(origins)
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
                axum::http::header::IF_NONE_MATCH,
            ])
            .expose_headers([
                axum::http::header::ETAG,
                axum::http::header::RETRY_AFTER,
                HeaderName::from_static("content-disposition"),
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}
