//! `LocalBroadcaster` against the broadcaster conformance suite, directly
//! and through `Arc<dyn Broadcaster>`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use alertkit_transport::LocalBroadcaster;

async fn setup() -> Option<Arc<LocalBroadcaster>> {
    Some(Arc::new(LocalBroadcaster::new()))
}

alertkit_testkit::broadcaster_conformance!(setup());

mod as_dyn {
    use std::sync::Arc;

    use alertkit_core::Broadcaster;
    use alertkit_transport::LocalBroadcaster;

    async fn setup() -> Option<Arc<dyn Broadcaster>> {
        Some(Arc::new(LocalBroadcaster::with_capacity(
            alertkit_testkit::broadcast::BURST,
        )))
    }

    alertkit_testkit::broadcaster_conformance!(setup());
}
