//! The messages the server writes: close codes and JSON frames.

use alertkit_core::{Alert, AlertStatus, AlertView};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use serde_json::{Value, json};

/// Close code: unauthorized.
pub const CLOSE_UNAUTHORIZED: u16 = 4001;

/// Close code: an administrator disconnected the user
/// ([`WsHub::disconnect_user`](crate::ws::hub::WsHub::disconnect_user)).
/// Reconnect and resume; while the user is held, the upgrade answers 503
/// with `Retry-After`.
pub const CLOSE_DISCONNECTED: u16 = 4000;

/// Close code: too slow (the connection's queue overflowed).
pub const CLOSE_TOO_SLOW: u16 = 4008;

/// Close code: the server is shutting down.
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// Close code: policy violation (the client flooded the server with messages).
pub const CLOSE_POLICY: u16 = 1008;

/// Close code: a client message was too big.
pub const CLOSE_TOO_BIG: u16 = 1009;

/// One frame queued for a connection: JSON text, shared between recipients.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The encoded message.
    pub text: Utf8Bytes,
    /// The alert's change number for `alert` frames (the cursor), else 0.
    pub seq: u64,
}

/// The wire name of an alert's state, for replayed and pumped frames.
pub fn event_name(alert: &Alert) -> &'static str {
    match alert.status {
        AlertStatus::Resolved => "resolved",
        AlertStatus::Active if alert.occurrences > 1 || alert.updated_at > alert.created_at => {
            "updated"
        }
        AlertStatus::Active => "created",
    }
}

/// Encodes an `alert` frame.
pub fn alert_frame(event: &str, view: &AlertView, seq: u64) -> Frame {
    let v = json!({"type": "alert", "event": event, "alert": view, "cursor": seq.to_string()});
    Frame {
        text: Utf8Bytes::from(v.to_string()),
        seq,
    }
}

pub(crate) fn text_frame(v: Value) -> Frame {
    Frame {
        text: Utf8Bytes::from(v.to_string()),
        seq: 0,
    }
}

pub(crate) fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

pub(crate) fn text(v: Value) -> Message {
    Message::Text(v.to_string().into())
}

pub(crate) fn error(code: &str, message: impl std::fmt::Display) -> Value {
    json!({"type": "error", "code": code, "message": message.to_string()})
}

/// Parses a cursor: the decimal string the server sent, or a number.
pub fn parse_cursor(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}
