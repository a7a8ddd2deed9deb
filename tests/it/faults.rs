//! Proof under faults: the real binary killed at every step of a promotion, a flaky GitLab,
//! two replicas at once, the environments' branch moving under a run, and a broken git remote,
//! state directory or mirror. Every test ends on the same question: did the next good run
//! converge to exactly one correct MR per promotion, with no orphan branch and nothing lost?
//!
//! Shared here: a sample with several qa promotions due, a configuration file for the binary,
//! running the binary, and the convergence check.

/// SIGKILL at every step of a promotion (`reconcile --once` as a child process).
mod kill;

/// 30% of GitLab calls fail or hang: everything still opens once, within the backoff's bound.
mod flaky;

/// Two daemons on one repository: one MR per promotion; the dashboard issue too.
mod replicas;

/// A commit lands on main between the plan and the push.
mod moved;

/// The git remote unreachable, the state directory full, the mirror corrupt.
mod storage;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{DateTime, Utc};

use crate::support::Origin;
use crate::support::fake_gitlab::{FakeGitLab, MrRecord};

/// When the sample was imported.
const T0: &str = "2026-11-01T00:00:00Z";

/// One promotion into qa that the sample makes due.
#[derive(Debug, Clone)]
pub struct Due {
    pub service: String,
    pub from: String,
    pub to: String,
}

impl Due {
    fn new(service: &str, from: &str, to: &str) -> Self {
        Self {
            service: service.into(),
            from: from.into(),
            to: to.into(),
        }
    }

    pub fn branch(&self) -> String {
        format!("promoter/qa/{}", self.service)
    }

    pub fn title(&self) -> String {
        format!(
            "promote {} to qa: {} -> {}",
            self.service, self.from, self.to
        )
    }

    fn dir(&self) -> String {
        format!("clusters/qa/calculator/{}", self.service)
    }
}

/// The sample with qa continuous (no schedule, so that a daemon's resync opens MRs), no
/// registry or Flux gates, `extra` copies of maths-api (`svc-1`...), everything on 1.2.1 /
/// 0.4.0; then, at `released`, one commit releasing maths-api 1.4.0, client 0.5.0 and each
/// copy 1.4.0 to dev. Returns the origin and the qa promotions due an hour later.
pub fn origin(released: &str, extra: usize) -> (Origin, Vec<Due>) {
    let origin = Origin::new(T0, |s| {
        s.without_network_gates();
        s.set_tag("dev", "maths-api", "1.3.0", "1.2.1");
        s.set_tag("prod", "maths-api", "1.2.0", "1.2.1");
        s.set_tag("prod", "client", "0.3.2", "0.4.0");
        s.replace("environments/qa.yaml", "schedule: \"0 0 2 * * *\"\n", "");
        for env in ["dev", "qa", "prod"] {
            let from = s
                .path()
                .join(format!("clusters/{env}/calculator/maths-api"));
            for i in 1..=extra {
                let name = format!("svc-{i}");
                let to = s.path().join(format!("clusters/{env}/calculator/{name}"));
                std::fs::create_dir_all(&to).unwrap();
                for file in ["values.yaml", "release.yml"] {
                    let text = std::fs::read_to_string(from.join(file)).unwrap();
                    std::fs::write(to.join(file), text.replace("maths-api", &name)).unwrap();
                }
            }
        }
    });
    let mut due = vec![
        Due::new("client", "0.4.0", "0.5.0"),
        Due::new("maths-api", "1.2.1", "1.4.0"),
    ];
    due.extend((1..=extra).map(|i| Due::new(&format!("svc-{i}"), "1.2.1", "1.4.0")));
    release_to_dev(&origin, &due, released);
    (origin, due)
}

/// One commit on main setting each promotion's `to` tag in dev (from its `from`).
pub fn release_to_dev(origin: &Origin, due: &[Due], at: &str) {
    let moves: Vec<(&str, &str, &str)> = due
        .iter()
        .map(|d| (d.service.as_str(), d.from.as_str(), d.to.as_str()))
        .collect();
    set_tags(origin, "dev", &moves, at);
}

/// One commit on main setting `(service, from, to)` tags in `env` (values.yaml and
/// release.yml), as CI or a person would.
pub fn set_tags(origin: &Origin, env: &str, moves: &[(&str, &str, &str)], at: &str) {
    let mut edits = Vec::new();
    for (service, from, to) in moves {
        let dir = format!("clusters/{env}/calculator/{service}");
        edits.push((
            format!("{dir}/values.yaml"),
            format!("tag: {from}"),
            format!("tag: {to}"),
        ));
        edits.push((
            format!("{dir}/release.yml"),
            format!("{service}:{from}\""),
            format!("{service}:{to}\""),
        ));
    }
    let edits: Vec<(&str, &str, &str)> = edits
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    origin.commit(&edits, &format!("tags in {env}"), at);
}

