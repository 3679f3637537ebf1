//! Authorization, as a property: random principals (users, groups,
//! permissions) × random audiences × every operation, on memory, SQLite
//! and PostgreSQL. No alert is ever returned, counted, pushed, replayed or
//! changed outside what the principal may see or do.
#![cfg(all(feature = "axum", feature = "jwt"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use alertkit_core::{
    Alert, AlertFilter, AlertKit, AlertQuery, Audience, ErrorKind, NewAlert, Permission, Principal,
    Severity, Store, Target,
};
use alertkit_storage::{MemoryAlertStore, PostgresAlertStore, SqliteAlertStore};
use alertkit_testkit::services::service_url;
use alertkit_transport::LocalBroadcaster;
use alertkit_transport::ws::hub::{WsConfig, WsHub};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const USERS: usize = 3;
const GROUPS: usize = 2;

/// One generated world: principals and the alerts raised before the checks.
#[derive(Debug, Clone)]
struct World {
    /// Per user: groups (bit set) and permissions (bit set: read, create,
    /// manage, broadcast).
    users: Vec<(u8, u8)>,
    /// Per alert: audience targets (0..3 users, 3..5 groups, 5 everyone),
    /// raiser (a user index, or None for the system), dedup key.
    alerts: Vec<(Vec<u8>, Option<usize>, Option<u8>)>,
    /// Which user tries a raise with an existing key, and which alert's.
    hijack: (usize, usize),
}

fn world() -> impl Strategy<Value = World> {
    let users = proptest::collection::vec((0u8..4, 0u8..16), USERS);
    let alert = (
        proptest::collection::vec(0u8..6, 1..3),
        proptest::option::of(0usize..USERS),
        proptest::option::of(0u8..2),
    );
    let alerts = proptest::collection::vec(alert, 1..7);
    (users, alerts, (0usize..USERS, 0usize..16)).prop_map(|(users, alerts, hijack)| World {
        users,
        alerts,
        hijack,
    })
}

const PERMS: [Permission; 4] = [
    Permission::AlertsRead,
    Permission::AlertsCreate,
    Permission::AlertsManage,
    Permission::AlertsBroadcast,
];

struct Case {
    principals: Vec<Principal>,
    /// Namespacing, so that cases sharing one store never see each other's
    /// users or groups (alerts for everyone are visible to all, as they should).
    ns: String,
}

impl Case {
    fn new(w: &World) -> Self {
        let ns = format!("c{}", uuid::Uuid::now_v7().simple());
        let principals = w
            .users
            .iter()
            .enumerate()
            .map(|(i, (groups, perms))| {
                let mut p = Principal::user(format!("{ns}u{i}"));
                p.permissions = PERMS
                    .iter()
                    .enumerate()
                    .filter(|(b, _)| perms & (1 << b) != 0)
                    .map(|(_, p)| *p)
                    .collect();
                p.groups = (0..GROUPS)
                    .filter(|g| groups & (1 << g) != 0)
                    .map(|g| format!("{ns}g{g}"))
                    .collect();
                p
            })
            .collect();
        Case { principals, ns }
    }

    fn audience(&self, targets: &[u8]) -> Audience {
        Audience::from_targets(targets.iter().map(|t| match *t as usize {
            t if t < USERS => Target::user(format!("{}u{t}", self.ns)),
            t if t < USERS + GROUPS => Target::group(format!("{}g{}", self.ns, t - USERS)),
            _ => Target::Everyone,
        }))
    }
}

/// The rule, written independently of the engine.
fn may_see(p: &Principal, a: &Alert) -> bool {
    p.can(Permission::AlertsManage)
        || a.audience.targets().iter().any(|t| match t {
            Target::Everyone => true,
            Target::User(u) => *u == p.user_id,
            Target::Group(g) => p.groups.contains(g),
        })
}

fn may_read(p: &Principal, a: &Alert) -> bool {
    p.can(Permission::AlertsRead) && may_see(p, a)
}

