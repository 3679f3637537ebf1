//! Getting alert events to people.
//!
//! | piece | type | feature | status |
//! |---|---|---|---|
//! | in-process broadcaster | [`LocalBroadcaster`] | always | ready |
//! | Redis broadcaster | `RedisBroadcaster` | `redis` | ready |
//! | JWT authenticator (HS256, RS256) | `JwtAuthenticator` | `jwt` | ready |
//! | REST router (alerts, rules, subscriptions, health) | [`http::router`] | `axum` | in progress |
//! | WebSocket endpoint (live events, receipts, ping) | `/ws` in [`http::router`] | `axum` | in progress: no resume yet |
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

#[cfg(feature = "axum")]
pub mod http;
#[cfg(feature = "axum")]
pub mod hub;
#[cfg(feature = "jwt")]
pub mod jwt;
pub mod local;
#[cfg(feature = "axum")]
pub mod openapi;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "axum")]
pub mod ws;

#[cfg(feature = "jwt")]
pub use jwt::{Claims, JwtAuthenticator};
pub use local::LocalBroadcaster;
#[cfg(feature = "redis")]
pub use redis::{RedisBroadcaster, RedisBuilder};
