//! The smallest embedding: an in-memory store and in-process broadcaster,
//! a few alerts raised, listed, read and deduplicated.
//!
//! Run with `cargo run --example embed`.

use std::sync::Arc;

use alertkit::storage::MemoryAlertStore;
use alertkit::transport::LocalBroadcaster;
use alertkit::{AlertKit, AlertQuery, Audience, NewAlert, Principal, Severity};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let kit = AlertKit::builder()
        .store(Arc::new(MemoryAlertStore::new()))
        .broadcaster(Arc::new(LocalBroadcaster::new()))
        .build()?;

    // Your application raises alerts as the system principal…
    let system = Principal::system();
    let warning = NewAlert::new("capacity_warning", Severity::Medium, "VCH20 near capacity")
        .message("Forecast reaches 92% of capacity within 6 hours")
        .tags(["VCH20"])
        .audience(Audience::group("planners"))
        .dedup_key("capacity:VCH20");
    kit.raise(&system, warning.clone()).await?;
    // …and raising the same condition again updates it instead of adding a copy.
    let again = kit
        .raise(
            &system,
            NewAlert {
                severity: Severity::High,
                ..warning
            },
        )
        .await?;
    println!(
        "deduplicated={} escalated={} occurrences={}",
        again.deduplicated, again.escalated, again.alert.occurrences
    );
    kit.raise(
        &system,
        NewAlert::new(
            "sla_breached",
            Severity::Critical,
            "Ticket #4711 breached its SLA",
        )
        .audience(Audience::user("alice")),
    )
    .await?;

    // …and each user sees their own inbox.
    let alice = Principal::user("alice").with_groups(["planners"]);
    let page = kit.list(&alice, &AlertQuery::default()).await?;
    println!(
        "alice has {} alerts, {} unread:",
        page.total, page.unread_count
    );
    for view in &page.alerts {
        println!(
            "  [{}] {} ({})",
            view.alert.severity, view.alert.title, view.alert.alert_type
        );
    }

    kit.mark_read(&alice, page.alerts[0].alert.id).await?;
    println!(
        "after reading one: {} unread",
        kit.unread_count(&alice).await?
    );

    let bob = Principal::user("bob");
    println!(
        "bob sees {} alerts",
        kit.list(&bob, &AlertQuery::default()).await?.total
    );

    println!("{}", serde_json::to_string_pretty(&page.alerts[0])?);
    Ok(())
}
