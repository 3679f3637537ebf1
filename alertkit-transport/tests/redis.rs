//! `RedisBroadcaster` on a real Redis server (`REDIS_URL`): the broadcaster
//! conformance suite, each test on its own channel prefix, and delivery
//! across instances.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use alertkit_core::{AlertEvent, AlertId, Broadcaster, BusMessage};
use alertkit_testkit::services::service_url;
use alertkit_transport::RedisBroadcaster;
use futures::StreamExt;

fn prefix() -> String {
    format!("akt:{}", uuid::Uuid::now_v7().simple())
}

async fn instance(url: &str, prefix: &str) -> RedisBroadcaster {
    RedisBroadcaster::builder(url)
        .prefix(prefix)
        .capacity(alertkit_testkit::broadcast::BURST * 4)
        .connect()
        .await
        .expect("connect to REDIS_URL")
}

async fn setup() -> Option<Box<RedisBroadcaster>> {
    let url = service_url("REDIS_URL")?;
    Some(Box::new(instance(&url, &prefix()).await))
}

alertkit_testkit::broadcaster_conformance!(setup());

fn event(user: &str) -> AlertEvent {
    AlertEvent::Dismissed {
        user_id: user.into(),
        alert_id: AlertId::new(),
        at: chrono::Utc::now(),
    }
}

async fn next_event(s: &mut alertkit_core::EventStream) -> AlertEvent {
    match tokio::time::timeout(Duration::from_secs(5), s.next()).await {
        Ok(Some(BusMessage::Event(e))) => (*e).clone(),
        other => panic!("expected an event, got {other:?}"),
    }
}

#[tokio::test]
async fn events_cross_instances_and_prefixes_isolate() {
    let Some(url) = service_url("REDIS_URL") else {
        return;
    };
    let p = prefix();
    let (a, b) = (instance(&url, &p).await, instance(&url, &p).await);
    let other = instance(&url, &prefix()).await;
    let mut on_a = a.subscribe().await.unwrap();
    let mut on_b = b.subscribe().await.unwrap();
    let mut on_other = other.subscribe().await.unwrap();
    assert!(a.is_connected() && b.is_connected());

    a.publish(event("from-a")).await.unwrap();
    b.publish(event("from-b")).await.unwrap();
    for s in [&mut on_a, &mut on_b] {
        let first = next_event(s).await;
        let second = next_event(s).await;
        let users: Vec<_> = [first, second]
            .iter()
            .map(|e| match e {
                AlertEvent::Dismissed { user_id, .. } => user_id.clone(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            users,
            ["from-a", "from-b"],
            "each instance sees both, in publish order"
        );
    }
    let stray = tokio::time::timeout(Duration::from_millis(300), on_other.next()).await;
    assert!(stray.is_err(), "another prefix received {stray:?}");
}

#[tokio::test]
async fn unreachable_redis_is_unavailable() {
    let err = RedisBroadcaster::builder("redis://127.0.0.1:1")
        .connect()
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "got {err:?}");
    let err = RedisBroadcaster::builder("not a url")
        .connect()
        .await
        .unwrap_err();
    assert!(
        matches!(err, alertkit_core::Error::Invalid(_)),
        "got {err:?}"
    );
}
