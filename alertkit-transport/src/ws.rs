//! The WebSocket endpoint (feature `axum`): live alert events for one
//! authenticated user.
//!
//! Protocol (JSON text frames with a `type`): the server sends
//! `hello {user_id, unread, cursor}` once authenticated, then
//! `alert {event, alert, cursor}` for alerts the user may see,
//! `receipt {alert_ids, read_at?, dismissed_at?}` and `unread {count}` when
//! the user's own state changes on any device, `error {code, message}` and
//! `pong`. The client may send `mark_read {id}`, `dismiss {id}`, `ping`, and
//! — when it connected without a token — `auth {token}` first, within 5 s.
//!
//! Close codes: 4001 unauthorized, 4008 too slow (its queue overflowed, or
//! it fell behind the bus: reconnect and reload), 1001 server shutdown.
//!
//! Not yet: `resume {cursor}` replay from the store; one shared fan-out task
//! per instance (each connection currently filters the bus itself).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alertkit_core::{AlertEvent, AlertId, AlertKit, AlertView, BusMessage, Principal, Receipt};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Messages queued per connection before it is cut with 4008.
pub const QUEUE: usize = 256;
/// How long a client without a token has to send `auth`.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Ping interval; a connection silent for twice this long is closed.
pub const PING_EVERY: Duration = Duration::from_secs(30);

/// Close code: unauthorized.
pub const CLOSE_UNAUTHORIZED: u16 = 4001;
/// Close code: too slow.
pub const CLOSE_TOO_SLOW: u16 = 4008;

/// Live counters of the WebSocket endpoint, for `/api/ws/stats`.
#[derive(Debug)]
pub struct WsStats {
    started: Instant,
    sent: AtomicU64,
    per_user: Mutex<HashMap<String, usize>>,
}

impl Default for WsStats {
    fn default() -> Self {
        WsStats {
            started: Instant::now(),
            sent: AtomicU64::new(0),
            per_user: Mutex::new(HashMap::new()),
        }
    }
}

impl WsStats {
    fn opened(&self, user: &str) {
        *self
            .per_user
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(user.to_owned())
            .or_default() += 1;
    }

    fn closed(&self, user: &str) {
        let mut map = self.per_user.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(user);
            }
        }
    }

    /// `{connections, users, messages_sent, messages_per_sec}` since start.
    pub fn snapshot(&self) -> Value {
        let (connections, users) = {
            let map = self.per_user.lock().unwrap_or_else(|p| p.into_inner());
            (map.values().sum::<usize>(), map.len())
        };
        let sent = self.sent.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        json!({
            "connections": connections,
            "users": users,
            "messages_sent": sent,
            "messages_per_sec": sent as f64 / secs,
        })
    }
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

fn text(v: Value) -> Message {
    Message::Text(v.to_string().into())
}

/// Serves one connection. `principal` is `None` when the upgrade request
/// carried no token: the first message must then be `auth {token}`.
pub(crate) async fn serve(
    mut socket: WebSocket,
    kit: AlertKit,
    auth: std::sync::Arc<dyn alertkit_core::Authenticator>,
    stats: std::sync::Arc<WsStats>,
    principal: Option<Principal>,
    expected_user: Option<String>,
) {
    let principal = match principal {
        Some(p) => p,
        None => match first_message_auth(&mut socket, auth.as_ref()).await {
            Some(p) => p,
            None => {
                let _ = socket.send(close(CLOSE_UNAUTHORIZED, "unauthorized")).await;
                return;
            }
        },
    };
    if expected_user.is_some_and(|u| u != principal.user_id) {
        let _ = socket
            .send(close(CLOSE_UNAUTHORIZED, "path user is not the token's"))
            .await;
        return;
    }
    // Subscribe before reading the unread count, so nothing falls between.
    let Ok(mut bus) = kit.subscribe().await else {
        let _ = socket.send(close(1011, "bus unavailable")).await;
        return;
    };
    let unread = kit.unread_count(&principal).await.unwrap_or(0);
    stats.opened(&principal.user_id);
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Message>(QUEUE);
    let hello =
        json!({"type": "hello", "user_id": principal.user_id, "unread": unread, "cursor": null});
    if sink.send(text(hello)).await.is_err() {
        stats.closed(&principal.user_id);
        return;
    }
    stats.sent.fetch_add(1, Ordering::Relaxed);

    // The writer: the only task touching the sink; pings on a timer.
    let counter = stats.clone();
    let writer = tokio::spawn(async move {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => {
                        let closing = matches!(m, Message::Close(_));
                        if sink.send(m).await.is_err() || closing {
                            break;
                        }
                        counter.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    None => break,
                },
                _ = ping.tick() => {
                    if sink.send(Message::Ping(Default::default())).await.is_err() {
                        break;
                    }
                }
            }
        }
    });

    let viewer = principal.viewer();
    let mut last_heard = tokio::time::Instant::now();
    let mut watchdog = tokio::time::interval(PING_EVERY);
    loop {
        tokio::select! {
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(t))) => {
                    last_heard = tokio::time::Instant::now();
                    let reply = handle_client(&kit, &principal, t.as_str()).await;
                    if let Some(r) = reply && tx.try_send(text(r)).is_err() {
                        let _ = tx.send(close(CLOSE_TOO_SLOW, "too slow")).await;
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => last_heard = tokio::time::Instant::now(),
            },
            msg = bus.next() => match msg {
                Some(BusMessage::Event(event)) => {
                    if !event.is_visible_to(&viewer) {
                        continue;
                    }
                    for out in render(&kit, &principal, &event).await {
                        if tx.try_send(text(out)).is_err() {
                            let _ = tx.send(close(CLOSE_TOO_SLOW, "too slow")).await;
                            stats.closed(&principal.user_id);
                            return finish(writer).await;
                        }
                    }
                }
                // Events were lost for this connection: it must reload.
                Some(BusMessage::Lagged(_) | BusMessage::Gap) | None => {
                    let _ = tx.send(close(CLOSE_TOO_SLOW, "fell behind; reconnect")).await;
                    break;
                }
            },
            _ = watchdog.tick() => {
                if last_heard.elapsed() > 2 * PING_EVERY {
                    let _ = tx.send(close(1001, "no pong")).await;
                    break;
                }
            }
        }
    }
    drop(tx);
    stats.closed(&principal.user_id);
    finish(writer).await;
}

