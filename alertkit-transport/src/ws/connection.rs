//! One WebSocket connection: authentication, the reading loop and the
//! writer task (hello, live frames, replies, pings, close).

use crate::ws::hub::{Attached, WsHub};
use std::num::NonZeroU32;

use alertkit_core::{AlertId, AlertKit, Authenticator, Permission, Principal};
use axum::extract::ws::{Message, WebSocket};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use governor::{Quota, RateLimiter};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;

use super::frames::*;
use super::replay::*;

/// How long a client without a token has to send `auth`.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(5);

/// What the reading side asks the writer to do.
enum Ctrl {
    Send(Value),
    Replay(u64),
    Close(u16, &'static str),
}

/// Serves one connection. `principal` is `None` when the upgrade request
/// carried no token: the first message must then be `auth {token}`.
/// `cursor` is the `?cursor=` the client connected with.
pub(crate) async fn serve(
    socket: WebSocket,
    hub: WsHub,
    auth: Arc<dyn Authenticator>,
    principal: Option<Principal>,
    expected_user: Option<String>,
    cursor: Option<u64>,
) {
    let counters = hub.counters();
    counters.open.fetch_add(1, Ordering::SeqCst);
    let gauge = metrics::gauge!(alertkit_core::telemetry::WS_CONNECTIONS);
    gauge.increment(1.0);
    serve_inner(socket, &hub, auth, principal, expected_user, cursor).await;
    gauge.decrement(1.0);
    counters.open.fetch_sub(1, Ordering::SeqCst);
}

async fn serve_inner(
    mut socket: WebSocket,
    hub: &WsHub,
    auth: Arc<dyn Authenticator>,
    principal: Option<Principal>,
    expected_user: Option<String>,
    mut cursor: Option<u64>,
) {
    if hub.is_shut_down() {
        let _ = socket.send(close(CLOSE_GOING_AWAY, "shutting down")).await;
        return;
    }
    let principal = match principal {
        Some(p) => p,
        None => match first_message_auth(&mut socket, auth.as_ref()).await {
            Some((p, c)) => {
                cursor = cursor.or(c);
                p
            }
            None => {
                let _ = socket.send(close(CLOSE_UNAUTHORIZED, "unauthorized")).await;
                return;
            }
        },
    };
    if !principal.can(Permission::AlertsRead) {
        let _ = socket
            .send(close(CLOSE_UNAUTHORIZED, "alerts.read required"))
            .await;
        return;
    }
    if principal
        .expires_at
        .is_some_and(|t| t <= chrono::Utc::now())
    {
        let _ = socket
            .send(close(CLOSE_UNAUTHORIZED, "token expired"))
            .await;
        return;
    }
    if expected_user.is_some_and(|u| u != principal.user_id) {
        let _ = socket
            .send(close(CLOSE_UNAUTHORIZED, "path user is not the token's"))
            .await;
        return;
    }
    if hub.held_for(&principal.user_id).is_some() {
        let _ = socket
            .send(close(
                CLOSE_DISCONNECTED,
                "disconnected by an administrator",
            ))
            .await;
        return;
    }
    let kit = hub.kit().clone();
    // Attach before counting unread, so nothing falls between.
    let attached = hub.attach(principal.clone()).await;
    let conn_id = attached.id;
    let unread = kit.unread_count(&principal).await.unwrap_or(0);
    let hello = json!({
        "type": "hello",
        "user_id": principal.user_id,
        "unread": unread,
        "cursor": attached.watermark.to_string(),
    });
    let (sink, mut stream) = socket.split();
    // Room for a full burst of replies: a flooding client meets the flood
    // limit (1008) before a merely slow reader fills this (4008).
    let burst = usize::try_from(hub.config().client_burst).unwrap_or(usize::MAX);
    let (ctrl, ctrl_rx) = mpsc::channel::<Ctrl>(burst.saturating_add(16).min(4096));
    if let Some(c) = cursor {
        // Queued before the writer starts: the replay precedes live frames.
        let _ = ctrl.try_send(Ctrl::Replay(c));
    }
    let writer = tokio::spawn(write_loop(
        sink,
        hub.clone(),
        principal.clone(),
        attached,
        ctrl_rx,
        hello,
    ));

    let config = hub.config().clone();
    let mut last_heard = tokio::time::Instant::now();
    let mut watchdog = tokio::time::interval(config.ping_every);
    // The session ends when the credentials do (4001), checked against
    // the wall clock like the token itself.
    let expiry = principal.expires_at.map(|t| {
        let left = (t - chrono::Utc::now()).to_std().unwrap_or_default();
        tokio::time::Instant::now() + left
    });
    let flood = RateLimiter::direct(
        Quota::per_second(
            NonZeroU32::new(config.client_messages_per_sec).unwrap_or(NonZeroU32::MIN),
        )
        .allow_burst(NonZeroU32::new(config.client_burst).unwrap_or(NonZeroU32::MIN)),
    );
    loop {
        let out = tokio::select! {
            _ = async {
                match expiry {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => Some(Ctrl::Close(CLOSE_UNAUTHORIZED, "token expired")),
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(_) | Message::Binary(_))) if flood.check().is_err() => {
                    Some(Ctrl::Close(CLOSE_POLICY, "message flood"))
                }
                Some(Ok(Message::Text(t))) => {
                    last_heard = tokio::time::Instant::now();
                    if t.len() > config.max_message {
                        Some(Ctrl::Close(CLOSE_TOO_BIG, "message too big"))
                    } else {
                        handle_client(&kit, &principal, t.as_str()).await
                    }
                }
                Some(Ok(Message::Binary(b))) if b.len() > config.max_message => {
                    Some(Ctrl::Close(CLOSE_TOO_BIG, "message too big"))
                }
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(e)) => {
                    // The codec refuses frames past its own limit.
                    if e.to_string().contains("too long") || e.to_string().contains("Space limit") {
                        Some(Ctrl::Close(CLOSE_TOO_BIG, "message too big"))
                    } else {
                        break;
                    }
                }
                Some(Ok(_)) => {
                    last_heard = tokio::time::Instant::now();
                    None
                }
            },
            _ = watchdog.tick() => {
                (last_heard.elapsed() > 2 * config.ping_every).then_some(Ctrl::Close(CLOSE_GOING_AWAY, "no pong"))
            }
            _ = ctrl.closed() => break,
        };
        let Some(out) = out else { continue };
        let close = match out {
            Ctrl::Close(..) => out,
            other => match ctrl.try_send(other) {
                Ok(()) => continue,
                // Replies outpace the writer: the client is not reading.
                Err(_) => Ctrl::Close(CLOSE_TOO_SLOW, "too slow"),
            },
        };
        // The close frame must reach the writer even behind a full queue.
        let _ = tokio::time::timeout(Duration::from_secs(2), ctrl.send(close)).await;
        // Read on until the client answers the close frame (or a moment
        // passes): closing the socket on unread client data would reset the
        // connection and lose our close frame.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(m)) = stream.next().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
        break;
    }
    hub.detach(conn_id);
    drop(ctrl);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
}

