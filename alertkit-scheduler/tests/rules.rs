//! Rules evaluated on the manual clock: a threshold rule with `for: 3`, an
//! SLA rule escalating in place and resolving on close, and the workload
//! rule reaching the assignee and the managers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use alertkit_core::{
    AlertFilter, AlertKit, AlertQuery, AlertStatus, AlertView, Audience, DeadlineItem,
    DeadlineSource, ErrorKind, ManualClock, MetricSource, NewAlert, NewRule, Principal, Result,
    RuleEvaluator, RuleKind, Sample, Severity,
};
use alertkit_storage::MemoryAlertStore;
use alertkit_transport::LocalBroadcaster;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[derive(Default)]
struct Metrics(Mutex<Vec<Sample>>);

impl Metrics {
    fn set(&self, samples: Vec<Sample>) {
        *self.0.lock().unwrap() = samples;
    }
}

#[async_trait::async_trait]
impl MetricSource for Metrics {
    async fn samples(&self, metric: &str) -> Result<Vec<Sample>> {
        Ok(if metric == "open_items" {
            self.0.lock().unwrap().clone()
        } else {
            vec![]
        })
    }
}

#[derive(Default)]
struct Tickets(Mutex<Vec<DeadlineItem>>);

#[async_trait::async_trait]
impl DeadlineSource for Tickets {
    async fn items(&self) -> Result<Vec<DeadlineItem>> {
        Ok(self.0.lock().unwrap().clone())
    }
}

struct Setup {
    kit: AlertKit,
    clock: Arc<ManualClock>,
    metrics: Arc<Metrics>,
    tickets: Arc<Tickets>,
    eval: RuleEvaluator,
    admin: Principal,
}

fn setup() -> Setup {
    let clock = Arc::new(ManualClock::new(utc("2026-06-01T09:00:00Z")));
    let kit = AlertKit::builder()
        .store(Arc::new(MemoryAlertStore::new()))
        .clock(clock.clone())
        .broadcaster(Arc::new(LocalBroadcaster::new()))
        .build()
        .unwrap();
    let metrics = Arc::new(Metrics::default());
    let tickets = Arc::new(Tickets::default());
    let eval = RuleEvaluator::new(kit.clone())
        .metrics(metrics.clone())
        .deadlines(tickets.clone());
    Setup {
        kit,
        clock,
        metrics,
        tickets,
        eval,
        admin: Principal::admin("admin"),
    }
}

impl Setup {
    async fn alerts(&self, who: &Principal, alert_type: &str) -> Vec<AlertView> {
        let q = AlertQuery {
            filter: AlertFilter {
                alert_types: vec![alert_type.into()],
                ..Default::default()
            },
            ..Default::default()
        };
        self.kit.list(who, &q).await.unwrap().alerts
    }
}

fn workload_rule(for_evaluations: u32) -> NewRule {
    NewRule {
        name: "workload".into(),
        kind: RuleKind::Threshold,
        enabled: true,
        conditions: json!({
            "metric": "open_items", "op": ">", "value": 10,
            "for_evaluations": for_evaluations,
            "audience": ["user:{assignee}", "group:managers"]
        }),
        template: NewAlert::new(
            "workload_high",
            Severity::Medium,
            "{assignee} has {value} open items (over {threshold})",
        )
        .audience(Audience::group("managers")),
        for_secs: 0,
        cooldown_secs: 0,
    }
}

