//! `resume`: replaying what a client missed, from the store, through the engine.

use std::sync::atomic::Ordering;

use alertkit_core::Principal;
use axum::extract::ws::{Message, WebSocket};
use futures::SinkExt;
use futures::stream::SplitSink;

use crate::ws::hub::WsHub;

use super::frames::*;

pub(crate) enum ReplayError {
    TooOld,
    Closed,
}

/// Sends the alerts the principal may see that changed in `(after, upto]`,
/// in change order; returns how many.
pub(crate) async fn replay(
    hub: &WsHub,
    principal: &Principal,
    sink: &mut SplitSink<WebSocket, Message>,
    after: u64,
    upto: u64,
) -> Result<usize, ReplayError> {
    const PAGE: u32 = 500;
    let kit = hub.kit();
    let viewer = principal.viewer();
    let max = hub.config().max_replay;
    let mut due = Vec::new();
    let mut from = after;
    while from < upto {
        let page = kit
            .store()
            .changes_since(from, PAGE, kit.now())
            .await
            .map_err(|_| ReplayError::TooOld)?;
        let full = page.len() == PAGE as usize;
        for a in page {
            from = a.seq;
            if a.seq > upto {
                break;
            }
            if a.audience.is_visible_to(&viewer) {
                due.push(a);
                if due.len() > max {
                    return Err(ReplayError::TooOld);
                }
            }
        }
        if !full {
            break;
        }
    }
    let mut sent = 0;
    for a in due {
        // With the user's receipt; gone since (deleted, expired) → skipped.
        let Ok(view) = kit.get(principal, a.id).await else {
            continue;
        };
        let frame = alert_frame(event_name(&view.alert), &view, a.seq);
        sink.send(Message::Text(frame.text))
            .await
            .map_err(|_| ReplayError::Closed)?;
        hub.counters().sent.fetch_add(1, Ordering::Relaxed);
        sent += 1;
    }
    Ok(sent)
}
