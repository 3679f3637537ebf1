//! Unit tests of the engine's orchestration, with the store and broadcaster mocked.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use mockall::predicate::eq;

use crate::broadcast::MockBroadcaster;
use crate::store::MockStore as MockAlertStore;
use crate::*;

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 8, 0, 0).unwrap()
}

/// A store mock whose subscription lookup finds no one.
fn store() -> MockAlertStore {
    let mut s = MockAlertStore::new();
    s.expect_subscribers().returning(|_, _| Ok(vec![]));
    s.expect_routes().returning(|| Ok(vec![]));
    s
}

fn kit(store: MockAlertStore, bus: MockBroadcaster) -> AlertKit {
    AlertKit::builder()
        .store(Arc::new(store))
        .broadcaster(Arc::new(bus))
        .clock(Arc::new(ManualClock::new(t0())))
        .build()
        .unwrap()
}

fn raiser() -> Principal {
    Principal::user("svc").with_permissions([Permission::AlertsCreate])
}

fn stored(new: NewAlert) -> Alert {
    new.into_alert(AlertId::new(), t0(), || Audience::user("svc"))
        .unwrap()
}

fn warning() -> NewAlert {
    NewAlert::new("capacity_warning", Severity::Medium, "Near capacity").dedup_key("cap:VCH20")
}

