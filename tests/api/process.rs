//! The real `boxoffice` binary as a child process of a test: started on a port of the
//! test's choosing against the test's database, killed (by its own pid) when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::TEST_SECRET;

pub struct ChildServer {
    pub child: Child,
    pub address: String,
}

impl ChildServer {
    /// Starts `boxoffice serve` on `port` with the test secret, two workers, warnings-only
    /// logs (to `log`, or nowhere) and no Redis, then `env` on top; waits until ready.
    pub async fn start(
        database_url: &str,
        port: u16,
        env: &[(&str, &str)],
        log: Option<PathBuf>,
    ) -> ChildServer {
        // The server logs to standard output; both streams go to the log file.
        let (stdout, stderr) = match log {
            Some(path) => {
                let file = std::fs::File::create(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let copy = file.try_clone().unwrap_or_else(|e| panic!("{e}"));
                (Stdio::from(file), Stdio::from(copy))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_boxoffice"));
        command
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("BOXOFFICE_BIND", format!("127.0.0.1:{port}"))
            .env("BOXOFFICE_JWT_SECRET", TEST_SECRET)
            .env("BOXOFFICE_WORKERS", "2")
            .env("RUST_LOG", "warn")
            .env_remove("REDIS_URL")
            .stdout(stdout)
            .stderr(stderr);
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting boxoffice: {e}"));
        let server = ChildServer {
            child,
            address: format!("http://127.0.0.1:{port}"),
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if client
                .get(format!("{}/readyz", self.address))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("boxoffice at {} did not become ready", self.address);
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Sends a signal (`STOP`, `CONT`, `TERM`) to the process.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid()])
            .status()
            .map(|s| s.success());
        assert_eq!(sent.ok(), Some(true), "kill -{signal} {}", self.pid());
    }

    /// SIGKILL: no shutdown, no flush, nothing given back.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        // SIGKILL ends a paused process too; only a process not yet reaped is signalled.
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

/// A free port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Where the tests' child servers write their logs.
pub fn log_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-logs");
    let _ = std::fs::create_dir_all(&dir);
    dir
}
