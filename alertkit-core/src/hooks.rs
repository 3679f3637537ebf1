//! Hooks an embedding application implements.

use async_trait::async_trait;

use crate::error::Result;
use crate::notify::Recipient;
use crate::principal::Principal;

/// Tells alertkit how to reach users and who is in a group.
#[async_trait]
pub trait Directory: Send + Sync + 'static {
    /// Contact details of a user, if known.
    async fn recipient(&self, user_id: &str) -> Result<Option<Recipient>>;

    /// The user ids in a group.
    async fn members(&self, group: &str) -> Result<Vec<String>>;
}

/// Turns a bearer token into a [`Principal`].
///
/// Bad, expired or missing credentials are [`Error::Unauthenticated`](crate::Error::Unauthenticated).
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// Authenticates a token.
    async fn authenticate(&self, token: &str) -> Result<Principal>;
}