async fn check(kit: &AlertKit, hub: &WsHub, w: &World) {
    let case = Case::new(w);
    let system = Principal::system();
    let mut stored: Vec<Alert> = Vec::new();
    for (targets, raiser, key) in &w.alerts {
        let mut n = NewAlert::new("prop", Severity::Medium, "t")
            .audience(case.audience(targets))
            .tags([case.ns.clone()]);
        if let Some(k) = key {
            n = n.dedup_key(format!("{}k{k}", case.ns));
        }
        let by = match raiser {
            // Raisers get what raising for this audience needs.
            Some(i) => case.principals[*i]
                .clone()
                .with_permissions([Permission::AlertsCreate, Permission::AlertsBroadcast]),
            None => system.clone(),
        };
        let r = kit.raise(&by, n).await.unwrap();
        stored.retain(|a| a.id != r.alert.id);
        stored.push(r.alert);
    }
    // Live: each principal's WebSocket session, attached now.
    let mut sessions = Vec::new();
    for p in &case.principals {
        if p.can(Permission::AlertsRead) {
            sessions.push((p.clone(), hub.attach(p.clone()).await));
        }
    }

    for p in &case.principals {
        let mine: BTreeSet<_> = stored
            .iter()
            .filter(|a| may_read(p, a))
            .map(|a| a.id)
            .collect();
        for a in &stored {
            // get, mark-read, dismiss: allowed exactly when readable.
            let got = kit.get(p, a.id).await;
            assert_eq!(got.is_ok(), may_read(p, a), "get {:?} by {p:?}", a.audience);
            if let Err(e) = got {
                let kind = e.kind();
                assert!(kind == ErrorKind::NotFound || kind == ErrorKind::Forbidden);
            }
            assert_eq!(kit.mark_read(p, a.id).await.is_ok(), may_read(p, a));
            assert_eq!(kit.dismiss(p, a.id).await.is_ok(), may_read(p, a));
        }
        // list, count, stats: never outside what the principal may see.
        if let Ok(page) = kit
            .list(p, &AlertQuery::default().limit(200).after(None))
            .await
        {
            for v in &page.alerts {
                assert!(
                    may_see(p, &v.alert),
                    "{} listed {:?}",
                    p.user_id,
                    v.alert.audience
                );
            }
            let listed: BTreeSet<_> = page.alerts.iter().map(|v| v.alert.id).collect();
            // This case's alerts only (cases share the store).
            let filter = AlertFilter {
                include_dismissed: true,
                tags: vec![case.ns.clone()],
                ..Default::default()
            };
            let all = kit
                .list(p, &AlertQuery::filtered(filter.clone()).limit(200))
                .await
                .unwrap();
            let ours: BTreeSet<_> = all.alerts.iter().map(|v| v.alert.id).collect();
            assert_eq!(ours, mine, "{} lists exactly what it may read", p.user_id);
            assert_eq!(all.total, mine.len() as u64);
            let stats = kit.stats(p, &filter).await.unwrap();
            assert_eq!(
                stats.total,
                mine.len() as u64,
                "stats count only the visible"
            );
            assert!(
                listed
                    .iter()
                    .all(|id| !stored.iter().any(|a| a.id == *id) || mine.contains(id))
            );
        } else {
            assert!(!p.can(Permission::AlertsRead));
            assert!(kit.unread_count(p).await.is_err());
            assert!(kit.stats(p, &AlertFilter::default()).await.is_err());
        }
        // resume: the replay holds only what it may see.
        let latest = kit.latest_seq().await.unwrap();
        match kit.replay(p, 0, latest, 10_000).await {
            Ok(views) => {
                for v in views {
                    assert!(
                        may_see(p, &v.alert),
                        "{} replayed {:?}",
                        p.user_id,
                        v.alert.audience
                    );
                }
            }
            Err(e) => {
                assert!(!p.can(Permission::AlertsRead));
                assert_eq!(e.kind(), ErrorKind::Forbidden);
            }
        }
    }

    // A raise with someone else's key changes nothing of theirs.
    let (who, which) = w.hijack;
    let victim = &stored[which % stored.len()];
    let before: HashMap<_, _> = stored
        .iter()
        .map(|a| {
            (
                a.id,
                (a.title.clone(), a.occurrences, a.severity, a.expires_at),
            )
        })
        .collect();
    let attacker = case.principals[who].clone();
    if let Some(key) = &victim.dedup_key {
        let n = NewAlert::new("prop", Severity::Critical, "hijacked")
            .audience(victim.audience.clone())
            .dedup_key(key.clone());
        if let Ok(r) = kit.raise(&attacker, n).await
            && r.deduplicated
        {
            assert_eq!(
                r.alert.created_by.as_deref(),
                Some(attacker.user_id.as_str())
            );
            assert_eq!(r.alert.audience, victim.audience);
        }
    }
    for a in &stored {
        if a.created_by.as_deref() == Some(attacker.user_id.as_str()) {
            continue;
        }
        let now = kit.get(&system, a.id).await.unwrap().alert;
        assert_eq!(
            (
                now.title.clone(),
                now.occurrences,
                now.severity,
                now.expires_at
            ),
            before[&a.id],
            "{}'s raise changed another principal's alert",
            attacker.user_id
        );
    }

    // resolve and delete: creator or manager; managers only.
    for p in &case.principals {
        for a in &stored {
            let own = a.created_by.as_deref() == Some(p.user_id.as_str());
            let allowed =
                p.can(Permission::AlertsManage) || (p.can(Permission::AlertsCreate) && own);
            let res = kit.resolve(p, a.id).await;
            assert_eq!(
                res.is_ok(),
                allowed,
                "resolve by {p:?} of {:?}",
                a.created_by
            );
            if let Err(e) = res
                && p.can(Permission::AlertsCreate)
            {
                let want = if may_see(p, a) {
                    ErrorKind::Forbidden
                } else {
                    ErrorKind::NotFound
                };
                assert_eq!(e.kind(), want);
            }
        }
        // resolve_key reaches only the caller's own (or, for managers, all).
        for a in stored.iter().filter(|a| a.dedup_key.is_some()) {
            if let Ok(resolved) = kit.resolve_key(p, a.dedup_key.as_deref().unwrap()).await {
                for r in resolved {
                    assert!(
                        p.can(Permission::AlertsManage)
                            || r.created_by.as_deref() == Some(p.user_id.as_str())
                    );
                }
            }
        }
    }
    for p in &case.principals {
        if let Some(a) = stored.first() {
            let res = kit.delete(p, a.id).await;
            if !p.can(Permission::AlertsManage) {
                assert_eq!(res.unwrap_err().kind(), ErrorKind::Forbidden);
            }
        }
    }

    // Live: let the pump catch up, then nothing pushed may be invisible.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let latest = kit.latest_seq().await.unwrap();
    for change in kit.change_feed(0, 10_000).await.unwrap() {
        if change.alert.seq <= latest {
            hub.fan_out(&change.alert, &change.receipts);
        }
    }
    for (p, attached) in sessions {
        while let Ok(frame) = attached.try_next().ok_or(()) {
            let v: serde_json::Value = serde_json::from_str(frame.text.as_str()).unwrap();
            if let Some(aud) = v["alert"]["audience"].as_array() {
                let audience: Audience =
                    serde_json::from_value(serde_json::Value::Array(aud.clone())).unwrap();
                let probe = Alert {
                    audience,
                    ..stored[0].clone()
                };
                assert!(may_see(&p, &probe), "{} was pushed {v}", p.user_id);
            }
        }
        hub.detach(attached.id);
    }
}

