//! Conformance cases for the store role of this name. Each takes a fresh,
//! empty store.

use alertkit_core::{
    Alert, AlertFilter, AlertId, AlertStore, Audience, Channel, DeliveryOutcome, DeliveryStatus,
    DeliveryTarget, Error, NewAlert, Outbox, Severity,
};
use chrono::Duration;

use crate::fixtures::{alert, at, bob, root, simple};

use crate::alerts::{now, put};

pub(crate) fn targets(list: &[(&str, Channel)]) -> Vec<DeliveryTarget> {
    list.iter()
        .map(|(u, c)| DeliveryTarget::new(*u, *c))
        .collect()
}

pub(crate) fn keyed(sev: Severity, minute: i64) -> Alert {
    alert(
        NewAlert::new("sla_at_risk", sev, "outbox")
            .dedup_key("outbox:k")
            .audience(Audience::everyone()),
        at(minute),
    )
}

/// A new alert enqueues one pending delivery per target, due at once, in the
/// same write; repeated targets collapse.
pub async fn outbox_enqueued_with_new_alert<S: AlertStore + Outbox + ?Sized>(store: &S) {
    let t = targets(&[
        ("alice", Channel::Email),
        ("bob", Channel::Slack),
        ("alice", Channel::Email),
    ]);
    let a = store
        .insert_or_dedup(keyed(Severity::High, 1), &t, at(1))
        .await
        .unwrap()
        .alert;
    let ds = store.deliveries(a.id).await.unwrap();
    let mut got: Vec<(String, Channel)> =
        ds.iter().map(|d| (d.user_id.clone(), d.channel)).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("alice".to_string(), Channel::Email),
            ("bob".to_string(), Channel::Slack)
        ]
    );
    for d in &ds {
        assert_eq!(d.status, DeliveryStatus::Pending);
        assert_eq!(
            (d.attempts, d.severity, d.alert_id),
            (0, Severity::High, a.id)
        );
        assert_eq!((d.next_attempt_at, d.created_at), (at(1), at(1)));
        assert!(d.lease_until.is_none() && d.last_error.is_none());
    }
    let none = store
        .insert_or_dedup(
            alert(simple("quiet", Audience::everyone()), at(2)),
            &[],
            at(2),
        )
        .await
        .unwrap();
    assert!(store.deliveries(none.alert.id).await.unwrap().is_empty());
}

/// A dedup hit enqueues nothing; an escalation enqueues again at the new
/// severity; a receiver never gets two deliveries at one severity.
pub async fn outbox_only_escalation_notifies_again<S: AlertStore + Outbox + ?Sized>(store: &S) {
    let t = targets(&[("alice", Channel::Email)]);
    let a = store
        .insert_or_dedup(keyed(Severity::Medium, 1), &t, at(1))
        .await
        .unwrap()
        .alert;
    store
        .insert_or_dedup(keyed(Severity::Medium, 2), &t, at(2))
        .await
        .unwrap();
    store
        .insert_or_dedup(keyed(Severity::Low, 3), &t, at(3))
        .await
        .unwrap();
    assert_eq!(
        store.deliveries(a.id).await.unwrap().len(),
        1,
        "repeats do not notify again"
    );
    let r = store
        .insert_or_dedup(keyed(Severity::Critical, 4), &t, at(4))
        .await
        .unwrap();
    assert!(r.escalated);
    let ds = store.deliveries(a.id).await.unwrap();
    let sevs: Vec<Severity> = ds.iter().map(|d| d.severity).collect();
    assert_eq!(sevs, vec![Severity::Medium, Severity::Critical]);
    assert_eq!(ds[1].created_at, at(4));
}

