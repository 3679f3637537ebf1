//! Engine throughput on the in-memory parts: the baseline every backend is
//! compared against. Run with `cargo bench --bench engine`.

#![allow(clippy::expect_used)]

use std::sync::Arc;

use alertkit::storage::MemoryAlertStore;
use alertkit::transport::LocalBroadcaster;
use alertkit::{AlertKit, AlertQuery, Audience, NewAlert, Principal, Severity};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

fn kit() -> AlertKit {
    AlertKit::builder()
        .store(Arc::new(MemoryAlertStore::new()))
        .broadcaster(Arc::new(LocalBroadcaster::new()))
        .build()
        .expect("kit")
}

fn alert(i: usize) -> NewAlert {
    NewAlert::new(
        "capacity_warning",
        Severity::ALL[i % 5],
        format!("alert {i}"),
    )
    .tags([format!("P{}", i % 100)])
    .audience(if i.is_multiple_of(10) {
        Audience::everyone()
    } else {
        Audience::user(format!("u{}", i % 50))
    })
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let system = Principal::system();

    let mut g = c.benchmark_group("raise");
    g.throughput(Throughput::Elements(1));
    let k = kit();
    let mut i = 0;
    g.bench_function("new", |b| {
        b.iter(|| {
            i += 1;
            rt.block_on(k.raise(&system, alert(i))).expect("raise")
        })
    });
    let k = kit();
    g.bench_function("dedup_hit", |b| {
        b.iter(|| {
            rt.block_on(k.raise(&system, alert(7).dedup_key("same")))
                .expect("raise")
        })
    });
    g.finish();

    let mut g = c.benchmark_group("read_10k");
    let k = kit();
    rt.block_on(async {
        for i in 0..10_000 {
            k.raise(&system, alert(i)).await.expect("raise");
        }
    });
    let user = Principal::user("u3");
    g.bench_function("list_first_page", |b| {
        b.iter(|| {
            rt.block_on(k.list(&user, &AlertQuery::default()))
                .expect("list")
        })
    });
    g.bench_function("unread_count", |b| {
        b.iter(|| rt.block_on(k.unread_count(&user)).expect("count"))
    });
    g.bench_function("mark_all_read_1k_broadcast", |b| {
        b.iter_batched(
            || Principal::user(format!("u{}", next_user())),
            |p| {
                rt.block_on(k.mark_all_read(&p, &Default::default()))
                    .expect("mark")
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn next_user() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(1_000);
    N.fetch_add(1, Ordering::Relaxed)
}

criterion_group!(engine, benches);
criterion_main!(engine);
