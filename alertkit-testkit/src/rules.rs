//! Conformance cases for the store role of this name. Each takes a fresh,
//! empty store.

use alertkit_core::rule::ANY_ALERT_TYPE;
use alertkit_core::{
    AlertRule, Channel, Error, NewAlert, Recipient, RuleKind, RuleStore, Severity, Subscription,
};
use serde_json::json;

use crate::fixtures::{at, t0};

fn rule(name: &str) -> AlertRule {
    let now = t0();
    AlertRule {
        id: uuid::Uuid::now_v7(),
        name: name.into(),
        kind: RuleKind::Threshold,
        enabled: true,
        conditions: json!({"metric": "queue_depth", "op": ">", "value": 100}),
        template: NewAlert::new("high_workload", Severity::High, "Queue {value}"),
        for_secs: 300,
        cooldown_secs: 900,
        created_at: now,
        updated_at: now,
    }
}

/// Rules: create, unique names, get, list by name, update, delete.
pub async fn rules_crud(store: &dyn RuleStore) {
    let b = store.create_rule(rule("b-queue")).await.unwrap();
    let a = store.create_rule(rule("a-sla")).await.unwrap();
    assert!(matches!(
        store.create_rule(rule("a-sla")).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(store.get_rule(b.id).await.unwrap(), b);
    let names: Vec<_> = store
        .list_rules()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["a-sla", "b-queue"]);

    let mut changed = b.clone();
    changed.enabled = false;
    changed.conditions = json!({"metric": "queue_depth", "op": ">", "value": 500});
    changed.updated_at = at(5);
    assert_eq!(store.update_rule(changed.clone()).await.unwrap(), changed);
    assert_eq!(store.get_rule(b.id).await.unwrap(), changed);
    let mut clash = changed.clone();
    clash.name = "a-sla".into();
    assert!(matches!(
        store.update_rule(clash).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store.update_rule(rule("ghost")).await,
        Err(Error::NotFound(_))
    ));

    store.delete_rule(a.id).await.unwrap();
    assert!(matches!(
        store.get_rule(a.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.delete_rule(a.id).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(store.list_rules().await.unwrap().len(), 1);
}

/// Subscriptions: replace a user's set; match by type (or `*`), severity, enabled.
pub async fn subscriptions_replace_and_match(store: &dyn RuleStore) {
    let mut email_high =
        Subscription::new("alice", "sla_breached", [Channel::Email, Channel::InApp]);
    email_high.min_severity = Severity::High;
    let any = Subscription::new("bob", ANY_ALERT_TYPE, [Channel::Slack]);
    let mut off = Subscription::new("carol", "sla_breached", [Channel::Webhook]);
    off.enabled = false;
    store
        .set_subscriptions("alice", vec![email_high.clone()])
        .await
        .unwrap();
    store
        .set_subscriptions("bob", vec![any.clone()])
        .await
        .unwrap();
    store.set_subscriptions("carol", vec![off]).await.unwrap();
    assert_eq!(
        store.subscriptions("alice").await.unwrap(),
        vec![email_high.clone()]
    );
    assert!(store.subscriptions("nobody").await.unwrap().is_empty());

    let users = |subs: Vec<Subscription>| {
        let mut u: Vec<String> = subs.into_iter().map(|s| s.user_id).collect();
        u.sort();
        u
    };
    assert_eq!(
        users(
            store
                .subscribers("sla_breached", Severity::Critical)
                .await
                .unwrap()
        ),
        ["alice", "bob"]
    );
    assert_eq!(
        users(
            store
                .subscribers("sla_breached", Severity::Medium)
                .await
                .unwrap()
        ),
        ["bob"]
    );
    assert_eq!(
        users(store.subscribers("other", Severity::Info).await.unwrap()),
        ["bob"]
    );

    // Replacing drops what is not in the new set.
    let digest = Subscription {
        digest: Some(alertkit_core::Digest::Daily),
        ..Subscription::new("alice", "capacity_warning", [Channel::Email])
    };
    store
        .set_subscriptions("alice", vec![digest.clone()])
        .await
        .unwrap();
    assert_eq!(store.subscriptions("alice").await.unwrap(), vec![digest]);
    assert_eq!(
        users(
            store
                .subscribers("sla_breached", Severity::Critical)
                .await
                .unwrap()
        ),
        ["bob"]
    );
    store.set_subscriptions("alice", vec![]).await.unwrap();
    assert!(store.subscriptions("alice").await.unwrap().is_empty());
}

/// Contact details are per user, replaced whole, and read back exactly
/// (hostile strings are data).
pub async fn contacts_set_replace_and_read(store: &dyn RuleStore) {
    assert_eq!(store.contact("alice").await.unwrap(), None);
    let alice = Recipient {
        user_id: "alice".into(),
        email: Some("alice@example.test".into()),
        slack_id: Some("U123".into()),
        webhook_url: Some("https://hooks.example.test/a?x=1&y='; DROP TABLE contacts;--".into()),
        time_zone: Some("Asia/Ho_Chi_Minh".into()),
    };
    store.set_contact(alice.clone()).await.unwrap();
    let bob = Recipient {
        user_id: "bob".into(),
        email: Some("bob@example.test".into()),
        ..Default::default()
    };
    store.set_contact(bob.clone()).await.unwrap();
    assert_eq!(store.contact("alice").await.unwrap(), Some(alice));
    let replaced = Recipient {
        user_id: "alice".into(),
        email: None,
        slack_id: Some("$where".into()),
        webhook_url: None,
        time_zone: None,
    };
    store.set_contact(replaced.clone()).await.unwrap();
    assert_eq!(store.contact("alice").await.unwrap(), Some(replaced));
    assert_eq!(store.contact("bob").await.unwrap(), Some(bob));
    assert_eq!(store.contact("carol").await.unwrap(), None);
}

/// Team routes are stored whole, replaced by id, listed oldest first and
/// deleted once.
pub async fn routes_put_list_replace_delete(store: &dyn RuleStore) {
    use alertkit_core::{Destination, NewRoute, Route};
    assert!(store.routes().await.unwrap().is_empty());
    let mk = |name: &str, min: i64, destination: Destination| Route {
        id: uuid::Uuid::now_v7(),
        spec: NewRoute {
            name: name.into(),
            enabled: true,
            alert_types: vec!["capacity_warning".into()],
            min_severity: Severity::High,
            tags: vec!["VCH20".into(), "$where".into()],
            destination,
        },
        created_at: crate::fixtures::at(min),
        updated_at: crate::fixtures::at(min),
    };
    let slack = mk(
        "ops slack",
        1,
        Destination::Slack {
            webhook_url: "https://hooks.slack.test/T/B/X".into(),
        },
    );
    let mail = mk(
        "planners' mail",
        2,
        Destination::Email {
            addresses: vec!["a@x.test".into(), "b@x.test".into()],
        },
    );
    store.put_route(mail.clone()).await.unwrap();
    store.put_route(slack.clone()).await.unwrap();
    assert_eq!(
        store.routes().await.unwrap(),
        vec![slack.clone(), mail.clone()]
    );
    let mut changed = mail.clone();
    changed.spec.enabled = false;
    changed.spec.destination = Destination::Webhook {
        url: "https://hooks.test/w".into(),
    };
    store.put_route(changed.clone()).await.unwrap();
    assert_eq!(store.routes().await.unwrap(), vec![slack.clone(), changed]);
    store.delete_route(mail.id).await.unwrap();
    assert!(matches!(
        store.delete_route(mail.id).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(store.routes().await.unwrap(), vec![slack]);
}