/// The only task touching the sink: hello, replays, live frames, replies,
/// pings, and the close frame.
async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    hub: WsHub,
    principal: Principal,
    mut attached: Attached,
    mut ctrl: mpsc::Receiver<Ctrl>,
    hello: Value,
) {
    let counters = hub.counters();
    let mut ping = tokio::time::interval(hub.config().ping_every);
    ping.tick().await;
    let mut shutdown = hub.shutdown_signal();
    if sink.send(text(hello)).await.is_err() {
        return;
    }
    counters.sent.fetch_add(1, Ordering::Relaxed);
    let frames = metrics::counter!(alertkit_core::telemetry::WS_FRAMES_SENT);
    frames.increment(1);
    // Highest alert frame sent, and frames at or below `skip` are repeats
    // of what the client already has (it resumed past our hello).
    let hello_cursor = attached.watermark;
    let mut last = hello_cursor;
    let mut skip = 0;
    let kicked = attached.kicked.clone();
    loop {
        let msg = tokio::select! {
            biased;
            code = kicked.kicked() => {
                let reason = match code {
                    CLOSE_TOO_SLOW => "too slow",
                    CLOSE_DISCONNECTED => "disconnected by an administrator",
                    _ => "going away",
                };
                let _ = sink.send(close(code, reason)).await;
                return;
            }
            _ = shutdown.changed() => {
                let _ = sink.send(close(CLOSE_GOING_AWAY, "shutting down")).await;
                return;
            }
            c = ctrl.recv() => match c {
                Some(Ctrl::Send(v)) => text(v),
                Some(Ctrl::Close(code, reason)) => {
                    let _ = sink.send(close(code, reason)).await;
                    return;
                }
                Some(Ctrl::Replay(cursor)) => {
                    skip = skip.max(cursor);
                    match replay(&hub, &principal, &mut sink, cursor, hello_cursor).await {
                        Ok(n) => {
                            last = last.max(cursor);
                            let done = json!({"type": "resumed", "cursor": last.to_string(), "replayed": n});
                            text(done)
                        }
                        Err(ReplayError::TooOld) => text(error(
                            "cursor_expired",
                            "too far behind to replay; reload the list and use the hello cursor",
                        )),
                        Err(ReplayError::Failed(code)) => text(error(
                            code,
                            "the alert history could not be read; try resuming again",
                        )),
                        Err(ReplayError::Closed) => return,
                    }
                }
                None => return,
            },
            f = attached.rx.recv() => match f {
                Some(f) => {
                    // Write what is already queued in one flush.
                    let mut n = 0;
                    let mut next = Some(f);
                    while let Some(f) = next.take() {
                        if f.seq == 0 || f.seq > skip {
                            last = last.max(f.seq);
                            if sink.feed(Message::Text(f.text)).await.is_err() {
                                return;
                            }
                            n += 1;
                        }
                        if n < 64 {
                            next = attached.rx.try_recv().ok();
                        }
                    }
                    if sink.flush().await.is_err() {
                        return;
                    }
                    counters.sent.fetch_add(n, Ordering::Relaxed);
                    frames.increment(n);
                    continue;
                }
                None => return,
            },
            _ = ping.tick() => Message::Ping(Default::default()),
        };
        if sink.send(msg).await.is_err() {
            return;
        }
        counters.sent.fetch_add(1, Ordering::Relaxed);
        frames.increment(1);
    }
}

