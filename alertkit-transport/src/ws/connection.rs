//! One WebSocket connection, served by one task: authentication, then one
//! loop that reads the client and writes hello, replays, live frames,
//! replies, pings and the close frame.

use crate::ws::hub::WsHub;
use crate::ws::queue::{ConnQueue, Next};
use std::num::NonZeroU32;

use alertkit_core::{AlertId, AlertKit, Authenticator, Permission, Principal};
use axum::extract::ws::{Message, WebSocket};
use futures::SinkExt;
use governor::{Quota, RateLimiter};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::frames::*;
use super::replay::*;

/// How long a client without a token has to send `auth`.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(5);

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
    // Admission and the live session are boxed apart: the task keeps only
    // what the session needs while it idles (see `WsConfig::read_buffer`).
    let admitted = Box::pin(admit(socket, &hub, auth, principal, expected_user, cursor)).await;
    if let Some((socket, principal, cursor)) = admitted {
        Box::pin(live(socket, &hub, principal, cursor)).await;
    }
    gauge.decrement(1.0);
    counters.open.fetch_sub(1, Ordering::SeqCst);
}

/// Authenticates and authorizes the connection; `None` once it was
/// refused (and closed).
async fn admit(
    mut socket: WebSocket,
    hub: &WsHub,
    auth: Arc<dyn Authenticator>,
    principal: Option<Principal>,
    expected_user: Option<String>,
    mut cursor: Option<u64>,
) -> Option<(WebSocket, Principal, Option<u64>)> {
    if hub.is_shut_down() {
        let _ = socket.send(close(CLOSE_GOING_AWAY, "shutting down")).await;
        return None;
    }
    let principal = match principal {
        Some(p) => p,
        None => match Box::pin(first_message_auth(&mut socket, auth.as_ref())).await {
            Some((p, c)) => {
                cursor = cursor.or(c);
                p
            }
            None => {
                let _ = socket.send(close(CLOSE_UNAUTHORIZED, "unauthorized")).await;
                return None;
            }
        },
    };
    if !principal.can(Permission::AlertsRead) {
        let _ = socket
            .send(close(CLOSE_UNAUTHORIZED, "alerts.read required"))
            .await;
        return None;
    }
    if principal
        .expires_at
        .is_some_and(|t| t <= chrono::Utc::now())
    {
        let _ = socket
            .send(close(CLOSE_UNAUTHORIZED, "token expired"))
            .await;
        return None;
    }
    if expected_user.is_some_and(|u| u != principal.user_id) {
        let _ = socket
            .send(close(CLOSE_UNAUTHORIZED, "path user is not the token's"))
            .await;
        return None;
    }
    if hub.held_for(&principal.user_id).is_some() {
        let _ = socket
            .send(close(
                CLOSE_DISCONNECTED,
                "disconnected by an administrator",
            ))
            .await;
        return None;
    }
    Some((socket, principal, cursor))
}

/// Serves an admitted connection until it ends.
async fn live(socket: WebSocket, hub: &WsHub, principal: Principal, cursor: Option<u64>) {
    let kit = hub.kit().clone();
    // Attach before counting unread, so nothing falls between.
    let attached = Box::pin(hub.attach(principal.clone())).await;
    let conn_id = attached.id;
    let unread = Box::pin(kit.unread_count(&principal)).await.unwrap_or(0);
    let hello = json!({
        "type": "hello",
        "user_id": principal.user_id,
        "unread": unread,
        "cursor": attached.watermark.to_string(),
    });
    let mut session = Session {
        socket,
        hub,
        kit: &kit,
        principal: &principal,
        write_timeout: hub.config().ping_every.saturating_mul(2),
        hello_cursor: attached.watermark,
        last: attached.watermark,
        skip: 0,
    };
    session.run(&attached.queue, hello, cursor).await;
    hub.detach(conn_id);
}

