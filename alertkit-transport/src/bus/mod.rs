//! Broadcasters: how alert events reach every instance.
//!
//! | broadcaster | feature | reach |
//! |---|---|---|
//! | [`LocalBroadcaster`] | always | this process |
//! | `RedisBroadcaster` | `redis` | every instance on one Redis, through pub/sub |

pub mod local;
#[cfg(feature = "redis")]
pub mod redis;

pub use local::LocalBroadcaster;
#[cfg(feature = "redis")]
pub use redis::{RedisBroadcaster, RedisBuilder};