pub fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// A configuration file for the binary against the double (the token in a file, as in
/// production), with its state in `dir/state`.
pub fn config(dir: &Path, fake: &FakeGitLab, git_url: &str, extra: &str) -> PathBuf {
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{}\n", FakeGitLab::BOT_TOKEN)).unwrap();
    let file = dir.join("promoter.yaml");
    std::fs::write(
        &file,
        format!(
            "gitlab:\n  url: {}\n  project: acme/calculator\n  token_file: {}\n  timeout: 10s\n  max_retries: 2\n\
             git:\n  url: {git_url}\n  author_name: promoter\n  author_email: promoter@example.com\n  signing_key_file: {}\n\
             state_dir: {}\n{extra}",
            fake.url(),
            token_file.display(),
            crate::support::write_signing_key(dir).display(),
            dir.join("state").display()
        ),
    )
    .unwrap();
    file
}

/// The binary with `--config file` and `args`.
pub fn promoter(file: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_promoter"));
    command
        .arg("--config")
        .arg(file)
        .args(args)
        .env("RUST_LOG", "warn,promoter=info");
    command
}

/// `reconcile --once --at now` to the end, off the async runtime.
pub async fn reconcile_once(file: &Path, now: &str) -> Output {
    let mut command = promoter(file, &["reconcile", "--once", "--at", now]);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// Stdout and stderr, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every `promoter/...` branch of the origin.
pub fn promotion_branches(origin: &Origin) -> Vec<String> {
    let repo = git2::Repository::open_bare(&origin.bare).unwrap();
    let mut names: Vec<String> = repo
        .branches(Some(git2::BranchType::Local))
        .unwrap()
        .map(|b| b.unwrap().0.name().unwrap().unwrap().to_string())
        .filter(|n| n.starts_with("promoter/"))
        .collect();
    names.sort();
    names
}

/// The lines that differ between two texts with the same number of lines.
fn changed_lines(a: &str, b: &str) -> Vec<(String, String)> {
    assert_eq!(a.lines().count(), b.lines().count(), "{a}\n---\n{b}");
    a.lines()
        .zip(b.lines())
        .filter(|(x, y)| x != y)
        .map(|(x, y)| (x.to_string(), y.to_string()))
        .collect()
}

/// What each due promotion should have become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// One open MR whose branch is main plus exactly the tag change.
    Open,
    /// One merged MR; main runs the new tag; the branch is gone.
    Merged,
    /// One closed MR (no longer due); the branch is gone.
    Closed,
}

/// The convergence check: for every due promotion exactly one MR (in any state) with the
/// right title, in the expected state, with correct files; no other MR; no promotion branch
/// without an open MR.
pub fn assert_converged(origin: &Origin, fake: &FakeGitLab, due: &[Due], expect: Expect) {
    let mrs = fake.merge_requests();
    let context = || format!("{mrs:#?}\nrequests: {:#?}", fake.requests());
    for d in due {
        let branch = d.branch();
        let mine: Vec<&MrRecord> = mrs.iter().filter(|m| m.source_branch == branch).collect();
        assert_eq!(mine.len(), 1, "one MR for {branch}: {}", context());
        let mr = mine[0];
        assert_eq!(mr.title, d.title(), "{}", context());
        for file in ["values.yaml", "release.yml"] {
            let path = format!("{}/{file}", d.dir());
            match expect {
                Expect::Open => {
                    assert_eq!(mr.state, "opened", "{}", context());
                    let changed =
                        changed_lines(&origin.read("main", &path), &origin.read(&branch, &path));
                    assert_eq!(changed.len(), 1, "{path} on {branch}: {changed:?}");
                    let (old, new) = &changed[0];
                    assert_eq!(old.replace(&d.from, &d.to), *new, "{path}: only the tag");
                }
                Expect::Merged | Expect::Closed => {
                    let state = if expect == Expect::Merged {
                        "merged"
                    } else {
                        "closed"
                    };
                    assert_eq!(mr.state, state, "{}", context());
                    let text = origin.read("main", &path);
                    assert!(
                        text.contains(&format!("tag: {}", d.to))
                            || text.contains(&format!("{}:{}\"", d.service, d.to)),
                        "{path} on main: {text}"
                    );
                }
            }
        }
        if expect == Expect::Open {
            let repo = git2::Repository::open_bare(&origin.bare).unwrap();
            let main = git2::Oid::from_str(&origin.head("main").unwrap()).unwrap();
            let tip = git2::Oid::from_str(&origin.head(&branch).unwrap()).unwrap();
            assert_eq!(
                repo.merge_base(main, tip).unwrap(),
                main,
                "{branch} is built on main's head"
            );
        }
    }
    let expected: Vec<String> = due.iter().map(Due::branch).collect();
    let strangers: Vec<&MrRecord> = mrs
        .iter()
        .filter(|m| !expected.contains(&m.source_branch))
        .collect();
    assert!(strangers.is_empty(), "unexpected MRs: {strangers:#?}");
    let open: Vec<&str> = mrs
        .iter()
        .filter(|m| m.state == "opened")
        .map(|m| m.source_branch.as_str())
        .collect();
    for branch in promotion_branches(origin) {
        assert!(
            open.contains(&branch.as_str()),
            "orphan branch {branch} (open MRs: {open:?})"
        );
    }
}