/// What one turn of the loop does next.
enum Step {
    /// Write what the queue holds.
    Drain,
    /// Answer the client.
    Reply(Value),
    /// Replay from this cursor.
    Replay(u64),
    /// Send a ping.
    Ping,
    /// Send a close frame and end.
    Close(u16, &'static str),
    /// The client went away.
    End,
    Nothing,
}

/// One connection, served by one task: it reads the client, writes the
/// hello, replays, live frames, replies and pings, and closes. Every write
/// is bounded by `write_timeout`: a client that accepts nothing for that
/// long is dropped.
struct Session<'a> {
    socket: WebSocket,
    hub: &'a WsHub,
    kit: &'a AlertKit,
    principal: &'a Principal,
    write_timeout: Duration,
    /// The `hello` cursor.
    hello_cursor: u64,
    /// Highest alert frame sent.
    last: u64,
    /// Frames at or below this are repeats of what the client already has
    /// (it resumed past our hello).
    skip: u64,
}

/// Frames written in one flush.
const FLUSH_EVERY: u64 = 64;

impl Session<'_> {
    async fn run(&mut self, queue: &ConnQueue, hello: Value, cursor: Option<u64>) {
        if self.send(text(hello)).await.is_err() {
            return;
        }
        if let Some(c) = cursor {
            // Before any live frame: the replay strictly precedes them.
            if let Err(()) = Box::pin(self.replay(c)).await {
                return;
            }
        }
        let config = self.hub.config().clone();
        let mut shutdown = self.hub.shutdown_signal();
        let mut last_heard = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(config.ping_every);
        tick.tick().await;
        // The session ends when the credentials do (4001), checked against
        // the wall clock like the token itself.
        let expiry = self.principal.expires_at.map(|t| {
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
            let step = tokio::select! {
                _ = queue.ready() => Step::Drain,
                _ = shutdown.changed() => Step::Close(CLOSE_GOING_AWAY, "shutting down"),
                _ = async {
                    match expiry {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => Step::Close(CLOSE_UNAUTHORIZED, "token expired"),
                incoming = self.socket.recv() => match incoming {
                    Some(Ok(Message::Text(_) | Message::Binary(_))) if flood.check().is_err() => {
                        Step::Close(CLOSE_POLICY, "message flood")
                    }
                    Some(Ok(Message::Text(t))) => {
                        last_heard = tokio::time::Instant::now();
                        if t.len() > config.max_message {
                            Step::Close(CLOSE_TOO_BIG, "message too big")
                        } else {
                            Box::pin(handle_client(self.kit, self.principal, t.as_str())).await
                        }
                    }
                    Some(Ok(Message::Binary(b))) if b.len() > config.max_message => {
                        Step::Close(CLOSE_TOO_BIG, "message too big")
                    }
                    Some(Ok(Message::Close(_))) | None => Step::End,
                    // The codec refuses frames past its own limit.
                    Some(Err(e)) if e.to_string().contains("too long") || e.to_string().contains("Space limit") => {
                        Step::Close(CLOSE_TOO_BIG, "message too big")
                    }
                    Some(Err(_)) => Step::End,
                    Some(Ok(_)) => {
                        last_heard = tokio::time::Instant::now();
                        Step::Nothing
                    }
                },
                _ = tick.tick() => if last_heard.elapsed() > 2 * config.ping_every {
                    Step::Close(CLOSE_GOING_AWAY, "no pong")
                } else {
                    Step::Ping
                },
            };
            let done = match step {
                Step::Drain => {
                    // Let the other woken connections and the pump run
                    // first: frames published meanwhile join this flush
                    // (one write for several frames under load).
                    tokio::task::yield_now().await;
                    Box::pin(self.drain(queue)).await
                }
                Step::Reply(v) => self.send(text(v)).await,
                Step::Replay(c) => Box::pin(self.replay(c)).await,
                Step::Ping => self.send(Message::Ping(Default::default())).await,
                Step::Close(code, reason) => {
                    Box::pin(self.close(code, reason)).await;
                    Err(())
                }
                Step::End => Err(()),
                Step::Nothing => Ok(()),
            };
            if done.is_err() {
                return;
            }
        }
    }

    /// Writes one message; `Err` when the socket is gone or stuck.
    async fn send(&mut self, msg: Message) -> Result<(), ()> {
        match tokio::time::timeout(self.write_timeout, self.socket.send(msg)).await {
            Ok(Ok(())) => {
                self.count(1);
                Ok(())
            }
            _ => Err(()),
        }
    }

    fn count(&self, n: u64) {
        self.hub.counters().sent.fetch_add(n, Ordering::Relaxed);
        metrics::counter!(alertkit_core::telemetry::WS_FRAMES_SENT).increment(n);
    }

    /// Writes what the queue holds, flushing every [`FLUSH_EVERY`] frames;
    /// on a close code from the hub, writes the close frame and ends.
    async fn drain(&mut self, queue: &ConnQueue) -> Result<(), ()> {
        let mut unflushed = 0;
        loop {
            let frame = match queue.next() {
                Next::Frame(f) => f,
                Next::Empty => break,
                Next::Kicked(code) => {
                    let reason = match code {
                        CLOSE_TOO_SLOW => "too slow",
                        CLOSE_DISCONNECTED => "disconnected by an administrator",
                        _ => "going away",
                    };
                    let _ = self.flush().await;
                    if code != 0 {
                        self.close(code, reason).await;
                    }
                    return Err(());
                }
            };
            if frame.seq != 0 && frame.seq <= self.skip {
                continue;
            }
            self.last = self.last.max(frame.seq);
            let fed = tokio::time::timeout(
                self.write_timeout,
                self.socket.feed(Message::Text(frame.text)),
            )
            .await;
            if !matches!(fed, Ok(Ok(()))) {
                return Err(());
            }
            unflushed += 1;
            if unflushed == FLUSH_EVERY {
                self.flush().await?;
                self.count(unflushed);
                unflushed = 0;
            }
        }
        if unflushed > 0 {
            self.flush().await?;
            self.count(unflushed);
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), ()> {
        match tokio::time::timeout(self.write_timeout, self.socket.flush()).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(()),
        }
    }

    /// Replays from `cursor`, then sends `resumed` (or the error).
    async fn replay(&mut self, cursor: u64) -> Result<(), ()> {
        self.skip = self.skip.max(cursor);
        let done = match replay(
            self.hub,
            self.principal,
            &mut self.socket,
            self.write_timeout,
            cursor,
            self.hello_cursor,
        )
        .await
        {
            Ok(n) => {
                self.last = self.last.max(cursor);
                json!({"type": "resumed", "cursor": self.last.to_string(), "replayed": n})
            }
            Err(ReplayError::TooOld) => error(
                "cursor_expired",
                "too far behind to replay; reload the list and use the hello cursor",
            ),
            Err(ReplayError::Failed(code)) => error(
                code,
                "the alert history could not be read; try resuming again",
            ),
            Err(ReplayError::Closed) => return Err(()),
        };
        self.send(text(done)).await
    }

    /// Sends a close frame, then reads on until the client answers it (or
    /// a moment passes): closing the socket on unread client data would
    /// reset the connection and lose the close frame.
    async fn close(&mut self, code: u16, reason: &'static str) {
        if self.send(close(code, reason)).await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(m)) = self.socket.recv().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
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

/// What a client message asks for.
async fn handle_client(kit: &AlertKit, p: &Principal, raw: &str) -> Step {
    let Ok(v) = serde_json::from_str::<Value>(raw) else {
        return Step::Reply(error("bad_request", "not JSON"));
    };
    let id = || v["id"].as_str().and_then(|s| s.parse::<AlertId>().ok());
    let result = match v["type"].as_str() {
        Some("ping") => return Step::Reply(json!({"type": "pong"})),
        Some("resume") => {
            return match parse_cursor(&v["cursor"]) {
                Some(c) => Step::Replay(c),
                None => Step::Reply(error(
                    "invalid",
                    "`cursor` must be a cursor the server sent",
                )),
            };
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
    match result {
        Ok(()) => Step::Nothing,
        Err(e) => Step::Reply(error(e.kind().code(), e)),
    }
}
