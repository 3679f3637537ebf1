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

/// A `redis-server` process of a test's own on a loopback port, so the
/// test can kill, hang (`SIGSTOP`) and restart it without disturbing other
/// tests. Killed on drop. Needs the `redis-server` binary (Debian package
/// `redis-server`, which `scripts/services.sh` installs).
#[derive(Debug)]
pub struct OwnRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    /// Starts a server on `port` (see [`free_port`]) and returns once it
    /// accepts connections.
    ///
    /// # Panics
    /// When `redis-server` cannot be started or does not listen within 10 s.
    pub fn start(port: u16) -> OwnRedis {
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server (Debian package redis-server) must be installed: {e}")
            });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "own redis-server did not listen on {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        OwnRedis {
            port,
            child: Some(child),
        }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its URL, `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends `kill -<sig>` (`STOP` hangs it: connections stay open and
    /// nothing answers; `CONT` resumes it).
    ///
    /// # Panics
    /// When the signal cannot be sent.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().map(std::process::Child::id);
        let sent = pid.is_some_and(|pid| {
            std::process::Command::new("kill")
                .args([format!("-{sig}"), pid.to_string()])
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(sent, "kill -{sig} to own redis-server");
    }

    /// Kills it (SIGKILL) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port free at the time of the call.
///
/// # Panics
/// When no port can be bound.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}
