//! Signed list cursors: a client can neither forge a position nor the
//! totals a cursor carries.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::query::Cursor;

/// Bytes of the HMAC-SHA256 tag kept in a cursor (128 bits).
const TAG: usize = 16;

/// The engine's cursor signing key.
pub(crate) struct CursorKey(Vec<u8>);

impl CursorKey {
    /// A key from a configured secret (at least 16 bytes).
    pub(crate) fn new(secret: &[u8]) -> Result<Self> {
        if secret.len() < 16 {
            return Err(Error::invalid("the cursor key must be at least 16 bytes"));
        }
        Ok(CursorKey(secret.to_vec()))
    }

    /// A random key, for a single instance.
    pub(crate) fn random() -> Self {
        let mut k = Vec::with_capacity(32);
        k.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        k.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        CursorKey(k)
    }

    /// The MAC over a cursor body (`None` only if HMAC refused the key,
    /// which it does for no length).
    fn mac(&self, body: &str) -> Option<Hmac<Sha256>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).ok()?;
        mac.update(body.as_bytes());
        Some(mac)
    }

    /// The cursor to hand to a client: the store's cursor and its tag.
    pub(crate) fn seal(&self, c: &Cursor) -> Cursor {
        let tag = self
            .mac(c.as_str())
            .map(|m| URL_SAFE_NO_PAD.encode(&m.finalize().into_bytes()[..TAG]))
            .unwrap_or_default();
        Cursor::from_raw(format!("{}.{tag}", c.as_str()))
    }

    /// The store's cursor inside a client's, if its tag is right.
    pub(crate) fn open(&self, c: &Cursor) -> Result<Cursor> {
        let bad = || Error::invalid("cursor is malformed");
        let (body, tag) = c.as_str().rsplit_once('.').ok_or_else(bad)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| bad())?;
        // A shorter tag would be cheap to guess.
        if tag.len() != TAG {
            return Err(bad());
        }
        self.mac(body)
            .ok_or_else(bad)?
            .verify_truncated_left(&tag)
            .map_err(|_| bad())?;
        let inner = Cursor::from_raw(body);
        inner.position()?;
        Ok(inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::AlertId;
    use crate::query::CursorPosition;

    fn cursor() -> Cursor {
        Cursor::new(CursorPosition {
            created_at: chrono::DateTime::from_timestamp_millis(1_767_225_600_123).unwrap(),
            id: AlertId::new(),
            totals: Some((120, 7)),
        })
    }

    #[test]
    fn sealed_cursors_open_and_tampered_ones_do_not() {
        let key = CursorKey::random();
        let c = cursor();
        let sealed = key.seal(&c);
        assert_eq!(key.open(&sealed).unwrap(), c);
        // Another key, a plain store cursor, a flipped character, a cut tag.
        assert!(CursorKey::random().open(&sealed).is_err());
        assert!(key.open(&c).is_err());
        let s = sealed.as_str();
        let mut flipped: Vec<char> = s.chars().collect();
        flipped[3] = if flipped[3] == 'A' { 'B' } else { 'A' };
        let flipped: String = flipped.into_iter().collect();
        assert!(key.open(&Cursor::from_raw(flipped)).is_err());
        assert!(key.open(&Cursor::from_raw(&s[..s.len() - 4])).is_err());
        assert!(key.open(&Cursor::from_raw(format!("{s}."))).is_err());
        // A one-byte prefix of the right tag is still refused.
        let (body, tag) = s.rsplit_once('.').unwrap();
        let short = URL_SAFE_NO_PAD.encode(&URL_SAFE_NO_PAD.decode(tag).unwrap()[..1]);
        assert!(
            key.open(&Cursor::from_raw(format!("{body}.{short}")))
                .is_err()
        );
    }

    #[test]
    fn forged_totals_are_refused() {
        // A client re-encodes the body with other totals and keeps the tag.
        let key = CursorKey::random();
        let c = cursor();
        let sealed = key.seal(&c);
        let tag = sealed.as_str().rsplit_once('.').unwrap().1;
        let pos = c.position().unwrap();
        let forged = Cursor::new(CursorPosition {
            totals: Some((1, 0)),
            ..pos
        });
        assert!(
            key.open(&Cursor::from_raw(format!("{}.{tag}", forged.as_str())))
                .is_err()
        );
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(CursorKey::new(b"short").is_err());
        assert!(CursorKey::new(&[7; 16]).is_ok());
    }
}