#[tokio::test]
async fn store_failure_publishes_nothing() {
    let mut store = store();
    store
        .expect_insert_or_dedup()
        .times(1)
        .returning(|_, _, _| Err(Error::Unavailable("db down".into())));
    let mut bus = MockBroadcaster::new();
    bus.expect_publish().never();
    let err = kit(store, bus)
        .raise(&raiser(), warning())
        .await
        .unwrap_err();
    assert!(err.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raise_that_fails_in_a_group_commit_fails_alone() {
    // Batches fail as a whole (the store refuses the transaction); single
    // writes fail only for the bad raise. Whatever the batching, only its
    // caller sees the error.
    let mut store = store();
    store
        .expect_insert_many()
        .returning(|_, _| Err(Error::Conflict("one raise in the batch is bad".into())));
    store.expect_insert_or_dedup().returning(|a, _, _| {
        if a.title == "bad" {
            return Err(Error::Conflict("bad".into()));
        }
        Ok(Raised {
            alert: a,
            deduplicated: false,
            escalated: false,
        })
    });
    let mut bus = MockBroadcaster::new();
    bus.expect_publish().returning(|_| Ok(()));
    let kit = kit(store, bus);
    let raises = (0..40).map(|i| {
        let kit = kit.clone();
        tokio::spawn(async move {
            let title = if i == 17 {
                "bad".to_owned()
            } else {
                format!("ok {i}")
            };
            let r = kit
                .raise(&raiser(), NewAlert::new("t", Severity::Low, title.clone()))
                .await;
            (title, r)
        })
    });
    let mut failed = Vec::new();
    for r in futures::future::join_all(raises).await {
        let (title, r) = r.unwrap();
        match r {
            Ok(raised) => assert_eq!(raised.alert.title, title),
            Err(e) => failed.push((title, e.kind())),
        }
    }
    assert_eq!(failed, vec![("bad".to_owned(), ErrorKind::Conflict)]);
}

#[tokio::test]
async fn new_alert_publishes_created() {
    let mut store = store();
    store
        .expect_insert_or_dedup()
        .times(1)
        .returning(|a, _, now| {
            assert_eq!(now, t0());
            assert_eq!(
                a.audience,
                Audience::user("svc"),
                "empty audience means the raiser"
            );
            Ok(Raised {
                alert: a,
                deduplicated: false,
                escalated: false,
            })
        });
    let mut bus = MockBroadcaster::new();
    bus.expect_publish()
        .withf(|e| matches!(e, AlertEvent::Created { .. }))
        .times(1)
        .returning(|_| Ok(()));
    let raised = kit(store, bus).raise(&raiser(), warning()).await.unwrap();
    assert!(!raised.deduplicated);
}

#[tokio::test]
async fn dedup_hit_publishes_updated_not_created() {
    let existing = stored(warning());
    let mut store = store();
    store
        .expect_insert_or_dedup()
        .times(1)
        .returning(move |_, _, _| {
            let mut merged = existing.clone();
            merged.occurrences = 2;
            merged.severity = Severity::High;
            Ok(Raised {
                alert: merged,
                deduplicated: true,
                escalated: true,
            })
        });
    let mut bus = MockBroadcaster::new();
    bus.expect_publish()
        .withf(|e| matches!(e, AlertEvent::Updated { escalated: true, alert } if alert.occurrences == 2))
        .times(1)
        .returning(|_| Ok(()));
    bus.expect_publish()
        .withf(|e| matches!(e, AlertEvent::Created { .. }))
        .never();
    let raised = kit(store, bus).raise(&raiser(), warning()).await.unwrap();
    assert!(raised.deduplicated && raised.escalated);
}

#[tokio::test]
async fn publish_failure_does_not_fail_the_durable_write() {
    let mut store = store();
    store.expect_insert_or_dedup().returning(|a, _, _| {
        Ok(Raised {
            alert: a,
            deduplicated: false,
            escalated: false,
        })
    });
    let mut bus = MockBroadcaster::new();
    bus.expect_publish()
        .times(1)
        .returning(|_| Err(Error::Unavailable("redis down".into())));
    assert!(kit(store, bus).raise(&raiser(), warning()).await.is_ok());
}

#[tokio::test]
async fn invalid_input_and_missing_permissions_never_reach_the_store() {
    let mut store = store();
    store.expect_insert_or_dedup().never();
    store.expect_delete().never();
    store.expect_list().never();
    let mut bus = MockBroadcaster::new();
    bus.expect_publish().never();
    let kit = kit(store, bus);

    let blank = NewAlert::new("t", Severity::Low, " ");
    assert!(matches!(
        kit.raise(&raiser(), blank).await,
        Err(Error::Invalid(_))
    ));

    let reader = Principal::user("u");
    assert!(matches!(
        kit.raise(&reader, warning()).await,
        Err(Error::Forbidden(_))
    ));

    let to_everyone = warning().audience(Audience::everyone());
    assert!(matches!(
        kit.raise(&raiser(), to_everyone).await,
        Err(Error::Forbidden(_))
    ));

    assert!(matches!(
        kit.delete(&reader, AlertId::new()).await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        kit.delete(&raiser(), AlertId::new()).await,
        Err(Error::Forbidden(_))
    ));

    let past = warning().expires_at(t0() - Duration::seconds(1));
    assert!(matches!(
        kit.raise(&raiser(), past).await,
        Err(Error::Invalid(_))
    ));

    let too_big = AlertQuery::default().limit(500);
    assert!(matches!(
        kit.list(&reader, &too_big).await,
        Err(Error::Invalid(_))
    ));
}

#[tokio::test]
async fn broadcast_permission_allows_group_audience() {
    let mut store = store();
    store
        .expect_insert_or_dedup()
        .times(1)
        .returning(|a, _, _| {
            Ok(Raised {
                alert: a,
                deduplicated: false,
                escalated: false,
            })
        });
    let mut bus = MockBroadcaster::new();
    bus.expect_publish().times(1).returning(|_| Ok(()));
    let by = raiser().with_permissions([Permission::AlertsBroadcast]);
    let raised = kit(store, bus)
        .raise(&by, warning().audience(Audience::group("ops")))
        .await
        .unwrap();
    assert_eq!(raised.alert.audience, Audience::group("ops"));
}

#[tokio::test]
async fn reads_use_the_principals_viewer() {
    let mut store = store();
    store
        .expect_count()
        .withf(|v, f, now| {
            v.user_id == "alice"
                && !v.sees_all
                && v.groups == ["ops"]
                && f.unread_only
                && *now == t0()
        })
        .times(1)
        .returning(|_, _, _| Ok(4));
    store
        .expect_count()
        .withf(|v, _, _| v.user_id == "root" && v.sees_all)
        .times(1)
        .returning(|_, _, _| Ok(9));
    let kit = kit(store, MockBroadcaster::new());
    let alice = Principal::user("alice").with_groups(["ops"]);
    assert_eq!(kit.unread_count(&alice).await.unwrap(), 4);
    assert_eq!(
        kit.unread_count(&Principal::admin("root")).await.unwrap(),
        9
    );
}

#[tokio::test]
async fn mark_read_publishes_a_receipt_event_for_the_reader_only() {
    let id = AlertId::new();
    let mut store = store();
    store
        .expect_mark_read()
        .with(mockall::predicate::always(), eq(id), eq(t0()))
        .returning(|_, _, now| {
            Ok(Receipt {
                read_at: Some(now),
                dismissed_at: None,
            })
        });
    let mut bus = MockBroadcaster::new();
    bus.expect_publish()
        .withf(move |e| {
            matches!(e, AlertEvent::Read { user_id, alert_ids, .. } if user_id == "alice" && alert_ids == &vec![id])
        })
        .times(1)
        .returning(|_| Ok(()));
    let receipt = kit(store, bus)
        .mark_read(&Principal::user("alice"), id)
        .await
        .unwrap();
    assert_eq!(receipt.read_at, Some(t0()));
}

#[tokio::test]
async fn mark_all_read_with_nothing_to_mark_publishes_nothing() {
    let mut store = store();
    store.expect_mark_all_read().returning(|_, _, _| Ok(vec![]));
    let mut bus = MockBroadcaster::new();
    bus.expect_publish().never();
    let n = kit(store, bus)
        .mark_all_read(&Principal::user("a"), &AlertFilter::default())
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn resolving_a_resolved_alert_publishes_nothing() {
    let mut a = stored(warning());
    a.created_by = Some("svc".into());
    let mut store = store();
    let view = AlertView::new(a.clone(), Receipt::default());
    store
        .expect_get()
        .returning(move |_, _, _| Ok(view.clone()));
    store
        .expect_resolve()
        .returning(move |_, _| Ok((a.clone(), false)));
    let mut bus = MockBroadcaster::new();
    bus.expect_publish().never();
    assert!(
        kit(store, bus)
            .resolve(&raiser(), AlertId::new())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn delete_publishes_deleted_with_the_audience() {
    let a = stored(warning().audience(Audience::group("ops")));
    let id = a.id;
    let mut store = store();
    store
        .expect_delete()
        .with(eq(id))
        .returning(move |_| Ok(a.clone()));
    let mut bus = MockBroadcaster::new();
    bus.expect_publish()
        .withf(move |e| matches!(e, AlertEvent::Deleted { alert_id, audience } if *alert_id == id && *audience == Audience::group("ops")))
        .times(1)
        .returning(|_| Ok(()));
    kit(store, bus)
        .delete(&Principal::admin("root"), id)
        .await
        .unwrap();
}

#[tokio::test]
async fn purge_runs_batches_until_a_short_one() {
    let mut store = store();
    let mut seq = mockall::Sequence::new();
    for n in [2u64, 2, 1] {
        store
            .expect_purge_expired()
            .withf(|now, retention, batch| {
                *now == t0() && *retention == Duration::days(30) && *batch == 2
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |_, _, _| Ok(n));
    }
    let kit = AlertKit::builder()
        .store(Arc::new(store))
        .broadcaster(Arc::new(MockBroadcaster::new()))
        .clock(Arc::new(ManualClock::new(t0())))
        .purge_batch(2)
        .build()
        .unwrap();
    assert_eq!(
        kit.purge_expired(&Principal::admin("root")).await.unwrap(),
        5
    );
    assert!(matches!(
        kit.purge_expired(&Principal::user("u")).await,
        Err(Error::Forbidden(_))
    ));
}

#[tokio::test]
async fn subscriptions_are_only_ones_own() {
    let mut store = store();
    store
        .expect_set_subscriptions()
        .withf(|u, subs| u == "alice" && subs.len() == 1 && subs[0].user_id == "alice")
        .times(1)
        .returning(|_, _| Ok(()));
    let kit = kit(store, MockBroadcaster::new());
    let alice = Principal::user("alice");
    let mine = Subscription::new("", "sla_breached", [Channel::Email]);
    assert_eq!(
        kit.set_subscriptions(&alice, vec![mine]).await.unwrap()[0].user_id,
        "alice"
    );
    let bobs = Subscription::new("bob", "sla_breached", [Channel::Email]);
    assert!(matches!(
        kit.set_subscriptions(&alice, vec![bobs]).await,
        Err(Error::Forbidden(_))
    ));
}

#[test]
fn builder_requires_store_and_broadcaster() {
    assert!(matches!(
        AlertKit::builder().build(),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        AlertKit::builder()
            .store(Arc::new(MockAlertStore::new()))
            .build(),
        Err(Error::Invalid(_))
    ));
}

struct Dir;

#[async_trait::async_trait]
impl Directory for Dir {
    async fn recipient(&self, _: &str) -> Result<Option<Recipient>> {
        Ok(None)
    }
    async fn members(&self, group: &str) -> Result<Vec<String>> {
        Ok(if group == "ops" {
            vec!["carol".into()]
        } else {
            vec![]
        })
    }
}

#[tokio::test]
async fn deliveries_go_to_subscribers_in_the_audience_on_external_channels() {
    let mut store = MockAlertStore::new();
    store.expect_routes().returning(|| Ok(vec![]));
    store
        .expect_subscribers()
        .withf(|t, s| t == "capacity_warning" && *s == Severity::Medium)
        .returning(|_, _| {
            let digest = Subscription {
                digest: Some(Digest::Daily),
                ..Subscription::new("dave", "capacity_warning", [Channel::Email])
            };
            Ok(vec![
                Subscription::new(
                    "alice",
                    "capacity_warning",
                    [Channel::InApp, Channel::Email],
                ),
                Subscription::new("bob", "capacity_warning", [Channel::Slack]),
                Subscription::new("carol", "*", [Channel::Webhook, Channel::Slack]),
                digest,
            ])
        });
    store
        .expect_insert_or_dedup()
        .withf(|_, targets, _| {
            targets
                == [
                    DeliveryTarget::new("alice", Channel::Email),
                    DeliveryTarget::new("carol", Channel::Slack),
                    DeliveryTarget::new("carol", Channel::Webhook),
                ]
        })
        .times(1)
        .returning(|a, _, _| {
            Ok(Raised {
                alert: a,
                deduplicated: false,
                escalated: false,
            })
        });
    let mut bus = MockBroadcaster::new();
    bus.expect_publish().returning(|_| Ok(()));
    let kit = AlertKit::builder()
        .store(Arc::new(store))
        .broadcaster(Arc::new(bus))
        .directory(Arc::new(Dir))
        .clock(Arc::new(ManualClock::new(t0())))
        .build()
        .unwrap();
    let aud = Audience::from_targets([Target::user("alice"), Target::group("ops")]);
    let by = raiser().with_permissions([Permission::AlertsBroadcast]);
    kit.raise(&by, warning().audience(aud)).await.unwrap();
}

#[tokio::test]
async fn raise_many_validates_everything_before_writing_then_publishes_each() {
    let mut store = store();
    store.expect_insert_many().never();
    let kit_fail = kit(store, MockBroadcaster::new());
    let bad = vec![warning(), NewAlert::new("t", Severity::Low, "")];
    assert!(matches!(
        kit_fail.raise_many(&raiser(), bad).await,
        Err(Error::Invalid(_))
    ));

    let mut store = self::store();
    store.expect_insert_many().times(1).returning(|items, _| {
        Ok(items
            .into_iter()
            .enumerate()
            .map(|(i, (alert, _))| Raised {
                alert,
                deduplicated: i == 1,
                escalated: false,
            })
            .collect())
    });
    let mut bus = MockBroadcaster::new();
    let mut seq = mockall::Sequence::new();
    bus.expect_publish()
        .withf(|e| matches!(e, AlertEvent::Created { .. }))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    bus.expect_publish()
        .withf(|e| matches!(e, AlertEvent::Updated { .. }))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    let out = kit(store, bus)
        .raise_many(&raiser(), vec![warning(), warning()])
        .await
        .unwrap();
    assert_eq!(out.len(), 2);
}

fn created_by(owner: &str, audience: Audience) -> Alert {
    let mut a = stored(warning().audience(audience));
    a.created_by = Some(owner.into());
    a
}

#[tokio::test]
async fn only_the_creator_or_a_manager_resolves() {
    // svc sees the alert (it is in the audience) but did not raise it.
    let a = created_by("other", Audience::user("svc"));
    let mut store = store();
    let view = AlertView::new(a.clone(), Receipt::default());
    store
        .expect_get()
        .returning(move |_, _, _| Ok(view.clone()));
    store.expect_resolve().never();
    let kit = kit(store, MockBroadcaster::new());
    let err = kit.resolve(&raiser(), a.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);

    // Invisible and not its own: NotFound, revealing nothing.
    let b = created_by("other", Audience::user("bob"));
    let mut store = self::store();
    let view = AlertView::new(b.clone(), Receipt::default());
    store
        .expect_get()
        .returning(move |_, _, _| Ok(view.clone()));
    store.expect_resolve().never();
    let kit = self::kit(store, MockBroadcaster::new());
    let err = kit.resolve(&raiser(), b.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    // A reader without alerts.create never reaches the store.
    let kit = self::kit(self::store(), MockBroadcaster::new());
    let err = kit
        .resolve(&Principal::user("svc"), b.id)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);

    // alerts.manage resolves without reading the creator.
    let mut store = self::store();
    store.expect_get().never();
    let b2 = b.clone();
    store
        .expect_resolve()
        .times(1)
        .returning(move |_, _| Ok((b2.clone(), true)));
    let mut bus = MockBroadcaster::new();
    bus.expect_publish().times(1).returning(|_| Ok(()));
    let kit = self::kit(store, bus);
    kit.resolve(&Principal::admin("root"), b.id).await.unwrap();
}

#[tokio::test]
async fn resolve_key_looks_only_at_the_callers_own_alerts() {
    let mut store = store();
    store
        .expect_find_active()
        .with(eq("cap:VCH20"), eq(Some("svc".to_owned())), eq(t0()))
        .times(1)
        .returning(|_, _, _| Ok(vec![]));
    let kit = kit(store, MockBroadcaster::new());
    assert!(
        kit.resolve_key(&raiser(), "cap:VCH20")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn raise_records_its_creator() {
    let mut store = store();
    store
        .expect_insert_or_dedup()
        .withf(|a, _, _| a.created_by.as_deref() == Some("svc"))
        .times(1)
        .returning(|a, _, _| {
            Ok(Raised {
                alert: a,
                deduplicated: false,
                escalated: false,
            })
        });
    let mut bus = MockBroadcaster::new();
    bus.expect_publish().returning(|_| Ok(()));
    kit(store, bus).raise(&raiser(), warning()).await.unwrap();
}

#[tokio::test]
async fn listing_rules_needs_manage() {
    let mut store = store();
    store.expect_list_rules().never();
    let kit = kit(store, MockBroadcaster::new());
    let reader = Principal::user("svc").with_permissions([Permission::AlertsCreate]);
    assert_eq!(
        kit.rules(&reader).await.unwrap_err().kind(),
        ErrorKind::Forbidden
    );
}

#[tokio::test]
async fn list_cursors_are_sealed_and_checked() {
    use crate::query::{Cursor, CursorPosition};
    let a = stored(warning());
    let store_cursor = Cursor::new(CursorPosition::of(&a));
    let mut store = store();
    let c = store_cursor.clone();
    store.expect_list().returning(move |_, q, _| {
        // The store only ever sees its own, unsealed cursors.
        if let Some(got) = &q.cursor {
            assert_eq!(got, &c);
        }
        Ok(Page {
            alerts: vec![],
            total: 0,
            unread_count: 0,
            has_more: true,
            next_cursor: Some(c.clone()),
        })
    });
    let kit = kit(store, MockBroadcaster::new());
    let me = Principal::user("svc");
    let page = kit.list(&me, &AlertQuery::default()).await.unwrap();
    let sealed = page.next_cursor.unwrap();
    assert_ne!(sealed, store_cursor);
    let again = AlertQuery::default().after(Some(sealed));
    kit.list(&me, &again).await.unwrap();
    // The store's raw cursor, without the engine's tag, is refused.
    let raw = AlertQuery::default().after(Some(store_cursor));
    assert_eq!(
        kit.list(&me, &raw).await.unwrap_err().kind(),
        ErrorKind::Invalid
    );
}