async fn finish(writer: tokio::task::JoinHandle<()>) {
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
}

async fn first_message_auth(
    socket: &mut WebSocket,
    auth: &dyn alertkit_core::Authenticator,
) -> Option<Principal> {
    let first = tokio::time::timeout(AUTH_TIMEOUT, socket.recv())
        .await
        .ok()??
        .ok()?;
    let Message::Text(t) = first else { return None };
    let v: Value = serde_json::from_str(t.as_str()).ok()?;
    if v["type"] != "auth" {
        return None;
    }
    auth.authenticate(v["token"].as_str()?).await.ok()
}

/// What a client message asks; the reply, if any.
async fn handle_client(kit: &AlertKit, p: &Principal, raw: &str) -> Option<Value> {
    let Ok(v) = serde_json::from_str::<Value>(raw) else {
        return Some(json!({"type": "error", "code": "bad_request", "message": "not JSON"}));
    };
    let id = || v["id"].as_str().and_then(|s| s.parse::<AlertId>().ok());
    let result = match v["type"].as_str() {
        Some("ping") => return Some(json!({"type": "pong"})),
        Some("mark_read") => match id() {
            Some(id) => kit.mark_read(p, id).await.map(|_| ()),
            None => Err(alertkit_core::Error::invalid("`id` must be an alert id")),
        },
        Some("dismiss") => match id() {
            Some(id) => kit.dismiss(p, id).await.map(|_| ()),
            None => Err(alertkit_core::Error::invalid("`id` must be an alert id")),
        },
        _ => Err(alertkit_core::Error::invalid("unknown message type")),
    };
    // Successes are confirmed by the receipt event that follows on the bus.
    result
        .err()
        .map(|e| json!({"type": "error", "code": e.kind().code(), "message": e.to_string()}))
}

/// The frames an event becomes for this user.
async fn render(kit: &AlertKit, p: &Principal, event: &AlertEvent) -> Vec<Value> {
    match event {
        AlertEvent::Created { alert } => {
            vec![
                json!({"type": "alert", "event": "created", "alert": AlertView::new(alert.clone(), Receipt::default()), "cursor": null}),
            ]
        }
        AlertEvent::Updated { alert, .. } | AlertEvent::Resolved { alert } => {
            // The user's own receipt travels with updates (they may have read it).
            let view = kit
                .get(p, alert.id)
                .await
                .unwrap_or_else(|_| AlertView::new(alert.clone(), Receipt::default()));
            vec![json!({"type": "alert", "event": event.name(), "alert": view, "cursor": null})]
        }
        AlertEvent::Deleted { alert_id, .. } => {
            vec![json!({"type": "alert", "event": "deleted", "alert_id": alert_id, "cursor": null})]
        }
        AlertEvent::Read { alert_ids, at, .. } => {
            let count = kit.unread_count(p).await.unwrap_or(0);
            vec![
                json!({"type": "receipt", "alert_ids": alert_ids, "read_at": at}),
                json!({"type": "unread", "count": count}),
            ]
        }
        AlertEvent::Dismissed { alert_id, at, .. } => {
            let count = kit.unread_count(p).await.unwrap_or(0);
            vec![
                json!({"type": "receipt", "alert_ids": [alert_id], "dismissed_at": at}),
                json!({"type": "unread", "count": count}),
            ]
        }
    }
}