/// Claims lease deliveries: claimed ones are not claimed again until the
/// lease lapses, then they are, with the attempt counted.
pub async fn outbox_claims_lease_and_expire<S: AlertStore + Outbox + ?Sized>(store: &S) {
    let t = targets(&[
        ("u1", Channel::Email),
        ("u2", Channel::Email),
        ("u3", Channel::Slack),
    ]);
    let a = store
        .insert_or_dedup(keyed(Severity::High, 1), &t, at(1))
        .await
        .unwrap()
        .alert;
    let lease = Duration::minutes(5);
    assert!(
        store
            .claim_deliveries(at(0), lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due before creation"
    );
    let first = store.claim_deliveries(at(2), lease, 2).await.unwrap();
    assert_eq!(first.len(), 2);
    for c in &first {
        assert_eq!(c.alert, a, "the claim carries the alert");
        assert_eq!(c.delivery.status, DeliveryStatus::InFlight);
        assert_eq!(c.delivery.attempts, 1);
        assert_eq!(c.delivery.lease_until, Some(at(7)));
    }
    let second = store.claim_deliveries(at(3), lease, 10).await.unwrap();
    assert_eq!(second.len(), 1, "only the unclaimed one is left");
    assert!(first.iter().all(|c| c.delivery.id != second[0].delivery.id));
    assert!(
        store
            .claim_deliveries(at(6), lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "leases hold"
    );
    // The first dispatcher died: at 7 its two leases lapse and are re-claimed.
    let again = store.claim_deliveries(at(7), lease, 10).await.unwrap();
    let mut ids: Vec<_> = again.iter().map(|c| c.delivery.id).collect();
    let mut want: Vec<_> = first.iter().map(|c| c.delivery.id).collect();
    ids.sort();
    want.sort();
    assert_eq!(ids, want);
    assert!(again.iter().all(|c| c.delivery.attempts == 2));
}

/// Outcomes: sent is final, retry waits until its time, dead is final; a
/// stale attempt cannot overwrite a newer one.
pub async fn outbox_outcomes<S: AlertStore + Outbox + ?Sized>(store: &S) {
    let t = targets(&[
        ("u1", Channel::Email),
        ("u2", Channel::Slack),
        ("u3", Channel::Webhook),
    ]);
    let a = store
        .insert_or_dedup(keyed(Severity::High, 1), &t, at(1))
        .await
        .unwrap()
        .alert;
    let lease = Duration::minutes(5);
    let claimed = store.claim_deliveries(at(1), lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 3);
    let by_user = |u: &str| {
        claimed
            .iter()
            .find(|c| c.delivery.user_id == u)
            .unwrap()
            .delivery
            .clone()
    };
    let (d1, d2, d3) = (by_user("u1"), by_user("u2"), by_user("u3"));

    let sent = store
        .complete_delivery(d1.id, 1, DeliveryOutcome::Sent, at(2))
        .await
        .unwrap();
    assert_eq!(
        (sent.status, sent.lease_until, sent.updated_at),
        (DeliveryStatus::Sent, None, at(2))
    );
    let retry = DeliveryOutcome::Retry {
        at: at(60),
        error: "429 Too Many Requests".into(),
    };
    let r = store
        .complete_delivery(d2.id, 1, retry, at(2))
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.next_attempt_at),
        (DeliveryStatus::Pending, at(60))
    );
    assert_eq!(r.last_error.as_deref(), Some("429 Too Many Requests"));
    let dead = DeliveryOutcome::Dead {
        error: "410 Gone".into(),
    };
    assert_eq!(
        store
            .complete_delivery(d3.id, 1, dead, at(2))
            .await
            .unwrap()
            .status,
        DeliveryStatus::Dead
    );

    // Completing twice, or a wrong attempt, conflicts.
    assert!(matches!(
        store
            .complete_delivery(d1.id, 1, DeliveryOutcome::Sent, at(3))
            .await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store
            .complete_delivery(uuid::Uuid::now_v7(), 1, DeliveryOutcome::Sent, at(3))
            .await,
        Err(Error::NotFound(_))
    ));

    assert!(
        store
            .claim_deliveries(at(59), lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "retry waits; sent and dead are final"
    );
    let later = store.claim_deliveries(at(60), lease, 10).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(
        (later[0].delivery.id, later[0].delivery.attempts),
        (d2.id, 2)
    );
    // The attempt-1 worker, late, cannot record over attempt 2.
    assert!(matches!(
        store
            .complete_delivery(d2.id, 1, DeliveryOutcome::Sent, at(61))
            .await,
        Err(Error::Conflict(_))
    ));
    store
        .complete_delivery(d2.id, 2, DeliveryOutcome::Sent, at(61))
        .await
        .unwrap();
    let statuses: Vec<DeliveryStatus> = store
        .deliveries(a.id)
        .await
        .unwrap()
        .iter()
        .map(|d| d.status)
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == DeliveryStatus::Sent)
            .count(),
        2
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == DeliveryStatus::Dead)
            .count(),
        1
    );
}

