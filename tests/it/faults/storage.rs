//! The git side failing under the real binary: the remote unreachable (a bad URL, the
//! repository gone), the state directory full (a 2 MiB tmpfs), the mirror damaged (its object
//! files deleted). Each failure says what is wrong; the next good run recovers, cloning the
//! mirror again only when the mirror itself is unusable.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{Due, Expect, assert_converged, config, origin, reconcile_once, set_tags, show};
use crate::support::fake_gitlab::FakeGitLab;

const RELEASE: &str = "2026-11-24T10:00:00Z";
const FIRST: &str = "2026-11-24T12:00:00Z";
const LATER: &str = "2026-11-24T14:00:00Z";

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A marker inside the mirror: still there means the mirror was not cloned again.
fn mark(mirror: &Path) -> PathBuf {
    let marker = mirror.join("still-the-same-mirror");
    std::fs::write(&marker, "").unwrap();
    marker
}

/// dev moves client and maths-api on at 12:30; the qa promotions now carry the new tags.
fn move_dev_on(origin: &crate::support::Origin) -> Vec<Due> {
    let moves = [
        ("client", "0.5.0", "0.5.1"),
        ("maths-api", "1.4.0", "1.4.1"),
    ];
    set_tags(origin, "dev", &moves, "2026-11-24T12:30:00Z");
    vec![
        Due::new("client", "0.4.0", "0.5.1"),
        Due::new("maths-api", "1.2.1", "1.4.1"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_remote_is_reported_and_the_next_good_run_recovers() {
    let (origin, due) = origin(RELEASE, 0);
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let dir = tempfile::tempdir().unwrap();
    let mirror = dir.path().join("state/mirror.git");

    // A wrong URL: nothing to clone; nothing left behind.
    let wrong = format!("file://{}/nowhere/calculator.git", dir.path().display());
    let file = config(dir.path(), &fake, &wrong, "");
    let out = reconcile_once(&file, FIRST).await;
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let expected = format!(
        "promoter: cannot prepare the git mirror: cannot clone {wrong} into {}: ",
        mirror.display()
    );
    assert!(stderr(&out).contains(&expected), "{}", show(&out));
    assert!(!mirror.exists() && !mirror.with_extension("partial").exists());

    // The right URL (through a link, so that the repository can go away for git alone, the
    // GitLab double still serving it): a clone, and the MRs.
    let link = dir.path().join("calculator.git");
    std::os::unix::fs::symlink(&origin.bare, &link).unwrap();
    let url = format!("file://{}", link.display());
    let file = config(dir.path(), &fake, &url, "");
    let out = reconcile_once(&file, FIRST).await;
    assert!(out.status.success(), "{}", show(&out));
    assert_converged(&origin, &fake, &due, Expect::Open);

    // The repository goes away: a clear error, and the mirror is kept as it is.
    let marker = mark(&mirror);
    let due = move_dev_on(&origin);
    std::fs::remove_file(&link).unwrap();
    let out = reconcile_once(&file, LATER).await;
    std::os::unix::fs::symlink(&origin.bare, &link).unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let expected = format!("promoter: cannot fetch {url}: ");
    assert!(stderr(&out).contains(&expected), "{}", show(&out));
    assert!(
        marker.exists(),
        "a remote that does not answer is no reason to re-clone"
    );

    // It is back: an incremental fetch, and the MRs move on.
    let out = reconcile_once(&file, LATER).await;
    assert!(out.status.success(), "{}", show(&out));
    assert!(marker.exists(), "fetched, not cloned again");
    assert_converged(&origin, &fake, &due, Expect::Open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_mirror_is_cloned_again() {
    let (origin, due) = origin(RELEASE, 0);
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let dir = tempfile::tempdir().unwrap();
    let mirror = dir.path().join("state/mirror.git");
    let file = config(dir.path(), &fake, &origin.url(), "");
    let out = reconcile_once(&file, FIRST).await;
    assert!(out.status.success(), "{}", show(&out));
    assert_converged(&origin, &fake, &due, Expect::Open);

    // Every object file goes: the refs point at nothing.
    let marker = mark(&mirror);
    let mut deleted = 0;
    for entry in walk(&mirror.join("objects")) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        let loose = entry
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|p| p.len() == 2);
        if loose || name.starts_with("pack-") {
            std::fs::remove_file(&entry).unwrap();
            deleted += 1;
        }
    }
    assert!(deleted > 0, "the mirror had object files");
    let due_now = move_dev_on(&origin);
    let out = reconcile_once(&file, LATER).await;
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        stderr(&out).contains("the mirror is damaged; cloning it again"),
        "{}",
        show(&out)
    );
    assert!(!marker.exists(), "cloned again");
    assert!(
        !mirror.with_extension("partial").exists() && !mirror.with_extension("broken").exists()
    );
    assert_converged(&origin, &fake, &due_now, Expect::Open);

    // A mirror that is not a repository any more (HEAD gone) is cloned again as well.
    std::fs::remove_file(mirror.join("HEAD")).unwrap();
    let out = reconcile_once(&file, LATER).await;
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        stderr(&out).contains("the mirror is unusable; cloning it again"),
        "{}",
        show(&out)
    );
    assert_converged(&origin, &fake, &due_now, Expect::Open);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A 2 MiB tmpfs: mounted here when we may (root), else inside a user and mount namespace
/// held by a child process and reached through `/proc/<pid>/root`. Unmounted on drop.
struct SmallDisk {
    path: PathBuf,
    mounted: Option<PathBuf>,
    holder: Option<Child>,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn new() -> Result<SmallDisk, String> {
        let dir = tempfile::tempdir().unwrap();
        let point = dir.path().join("disk");
        std::fs::create_dir(&point).unwrap();
        let mount = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(&point)
            .output();
        if mount.as_ref().is_ok_and(|o| o.status.success()) {
            return Ok(SmallDisk {
                path: point.clone(),
                mounted: Some(point),
                holder: None,
                _dir: dir,
            });
        }
        let refused = mount
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .unwrap_or_else(|e| e.to_string());
        let script = format!(
            "mount -t tmpfs -o size=2m tmpfs '{}' && echo ready && exec sleep 600",
            point.display()
        );
        let mut holder = Command::new("unshare")
            .args(["--user", "--map-root-user", "--mount", "sh", "-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("mount: {refused}; unshare: {e}"))?;
        let mut line = String::new();
        use std::io::BufRead;
        let stdout = holder.stdout.take().unwrap();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        if line.trim() != "ready" {
            let _ = holder.kill();
            let out = holder.wait_with_output().unwrap();
            return Err(format!(
                "mount: {refused}; unshare: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let path = PathBuf::from(format!("/proc/{}/root{}", holder.id(), point.display()));
        Ok(SmallDisk {
            path,
            mounted: None,
            holder: Some(holder),
            _dir: dir,
        })
    }

    /// Takes every free byte.
    fn fill(&self) {
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![7u8; 64 << 10];
        use std::io::Write;
        while file.write_all(&block).is_ok() {}
        for size in [4096usize, 512, 64, 1] {
            while file.write_all(&block[..size]).is_ok() {}
        }
        let _ = file.flush();
    }

    fn free(&self) {
        std::fs::remove_file(self.path.join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if let Some(point) = &self.mounted {
            let _ = Command::new("umount").arg("-l").arg(point).status();
        }
        if let Some(holder) = &mut self.holder {
            let _ = holder.kill();
            let _ = holder.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_state_dir_is_reported_and_the_next_good_run_recovers() {
    let disk = match SmallDisk::new() {
        Ok(disk) => disk,
        Err(why) if std::env::var("CI").as_deref() != Ok("true") => {
            println!("skipped: no small filesystem for the state directory ({why})");
            return;
        }
        Err(why) => panic!("no small filesystem for the state directory: {why}"),
    };
    let (origin, due) = origin(RELEASE, 0);
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let dir = tempfile::tempdir().unwrap();
    let file = config(
        dir.path(),
        &fake,
        &origin.url(),
        "", // state_dir below
    );
    // The state directory on the small disk.
    let text = std::fs::read_to_string(&file).unwrap().replace(
        &format!("state_dir: {}", dir.path().join("state").display()),
        &format!("state_dir: {}", disk.path.join("state").display()),
    );
    std::fs::write(&file, text).unwrap();
    let mirror = disk.path.join("state/mirror.git");

    // Full before the first clone.
    disk.fill();
    let out = reconcile_once(&file, FIRST).await;
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let expected = format!(
        "promoter: cannot prepare the git mirror: cannot clone {} into {}: ",
        origin.url(),
        mirror.display()
    );
    let said = stderr(&out);
    assert!(said.contains(&expected), "{}", show(&out));
    assert!(said.contains("No space left on device"), "{}", show(&out));
    assert!(!mirror.exists(), "no half clone left");
    disk.free();
    let out = reconcile_once(&file, FIRST).await;
    assert!(out.status.success(), "{}", show(&out));
    assert_converged(&origin, &fake, &due, Expect::Open);

    // Full when new commits arrive: the fetch fails; the mirror is kept.
    let marker = mark(&mirror);
    let due = move_dev_on(&origin);
    disk.fill();
    let out = reconcile_once(&file, LATER).await;
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let said = stderr(&out);
    assert!(
        said.contains(&format!("promoter: cannot fetch {}: ", origin.url())),
        "{}",
        show(&out)
    );
    assert!(said.contains("No space left on device"), "{}", show(&out));
    disk.free();
    let out = reconcile_once(&file, LATER).await;
    assert!(out.status.success(), "{}", show(&out));
    assert!(marker.exists(), "the mirror was fetched, not cloned again");
    assert_converged(&origin, &fake, &due, Expect::Open);
}
