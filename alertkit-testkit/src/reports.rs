//! Conformance cases for the [`ReportStore`] role. Each takes a fresh,
//! empty store. Instants are whole milliseconds (the finest every backend
//! keeps).

use std::collections::HashSet;

use alertkit_core::{
    AlertStore, Audience, Channel, DeliveryOutcome, DeliveryStatus, Error, NewAlert, Outbox,
    Report, ReportFilter, ReportKind, ReportRequest, ReportStatus, ReportStore, Severity,
};
use chrono::Duration;

use crate::fixtures::{alert, alice, at, root};
use crate::outbox::targets;

fn request(kind: ReportKind) -> ReportRequest {
    ReportRequest {
        kind,
        from: at(0),
        to: at(600),
        filter: ReportFilter {
            tags: vec!["db".into()],
            ..Default::default()
        },
    }
}

fn report(minute: i64) -> Report {
    Report::new(request(ReportKind::Alerts), alice(), at(minute))
}

/// A report reads back as stored; a second create of its id is a
/// `Conflict`, an unknown id `NotFound`.
pub async fn report_records_round_trip<S: ReportStore + ?Sized>(store: &S) {
    let r = report(1);
    store.create_report(&r).await.unwrap();
    assert_eq!(store.report(r.id).await.unwrap(), r);
    assert!(matches!(
        store.create_report(&r).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store.report(uuid::Uuid::now_v7()).await,
        Err(Error::NotFound(_))
    ));
}

/// Due reports are claimed once each, running with one more attempt until
/// the lease; a lapsed lease lets another worker take the report over;
/// concurrent claims split the reports exactly once.
pub async fn reports_claimed_once_under_lease<S: ReportStore + ?Sized>(store: &S) {
    let early: Vec<Report> = (0..3).map(report).collect();
    let mut later = report(3);
    later.due_at = at(50);
    for r in early.iter().chain([&later]) {
        store.create_report(r).await.unwrap();
    }
    let claimed = store.claim_reports(at(10), at(20), 10).await.unwrap();
    let ids: Vec<_> = claimed.iter().map(|r| r.id).collect();
    assert_eq!(ids, early.iter().map(|r| r.id).collect::<Vec<_>>());
    for r in &claimed {
        assert_eq!(
            (r.status, r.attempts, r.due_at, r.updated_at),
            (ReportStatus::Running, 1, at(20), at(10))
        );
    }
    assert!(
        store
            .claim_reports(at(15), at(25), 10)
            .await
            .unwrap()
            .is_empty(),
        "a running report is not claimed while its lease holds"
    );
    let again = store.claim_reports(at(20), at(30), 2).await.unwrap();
    assert_eq!(again.len(), 2, "the limit holds");
    assert!(again.iter().all(|r| r.attempts == 2));
    assert_eq!(
        store.report(later.id).await.unwrap().status,
        ReportStatus::Pending
    );

    let many: Vec<Report> = (100..140).map(report).collect();
    for r in &many {
        store.create_report(r).await.unwrap();
    }
    let store: &S = store;
    let batches =
        futures::future::join_all((0..4).map(|_| store.claim_reports(at(200), at(300), 15))).await;
    let mut seen = HashSet::new();
    for b in batches {
        for r in b.unwrap() {
            assert!(seen.insert(r.id), "report {} claimed twice", r.id);
        }
    }
    let expected: HashSet<_> = many
        .iter()
        .map(|r| r.id)
        .chain(early.iter().map(|r| r.id))
        .chain([later.id])
        .collect();
    assert_eq!(seen, expected, "every due report claimed exactly once");
}

