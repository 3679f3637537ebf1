//! [`WebhookNotifier`]: a signed JSON POST per delivery.
//!
//! The body is `{"delivery_id", "attempt", "alert": {…}}` (the alert as on
//! the REST API, without a viewer's receipt). Headers:
//!
//! | header | value |
//! |---|---|
//! | `Idempotency-Key` | the delivery id: the same on every retry and after a crash |
//! | `X-Alertkit-Timestamp` | Unix seconds when this attempt was signed |
//! | `X-Alertkit-Signature` | `v1=` + hex HMAC-SHA256 of `"{timestamp}.{body}"` with the shared secret |
//!
//! **Verifying, as a receiver:** take the raw body bytes and the timestamp
//! header; compute HMAC-SHA256 over `timestamp + "." + body` with the
//! secret; compare its hex form with the signature after `v1=` in constant
//! time; refuse timestamps more than 5 minutes from your clock (replays);
//! drop an `Idempotency-Key` you already processed (retries).
//! [`verify`] does exactly that.
//!
//! Answers: 2xx is sent; 429 is retried after its `Retry-After`; 408 and 5xx
//! are retried on the schedule; other 4xx are permanent (dead letter).

use std::time::Duration;

use alertkit_core::{Channel, Error, Notification, Notifier, Result};
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::http::{check_public, check_url, client, retry_after, send_error, status_error};

/// How far a signed timestamp may be from the receiver's clock.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// One signed webhook request: its body and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The JSON body, as sent (the bytes the signature covers).
    pub body: Vec<u8>,
    /// `content-type`, `idempotency-key`, `x-alertkit-timestamp`, `x-alertkit-signature`.
    pub headers: Vec<(&'static str, String)>,
}

/// Posts each notification as signed JSON to the recipient's webhook URL.
#[derive(Clone)]
pub struct WebhookNotifier {
    client: reqwest::Client,
    secret: Vec<u8>,
    allow_private: bool,
}

impl std::fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookNotifier")
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The HMAC-SHA256 over `"{timestamp}.{body}"`, the signed content.
fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> Option<String> {
    let tag = mac(secret, timestamp, body)?.finalize().into_bytes();
    Some(tag.iter().map(|b| format!("{b:02x}")).collect())
}

/// Checks a received webhook: the signature header (`v1=<hex>`) must be the
/// HMAC-SHA256 of `"{timestamp}.{body}"` under `secret`, and `timestamp`
/// (Unix seconds) within `tolerance` of `now`.
pub fn verify(
    secret: &[u8],
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: chrono::DateTime<chrono::Utc>,
    tolerance: Duration,
) -> bool {
    let Ok(ts) = timestamp.trim().parse::<i64>() else {
        return false;
    };
    let skew = (now.timestamp() - ts).unsigned_abs();
    if skew > tolerance.as_secs() {
        return false;
    }
    let Some(hex) = signature.trim().strip_prefix("v1=") else {
        return false;
    };
    let Some(given) = decode_hex(hex) else {
        return false;
    };
    mac(secret, ts, body).is_some_and(|m| m.verify_slice(&given).is_ok())
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl WebhookNotifier {
    /// A notifier signing with `secret` (at least 16 bytes), 10 s timeout.
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self> {
        let secret = secret.into();
        if secret.len() < 16 {
            return Err(Error::invalid("the webhook secret needs at least 16 bytes"));
        }
        Ok(WebhookNotifier {
            client: client(Duration::from_secs(10), false)?,
            secret,
            allow_private: false,
        })
    }

    /// Also sends to loopback and private addresses (default: refused, as a
    /// permanent error, because users choose webhook URLs and must not reach
    /// the server's own network). For tests and closed networks.
    pub fn allow_private(mut self, allow: bool) -> Result<Self> {
        self.client = client(Duration::from_secs(10), allow)?;
        self.allow_private = allow;
        Ok(self)
    }

    /// The JSON body and its headers for one notification, signed at `now`.
    pub fn request(
        &self,
        n: &Notification,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<SignedRequest> {
        let mut body = serde_json::json!({
            "delivery_id": n.id,
            "attempt": n.attempt,
            "alert": n.alert,
        });
        if let Some(d) = &n.digest {
            body["digest"] = serde_json::json!({ "period": d.period, "alerts": d.alerts });
        }
        let body = serde_json::to_vec(&body).map_err(|e| Error::backend("webhook", e))?;
        let ts = now.timestamp();
        let sig = sign(&self.secret, ts, &body)
            .ok_or_else(|| Error::invalid("the webhook secret cannot key HMAC"))?;
        let headers = vec![
            ("content-type", "application/json".to_owned()),
            ("idempotency-key", n.id.to_string()),
            ("x-alertkit-timestamp", ts.to_string()),
            ("x-alertkit-signature", format!("v1={sig}")),
        ];
        Ok(SignedRequest { body, headers })
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn channel(&self) -> Channel {
        Channel::Webhook
    }

    async fn notify(&self, n: &Notification) -> Result<()> {
        let url =
            n.recipient.webhook_url.as_deref().ok_or_else(|| {
                Error::invalid(format!("{} has no webhook URL", n.recipient.user_id))
            })?;
        let url = check_url("webhook", url)?;
        if !self.allow_private {
            check_public("webhook", &url).await?;
        }
        let SignedRequest { body, headers } = self.request(n, chrono::Utc::now())?;
        let mut req = self.client.post(url).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let res = req.send().await.map_err(|e| send_error("webhook", &e))?;
        if res.status().is_success() {
            return Ok(());
        }
        let status = res.status();
        let retry = retry_after(res.headers());
        let text = res.text().await.unwrap_or_default();
        Err(status_error("webhook", status, retry, &text))
    }
}