async fn first_message_auth(
    socket: &mut WebSocket,
    auth: &dyn Authenticator,
) -> Option<(Principal, Option<u64>)> {
    let first = tokio::time::timeout(AUTH_TIMEOUT, socket.recv())
        .await
        .ok()??
        .ok()?;
    let Message::Text(t) = first else { return None };
    let v: Value = serde_json::from_str(t.as_str()).ok()?;
    if v["type"] != "auth" {
        return None;
    }
    let p = auth.authenticate(v["token"].as_str()?).await.ok()?;
    Some((p, parse_cursor(&v["cursor"])))
}

/// What a client message asks of the writer, if anything.
async fn handle_client(kit: &AlertKit, p: &Principal, raw: &str) -> Option<Ctrl> {
    let Ok(v) = serde_json::from_str::<Value>(raw) else {
        return Some(Ctrl::Send(error("bad_request", "not JSON")));
    };
    let id = || v["id"].as_str().and_then(|s| s.parse::<AlertId>().ok());
    let result = match v["type"].as_str() {
        Some("ping") => return Some(Ctrl::Send(json!({"type": "pong"}))),
        Some("resume") => {
            return Some(match parse_cursor(&v["cursor"]) {
                Some(c) => Ctrl::Replay(c),
                None => Ctrl::Send(error(
                    "invalid",
                    "`cursor` must be a cursor the server sent",
                )),
            });
        }
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
    result.err().map(|e| Ctrl::Send(error(e.kind().code(), e)))
}
