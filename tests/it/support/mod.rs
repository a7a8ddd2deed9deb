//! A copy of the sample repository (environments/, policies/, clusters/) in a temporary git
//! repository, with commits whose dates the test chooses.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use git2::{Repository, Signature, Time};

pub mod chat;
pub mod daemon;
pub mod fake_gitlab;
pub mod registry;
pub mod world;

/// The repository root of this project.
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies the directory `from` to `to`, recursively.
pub fn copy_dir(from: &Path, to: &Path) {
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
        let repo = Repository::init_opts(
            dir.path(),
            git2::RepositoryInitOptions::new().initial_head("main"),
        )
        .unwrap();
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

    /// Drops the gates that need a registry or Flux (`require_image`, `require_health`) from
    /// the sample's policies, for tests about everything else.
    pub fn without_network_gates(&self) {
        for file in ["policies/qa.yaml", "policies/prod.yaml"] {
            let path = self.path().join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            let kept: Vec<&str> = text
                .lines()
                .filter(|l| !l.starts_with("require_image:") && !l.starts_with("require_health:"))
                .collect();
            std::fs::write(path, kept.join("\n") + "\n").unwrap();
        }
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

/// A bare "origin" repository holding the sample, imported at `at`, as GitLab would host it.
pub struct Origin {
    _dirs: (tempfile::TempDir, Option<SampleRepo>),
    pub bare: PathBuf,
}

impl Origin {
    /// The sample imported at `at`, then `adjust` applied in a second commit at the same time
    /// (to start from a chosen state).
    pub fn new(at: &str, adjust: impl FnOnce(&SampleRepo)) -> Self {
        let sample = SampleRepo::new(at);
        adjust(&sample);
        sample.commit("set the starting tags", at);
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("calculator.git");
        git2::build::RepoBuilder::new()
            .bare(true)
            .clone(&format!("file://{}", sample.path().display()), &bare)
            .unwrap();
        Self {
            _dirs: (dir, Some(sample)),
            bare,
        }
    }

    /// An independent copy of this origin (its files copied): much cheaper than a new one.
    pub fn duplicate(&self) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("calculator.git");
        copy_dir(&self.bare, &bare);
        Self {
            _dirs: (dir, None),
            bare,
        }
    }

    /// `file://` URL of the bare repository.
    pub fn url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    /// The content of `path` on `branch`.
    pub fn read(&self, branch: &str, path: &str) -> String {
        let repo = Repository::open_bare(&self.bare).unwrap();
        let tree = repo
            .find_branch(branch, git2::BranchType::Local)
            .unwrap()
            .get()
            .peel_to_tree()
            .unwrap();
        let blob = tree
            .get_path(Path::new(path))
            .unwrap()
            .to_object(&repo)
            .unwrap()
            .peel_to_blob()
            .unwrap();
        String::from_utf8(blob.content().to_vec()).unwrap()
    }

    /// The head of `branch`, if it exists.
    pub fn head(&self, branch: &str) -> Option<String> {
        let repo = Repository::open_bare(&self.bare).unwrap();
        let branch = repo.find_branch(branch, git2::BranchType::Local).ok()?;
        branch.get().target().map(|o| o.to_string())
    }

    /// Commits the replacements `(path, from, to)` on main at `at`, as a developer's push.
    pub fn commit(&self, edits: &[(&str, &str, &str)], message: &str, at: &str) {
        let texts: Vec<(&str, String)> = edits
            .iter()
            .map(|(path, from, to)| {
                let text = self.read("main", path);
                assert!(text.contains(from), "{path} has no {from:?}");
                (*path, text.replacen(from, to, 1))
            })
            .collect();
        let files: Vec<(&str, Option<&str>)> = texts
            .iter()
            .map(|(path, text)| (*path, Some(text.as_str())))
            .collect();
        self.write(&files, message, at);
    }

    /// Writes (`Some`) or deletes (`None`) whole files on main at `at`, as a developer's push.
    pub fn write(&self, files: &[(&str, Option<&str>)], message: &str, at: &str) {
        let repo = Repository::open_bare(&self.bare).unwrap();
        let parent = repo
            .find_branch("main", git2::BranchType::Local)
            .unwrap()
            .get()
            .peel_to_commit()
            .unwrap();
        let mut builder = git2::build::TreeUpdateBuilder::new();
        for (path, text) in files {
            match text {
                Some(text) => {
                    let blob = repo.blob(text.as_bytes()).unwrap();
                    builder.upsert(*path, blob, git2::FileMode::Blob);
                }
                None => {
                    builder.remove(*path);
                }
            }
        }
        let tree = repo
            .find_tree(
                builder
                    .create_updated(&repo, &parent.tree().unwrap())
                    .unwrap(),
            )
            .unwrap();
        let time = chrono::DateTime::parse_from_rfc3339(at).unwrap();
        let sig =
            Signature::new("dev", "dev@example.com", &Time::new(time.timestamp(), 0)).unwrap();
        repo.commit(
            Some("refs/heads/main"),
            &sig,
            &sig,
            message,
            &tree,
            &[&parent],
        )
        .unwrap();
    }

    /// Sets a service's tag in an environment (values.yaml and release.yml) on main at `at`.
    pub fn set_tag(&self, env: &str, service: &str, from: &str, to: &str, at: &str) {
        let dir = format!("clusters/{env}/calculator/{service}");
        let (values, release) = (format!("{dir}/values.yaml"), format!("{dir}/release.yml"));
        let (old_tag, new_tag) = (format!("tag: {from}"), format!("tag: {to}"));
        let (old_image, new_image) = (format!("{service}:{from}\""), format!("{service}:{to}\""));
        self.commit(
            &[
                (values.as_str(), old_tag.as_str(), new_tag.as_str()),
                (release.as_str(), old_image.as_str(), new_image.as_str()),
            ],
            &format!("{service} {to} in {env}"),
            at,
        );
    }
}

/// promoter's signing key in every test (a fixed seed: tests need no randomness).
pub fn signing_keys() -> promoter::git::signing::SigningKeys {
    promoter::git::signing::SigningKeys::new(signing_key())
}

/// The private key behind [`signing_keys`].
pub fn signing_key() -> ssh_key::PrivateKey {
    promoter::git::signing::key_from_seed([42; 32], "promoter-test")
}

/// Writes [`signing_key`] as an OpenSSH key file in `dir` (what `ssh-keygen -N ''` writes),
/// for the binary's `git.signing_key_file`.
pub fn write_signing_key(dir: &Path) -> PathBuf {
    let file = dir.join("signing_key");
    std::fs::write(
        &file,
        promoter::git::signing::private_openssh(&signing_key()),
    )
    .unwrap();
    file
}

/// A reconciler on the GitLab double and a bare origin, with its mirror in `state`: short
/// timeouts and backoff so that fault tests stay fast.
pub async fn reconciler(
    fake: &fake_gitlab::FakeGitLab,
    origin: &Origin,
    state: &Path,
) -> promoter::reconcile::Reconciler<promoter::forge::gitlab::GitLab> {
    use promoter::forge::gitlab::{Connection, GitLab, RetryPolicy};
    use promoter::git::mirror::{Author, Credentials, Mirror};
    let policy = RetryPolicy {
        max_retries: 3,
        timeout: std::time::Duration::from_secs(5),
        base_delay: std::time::Duration::from_millis(10),
        max_delay: std::time::Duration::from_secs(2),
    };
    let connection = Connection {
        url: fake.url().parse().unwrap(),
        token: fake_gitlab::FakeGitLab::BOT_TOKEN.into(),
        project: "acme/calculator".into(),
        policy,
        // Tests measure behaviour, not the budget: effectively unlimited.
        budget: promoter::forge::gitlab::budget::BudgetSettings {
            per_second: 100_000.0,
            burst: 100_000,
        },
    };
    let forge = GitLab::connect(&connection).await.unwrap();
    let mirror = Mirror::open(&state.join("mirror.git"), &origin.url(), Credentials::None).unwrap();
    let config = promoter::reconcile::Config {
        branch: "main".into(),
        author: Author {
            name: "promoter".into(),
            email: "promoter@example.com".into(),
            keys: crate::support::signing_keys(),
        },
    };
    promoter::reconcile::Reconciler::new(
        forge,
        mirror,
        config,
        promoter::promotion::describe::Templates::built_in(),
    )
}

/// The sample with nothing due (no registry or Flux gates), then maths-api 1.4.0 released to
/// dev at `released`.
pub fn origin_with_new_dev_tag(released: &str) -> Origin {
    let origin = Origin::new("2026-11-01T00:00:00Z", |s| {
        s.without_network_gates();
        s.set_tag("dev", "maths-api", "1.3.0", "1.2.1");
        s.set_tag("prod", "maths-api", "1.2.0", "1.2.1");
        s.set_tag("prod", "client", "0.3.2", "0.4.0");
    });
    origin.set_tag("dev", "maths-api", "1.2.1", "1.4.0", released);
    origin
}
