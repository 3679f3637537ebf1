//! Notifications: getting alerts to people outside the app.
//!
//! The [`Dispatcher`] drains the store's delivery outbox (an
//! [`Outbox`](alertkit_core::Outbox), filled in each raise's transaction):
//! it claims due deliveries under a lease, finds the receiver's address
//! through a [`Directory`](alertkit_core::Directory), sends through the
//! channel's [`Notifier`], and records the outcome, retrying with backoff,
//! honouring `Retry-After`, rate-limiting per destination and
//! dead-lettering what cannot be sent.
//!
//! | notifier | type | feature |
//! |---|---|---|
//! | log line (`tracing`), the zero-config default | [`LogNotifier`] | always |
//! | in-memory recorder, for tests | [`RecordingNotifier`] | always |
//! | signed JSON webhook | `WebhookNotifier` | `webhook` |
//! | Slack (incoming webhook or `chat.postMessage`) | `SlackNotifier` | `slack` |
//! | email over SMTP (lettre) | `EmailNotifier` | `email` |
//!
//! Every notifier passes the delivery id on (`Idempotency-Key`,
//! `Message-ID`), so a receiver can drop the repeat that a crash between
//! sending and recording may cause.
//!
//! ```
//! use std::sync::Arc;
//! use alertkit_core::{Channel, Outbox};
//! use alertkit_notify::{Dispatcher, LogNotifier, StaticDirectory};
//!
//! # async fn demo(outbox: Arc<dyn Outbox>) -> alertkit_core::Result<()> {
//! let directory = Arc::new(StaticDirectory::new());
//! let dispatcher = Dispatcher::builder(outbox, directory)
//!     .notifier(Arc::new(LogNotifier::new(Channel::Email)))
//!     .build()?;
//! let running = dispatcher.spawn();
//! // … on shutdown: in-flight sends finish, the rest wait for their lease.
//! running.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod directory;
pub mod dispatcher;
#[cfg(feature = "email")]
pub mod email;
#[cfg(any(feature = "slack", feature = "webhook"))]
pub mod http;
pub mod log;
#[cfg(feature = "slack")]
pub mod slack;
pub mod template;
#[cfg(feature = "webhook")]
pub mod webhook;

pub use alertkit_core::{Channel, DigestBatch, Notification, Notifier, Recipient};
pub use directory::{StaticDirectory, StoreDirectory};
pub use dispatcher::{
    Dispatcher, DispatcherBuilder, DispatcherConfig, DispatcherHandle, RetryPolicy,
};
#[cfg(feature = "email")]
pub use email::{EmailNotifier, SmtpHealth};
pub use log::{LogNotifier, RecordingNotifier};
#[cfg(feature = "slack")]
pub use slack::SlackNotifier;
pub use template::Template;
#[cfg(feature = "webhook")]
pub use webhook::WebhookNotifier;
