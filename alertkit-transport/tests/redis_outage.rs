//! `RedisBroadcaster` while its Redis server is down: publishing fails at
//! once instead of waiting out the timeout (the store is the log, the bus
//! only a doorbell), `ping` reports it, and when Redis is back every
//! subscriber is told `Gap` and live events flow again, with no restart.
//!
//! Runs a Redis server of its own (the `redis-server` binary that
//! `scripts/services.sh` installs) on a free loopback port, so killing it
//! disturbs no other test.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use alertkit_core::{AlertEvent, AlertId, Broadcaster, BusMessage, Error};
use alertkit_testkit::services::{OwnRedis, free_port};
use alertkit_transport::RedisBroadcaster;
use futures::StreamExt;

fn ev(n: u32) -> AlertEvent {
    AlertEvent::Dismissed {
        user_id: format!("u{n}"),
        alert_id: AlertId::new(),
        at: chrono::Utc::now(),
    }
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(Instant::now() < deadline, "not within 15 s: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_hung_redis_never_holds_up_a_publish_and_recovery_announces_a_gap() {
    let port = free_port();
    let redis = OwnRedis::start(port);
    let url = redis.url();
    // A long timeout: a publish that waited for Redis would show.
    let bus = RedisBroadcaster::builder(&url)
        .publish_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap();
    let mut sub = bus.subscribe().await.unwrap();
    bus.publish(ev(1)).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), sub.next()).await {
        Ok(Some(BusMessage::Event(_))) => {}
        other => panic!("expected the first event, got {other:?}"),
    }
    bus.ping().await.unwrap();

    // Hung, not dead: connections stay open and nothing answers, the
    // case where a publish that waited for Redis would wait out its timeout.
    redis.signal("STOP");
    let started = Instant::now();
    for n in 0..200 {
        match bus.publish(ev(100 + n)).await {
            Ok(()) => {}
            Err(Error::Unavailable(why)) => {
                assert!(why.contains("redis"), "{why}");
            }
            Err(other) => panic!("publish while Redis hangs: {other:?}"),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "publishing waited for Redis: {:?}",
        started.elapsed()
    );
    // The queued write times out: Redis counts as down, health says so,
    // and publishes are refused at once.
    until("the broadcaster sees Redis down", || !bus.is_connected()).await;
    assert!(matches!(bus.ping().await, Err(Error::Unavailable(_))));
    assert!(matches!(
        bus.publish(ev(2)).await,
        Err(Error::Unavailable(_))
    ));

    // Redis answers again: the broadcaster recovers by itself and the
    // subscriber (whose own subscription never broke) is told that events
    // may be missing, then gets live events.
    redis.signal("CONT");
    until("the broadcaster sees Redis back", || bus.is_connected()).await;
    bus.ping().await.unwrap();
    let mut saw_gap = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match tokio::time::timeout_at(deadline, sub.next()).await {
            Ok(Some(BusMessage::Gap)) => {
                saw_gap = true;
                bus.publish(ev(3)).await.unwrap();
            }
            // Writes Redis read before it hung may still be delivered.
            Ok(Some(BusMessage::Event(e))) => {
                if matches!(&*e, AlertEvent::Dismissed { user_id, .. } if user_id == "u3") {
                    assert!(saw_gap);
                    break;
                }
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => panic!("no gap and live event within 15 s (gap seen: {saw_gap})"),
        }
    }
}

#[tokio::test]
async fn after_an_outage_another_instance_hears_of_the_gap_and_gets_live_events_again() {
    let port = free_port();
    let mut redis = OwnRedis::start(port);
    let url = format!("redis://127.0.0.1:{port}");
    let a = RedisBroadcaster::builder(&url).connect().await.unwrap();
    let b = RedisBroadcaster::builder(&url).connect().await.unwrap();
    let mut on_b = b.subscribe().await.unwrap();
    a.publish(ev(1)).await.unwrap();
    assert!(matches!(
        tokio::time::timeout(Duration::from_secs(5), on_b.next()).await,
        Ok(Some(BusMessage::Event(_)))
    ));
    redis.stop();
    until("both see Redis down", || {
        !a.is_connected() && !b.is_connected()
    })
    .await;
    let _redis = OwnRedis::start(port);
    until("both see Redis back", || {
        a.is_connected() && b.is_connected()
    })
    .await;
    // B hears of the gap (its own resubscription, and A's marker if A's
    // publisher had failed); then A's events reach it again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut saw_gap = false;
    loop {
        match tokio::time::timeout_at(deadline, on_b.next()).await {
            Ok(Some(BusMessage::Gap)) => {
                saw_gap = true;
                a.publish(ev(7)).await.unwrap();
            }
            Ok(Some(BusMessage::Event(e))) => {
                assert!(saw_gap);
                if matches!(&*e, AlertEvent::Dismissed { user_id, .. } if user_id == "u7") {
                    break;
                }
            }
            other => panic!("expected a gap then A's event, got {other:?}"),
        }
    }
}
