//! `MemoryAlertStore` against the store conformance suite, directly and
//! through `Arc<dyn AlertStore>`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use alertkit_storage::MemoryAlertStore;

async fn setup() -> Option<Arc<MemoryAlertStore>> {
    Some(Arc::new(MemoryAlertStore::new()))
}

alertkit_testkit::alert_store_conformance!(setup());

mod as_dyn {
    use std::sync::Arc;

    use alertkit_core::AlertStore;
    use alertkit_storage::MemoryAlertStore;

    async fn setup() -> Option<Arc<dyn AlertStore>> {
        Some(Arc::new(MemoryAlertStore::new()))
    }

    alertkit_testkit::alert_store_conformance!(setup());
}