/// Only the worker holding the current attempt can save an outcome; a
/// failed attempt is pending again after its back-off.
pub async fn report_updates_are_fenced<S: ReportStore + ?Sized>(store: &S) {
    let r = report(0);
    store.create_report(&r).await.unwrap();
    let first = store
        .claim_reports(at(1), at(2), 1)
        .await
        .unwrap()
        .remove(0);
    let mut second = store
        .claim_reports(at(3), at(4), 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!((first.attempts, second.attempts), (1, 2));
    let mut stale = first.clone();
    stale.complete(1, at(3));
    assert!(matches!(
        store.update_report(&stale).await,
        Err(Error::Conflict(_))
    ));
    assert!(!second.fail("disk full", Duration::seconds(30), at(3)));
    store.update_report(&second).await.unwrap();
    let stored = store.report(r.id).await.unwrap();
    assert_eq!(
        (stored.status, stored.error.as_deref(), stored.due_at),
        (
            ReportStatus::Pending,
            Some("disk full"),
            at(3) + Duration::seconds(120)
        )
    );
    assert!(
        store
            .claim_reports(at(4), at(10), 1)
            .await
            .unwrap()
            .is_empty(),
        "not before its back-off"
    );
    let mut third = store
        .claim_reports(at(5), at(10), 1)
        .await
        .unwrap()
        .remove(0);
    third.complete(42, at(6));
    store.update_report(&third).await.unwrap();
    let done = store.report(r.id).await.unwrap();
    assert_eq!(
        (done.status, done.rows, done.error, done.finished_at),
        (ReportStatus::Completed, Some(42), None, Some(at(6)))
    );
    assert!(
        matches!(store.update_report(&third).await, Err(Error::Conflict(_))),
        "a finished report takes no second outcome"
    );
    assert!(
        store
            .claim_reports(at(100), at(200), 5)
            .await
            .unwrap()
            .is_empty()
    );
    let mut ghost = third.clone();
    ghost.id = uuid::Uuid::now_v7();
    assert!(matches!(
        store.update_report(&ghost).await,
        Err(Error::NotFound(_))
    ));
}

/// Purge takes finished reports last changed before the cut-off, within
/// the limit, and returns their ids; pending ones stay.
pub async fn reports_purged_when_finished<S: ReportStore + ?Sized>(store: &S) {
    let mut finished = Vec::new();
    for minute in 0..3 {
        let r = report(minute);
        store.create_report(&r).await.unwrap();
        let mut c = store
            .claim_reports(at(minute), at(minute + 1), 1)
            .await
            .unwrap()
            .remove(0);
        if minute == 1 {
            c.attempts = 3;
            c.fail("gave up", Duration::seconds(30), at(minute));
            c.attempts = 1;
        } else {
            c.complete(1, at(minute));
        }
        store.update_report(&c).await.unwrap();
        finished.push(r.id);
    }
    let pending = report(0);
    store.create_report(&pending).await.unwrap();
    assert_eq!(
        store.report(finished[1]).await.unwrap().status,
        ReportStatus::Failed
    );

    let first = store.purge_reports(at(2), 1).await.unwrap();
    assert_eq!(first.len(), 1, "the limit holds");
    let second = store.purge_reports(at(2), 10).await.unwrap();
    let gone: HashSet<_> = first.into_iter().chain(second).collect();
    assert_eq!(gone, finished[..2].iter().copied().collect());
    assert!(
        store.report(finished[2]).await.is_ok(),
        "newer than the cut-off"
    );
    assert!(
        store.report(pending.id).await.is_ok(),
        "pending reports stay"
    );
    assert!(matches!(
        store.report(finished[0]).await,
        Err(Error::NotFound(_))
    ));
}

/// Alerts are counted by creation hour × type × severity × tag (once under
/// each tag, `None` without), with occurrences summed, over what the viewer
/// sees, unexpired, within the filter; dismissed alerts count.
pub async fn alert_counts_group_by_hour_type_severity_tag<S: AlertStore + ReportStore + ?Sized>(
    store: &S,
) {
    let put = |new: NewAlert, minute: i64| async move {
        let a = alert(new, at(minute));
        store
            .insert_or_dedup(a, &[], at(minute))
            .await
            .unwrap()
            .alert
    };
    let mine = || NewAlert::new("disk", Severity::High, "x").audience(Audience::user("alice"));
    put(mine().tags(["db", "eu"]), 5).await;
    put(mine().tags(["db"]).dedup_key("k"), 10).await;
    put(mine().tags(["db"]).dedup_key("k"), 20).await; // merges: occurrences 2
    let dismissed = put(mine(), 30).await;
    store.dismiss(&alice(), dismissed.id, at(31)).await.unwrap();
    put(mine().tags(["db"]), 65).await; // next hour
    put(mine().tags(["db"]).expires_at(at(100)), 40).await; // expired at "now"
    put(
        NewAlert::new("cpu", Severity::Low, "y")
            .tags(["db"])
            .audience(Audience::group("sales")),
        50,
    )
    .await; // not alice's
    put(mine().tags(["db"]), 700).await; // outside the window

    let window = request(ReportKind::Alerts);
    let all = ReportFilter::default().to_alert_filter(window.from, window.to);
    let rows = store.alert_counts(&alice(), &all, at(200)).await.unwrap();
    let got: Vec<_> = rows
        .iter()
        .map(|c| {
            (
                c.hour,
                c.alert_type.as_str(),
                c.severity,
                c.tag.as_deref(),
                c.alerts,
                c.occurrences,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (at(0), "disk", Severity::High, None, 1, 1),
            (at(0), "disk", Severity::High, Some("db"), 2, 3),
            (at(0), "disk", Severity::High, Some("eu"), 1, 1),
            (at(60), "disk", Severity::High, Some("db"), 1, 1),
        ]
    );

    let admin = store.alert_counts(&root(), &all, at(200)).await.unwrap();
    assert!(
        admin
            .iter()
            .any(|c| c.alert_type == "cpu" && c.tag.as_deref() == Some("db") && c.alerts == 1),
        "a viewer who sees all counts every audience: {admin:?}"
    );
    let only_eu = ReportFilter {
        tags: vec!["eu".into()],
        ..Default::default()
    }
    .to_alert_filter(window.from, window.to);
    let eu = store
        .alert_counts(&alice(), &only_eu, at(200))
        .await
        .unwrap();
    assert_eq!(
        eu.iter()
            .map(|c| (c.tag.as_deref(), c.alerts))
            .collect::<Vec<_>>(),
        [(Some("db"), 1), (Some("eu"), 1)],
        "the filter picks alerts; an alert counts under each of its tags"
    );
}

/// Deliveries created in the window are counted by channel × status, with
/// attempts summed.
pub async fn delivery_counts_by_channel_and_status<
    S: AlertStore + Outbox + ReportStore + ?Sized,
>(
    store: &S,
) {
    let raise = |minute: i64, list: Vec<(&'static str, Channel)>| async move {
        let a = alert(
            NewAlert::new("disk", Severity::High, "x").audience(Audience::everyone()),
            at(minute),
        );
        store
            .insert_or_dedup(a, &targets(&list), at(minute))
            .await
            .unwrap()
    };
    raise(1, vec![("alice", Channel::Email), ("bob", Channel::Email)]).await;
    raise(2, vec![("alice", Channel::Slack)]).await;
    raise(900, vec![("carol", Channel::Email)]).await; // outside the window
    let claimed = store
        .claim_deliveries(at(3), Duration::minutes(1), 10)
        .await
        .unwrap();
    for c in claimed.iter().filter(|c| c.delivery.created_at < at(600)) {
        let outcome = match (c.delivery.channel, c.delivery.user_id.as_str()) {
            (Channel::Email, "alice") => DeliveryOutcome::Sent,
            _ => DeliveryOutcome::Dead {
                error: "refused".into(),
            },
        };
        store
            .complete_delivery(c.delivery.id, c.delivery.attempts, outcome, at(4))
            .await
            .unwrap();
    }
    let got: Vec<_> = store
        .delivery_counts(at(0), at(600))
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.channel, d.status, d.deliveries, d.attempts))
        .collect();
    assert_eq!(
        got,
        vec![
            (Channel::Email, DeliveryStatus::Dead, 1, 1),
            (Channel::Email, DeliveryStatus::Sent, 1, 1),
            (Channel::Slack, DeliveryStatus::Dead, 1, 1),
        ]
    );
    assert!(
        store
            .delivery_counts(at(600), at(601))
            .await
            .unwrap()
            .is_empty()
    );
}
