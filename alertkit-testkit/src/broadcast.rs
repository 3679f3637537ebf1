//! Conformance cases for [`Broadcaster`]. Each takes a fresh broadcaster.
//!
//! A backend must buffer at least [`BURST`] and fewer than [`FLOOD`] events per
//! subscriber: the cases publish bursts of up to `BURST` before reading, and
//! [`lagging_subscriber_is_told`] must be able to observe a lag.

use std::time::Duration;

use alertkit_core::{
    AlertEvent, AlertId, Audience, Broadcaster, BusMessage, EventStream, NewAlert, Severity,
};
use futures::StreamExt;

use crate::fixtures::{alert, at};

/// The largest burst published before a subscriber reads, outside the lag case.
pub const BURST: usize = 1_000;

/// How many events the lag case publishes without reading.
pub const FLOOD: usize = 20_000;

const WAIT: Duration = Duration::from_secs(10);

fn numbered(n: usize) -> AlertEvent {
    AlertEvent::Dismissed {
        user_id: format!("u{n}"),
        alert_id: AlertId::new(),
        at: at(0),
    }
}

fn number_of(e: &AlertEvent) -> usize {
    match e {
        AlertEvent::Dismissed { user_id, .. } => user_id[1..].parse().expect("numbered event"),
        other => panic!("unexpected event {other:?}"),
    }
}

async fn next(stream: &mut EventStream) -> BusMessage {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("no message within 10 s")
        .expect("stream ended")
}

async fn next_event(stream: &mut EventStream) -> AlertEvent {
    match next(stream).await {
        BusMessage::Event(e) => (*e).clone(),
        other => panic!("unexpected {other:?}"),
    }
}

/// A subscriber receives every event published after it subscribed, in order.
pub async fn subscriber_receives_events_in_order(bus: &dyn Broadcaster) {
    let mut sub = bus.subscribe().await.unwrap();
    for i in 0..100 {
        bus.publish(numbered(i)).await.unwrap();
    }
    for i in 0..100 {
        assert_eq!(number_of(&next_event(&mut sub).await), i);
    }
}

/// Every subscriber receives every event.
pub async fn every_subscriber_receives_every_event(bus: &dyn Broadcaster) {
    let mut subs = Vec::new();
    for _ in 0..3 {
        subs.push(bus.subscribe().await.unwrap());
    }
    for i in 0..10 {
        bus.publish(numbered(i)).await.unwrap();
    }
    for sub in &mut subs {
        for i in 0..10 {
            assert_eq!(number_of(&next_event(sub).await), i);
        }
    }
}

/// A subscriber does not receive events published before it subscribed.
pub async fn events_before_subscribing_are_not_delivered(bus: &dyn Broadcaster) {
    let mut early = bus.subscribe().await.unwrap();
    bus.publish(numbered(0)).await.unwrap();
    // Once the early subscriber has it, it has been fully published.
    assert_eq!(number_of(&next_event(&mut early).await), 0);
    let mut late = bus.subscribe().await.unwrap();
    bus.publish(numbered(1)).await.unwrap();
    assert_eq!(number_of(&next_event(&mut late).await), 1);
    assert_eq!(number_of(&next_event(&mut early).await), 1);
}

/// A subscriber that falls behind is told how much it missed, then continues
/// with the newest events: lagged + received = published, order kept.
pub async fn lagging_subscriber_is_told(bus: &dyn Broadcaster) {
    let mut slow = bus.subscribe().await.unwrap();
    for i in 0..FLOOD {
        bus.publish(numbered(i)).await.unwrap();
    }
    // A networked bus delivers in the background: give it time to bring
    // the flood to the subscriber's buffer, or a subscriber reading from
    // now on may keep up with a slow delivery and never lag (seen on a
    // loaded CI machine with Redis).
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let (mut lagged, mut received, mut last) = (0u64, 0u64, None::<usize>);
    while last != Some(FLOOD - 1) {
        match next(&mut slow).await {
            BusMessage::Lagged(n) => {
                assert!(n > 0);
                lagged += n;
            }
            BusMessage::Gap => panic!("unexpected gap while the link was up"),
            BusMessage::Event(e) => {
                let n = number_of(&e);
                if let Some(prev) = last {
                    assert!(n > prev, "events out of order: {n} after {prev}");
                }
                last = Some(n);
                received += 1;
            }
        }
    }
    assert!(lagged > 0, "the subscriber was never told it lagged");
    assert_eq!(
        lagged + received,
        FLOOD as u64,
        "every event is either received or counted as lagged"
    );
}

/// Dropping a subscriber never blocks publishing or other subscribers.
pub async fn dropped_subscriber_does_not_block_publishing(bus: &dyn Broadcaster) {
    let dropped = bus.subscribe().await.unwrap();
    let mut kept = bus.subscribe().await.unwrap();
    drop(dropped);
    let publish_all = async {
        for i in 0..BURST {
            bus.publish(numbered(i)).await.unwrap();
        }
    };
    tokio::time::timeout(WAIT, publish_all)
        .await
        .expect("publishing blocked");
    for i in 0..BURST {
        assert_eq!(number_of(&next_event(&mut kept).await), i);
    }
    // Publishing with no subscriber at all succeeds too.
    drop(kept);
    bus.publish(numbered(0)).await.unwrap();
}

/// Every kind of event arrives equal to what was published.
pub async fn every_event_kind_round_trips(bus: &dyn Broadcaster) {
    let a = alert(
        NewAlert::new("capacity_warning", Severity::High, "cap")
            .tags(["VCH20"])
            .audience(Audience::group("ops"))
            .metadata(serde_json::json!({"p": 0.9})),
        at(1),
    );
    let events = vec![
        AlertEvent::Created { alert: a.clone() },
        AlertEvent::Updated {
            alert: a.clone(),
            escalated: true,
        },
        AlertEvent::Resolved { alert: a.clone() },
        AlertEvent::Read {
            user_id: "alice".into(),
            alert_ids: vec![a.id, AlertId::new()],
            at: at(2),
        },
        AlertEvent::Dismissed {
            user_id: "alice".into(),
            alert_id: a.id,
            at: at(3),
        },
        AlertEvent::Deleted {
            alert_id: a.id,
            audience: a.audience.clone(),
        },
    ];
    let mut sub = bus.subscribe().await.unwrap();
    for e in &events {
        bus.publish(e.clone()).await.unwrap();
    }
    for e in &events {
        assert_eq!(&next_event(&mut sub).await, e);
    }
}
