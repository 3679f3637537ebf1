//! Finding the real services backend tests talk to.
//!
//! With `ALERTKIT_REQUIRE_SERVICES=1` (as `scripts/test` and CI set it) a
//! missing service is a test failure; without it the test is skipped with a
//! loud message on stderr, so a developer without PostgreSQL can still run
//! the rest.

/// Whether missing services must fail the run.
pub fn services_required() -> bool {
    std::env::var("ALERTKIT_REQUIRE_SERVICES").is_ok_and(|v| v == "1" || v == "true")
}

/// The URL in environment variable `var`, or `None` (after a loud notice)
/// when it is unset and services are not required.
///
/// # Panics
/// When the variable is unset and [`services_required`] is true.
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if services_required() => {
            panic!("{var} is not set and ALERTKIT_REQUIRE_SERVICES=1: the service is required")
        }
        _ => {
            loud(&format!(
                "SKIPPED: {var} is not set; set it (or run scripts/test) to run this backend test"
            ));
            None
        }
    }
}

/// Writes straight to the process's stderr: the test harness captures
/// `eprintln!`, and a skip must be seen.
fn loud(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}
