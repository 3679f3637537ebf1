//! The built-in JWT [`Authenticator`] (feature `jwt`).
//!
//! Tokens carry `sub` (the user id), `groups` (list), `perms` (permission
//! strings such as `alerts.read`) and `exp`; HS256 with a shared secret or
//! RS256 with a public key. Every failure — missing, malformed, tampered,
//! expired, wrong algorithm — is [`Error::Unauthenticated`], never a panic.

use std::collections::BTreeSet;

use alertkit_core::{Authenticator, Error, Permission, Principal, Result};
use async_trait::async_trait;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The claims alertkit reads and writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Groups the user belongs to.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Permission strings (`alerts.read`, `alerts.manage`, …).
    #[serde(default)]
    pub perms: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

impl Claims {
    /// Claims for a principal, expiring at `exp` (Unix seconds).
    pub fn for_principal(p: &Principal, exp: u64) -> Self {
        Claims {
            sub: p.user_id.clone(),
            groups: p.groups.clone(),
            perms: p
                .permissions
                .iter()
                .map(|x| x.as_str().to_owned())
                .collect(),
            exp,
        }
    }
}

/// Verifies bearer tokens (and, with an HS256 secret, issues them).
#[derive(Clone)]
pub struct JwtAuthenticator {
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    validation: Validation,
}

impl std::fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("algorithms", &self.validation.algorithms)
            .field("keys", &"<redacted>")
            .finish()
    }
}

fn validation(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.set_required_spec_claims(&["exp", "sub"]);
    v.leeway = 30;
    v
}

impl JwtAuthenticator {
    /// HS256 with a shared secret; can also [`issue`](Self::issue) tokens.
    /// The secret must be at least 32 bytes.
    pub fn hs256(secret: &[u8]) -> Result<Self> {
        if secret.len() < 32 {
            return Err(Error::invalid("an HS256 secret needs at least 32 bytes"));
        }
        Ok(JwtAuthenticator {
            decoding: DecodingKey::from_secret(secret),
            encoding: Some(EncodingKey::from_secret(secret)),
            validation: validation(Algorithm::HS256),
        })
    }

    /// RS256, verifying with a PEM-encoded RSA public key (issuing is left to
    /// the identity provider holding the private key).
    pub fn rs256_pem(public_key_pem: &[u8]) -> Result<Self> {
        let decoding = DecodingKey::from_rsa_pem(public_key_pem)
            .map_err(|e| Error::invalid(format!("RS256 public key: {e}")))?;
        Ok(JwtAuthenticator {
            decoding,
            encoding: None,
            validation: validation(Algorithm::RS256),
        })
    }

    /// Clock skew tolerated on `exp`, in seconds (default 30).
    pub fn leeway(mut self, secs: u64) -> Self {
        self.validation.leeway = secs;
        self
    }

    /// Issues a token for `principal` valid for `ttl` (HS256 only).
    pub fn issue(&self, principal: &Principal, ttl: std::time::Duration) -> Result<String> {
        let key = self
            .encoding
            .as_ref()
            .ok_or_else(|| Error::invalid("only an HS256 authenticator can issue tokens"))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| Error::backend("jwt", e))?;
        let claims = Claims::for_principal(principal, (now + ttl).as_secs());
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key)
            .map_err(|e| Error::backend("jwt", e))
    }

    /// Verifies a token and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
                let why = match e.kind() {
                    ErrorKind::ExpiredSignature => "token expired",
                    ErrorKind::InvalidSignature => "bad token signature",
                    ErrorKind::InvalidAlgorithm => "token algorithm not accepted",
                    ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim",
                    _ => "malformed token",
                };
                Error::Unauthenticated(why.into())
            })?;
        if data.claims.sub.trim().is_empty() {
            return Err(Error::Unauthenticated("token has an empty subject".into()));
        }
        Ok(data.claims)
    }
}

#[async_trait]
impl Authenticator for JwtAuthenticator {
    async fn authenticate(&self, token: &str) -> Result<Principal> {
        let claims = self.verify(token.trim())?;
        // Unknown permission strings are ignored: newer issuers may grant
        // permissions this version does not know.
        let permissions: BTreeSet<Permission> =
            claims.perms.iter().filter_map(|p| p.parse().ok()).collect();
        Ok(Principal {
            user_id: claims.sub,
            groups: claims.groups,
            permissions,
        })
    }
}
