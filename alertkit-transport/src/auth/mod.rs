//! Authentication: turning a bearer token into a [`Principal`](alertkit_core::Principal).
//!
//! The [`Authenticator`] trait lives in `alertkit-core` (the engine's
//! embedder hook) and is re-exported here; `JwtAuthenticator`
//! (feature `jwt`) is the built-in implementation. Any other scheme (API
//! keys, sessions, mTLS identities) implements the trait.

pub use alertkit_core::Authenticator;

#[cfg(feature = "jwt")]
pub mod jwt;

#[cfg(feature = "jwt")]
pub use jwt::{Claims, JwtAuthenticator};