#[tokio::test]
async fn a_threshold_with_for_3_fires_after_three_breaches_stays_one_alert_and_resolves() {
    let s = setup();
    s.kit.create_rule(&s.admin, workload_rule(3)).await.unwrap();
    s.metrics
        .set(vec![Sample::new([("assignee", "bob")], 12.0)]);
    for i in 1..=2 {
        let e = s.eval.evaluate(RuleKind::Threshold).await.unwrap();
        assert_eq!((e.rules, e.raised), (1, 0), "evaluation {i}: not yet");
        s.clock.advance(Duration::minutes(1));
    }
    assert!(s.alerts(&s.admin, "workload_high").await.is_empty());
    let e = s.eval.evaluate(RuleKind::Threshold).await.unwrap();
    assert_eq!(e.raised, 1, "the third breach fires");
    for _ in 0..3 {
        s.clock.advance(Duration::minutes(1));
        s.metrics
            .set(vec![Sample::new([("assignee", "bob")], 13.0)]);
        s.eval.evaluate(RuleKind::Threshold).await.unwrap();
    }
    let alerts = s.alerts(&s.admin, "workload_high").await;
    assert_eq!(alerts.len(), 1, "one alert while breached");
    assert_eq!(alerts[0].alert.status, AlertStatus::Active);
    // Each breaching evaluation refreshes it (no cooldown set): the latest value.
    assert_eq!(alerts[0].alert.title, "bob has 13 open items (over 10)");
    assert_eq!(alerts[0].alert.occurrences, 4);
    // Below again: resolved.
    s.metrics.set(vec![Sample::new([("assignee", "bob")], 4.0)]);
    let e = s.eval.evaluate(RuleKind::Threshold).await.unwrap();
    assert_eq!(e.resolved, 1);
    let alerts = s.alerts(&s.admin, "workload_high").await;
    assert_eq!(alerts[0].alert.status, AlertStatus::Resolved);
    // A single breach after that does not fire (the count starts again).
    s.metrics
        .set(vec![Sample::new([("assignee", "bob")], 11.0)]);
    assert_eq!(
        s.eval.evaluate(RuleKind::Threshold).await.unwrap().raised,
        0
    );
}

#[tokio::test]
async fn workload_reaches_the_assignee_and_the_managers_only() {
    let s = setup();
    s.kit.create_rule(&s.admin, workload_rule(1)).await.unwrap();
    s.metrics.set(vec![
        Sample::new([("assignee", "bob")], 12.0),
        Sample::new([("assignee", "carol")], 3.0),
    ]);
    let e = s.eval.evaluate(RuleKind::Threshold).await.unwrap();
    assert_eq!(e.raised, 1);
    let bob = Principal::user("bob");
    let carol = Principal::user("carol");
    let manager = Principal::user("mia").with_groups(["managers"]);
    assert_eq!(s.alerts(&bob, "workload_high").await.len(), 1);
    assert_eq!(s.alerts(&manager, "workload_high").await.len(), 1);
    assert!(s.alerts(&carol, "workload_high").await.is_empty());
    // Bob's label set disappears from the metric: resolved.
    s.metrics
        .set(vec![Sample::new([("assignee", "carol")], 3.0)]);
    assert_eq!(
        s.eval.evaluate(RuleKind::Threshold).await.unwrap().resolved,
        1
    );
}