fn run(store: Arc<dyn Store>, cases: u32, rt: &tokio::runtime::Runtime) {
    let kit = AlertKit::builder()
        .store(store)
        .broadcaster(Arc::new(LocalBroadcaster::new()))
        .build()
        .unwrap();
    let hub = rt.block_on(async { WsHub::new(kit.clone(), WsConfig::default()) });
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&world(), |w| {
            rt.block_on(check(&kit, &hub, &w));
            Ok(())
        })
        .unwrap();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn authorization_holds_on_memory() {
    run(Arc::new(MemoryAlertStore::new()), 64, &runtime());
}

#[test]
fn authorization_holds_on_sqlite() {
    let rt = runtime();
    let path = std::env::temp_dir().join(format!(
        "alertkit-authz-{}.db",
        uuid::Uuid::now_v7().simple()
    ));
    let store = rt.block_on(async {
        let s = SqliteAlertStore::builder(&path).connect().await.unwrap();
        s.migrate().await.unwrap();
        s
    });
    run(Arc::new(store), 32, &rt);
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
    }
}

#[test]
fn authorization_holds_on_postgres() {
    let Some(url) = service_url("DATABASE_URL") else {
        return;
    };
    let rt = runtime();
    let schema = format!("akauthz_{}", uuid::Uuid::now_v7().simple());
    let store = rt.block_on(async {
        let s = PostgresAlertStore::builder(&url)
            .schema(&schema)
            .max_connections(4)
            .connect()
            .await
            .unwrap();
        s.migrate().await.unwrap();
        s
    });
    let dropper = store.clone();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(Arc::new(store), 24, &rt)
    }));
    rt.block_on(async {
        let _ = dropper.drop_schema().await;
    });
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
