//! The server's notification side: which notifiers, from the environment,
//! and the dispatcher draining the store's outbox.
//!
//! | variable | effect |
//! |---|---|
//! | `SMTP_URL` | email through this server (`smtps://user:pass@host:465`, `smtp://host:587?tls=required`, plain `smtp://` only to loopback); else emails are logged |
//! | `SMTP_FROM` | the sender (default `alertkit@localhost`) |
//! | `SLACK_WEBHOOK_URL` | a team route (`default slack`) sending every high and critical alert to this incoming webhook |
//! | `SLACK_BOT_TOKEN` | Slack messages to member ids go through `chat.postMessage` |
//! | `ALERTKIT_WEBHOOK_SECRET` | signs webhooks (default: derived from the JWT secret) |
//! | `ALERTKIT_APP_URL` | links in messages (default: the server's own URL) |
//! | `ALERTKIT_DELIVERY_RETRY_SECS` | the waits before each retry of a failed delivery, in seconds, comma-separated (default `60,300,900`: four attempts in all, then a dead letter), each spread by ±20 % |
//! | `ALERTKIT_DELIVERY_LEASE_SECS` | how long a claimed delivery is held (default 120): after a crash, the deliveries it was sending are retried once this has passed |
//! | `ALERTKIT_ALLOW_PRIVATE_WEBHOOKS` | `1`: Slack and webhook URLs may point at loopback and private addresses (default: refused, since users choose webhook URLs) |

use std::sync::Arc;

use alertkit::notify::{
    Dispatcher, DispatcherConfig, DispatcherHandle, EmailNotifier, LogNotifier, SlackNotifier,
    StoreDirectory, Template, WebhookNotifier,
};
use alertkit::{
    AlertKit, Channel, Destination, Directory, NewRoute, Notifier, Principal, Severity,
};

use crate::{env, fail};

/// What the dispatcher was given, for the start-up banner.
pub struct Notify {
    pub handle: DispatcherHandle,
    pub summary: String,
    /// The `smtp` component of `/health`, when `SMTP_URL` is set.
    pub health: Option<Arc<dyn alertkit::HealthCheck>>,
}

/// Builds the notifiers from the environment and starts the dispatcher.
/// A bad value exits with status 2 and a line naming the variable.
pub async fn start(
    kit: &AlertKit,
    groups: Arc<dyn Directory>,
    jwt_secret: &str,
    app_url: &str,
) -> Notify {
    let template =
        Template::with_app_url(env("ALERTKIT_APP_URL").unwrap_or_else(|| app_url.into()));
    let mut summary = Vec::new();
    let mut health: Option<Arc<dyn alertkit::HealthCheck>> = None;
    let email: Arc<dyn Notifier> = match env("SMTP_URL") {
        Some(url) => {
            let from = env("SMTP_FROM").unwrap_or_else(|| "alertkit@localhost".into());
            let n = EmailNotifier::from_url(&url, &from)
                .unwrap_or_else(|e| fail("SMTP_URL or SMTP_FROM", &e.to_string()));
            summary.push("email: SMTP");
            health = Some(Arc::new(n.health_check()));
            Arc::new(n.template(template.clone()))
        }
        None => {
            summary.push("email: logged");
            Arc::new(LogNotifier::new(Channel::Email))
        }
    };
    let (hook, token) = (env("SLACK_WEBHOOK_URL"), env("SLACK_BOT_TOKEN"));
    if let Some(url) = &hook {
        default_slack_route(kit, url).await;
    }
    let private = match env("ALERTKIT_ALLOW_PRIVATE_WEBHOOKS").as_deref() {
        None | Some("0") => false,
        Some("1") => true,
        Some(_) => fail("ALERTKIT_ALLOW_PRIVATE_WEBHOOKS", "must be 0 or 1"),
    };
    let slack: Arc<dyn Notifier> = if hook.is_some() || token.is_some() {
        let mut n = SlackNotifier::new()
            .and_then(|n| n.allow_private(private))
            .unwrap_or_else(|e| fail("SLACK_WEBHOOK_URL", &e.to_string()))
            .template(template.clone());
        if let Some(t) = token {
            n = n.bot_token(t);
        }
        summary.push("slack: on");
        Arc::new(n)
    } else {
        summary.push("slack: logged");
        Arc::new(LogNotifier::new(Channel::Slack))
    };
    let secret = env("ALERTKIT_WEBHOOK_SECRET").unwrap_or_else(|| format!("webhooks:{jwt_secret}"));
    let webhook = WebhookNotifier::new(secret.into_bytes())
        .and_then(|n| n.allow_private(private))
        .unwrap_or_else(|e| fail("ALERTKIT_WEBHOOK_SECRET", &e.to_string()));
    let dispatcher = Dispatcher::builder(
        kit.outbox(),
        Arc::new(StoreDirectory::new(kit.rule_store()).with_groups(groups)),
    )
    .notifier(email)
    .notifier(slack)
    .notifier(Arc::new(webhook))
    .clock(kit.clock().clone())
    .wake_on(kit.broadcaster().clone())
    .config(dispatcher_config())
    .build()
    .unwrap_or_else(|e| fail("dispatcher", &e.to_string()));
    Notify {
        handle: dispatcher.spawn(),
        summary: summary.join(", "),
        health,
    }
}

