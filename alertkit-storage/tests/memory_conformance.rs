//! `MemoryAlertStore` against the store conformance suite: directly,
//! through `Arc<dyn Store>`, and as a bare `Arc<dyn AlertStore>` (what a
//! backend implementing only that role runs).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use alertkit_storage::MemoryAlertStore;

async fn setup() -> Option<Arc<MemoryAlertStore>> {
    Some(Arc::new(MemoryAlertStore::new()))
}

alertkit_testkit::store_conformance!(setup());
alertkit_testkit::series_store_conformance!(setup());
alertkit_testkit::report_store_conformance!(setup());

mod as_dyn {
    use std::sync::Arc;

    use alertkit_core::Store;
    use alertkit_storage::MemoryAlertStore;

    async fn setup() -> Option<Arc<dyn Store>> {
        Some(Arc::new(MemoryAlertStore::new()))
    }

    alertkit_testkit::store_conformance!(setup());
}

mod alert_store_role_only {
    use std::sync::Arc;

    use alertkit_core::AlertStore;
    use alertkit_storage::MemoryAlertStore;

    async fn setup() -> Option<Arc<dyn AlertStore>> {
        Some(Arc::new(MemoryAlertStore::new()))
    }

    alertkit_testkit::alert_store_conformance!(setup());
}
