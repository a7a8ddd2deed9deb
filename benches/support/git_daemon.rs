//! `git daemon` serving the bare origin over `git://`, as a server would serve the mirror:
//! git's own `upload-pack` builds the packs promoter fetches, in another process (over
//! `file://` libgit2 builds them inside promoter's).

use std::path::Path;

use crate::synthetic::Result;

/// `git daemon` serving every repository under a folder; stopped when dropped.
pub struct GitDaemon {
    child: std::process::Child,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
}

impl GitDaemon {
    /// Serves every repository under `base` (pushes too).
    pub fn start(base: &Path) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        // `git daemon` would run git-daemon as its child, which killing `git` leaves behind.
        let exec_path = std::process::Command::new("git")
            .arg("--exec-path")
            .output()?
            .stdout;
        let exec_path = String::from_utf8(exec_path)?.trim().to_string();
        let child = std::process::Command::new(Path::new(&exec_path).join("git-daemon"))
            .args(["--reuseaddr", "--export-all", "--listen=127.0.0.1"])
            .arg("--enable=receive-pack")
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let daemon = Self { child, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(daemon);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err("git daemon did not start listening".into())
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