/// The dispatcher's settings: the defaults, with `ALERTKIT_DELIVERY_LEASE_SECS`
/// and `ALERTKIT_DELIVERY_RETRY_SECS`.
fn dispatcher_config() -> DispatcherConfig {
    let mut config = DispatcherConfig::default();
    if let Some(v) = env("ALERTKIT_DELIVERY_RETRY_SECS") {
        let delays: Option<Vec<std::time::Duration>> = v
            .split(',')
            .map(|d| match d.trim().parse::<u64>() {
                Ok(n) if (1..=86_400).contains(&n) => Some(std::time::Duration::from_secs(n)),
                _ => None,
            })
            .collect();
        match delays {
            Some(d) if (1..=20).contains(&d.len()) => config.retry.delays = d,
            _ => fail(
                "ALERTKIT_DELIVERY_RETRY_SECS",
                &format!("{v:?} is not 1 to 20 comma-separated numbers of seconds from 1 to 86400"),
            ),
        }
    }
    if let Some(v) = env("ALERTKIT_DELIVERY_LEASE_SECS") {
        match v.parse::<u64>() {
            Ok(n) if (1..=86_400).contains(&n) => config.lease = std::time::Duration::from_secs(n),
            _ => fail(
                "ALERTKIT_DELIVERY_LEASE_SECS",
                &format!("{v:?} is not a number of seconds from 1 to 86400"),
            ),
        }
    }
    config
}

/// The name of the team route `SLACK_WEBHOOK_URL` keeps up to date.
const DEFAULT_SLACK_ROUTE: &str = "default slack";

/// Creates or updates the `default slack` team route: every high and
/// critical alert goes to the webhook. (Personal Slack messages never fall
/// back to this shared channel.)
async fn default_slack_route(kit: &AlertKit, url: &str) {
    let system = Principal::system();
    let spec = NewRoute {
        name: DEFAULT_SLACK_ROUTE.into(),
        enabled: true,
        alert_types: vec![],
        min_severity: Severity::High,
        tags: vec![],
        destination: Destination::Slack {
            webhook_url: url.to_owned(),
        },
    };
    let existing = kit
        .routes(&system)
        .await
        .unwrap_or_else(|e| fail("DATABASE_URL", &e.to_string()))
        .into_iter()
        .find(|r| r.spec.name == DEFAULT_SLACK_ROUTE);
    let result = match existing {
        Some(r) => kit.update_route(&system, r.id, spec).await.map(|_| ()),
        None => kit.create_route(&system, spec).await.map(|_| ()),
    };
    if let Err(e) = result {
        fail("SLACK_WEBHOOK_URL", &e.to_string());
    }
}
