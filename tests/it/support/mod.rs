//! A copy of the sample repository (environments/, policies/, clusters/) in a temporary git
//! repository, with commits whose dates the test chooses.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use git2::{Repository, Signature, Time};

/// The repository root of this project.
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A git work tree holding the sample's environments, policies and clusters.
pub struct SampleRepo {
    pub dir: tempfile::TempDir,
    pub repo: Repository,
}

impl SampleRepo {
    /// The sample, committed once at `at` (RFC 3339).
    pub fn new(at: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for folder in ["environments", "policies", "clusters"] {
            copy_dir(&project_root().join(folder), &dir.path().join(folder));
        }
        let repo = Repository::init(dir.path()).unwrap();
        let sample = Self { dir, repo };
        sample.commit("import the sample", at);
        sample
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces `from` with `to` in a file (must occur).
    pub fn replace(&self, file: &str, from: &str, to: &str) {
        let path = self.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} has no {from:?}");
        std::fs::write(path, text.replacen(from, to, 1)).unwrap();
    }

    /// Sets a service's tag in an environment, in values.yaml and release.yml, as a promotion
    /// (or CI) would, without committing.
    pub fn set_tag(&self, env: &str, service: &str, from: &str, to: &str) {
        let dir = format!("clusters/{env}/calculator/{service}");
        self.replace(
            &format!("{dir}/values.yaml"),
            &format!("tag: {from}"),
            &format!("tag: {to}"),
        );
        self.replace(
            &format!("{dir}/release.yml"),
            &format!("{service}:{from}\""),
            &format!("{service}:{to}\""),
        );
    }

    /// Commits every change with committer and author time `at`.
    pub fn commit(&self, message: &str, at: &str) {
        let time = chrono::DateTime::parse_from_rfc3339(at).unwrap();
        let sig =
            Signature::new("dev", "dev@example.com", &Time::new(time.timestamp(), 0)).unwrap();
        let mut index = self.repo.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.write().unwrap();
        let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
        let parent = self.repo.head().ok().map(|h| h.peel_to_commit().unwrap());
        let parents: Vec<_> = parent.iter().collect();
        self.repo
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .unwrap();
    }
}

/// Runs the promoter binary with `args`.
pub fn promoter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_promoter"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// Stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
