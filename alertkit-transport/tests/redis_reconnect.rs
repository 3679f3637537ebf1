//! `RedisBroadcaster` recovers when its subscription connection is killed:
//! subscribers are told `Gap` (to resume from the store) and live delivery
//! continues. Alone in its own test binary because it kills every pub/sub
//! connection on the server, and cargo runs test binaries one at a time.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use alertkit_core::{AlertEvent, AlertId, Broadcaster, BusMessage};
use alertkit_testkit::services::service_url;
use alertkit_transport::RedisBroadcaster;
use futures::StreamExt;

#[tokio::test]
async fn subscription_killed_then_gap_then_live_again() {
    let Some(url) = service_url("REDIS_URL") else {
        return;
    };
    let prefix = format!("akt:{}", uuid::Uuid::now_v7().simple());
    let bus = RedisBroadcaster::builder(&url)
        .prefix(&prefix)
        .connect()
        .await
        .unwrap();
    let mut sub = bus.subscribe().await.unwrap();
    let ev = |n: u32| AlertEvent::Dismissed {
        user_id: format!("u{n}"),
        alert_id: AlertId::new(),
        at: chrono::Utc::now(),
    };

    bus.publish(ev(1)).await.unwrap();
    assert!(matches!(
        tokio::time::timeout(Duration::from_secs(5), sub.next()).await,
        Ok(Some(BusMessage::Event(_)))
    ));

    let client = redis::Client::open(url.as_str()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(killed >= 1);

    // The relay notices, resubscribes and announces the gap.
    let mut saw_gap = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !saw_gap {
        match tokio::time::timeout_at(deadline, sub.next()).await {
            Ok(Some(BusMessage::Gap)) => saw_gap = true,
            Ok(Some(other)) => panic!("unexpected {other:?} before the gap"),
            Ok(None) => panic!("stream ended"),
            Err(_) => panic!("no Gap within 10 s"),
        }
    }
    assert!(bus.is_connected());
    // Live again: a new event arrives.
    bus.publish(ev(2)).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), sub.next()).await {
        Ok(Some(BusMessage::Event(e))) => {
            assert!(matches!(&*e, AlertEvent::Dismissed { user_id, .. } if user_id == "u2"))
        }
        other => panic!("expected the live event, got {other:?}"),
    }
}
