#![doc = include_str!("../README.md")]

pub use alertkit_core::*;

/// Storage backends (feature `storage`).
#[cfg(feature = "storage")]
pub use alertkit_storage as storage;

/// Broadcasters and, later, the WebSocket hub and REST router (feature `transport`).
#[cfg(feature = "transport")]
pub use alertkit_transport as transport;

/// Notifiers (feature `notify`).
#[cfg(feature = "notify")]
pub use alertkit_notify as notify;

/// The scheduler (feature `scheduler`).
#[cfg(feature = "scheduler")]
pub use alertkit_scheduler as scheduler;

/// The conformance suite for backend authors (feature `testkit`).
#[cfg(feature = "testkit")]
pub use alertkit_testkit as testkit;