/// Concurrent claims never hand one delivery to two dispatchers.
pub async fn outbox_concurrent_claims_never_overlap<S: AlertStore + Outbox + ?Sized>(store: &S) {
    let t: Vec<DeliveryTarget> = (0..40)
        .map(|i| DeliveryTarget::new(format!("u{i}"), Channel::Email))
        .collect();
    store
        .insert_or_dedup(keyed(Severity::High, 1), &t, at(1))
        .await
        .unwrap();
    let claims = (0..6).map(|_| store.claim_deliveries(at(2), Duration::minutes(5), 8));
    let results = futures::future::join_all(claims).await;
    let mut ids = Vec::new();
    for r in results {
        ids.extend(r.unwrap().into_iter().map(|c| c.delivery.id));
    }
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "a delivery was claimed twice");
    assert_eq!(n, 40, "6 claims of 8 cover all 40");
}

/// Deleting or purging an alert drops its deliveries.
pub async fn outbox_follows_alert_deletion<S: AlertStore + Outbox + ?Sized>(store: &S) {
    let t = targets(&[("u1", Channel::Email)]);
    let a = store
        .insert_or_dedup(keyed(Severity::High, 1), &t, at(1))
        .await
        .unwrap()
        .alert;
    store.delete(a.id).await.unwrap();
    assert!(store.deliveries(a.id).await.unwrap().is_empty());
    assert!(
        store
            .claim_deliveries(at(2), Duration::minutes(5), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// `deliveries_in` lists one status, most recently updated first, bounded:
/// how dead letters are found for replay.
pub async fn outbox_lists_by_status<S: AlertStore + Outbox + ?Sized>(store: &S) {
    let t = targets(&[
        ("u1", Channel::Email),
        ("u2", Channel::Slack),
        ("u3", Channel::Webhook),
    ]);
    store
        .insert_or_dedup(keyed(Severity::High, 1), &t, at(1))
        .await
        .unwrap();
    assert!(
        store
            .deliveries_in(DeliveryStatus::Dead, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .deliveries_in(DeliveryStatus::Pending, 10)
            .await
            .unwrap()
            .len(),
        3
    );
    let claimed = store
        .claim_deliveries(at(1), Duration::minutes(5), 10)
        .await
        .unwrap();
    let dead = |e: &str| DeliveryOutcome::Dead { error: e.into() };
    let (c0, c1, c2) = (
        &claimed[0].delivery,
        &claimed[1].delivery,
        &claimed[2].delivery,
    );
    store
        .complete_delivery(c0.id, 1, dead("bad address"), at(2))
        .await
        .unwrap();
    store
        .complete_delivery(c1.id, 1, DeliveryOutcome::Sent, at(3))
        .await
        .unwrap();
    store
        .complete_delivery(c2.id, 1, dead("410 Gone"), at(4))
        .await
        .unwrap();
    let letters = store.deliveries_in(DeliveryStatus::Dead, 10).await.unwrap();
    assert_eq!(
        letters.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![c2.id, c0.id],
        "newest first"
    );
    assert_eq!(letters[0].last_error.as_deref(), Some("410 Gone"));
    let one = store.deliveries_in(DeliveryStatus::Dead, 1).await.unwrap();
    assert_eq!(one.len(), 1);
    let sent = store.deliveries_in(DeliveryStatus::Sent, 10).await.unwrap();
    assert_eq!(sent.iter().map(|d| d.id).collect::<Vec<_>>(), vec![c1.id]);
}

/// A batch behaves like the same raises one by one: new alerts, dedup within
/// the batch and against stored alerts, deliveries, results in input order.
pub async fn insert_many_matches_single_raises<S: AlertStore + Outbox + ?Sized>(store: &S) {
    let stored = put(
        store,
        alert(
            simple("existing", Audience::everyone()).dedup_key("k-old"),
            at(0),
        ),
    )
    .await;
    let email = targets(&[("alice", Channel::Email)]);
    let items = vec![
        (
            alert(simple("p1", Audience::everyone()), at(1)),
            email.clone(),
        ),
        (
            alert(simple("k1", Audience::everyone()).dedup_key("k-new"), at(1)),
            email.clone(),
        ),
        (alert(simple("p2", Audience::user("bob")), at(2)), vec![]),
        (
            alert(
                NewAlert::new("test_alert", Severity::Critical, "k1 again")
                    .dedup_key("k-new")
                    .audience(Audience::everyone()),
                at(2),
            ),
            email.clone(),
        ),
        (
            alert(
                simple("old again", Audience::everyone()).dedup_key("k-old"),
                at(3),
            ),
            vec![],
        ),
    ];
    let ids: Vec<AlertId> = items.iter().map(|(a, _)| a.id).collect();
    let out = store.insert_many(items, at(3)).await.unwrap();
    let shape: Vec<(bool, bool)> = out.iter().map(|r| (r.deduplicated, r.escalated)).collect();
    assert_eq!(
        shape,
        vec![
            (false, false),
            (false, false),
            (false, false),
            (true, true),
            (true, false)
        ]
    );
    assert_eq!(out[0].alert.id, ids[0]);
    assert_eq!(out[2].alert.id, ids[2]);
    assert_eq!(
        out[3].alert.id, ids[1],
        "the repeat within the batch merged into k1"
    );
    assert_eq!(out[3].alert.occurrences, 2);
    assert_eq!(out[4].alert.id, stored.id);
    assert_eq!(
        store
            .count(&root(), &AlertFilter::default(), now())
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        store.get(&bob(), ids[2], now()).await.unwrap().alert,
        out[2].alert
    );
    assert_eq!(store.deliveries(ids[0]).await.unwrap().len(), 1);
    let sevs: Vec<Severity> = store
        .deliveries(ids[1])
        .await
        .unwrap()
        .iter()
        .map(|d| d.severity)
        .collect();
    assert_eq!(
        sevs,
        vec![Severity::Medium, Severity::Critical],
        "escalation inside the batch notifies again"
    );
    assert!(store.insert_many(vec![], at(4)).await.unwrap().is_empty());
}

/// A dead letter can be replayed: pending again, due now, with a fresh
/// retry schedule; anything else cannot.
pub async fn outbox_dead_letters_replay<S: AlertStore + Outbox + ?Sized>(store: &S) {
    let t = targets(&[("u1", Channel::Email), ("u2", Channel::Slack)]);
    store
        .insert_or_dedup(keyed(Severity::High, 1), &t, at(1))
        .await
        .unwrap();
    let claimed = store
        .claim_deliveries(at(1), Duration::minutes(5), 10)
        .await
        .unwrap();
    let (dead, live) = (&claimed[0].delivery, &claimed[1].delivery);
    store
        .complete_delivery(
            dead.id,
            1,
            DeliveryOutcome::Dead {
                error: "550 no such user".into(),
            },
            at(2),
        )
        .await
        .unwrap();
    // Only dead letters replay.
    assert!(matches!(
        store.retry_delivery(live.id, at(3)).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store.retry_delivery(uuid::Uuid::now_v7(), at(3)).await,
        Err(Error::NotFound(_))
    ));
    let replayed = store.retry_delivery(dead.id, at(3)).await.unwrap();
    assert_eq!(
        (
            replayed.status,
            replayed.attempts,
            replayed.next_attempt_at,
            replayed.lease_until
        ),
        (DeliveryStatus::Pending, 0, at(3), None)
    );
    assert_eq!(replayed.last_error.as_deref(), Some("550 no such user"));
    assert!(matches!(
        store.retry_delivery(dead.id, at(3)).await,
        Err(Error::Conflict(_))
    ));
    // It is claimable again and can be sent, once.
    assert!(
        store
            .claim_deliveries(at(2), Duration::minutes(5), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store
        .claim_deliveries(at(3), Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].delivery.id, again[0].delivery.attempts),
        (dead.id, 1)
    );
    let sent = store
        .complete_delivery(dead.id, 1, DeliveryOutcome::Sent, at(4))
        .await
        .unwrap();
    assert_eq!(sent.status, DeliveryStatus::Sent);
    assert!(
        store
            .deliveries_in(DeliveryStatus::Dead, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Every completed attempt is recorded, in order, also across a replay;
/// the record goes with the alert.
pub async fn outbox_records_every_attempt<S: AlertStore + Outbox + ?Sized>(store: &S) {
    let t = targets(&[("u1", Channel::Webhook)]);
    let a = store
        .insert_or_dedup(keyed(Severity::High, 1), &t, at(1))
        .await
        .unwrap()
        .alert;
    let lease = Duration::minutes(5);
    let d = store.claim_deliveries(at(1), lease, 10).await.unwrap()[0]
        .delivery
        .clone();
    assert!(store.attempts(d.id).await.unwrap().is_empty());
    let retry = DeliveryOutcome::Retry {
        at: at(3),
        error: "503".into(),
    };
    store
        .complete_delivery(d.id, 1, retry, at(2))
        .await
        .unwrap();
    store.claim_deliveries(at(3), lease, 10).await.unwrap();
    let dead = DeliveryOutcome::Dead {
        error: "410 Gone".into(),
    };
    store.complete_delivery(d.id, 2, dead, at(4)).await.unwrap();
    store.retry_delivery(d.id, at(5)).await.unwrap();
    store.claim_deliveries(at(5), lease, 10).await.unwrap();
    store
        .complete_delivery(d.id, 1, DeliveryOutcome::Sent, at(6))
        .await
        .unwrap();
    let got: Vec<_> = store
        .attempts(d.id)
        .await
        .unwrap()
        .into_iter()
        .map(|x| (x.attempt, x.at, x.outcome, x.error))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, at(2), "retry".to_owned(), Some("503".to_owned())),
            (2, at(4), "dead".to_owned(), Some("410 Gone".to_owned())),
            (1, at(6), "sent".to_owned(), None),
        ]
    );
    // A refused completion records nothing.
    assert!(
        store
            .complete_delivery(d.id, 1, DeliveryOutcome::Sent, at(7))
            .await
            .is_err()
    );
    assert_eq!(store.attempts(d.id).await.unwrap().len(), 3);
    assert!(
        store
            .attempts(uuid::Uuid::now_v7())
            .await
            .unwrap()
            .is_empty()
    );
    store.delete(a.id).await.unwrap();
    assert!(
        store.attempts(d.id).await.unwrap().is_empty(),
        "gone with the alert"
    );
}

/// Digest items wait for their period's end, are enqueued with the alert
/// like any delivery, and are gathered per (user, channel) by
/// `claim_digest`, which never takes immediate deliveries, another user's or
/// another channel's items, or leased ones.
pub async fn outbox_digest_items_wait_and_gather<S: AlertStore + Outbox + ?Sized>(store: &S) {
    use alertkit_core::{Digest, DigestSlot};
    let daily = DigestSlot {
        period: Digest::Daily,
        ends_at: at(60),
    };
    let mk = |key: &str| {
        alert(
            NewAlert::new("digest_case", Severity::High, key)
                .dedup_key(key)
                .audience(Audience::everyone()),
            at(1),
        )
    };
    let a = store
        .insert_or_dedup(
            mk("a"),
            &[
                DeliveryTarget::digest("alice", Channel::Email, daily),
                DeliveryTarget::digest("alice", Channel::Slack, daily),
                DeliveryTarget::new("bob", Channel::Email),
            ],
            at(1),
        )
        .await
        .unwrap()
        .alert;
    let b = store
        .insert_or_dedup(
            mk("b"),
            &[
                DeliveryTarget::digest("alice", Channel::Email, daily),
                DeliveryTarget::digest("carol", Channel::Email, daily),
            ],
            at(1),
        )
        .await
        .unwrap()
        .alert;
    let ds = store.deliveries(a.id).await.unwrap();
    let alice_mail = ds
        .iter()
        .find(|d| d.user_id == "alice" && d.channel == Channel::Email)
        .expect("alice's digest item is enqueued with the alert");
    assert_eq!(alice_mail.digest, Some(Digest::Daily));
    assert_eq!(
        alice_mail.next_attempt_at,
        at(60),
        "due at the period's end"
    );
    let bob = ds.iter().find(|d| d.user_id == "bob").unwrap();
    assert_eq!((bob.digest, bob.next_attempt_at), (None, at(1)));

    let lease = Duration::minutes(5);
    let now = store.claim_deliveries(at(2), lease, 10).await.unwrap();
    assert_eq!(
        now.len(),
        1,
        "only the immediate delivery is due before the end"
    );
    assert_eq!(now[0].delivery.user_id, "bob");
    store
        .complete_delivery(now[0].delivery.id, 1, DeliveryOutcome::Sent, at(2))
        .await
        .unwrap();
    assert!(
        store
            .claim_digest("alice", Channel::Email, at(59), lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "a digest is not due before its period ends"
    );
    let got = store
        .claim_digest("alice", Channel::Email, at(60), lease, 10)
        .await
        .unwrap();
    let mut alerts: Vec<AlertId> = got.iter().map(|c| c.alert.id).collect();
    alerts.sort();
    let mut want = vec![a.id, b.id];
    want.sort();
    assert_eq!(
        alerts, want,
        "both of alice's email items, with their alerts"
    );
    for c in &got {
        assert_eq!(
            (
                c.delivery.status,
                c.delivery.attempts,
                c.delivery.lease_until
            ),
            (DeliveryStatus::InFlight, 1, Some(at(65)))
        );
    }
    assert!(
        store
            .claim_digest("alice", Channel::Email, at(61), lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased items are not claimed twice"
    );
    assert!(
        store
            .claim_digest("bob", Channel::Email, at(61), lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "immediate deliveries are never digest items"
    );
    let rest = store.claim_deliveries(at(61), lease, 10).await.unwrap();
    let mut rest: Vec<(String, Channel)> = rest
        .iter()
        .map(|c| (c.delivery.user_id.clone(), c.delivery.channel))
        .collect();
    rest.sort();
    assert_eq!(
        rest,
        vec![
            ("alice".to_string(), Channel::Slack),
            ("carol".to_string(), Channel::Email)
        ],
        "the general claim takes due digest items too (the dispatcher gathers the rest)"
    );
    let again = store
        .claim_digest("alice", Channel::Email, at(65), lease, 1)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "the limit holds");
    assert_eq!(
        again[0].delivery.attempts, 2,
        "a lapsed lease is re-claimed"
    );
}

/// The backlog counts pending and in-flight deliveries, and reports the
/// earliest due time of those pending and due; finished ones leave it.
pub async fn outbox_backlog_counts_unfinished_and_oldest_due<S: AlertStore + Outbox + ?Sized>(
    store: &S,
) {
    assert_eq!(store.backlog(at(0)).await.unwrap(), Default::default());
    let t = targets(&[("alice", Channel::Email), ("bob", Channel::Slack)]);
    store
        .insert_or_dedup(keyed(Severity::High, 1), &t, at(1))
        .await
        .unwrap();
    let before = store.backlog(at(0)).await.unwrap();
    assert_eq!(
        (before.unfinished, before.oldest_due),
        (2, None),
        "not due yet"
    );
    let due = store.backlog(at(5)).await.unwrap();
    assert_eq!((due.unfinished, due.oldest_due), (2, Some(at(1))));
    let first = store
        .claim_deliveries(at(5), Duration::minutes(1), 1)
        .await
        .unwrap()
        .remove(0)
        .delivery;
    let flying = store.backlog(at(5)).await.unwrap();
    assert_eq!(
        (flying.unfinished, flying.oldest_due),
        (2, Some(at(1))),
        "in flight counts; the other is still waiting"
    );
    store
        .complete_delivery(first.id, first.attempts, DeliveryOutcome::Sent, at(6))
        .await
        .unwrap();
    let second = store
        .claim_deliveries(at(6), Duration::minutes(1), 1)
        .await
        .unwrap()
        .remove(0)
        .delivery;
    let one = store.backlog(at(6)).await.unwrap();
    assert_eq!((one.unfinished, one.oldest_due), (1, None));
    store
        .complete_delivery(
            second.id,
            second.attempts,
            DeliveryOutcome::Dead {
                error: "refused".into(),
            },
            at(7),
        )
        .await
        .unwrap();
    assert_eq!(store.backlog(at(7)).await.unwrap(), Default::default());
}