#[tokio::test]
async fn an_sla_alert_is_at_risk_then_breached_in_place_then_resolved_on_close() {
    let s = setup();
    s.kit
        .create_rule(
            &s.admin,
            NewRule {
                name: "ticket sla".into(),
                kind: RuleKind::Sla,
                enabled: true,
                conditions: json!({"at_risk_secs": 3600, "audience": ["user:{assignee}", "group:managers"]}),
                template: NewAlert::new("sla_breach", Severity::High, "SLA")
                    .message("Ticket {item} is due {deadline}"),
                for_secs: 0,
                cooldown_secs: 0,
            },
        )
        .await
        .unwrap();
    let ticket = |closed| DeadlineItem {
        id: "T-42".into(),
        title: "Refund for order 7".into(),
        deadline: utc("2026-06-01T11:00:00Z"),
        assignee: Some("bob".into()),
        closed,
    };
    *s.tickets.0.lock().unwrap() = vec![ticket(false)];
    // Two hours left: nothing.
    assert_eq!(s.eval.evaluate(RuleKind::Sla).await.unwrap().raised, 0);
    // 30 minutes left: at risk, high.
    s.clock.set(utc("2026-06-01T10:30:00Z"));
    s.eval.evaluate(RuleKind::Sla).await.unwrap();
    let bob = Principal::user("bob");
    let at_risk = s.alerts(&bob, "sla_breach").await;
    assert_eq!(at_risk.len(), 1);
    assert_eq!(at_risk[0].alert.severity, Severity::High);
    assert_eq!(at_risk[0].alert.title, "SLA at risk: Refund for order 7");
    assert!(at_risk[0].alert.message.contains("T-42"));
    // Past the deadline: the same alert, escalated to critical.
    s.clock.set(utc("2026-06-01T11:05:00Z"));
    s.eval.evaluate(RuleKind::Sla).await.unwrap();
    let breached = s.alerts(&bob, "sla_breach").await;
    assert_eq!(breached.len(), 1, "escalated in place");
    assert_eq!(breached[0].alert.id, at_risk[0].alert.id);
    assert_eq!(breached[0].alert.severity, Severity::Critical);
    assert_eq!(breached[0].alert.title, "SLA breached: Refund for order 7");
    let manager = Principal::user("mia").with_groups(["managers"]);
    assert_eq!(s.alerts(&manager, "sla_breach").await.len(), 1);
    // Closed: resolved.
    *s.tickets.0.lock().unwrap() = vec![ticket(true)];
    let e = s.eval.evaluate(RuleKind::Sla).await.unwrap();
    assert_eq!(e.resolved, 1);
    let done = s.alerts(&bob, "sla_breach").await;
    assert_eq!(done[0].alert.status, AlertStatus::Resolved);
}

#[tokio::test]
async fn bad_conditions_are_refused_when_the_rule_is_saved() {
    let s = setup();
    for conditions in [
        json!({"metric": "x", "op": "~", "value": 1}),
        json!({"metric": "x", "op": ">"}),
        json!({"metric": "", "op": ">", "value": 1}),
        json!({"metric": "x", "op": ">", "value": 1, "surprise": true}),
    ] {
        let mut rule = workload_rule(1);
        rule.conditions = conditions.clone();
        let e = s.kit.create_rule(&s.admin, rule).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{conditions}");
    }
    let mut sla = workload_rule(1);
    sla.kind = RuleKind::Sla;
    sla.conditions = json!({"at_risk_secs": "soon"});
    assert_eq!(
        s.kit.create_rule(&s.admin, sla).await.unwrap_err().kind(),
        ErrorKind::Invalid
    );
}

#[tokio::test]
async fn a_cooldown_spaces_the_refreshes_of_a_firing_alert() {
    let s = setup();
    let mut rule = workload_rule(1);
    rule.cooldown_secs = 600;
    s.kit.create_rule(&s.admin, rule).await.unwrap();
    s.metrics
        .set(vec![Sample::new([("assignee", "bob")], 12.0)]);
    for _ in 0..5 {
        s.eval.evaluate(RuleKind::Threshold).await.unwrap();
        s.clock.advance(Duration::minutes(1));
    }
    let alerts = s.alerts(&s.admin, "workload_high").await;
    assert_eq!(alerts[0].alert.occurrences, 1, "within the cooldown");
    s.clock.advance(Duration::minutes(6));
    s.eval.evaluate(RuleKind::Threshold).await.unwrap();
    let alerts = s.alerts(&s.admin, "workload_high").await;
    assert_eq!(alerts[0].alert.occurrences, 2, "after it");
}

