//! Getting alert events to people: broadcasters between instances, the
//! REST API, and the WebSocket hub with gap-free resume.
//!
//! | folder | piece | type | feature |
//! |---|---|---|---|
//! | [`bus`] | in-process broadcaster | [`LocalBroadcaster`] | always |
//! | [`bus`] | Redis broadcaster (across instances) | `RedisBroadcaster` | `redis` |
//! | `auth` | the `Authenticator` hook, JWT (HS256, RS256) | `JwtAuthenticator` | `jwt` |
//! | `http` | REST router: alerts, rules, subscriptions, health, OpenAPI | `http::router` | `axum` |
//! | `ws` | WebSocket hub and protocol (`/ws`): live events, receipts, resume | `ws::WsHub` | `axum` |
//!
//! The transport layer talks to storage only through the engine
//! ([`AlertKit`](alertkit_core::AlertKit)): every read and write it makes
//! is permission-checked there. The wire contract (routes, JSON shapes,
//! WebSocket messages and close codes) is written down in the repository's
//! `docs/wire.md`.
//!
//! ```
//! # tokio_test_block_on(async {
//! use alertkit_core::{AlertEvent, AlertId, Broadcaster, BusMessage};
//! use alertkit_transport::LocalBroadcaster;
//! use futures::StreamExt;
//!
//! let bus = LocalBroadcaster::new();
//! let mut events = bus.subscribe().await?;
//! bus.publish(AlertEvent::Dismissed {
//!     user_id: "alice".into(),
//!     alert_id: AlertId::new(),
//!     at: chrono::Utc::now(),
//! })
//! .await?;
//! assert!(matches!(events.next().await, Some(BusMessage::Event(_))));
//! # Ok::<(), alertkit_core::Error>(())
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

pub mod auth;
pub mod bus;
#[cfg(feature = "axum")]
pub mod http;
#[cfg(feature = "axum")]
pub mod ws;

#[cfg(feature = "jwt")]
pub use auth::{Claims, JwtAuthenticator};
pub use bus::LocalBroadcaster;
#[cfg(feature = "redis")]
pub use bus::{RedisBroadcaster, RedisBuilder};
