//! `resume`: replaying what a client missed, from the store, through the engine.

use std::sync::atomic::Ordering;

use alertkit_core::Principal;
use axum::extract::ws::{Message, WebSocket};
use std::time::Duration;

use crate::ws::hub::WsHub;

use super::frames::*;

/// Why a replay did not complete.
pub(crate) enum ReplayError {
    /// More than `max_replay` alerts changed: the client reloads by REST.
    TooOld,
    /// The store could not be read (its error's wire code).
    Failed(&'static str),
    /// The socket closed.
    Closed,
}

/// Sends the alerts the principal may see that changed in `(after, upto]`,
/// in change order, each with the principal's receipt; returns how many.
/// One store query (visibility filtered there), however busy the store was.
pub(crate) async fn replay(
    hub: &WsHub,
    principal: &Principal,
    socket: &mut WebSocket,
    write_timeout: Duration,
    after: u64,
    upto: u64,
) -> Result<usize, ReplayError> {
    let max = hub.config().max_replay;
    let limit = u32::try_from(max.saturating_add(1)).unwrap_or(u32::MAX);
    let views = hub
        .kit()
        .replay(principal, after, upto, limit)
        .await
        .map_err(|e| ReplayError::Failed(e.kind().code()))?;
    if views.len() > max {
        return Err(ReplayError::TooOld);
    }
    let mut sent = 0;
    for view in views {
        let frame = alert_frame(event_name(&view.alert), &view, view.alert.seq);
        match tokio::time::timeout(write_timeout, socket.send(Message::Text(frame.text))).await {
            Ok(Ok(())) => {}
            _ => return Err(ReplayError::Closed),
        }
        hub.counters().sent.fetch_add(1, Ordering::Relaxed);
        sent += 1;
    }
    Ok(sent)
}