#[tokio::test]
async fn the_builtin_jobs_evaluate_rules_and_report_what_could_not_be() {
    use alertkit_core::{JobStore, RunStatus, Scheduler};
    let s = setup();
    s.kit.create_rule(&s.admin, workload_rule(1)).await.unwrap();
    s.metrics
        .set(vec![Sample::new([("assignee", "bob")], 12.0)]);
    let store = Arc::new(MemoryAlertStore::new());
    let sched = alertkit_scheduler::CronScheduler::builder(store.clone())
        .clock(s.clock.clone())
        .build();
    let eval = Arc::new(RuleEvaluator::new(s.kit.clone()).metrics(s.metrics.clone()));
    let options = alertkit_scheduler::Builtin {
        timezone: Some("Europe/Berlin".into()),
        evaluator: Some(eval),
        summary_groups: vec!["planners".into()],
        managers: None,
        rules_every_secs: None,
    };
    alertkit_scheduler::register_builtin(&sched, &s.kit, options)
        .await
        .unwrap();
    let ids: Vec<String> = sched
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.spec.id)
        .collect();
    assert_eq!(ids, ["daily_summary", "retention", "rules", "sla_watch"]);
    sched.trigger("rules").await.unwrap();
    sched.idle().await;
    assert_eq!(s.alerts(&s.admin, "workload_high").await.len(), 1);
    assert_eq!(
        store.job_runs("rules", 1).await.unwrap()[0].status,
        RunStatus::Succeeded
    );
    // An SLA rule with no deadline source configured: the run fails and says why.
    let mut sla = workload_rule(1);
    sla.name = "sla".into();
    sla.kind = RuleKind::Sla;
    sla.conditions = json!({});
    s.kit.create_rule(&s.admin, sla).await.unwrap();
    sched.trigger("sla_watch").await.unwrap();
    sched.idle().await;
    let run = store.job_runs("sla_watch", 1).await.unwrap().remove(0);
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run.error.unwrap().contains("no deadline source"));
}

#[tokio::test]
async fn the_daily_summary_counts_each_groups_day_for_the_managers() {
    use alertkit_core::{Job, JobContext};
    use alertkit_scheduler::builtin::DailySummaryJob;
    let s = setup(); // 2026-06-01T09:00Z
    let raise = |sev, title: &str, group: &str| {
        NewAlert::new("capacity_warning", sev, title).audience(Audience::group(group))
    };
    // The day before does not count.
    s.clock.set(utc("2026-05-31T23:00:00Z"));
    s.kit
        .raise(&s.admin, raise(Severity::Critical, "yesterday", "planners"))
        .await
        .unwrap();
    s.clock.set(utc("2026-06-01T09:00:00Z"));
    for (sev, t) in [
        (Severity::High, "a"),
        (Severity::High, "b"),
        (Severity::Critical, "c"),
    ] {
        s.kit
            .raise(&s.admin, raise(sev, t, "planners"))
            .await
            .unwrap();
    }
    s.kit
        .raise(&s.admin, raise(Severity::Low, "ops only", "ops"))
        .await
        .unwrap();
    let job = DailySummaryJob::new(
        s.kit.clone(),
        vec!["planners".into(), "support".into()],
        Audience::group("managers"),
    );
    let midnight = utc("2026-06-02T00:00:00Z");
    s.clock.set(midnight);
    for _ in 0..2 {
        job.run(JobContext {
            job_id: "daily_summary".into(),
            scheduled_at: midnight,
        })
        .await
        .unwrap();
    }
    let manager = Principal::user("mia").with_groups(["managers"]);
    let sums = s.alerts(&manager, "daily_summary").await;
    assert_eq!(
        sums.len(),
        1,
        "one for planners, none for support's empty day, once"
    );
    assert_eq!(
        sums[0].alert.title,
        "Daily summary for planners, 2026-06-01: 3 alerts (1 critical, 2 high)"
    );
    assert!(sums[0].alert.message.contains("capacity_warning: 3"));
    assert!(
        s.alerts(
            &Principal::user("pat").with_groups(["planners"]),
            "daily_summary"
        )
        .await
        .is_empty(),
        "for the managers only"
    );
}
