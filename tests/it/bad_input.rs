//! Bad input (issue 8): broken, hostile or huge files in the repository, webhook bodies and chat
//! commands. Each test asserts the exact text a person sees (`promoter check` / `plan` through
//! the real binary, or the real routes in process) and that nothing panicked, hung or wrote:
//! the work tree and its refs, the bare remote's refs and the GitLab double's write log are
//! compared before and after.

/// environments/, policies/, values.yaml and release.yml that are malformed, disagree, loop or
/// name things badly: `check` names file, line and what to do; `plan` serves the rest.
mod repo_files;

/// A YAML bomb (billion laughs, deep nesting) and a 100 MB file, generated at test time.
mod limits;

/// Webhook bodies that are huge, truncated, stalled, of the wrong type or of unknown events.
mod webhook;

/// Chat commands with mentions, markdown, quotes, backticks and newlines in Slack, Mattermost
/// and MR-comment flavours: the replies neutralise them.
mod chat;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use sha2::{Digest, Sha256};

use crate::support::{SampleRepo, promoter, stderr};

/// Every file under `dir` (`.git` aside) with its size and digest, plus every git ref: what
/// "never writes" compares.
#[derive(Debug, PartialEq, Eq)]
pub struct Fingerprint {
    files: BTreeMap<String, (u64, [u8; 32])>,
    refs: BTreeMap<String, String>,
}

impl Fingerprint {
    /// The files of the work tree `dir` and the refs of the repository there.
    pub fn of(dir: &Path) -> Self {
        let mut files = BTreeMap::new();
        walk(dir, dir, &mut files);
        Self {
            files,
            refs: refs(dir),
        }
    }
}

/// Files larger than this are compared by size and modification time.
const BIG: u64 = 1024 * 1024;

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (u64, [u8; 32])>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_name() == ".git" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            walk(root, &path, out);
        } else {
            let key = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = entry.metadata().unwrap();
            // The 100 MB file: its size and modification time stand for its bytes.
            let digest = if meta.len() > BIG {
                let modified = meta.modified().unwrap();
                Sha256::digest(format!("{modified:?}")).into()
            } else {
                Sha256::digest(std::fs::read(&path).unwrap()).into()
            };
            out.insert(key, (meta.len(), digest));
        }
    }
}

/// Every ref of the repository at `dir` (a work tree or a bare repository) and its target.
pub fn refs(dir: &Path) -> BTreeMap<String, String> {
    let repo = git2::Repository::open(dir).unwrap();
    let mut refs = BTreeMap::new();
    for reference in repo.references().unwrap() {
        let reference = reference.unwrap();
        let target = reference
            .target()
            .map(|o| o.to_string())
            .or_else(|| {
                reference
                    .symbolic_target()
                    .ok()
                    .flatten()
                    .map(str::to_string)
            })
            .unwrap_or_default();
        refs.insert(reference.name().unwrap_or("?").to_string(), target);
    }
    refs
}

/// Runs `promoter <args> --repo <repo>` (`edit` takes no `--repo`) and checks that it neither
/// panicked nor wrote.
pub fn run(repo: &SampleRepo, args: &[&str]) -> Output {
    let before = Fingerprint::of(repo.path());
    let mut all: Vec<&str> = args.to_vec();
    if args.first() != Some(&"edit") {
        all.extend(["--repo", repo.path().to_str().unwrap()]);
    }
    let out = promoter(&all);
    let err = stderr(&out);
    assert!(
        !err.contains("panicked") && out.status.code().is_some(),
        "promoter {args:?} crashed: {err}"
    );
    assert!(
        Fingerprint::of(repo.path()) == before,
        "promoter {args:?} changed the repository"
    );
    out
}

/// `promoter check`: exit 1, and every line of `expected` among its stderr lines.
pub fn check_reports(repo: &SampleRepo, expected: &[&str]) {
    let out = run(repo, &["check"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    for want in expected {
        assert!(lines.contains(want), "want the line\n{want}\nin\n{err}");
    }
}

/// `promoter plan --output json` at a fixed instant: exit 0, the rows as
/// `service to decision`, and stderr.
pub fn plan_rows(repo: &SampleRepo) -> (Vec<String>, serde_json::Value, String) {
    let out = run(
        repo,
        &["plan", "--output", "json", "--at", "2026-11-24T12:00:00Z"],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let plan: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {err}"));
    let rows = plan["promotions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {} {}",
                p["service"].as_str().unwrap(),
                p["to"].as_str().unwrap(),
                p["decision"].as_str().unwrap()
            )
        })
        .collect();
    (rows, plan, err)
}

/// The reasons of one row of a JSON plan.
pub fn reasons(plan: &serde_json::Value, service: &str, to: &str) -> Vec<String> {
    plan["promotions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["service"] == service && p["to"] == to)
        .unwrap_or_else(|| panic!("no row {service} {to}"))["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

/// The plan of the untouched sample at the instant [`plan_rows`] uses.
pub const SAMPLE_ROWS: [&str; 4] = [
    "client qa up_to_date",
    "client prod promote",
    "maths-api qa promote",
    "maths-api prod promote",
];
