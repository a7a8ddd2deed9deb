//! The real binary as a daemon against the GitLab double: the sample it serves, a
//! configuration file (secrets from the environment, as in production), the command, a child
//! killed when dropped, and waiting for what it does.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use chrono::Utc;

use super::Origin;
use super::fake_gitlab::FakeGitLab;

/// The webhook secret the daemon is started with.
pub const SECRET: &str = "webhook-secret-for-tests";

/// The sample with nothing due, qa continuous (no schedule), and maths-api 1.4.0 released to
/// dev three hours ago.
pub fn origin() -> Origin {
    let origin = Origin::new("2026-11-01T00:00:00Z", |s| {
        s.without_network_gates();
        s.set_tag("dev", "maths-api", "1.3.0", "1.2.1");
        s.set_tag("prod", "maths-api", "1.2.0", "1.2.1");
        s.set_tag("prod", "client", "0.3.2", "0.4.0");
        s.replace("environments/qa.yaml", "schedule: \"0 0 2 * * *\"\n", "");
    });
    let released = (Utc::now() - chrono::Duration::hours(3)).to_rfc3339();
    origin.set_tag("dev", "maths-api", "1.2.1", "1.4.0", &released);
    origin
}

/// A port nobody listens on (for the daemon's `server.listen`).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A configuration file for the double; secrets come from the environment, as in production.
pub fn config(
    dir: &std::path::Path,
    fake: &FakeGitLab,
    origin: &Origin,
    port: u16,
) -> std::path::PathBuf {
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{}\n", FakeGitLab::BOT_TOKEN)).unwrap();
    let file = dir.join("promoter.yaml");
    std::fs::write(
        &file,
        format!(
            "gitlab:\n  url: {}\n  project: acme/calculator\n  token_file: {}\n  timeout: 5s\ngit:\n  url: {}\n  author_name: promoter\n  author_email: promoter@example.com\n  signing_key_file: {}\nstate_dir: {}\nserver:\n  listen: 127.0.0.1:{port}\nreconcile:\n  resync_interval: 1h\n",
            fake.url(),
            token_file.display(),
            origin.url(),
            crate::support::write_signing_key(dir).display(),
            dir.join("state").display()
        ),
    )
    .unwrap();
    file
}

/// The binary with `--config config` and `args`, the webhook secret in its environment.
pub fn promoter(config: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_promoter"));
    command
        .arg("--config")
        .arg(config)
        .args(args)
        .env("PROMOTER__SERVER__WEBHOOK_SECRET", SECRET)
        .env("RUST_LOG", "info");
    command
}

/// A running daemon, killed when dropped.
pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `ready` every 100 ms until it holds; panics after 30 s naming `what`.
pub async fn wait_for(what: &str, mut ready: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
