//! The WebSocket endpoint (feature `axum`): live alert events for one
//! authenticated user, fed by the instance's hub ([`crate::ws::hub::WsHub`]).
//!
//! Protocol (JSON text frames with a `type`): once authenticated the server
//! sends `hello {user_id, unread, cursor}`, then `alert {event, alert,
//! cursor}` for alerts the user may see (`event`: `created`, `updated`,
//! `resolved`; `deleted` frames carry `alert_id` and no cursor),
//! `receipt {alert_ids, read_at?, dismissed_at?}` and `unread {count}` when
//! the user's own state changes on any device, `broadcast {message, level,
//! data, at}`, `error {code, message}` and `pong`. The client may send
//! `resume {cursor}`, `mark_read {id}`, `dismiss {id}`, `ping`, and — when
//! it connected without a token — `auth {token, cursor?}` first, within 5 s.
//!
//! **Cursors.** A cursor is the store's change number (a decimal string).
//! Alert frames arrive in cursor order, and `hello`'s cursor says every
//! change up to it happened before this connection. A client that saw
//! cursor `c` and reconnects sends `resume {cursor: c}` (or connects with
//! `?cursor=c`, or puts `cursor` in its `auth` message): the server replays
//! the alerts it may see that changed after `c` — each once, in order, in
//! their current state and with the user's receipt — then sends
//! `resumed {cursor, replayed}` and carries on live, without a gap or a
//! repeat, whichever instance the changes were written on. Given at connect
//! time the replay strictly precedes live frames; a `resume` sent after live
//! frames have arrived still loses and repeats nothing, but those live
//! frames came first. Deletions and receipts made while away are not
//! replayed: `hello` carries the fresh unread count.
//!
//! Close codes: 4000 disconnected by an administrator, 4001 unauthorized,
//! 4008 too slow (its queue filled while its peers' did not: reconnect and
//! resume; see [`queue`] for the backpressure policy), 1008 message flood,
//! 1009 a client message too big, 1001 server shutdown or no pong for twice
//! the ping interval.
//!
//! Each connection is served by one task (reads, writes and pings) and
//! costs about 7.3 KiB of server memory while idle (`benches/idle.rs`).

pub mod connection;
pub mod frames;
pub mod hub;
pub mod queue;
mod replay;

pub use connection::AUTH_TIMEOUT;
pub use frames::{
    CLOSE_GOING_AWAY, CLOSE_TOO_BIG, CLOSE_TOO_SLOW, CLOSE_UNAUTHORIZED, Frame, alert_frame,
    event_name, parse_cursor,
};
pub use hub::{WsConfig, WsHub};
