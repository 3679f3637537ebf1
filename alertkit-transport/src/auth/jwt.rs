//! The built-in JWT [`Authenticator`] (feature `jwt`).
//!
//! Tokens carry `sub` (the user id), `groups` (list), `perms` (permission
//! strings such as `alerts.read`) and `exp`, optionally `nbf`, `iss` and
//! `aud`; HS256 with a shared secret or RS256 with a public key. `nbf` is
//! always honoured; `iss` and `aud` are checked when the authenticator is
//! configured with them ([`JwtAuthenticator::issuer`],
//! [`JwtAuthenticator::audience`]), and a token lacking the configured claim
//! is refused. Every failure — missing, malformed, tampered, expired, not
//! yet valid, wrong issuer or audience, wrong algorithm — is
//! [`Error::Unauthenticated`], never a panic.

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
    /// Not valid before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// The issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The audience: one string or a list of strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
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
            nbf: None,
            iss: None,
            aud: None,
        }
    }
}

/// Verifies bearer tokens (and, with an HS256 secret, issues them).
#[derive(Clone)]
pub struct JwtAuthenticator {
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    validation: Validation,
    issuer: Option<String>,
    audience: Option<String>,
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
    v.validate_nbf = true;
    // Audiences are checked only when configured (`audience`).
    v.validate_aud = false;
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
            issuer: None,
            audience: None,
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
            issuer: None,
            audience: None,
        })
    }

    /// Clock skew tolerated on `exp`, in seconds (default 30).
    pub fn leeway(mut self, secs: u64) -> Self {
        self.validation.leeway = secs;
        self
    }

    /// Accepts only tokens whose `iss` is `issuer` (a token without `iss`
    /// is refused).
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.validation.set_issuer(&[issuer]);
        self.require_claim("iss");
        self.issuer = Some(issuer.to_owned());
        self
    }

    /// Accepts only tokens whose `aud` names `audience` (a token without
    /// `aud` is refused).
    pub fn audience(mut self, audience: &str) -> Self {
        self.validation.set_audience(&[audience]);
        self.validation.validate_aud = true;
        self.require_claim("aud");
        self.audience = Some(audience.to_owned());
        self
    }

    fn require_claim(&mut self, claim: &str) {
        self.validation
            .required_spec_claims
            .insert(claim.to_owned());
    }

    /// Issues a token for `principal` valid for `ttl` (HS256 only), with
    /// the configured issuer and audience.
    pub fn issue(&self, principal: &Principal, ttl: std::time::Duration) -> Result<String> {
        let key = self
            .encoding
            .as_ref()
            .ok_or_else(|| Error::invalid("only an HS256 authenticator can issue tokens"))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| Error::backend("jwt", e))?;
        let mut claims = Claims::for_principal(principal, (now + ttl).as_secs());
        claims.iss.clone_from(&self.issuer);
        claims.aud = self.audience.clone().map(serde_json::Value::String);
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key)
            .map_err(|e| Error::backend("jwt", e))
    }

    /// Verifies a token and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
                let why = match e.kind() {
                    ErrorKind::ExpiredSignature => "token expired",
                    ErrorKind::ImmatureSignature => "token not yet valid (nbf)",
                    ErrorKind::InvalidIssuer => "token issuer not accepted",
                    ErrorKind::InvalidAudience => "token audience not accepted",
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
        let leeway = i64::try_from(self.validation.leeway).unwrap_or(i64::MAX);
        let expires_at = i64::try_from(claims.exp)
            .ok()
            .and_then(|exp| exp.checked_add(leeway))
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0));
        Ok(Principal {
            user_id: claims.sub,
            groups: claims.groups,
            permissions,
            expires_at,
        })
    }
}
