use std::path::Path;

use git2::{Index, IndexEntry, IndexTime, Oid, Repository, Signature, Time};

use super::*;

const DEV: &str = "clusters/dev/svc/values.yaml";
const QA: &str = "clusters/qa/svc/values.yaml";

/// A values.yaml holding `tag`, with `note` as a comment so that content can change without
/// changing the tag.
fn values(tag: &str, note: &str) -> String {
    format!("# {note}\nimage:\n  repository: registry.example.com/svc\n  tag: {tag}\n")
}

/// The text after `tag: ` on the line starting with `  tag:`.
fn tag_of(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.lines()
        .find(|line| line.starts_with("  tag:"))
        .map(|line| line["  tag:".len()..].trim().to_string())
}

fn roots() -> Vec<String> {
    vec!["clusters/dev".to_string(), "clusters/qa".to_string()]
}

fn signature(name: &str, seconds: i64) -> Signature<'static> {
    Signature::new(name, &format!("{name}@example.com"), &Time::new(seconds, 0)).unwrap()
}

fn index_entry(path: &str, mode: u32, id: Oid) -> IndexEntry {
    IndexEntry {
        ctime: IndexTime::new(0, 0),
        mtime: IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode,
        uid: 0,
        gid: 0,
        file_size: 0,
        id,
        flags: 0,
        flags_extended: 0,
        path: path.as_bytes().to_vec(),
    }
}

/// A commit on top of `parents` (the tree of the first one, edited by `files`: `None`
/// deletes), updating `update_ref`, authored at `author_time` and committed at `commit_time`.
struct Change<'a> {
    update_ref: &'a str,
    parents: &'a [Oid],
    files: &'a [(&'a str, Option<&'a str>)],
    message: &'a str,
    author_time: i64,
    commit_time: i64,
}

fn commit(repo: &Repository, change: Change<'_>) -> Oid {
    let mut index = Index::new().unwrap();
    if let Some(&first) = change.parents.first() {
        index
            .read_tree(&repo.find_commit(first).unwrap().tree().unwrap())
            .unwrap();
    }
    for (path, content) in change.files {
        match content {
            Some(content) => {
                let blob = repo.blob(content.as_bytes()).unwrap();
                index.add(&index_entry(path, 0o100644, blob)).unwrap()
            }
            None => index.remove_path(Path::new(path)).unwrap(),
        }
    }
    let tree = repo.find_tree(index.write_tree_to(repo).unwrap()).unwrap();
    let parents: Vec<git2::Commit<'_>> = change
        .parents
        .iter()
        .map(|id| repo.find_commit(*id).unwrap())
        .collect();
    let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
    let author = signature("alice", change.author_time);
    let committer = signature("bot", change.commit_time);
    repo.commit(
        Some(change.update_ref),
        &author,
        &committer,
        change.message,
        &tree,
        &parents,
    )
    .unwrap()
}

/// A commit on `HEAD` on top of `parent`, authored and committed at `time`.
fn commit_on_head(
    repo: &Repository,
    parent: Option<Oid>,
    files: &[(&str, Option<&str>)],
    message: &str,
    time: i64,
) -> Oid {
    let parents: Vec<Oid> = parent.into_iter().collect();
    commit(
        repo,
        Change {
            update_ref: "HEAD",
            parents: &parents,
            files,
            message,
            author_time: time,
            commit_time: time,
        },
    )
}

fn changes_of(repo: &Repository, head: &str) -> Vec<CommitChanges> {
    first_parent_changes(repo, head, &roots(), "values.yaml", |_, bytes| {
        tag_of(bytes)
    })
    .unwrap()
}

fn change(path: &str, value: Option<&str>) -> FileChange {
    FileChange {
        path: path.to_string(),
        value: value.map(str::to_string),
    }
}

/// The linear history: dev's tag changes in 3 commits and qa's in 2, plus a commit touching
/// only unrelated files and one changing dev's file without changing its tag.
fn linear(repo: &Repository) -> [Oid; 5] {
    let (dev1, qa1) = (values("1.0.0", "first"), values("1.0.0", "qa"));
    let c1 = commit_on_head(
        repo,
        None,
        &[
            (DEV, Some(&dev1)),
            (QA, Some(&qa1)),
            ("README.md", Some("hello\n")),
        ],
        "Add svc to dev and qa\n\nBody line.\n",
        1_000,
    );
    let dev2 = values("1.1.0", "first");
    let c2 = commit_on_head(
        repo,
        Some(c1),
        &[(DEV, Some(&dev2))],
        "Promote svc 1.1.0 to dev",
        2_000,
    );
    let prod = values("9.9.9", "prod");
    let c3 = commit_on_head(
        repo,
        Some(c2),
        &[
            ("README.md", Some("hello again\n")),
            ("clusters/prod/svc/values.yaml", Some(&prod)),
            ("clusters/dev2/svc/values.yaml", Some(&prod)),
            ("clusters/dev/svc/other.yaml", Some(&prod)),
        ],
        "Unrelated",
        3_000,
    );
    let (dev3, qa2) = (values("1.2.0", "first"), values("1.1.0", "qa"));
    let c4 = commit_on_head(
        repo,
        Some(c3),
        &[(DEV, Some(&dev3)), (QA, Some(&qa2))],
        "Promote",
        4_000,
    );
    let dev4 = values("1.2.0", "second");
    let c5 = commit_on_head(
        repo,
        Some(c4),
        &[(DEV, Some(&dev4))],
        "Reword a comment",
        5_000,
    );
    [c1, c2, c3, c4, c5]
}

#[test]
fn linear_history_returns_matching_changes_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(dir.path()).unwrap();
    let [c1, c2, _c3, c4, c5] = linear(&repo);

    let history = changes_of(&repo, "HEAD");
    let shas: Vec<&str> = history.iter().map(|c| c.commit.sha.as_str()).collect();
    assert_eq!(shas, [c1, c2, c4, c5].map(|id| id.to_string()));

    let first = &history[0];
    assert_eq!(first.commit.summary, "Add svc to dev and qa");
    assert_eq!(first.commit.author, "alice");
    assert_eq!(
        first.commit.time,
        DateTime::<Utc>::from_timestamp(1_000, 0).unwrap()
    );
    assert_eq!(
        first.changes,
        [change(DEV, Some("1.0.0")), change(QA, Some("1.0.0"))]
    );
    assert_eq!(history[1].changes, [change(DEV, Some("1.1.0"))]);
    assert_eq!(
        history[2].changes,
        [change(DEV, Some("1.2.0")), change(QA, Some("1.1.0"))]
    );
    // The tag did not change, but the file did: the caller decides.
    assert_eq!(history[3].changes, [change(DEV, Some("1.2.0"))]);
    assert_eq!(
        history[3].commit.time,
        DateTime::<Utc>::from_timestamp(5_000, 0).unwrap()
    );

    // A sha as head, and a sha in the middle of the history.
    assert_eq!(changes_of(&repo, &c5.to_string()), history);
    assert_eq!(changes_of(&repo, &c2.to_string()), history[..2]);
    // Roots with a trailing separator; no roots, nothing to watch.
    let slashed = first_parent_changes(
        &repo,
        "HEAD",
        &["clusters/qa/".to_string()],
        "values.yaml",
        |_, b| tag_of(b),
    );
    assert_eq!(slashed.unwrap().len(), 2);
    assert!(
        first_parent_changes(&repo, "HEAD", &[], "values.yaml", |_, b| tag_of(b))
            .unwrap()
            .is_empty()
    );
    // An unknown head is an error naming it.
    let error = first_parent_changes(&repo, "no-such-branch", &roots(), "values.yaml", |_, b| {
        tag_of(b)
    })
    .unwrap_err();
    assert!(
        matches!(&error, Error::Resolve { rev, .. } if rev == "no-such-branch"),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("cannot resolve no-such-branch to a commit in "),
        "{error}"
    );
}

#[test]
fn merge_commit_carries_the_branch_change_at_its_committer_time() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(dir.path()).unwrap();
    let (dev1, qa1) = (values("1.0.0", "dev"), values("1.0.0", "qa"));
    let base = commit_on_head(
        &repo,
        None,
        &[(DEV, Some(&dev1)), (QA, Some(&qa1))],
        "Base",
        1_000,
    );
    let (dev2, qa2) = (values("1.1.0", "dev"), values("1.1.0", "qa"));
    let branch = "refs/heads/promote";
    repo.reference(branch, base, false, "branch").unwrap();
    let f1 = commit(
        &repo,
        Change {
            update_ref: branch,
            parents: &[base],
            files: &[(DEV, Some(&dev2))],
            message: "dev",
            author_time: 2_000,
            commit_time: 2_000,
        },
    );
    let f2 = commit(
        &repo,
        Change {
            update_ref: branch,
            parents: &[f1],
            files: &[(QA, Some(&qa2))],
            message: "qa",
            author_time: 3_000,
            commit_time: 3_000,
        },
    );
    let m2 = commit_on_head(
        &repo,
        Some(base),
        &[("README.md", Some("docs\n"))],
        "Docs",
        2_500,
    );
    let merge = commit(
        &repo,
        Change {
            update_ref: "HEAD",
            parents: &[m2, f2],
            files: &[(DEV, Some(&dev2)), (QA, Some(&qa2))],
            message: "Merge branch 'promote'",
            author_time: 3_500,
            commit_time: 4_000,
        },
    );

    let history = changes_of(&repo, "HEAD");
    let shas: Vec<String> = history.iter().map(|c| c.commit.sha.clone()).collect();
    assert_eq!(shas, [base.to_string(), merge.to_string()]);
    let merged = &history[1];
    assert_eq!(
        merged.changes,
        [change(DEV, Some("1.1.0")), change(QA, Some("1.1.0"))]
    );
    assert_eq!(
        merged.commit.time,
        DateTime::<Utc>::from_timestamp(4_000, 0).unwrap()
    );
    assert_eq!(merged.commit.author, "alice");
    assert_eq!(merged.commit.summary, "Merge branch 'promote'");

    // The branch itself, walked by name, has its own commits.
    let on_branch = changes_of(&repo, "promote");
    let shas: Vec<String> = on_branch.iter().map(|c| c.commit.sha.clone()).collect();
    assert_eq!(shas, [base, f1, f2].map(|id| id.to_string()));
}

#[test]
fn deleted_file_has_no_value() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(dir.path()).unwrap();
    let dev = values("1.0.0", "dev");
    let c1 = commit_on_head(&repo, None, &[(DEV, Some(&dev))], "Add", 1_000);
    commit_on_head(&repo, Some(c1), &[(DEV, None)], "Remove", 2_000);
    let history = changes_of(&repo, "HEAD");
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].changes, [change(DEV, None)]);
}

#[test]
fn extract_runs_once_per_distinct_blob() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(dir.path()).unwrap();
    let (one, two) = (values("1.0.0", "same"), values("2.0.0", "same"));
    // dev and qa share a blob; dev goes to 2.0.0 and back; qa goes to dev's 2.0.0 blob.
    let c1 = commit_on_head(
        &repo,
        None,
        &[(DEV, Some(&one)), (QA, Some(&one))],
        "Add",
        1_000,
    );
    let c2 = commit_on_head(&repo, Some(c1), &[(DEV, Some(&two))], "Up", 2_000);
    let c3 = commit_on_head(&repo, Some(c2), &[(DEV, Some(&one))], "Back", 3_000);
    commit_on_head(&repo, Some(c3), &[(QA, Some(&two))], "Qa up", 4_000);

    let mut calls = Vec::new();
    let history = first_parent_changes(&repo, "HEAD", &roots(), "values.yaml", |path, bytes| {
        calls.push(path.to_string());
        tag_of(bytes)
    })
    .unwrap();
    assert_eq!(calls, [DEV, DEV]);
    let values: Vec<Vec<FileChange>> = history.into_iter().map(|c| c.changes).collect();
    assert_eq!(
        values,
        [
            vec![change(DEV, Some("1.0.0")), change(QA, Some("1.0.0"))],
            vec![change(DEV, Some("2.0.0"))],
            vec![change(DEV, Some("1.0.0"))],
            vec![change(QA, Some("2.0.0"))],
        ]
    );
}

#[test]
fn git_tree_lists_and_reads_at_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(dir.path()).unwrap();
    let [c1, c2, ..] = linear(&repo);
    // A submodule entry is not listed.
    let mut index = Index::new().unwrap();
    index
        .read_tree(&repo.head().unwrap().peel_to_tree().unwrap())
        .unwrap();
    index
        .add(&index_entry("clusters/vendored", 0o160000, c1))
        .unwrap();
    let tree = repo.find_tree(index.write_tree_to(&repo).unwrap()).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    let sig = signature("bot", 6_000);
    let with_submodule = repo
        .commit(Some("HEAD"), &sig, &sig, "Vendor", &tree, &[&head])
        .unwrap();

    let old = GitTree::at(&repo, &c2.to_string()).unwrap();
    assert_eq!(old.commit(), c2);
    let dir_entry = |name: &str| Entry {
        name: name.to_string(),
        is_dir: true,
    };
    let file_entry = |name: &str| Entry {
        name: name.to_string(),
        is_dir: false,
    };
    assert_eq!(
        old.list("").unwrap(),
        [file_entry("README.md"), dir_entry("clusters")]
    );
    assert_eq!(
        old.list("clusters").unwrap(),
        [dir_entry("dev"), dir_entry("qa")]
    );
    assert_eq!(
        old.list("clusters/dev/svc/").unwrap(),
        [file_entry("values.yaml")]
    );
    assert!(old.list("clusters/prod").unwrap().is_empty());
    assert!(old.list(DEV).unwrap().is_empty());
    assert_eq!(tag_of(&old.read(DEV).unwrap()).as_deref(), Some("1.1.0"));
    assert!(old.is_file(DEV));
    assert!(!old.is_file("clusters/dev"));
    assert!(!old.is_file("clusters/prod/svc/values.yaml"));
    assert_eq!(
        old.read("clusters/prod/svc/values.yaml")
            .unwrap_err()
            .kind(),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        old.read("clusters/dev").unwrap_err().kind(),
        io::ErrorKind::NotFound
    );

    let new = GitTree::at(&repo, "HEAD").unwrap();
    assert_eq!(new.commit(), with_submodule);
    assert_eq!(
        new.list("clusters").unwrap(),
        [
            dir_entry("dev"),
            dir_entry("dev2"),
            dir_entry("prod"),
            dir_entry("qa")
        ]
    );
    assert_eq!(tag_of(&new.read(DEV).unwrap()).as_deref(), Some("1.2.0"));
    assert!(!new.is_file("clusters/vendored"));
    assert_eq!(
        new.read("clusters/vendored").unwrap_err().kind(),
        io::ErrorKind::NotFound
    );

    assert!(matches!(
        GitTree::at(&repo, "nope"),
        Err(Error::Resolve { .. })
    ));
}

#[test]
fn git_tree_refuses_a_blob_over_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(dir.path()).unwrap();
    let big = "#".repeat(crate::yaml::limits::MAX_BYTES + 1);
    commit_on_head(&repo, None, &[("big.yaml", Some(&big))], "Big", 1_000);
    let tree = GitTree::at(&repo, "HEAD").unwrap();
    assert_eq!(
        tree.read("big.yaml").unwrap_err().kind(),
        io::ErrorKind::InvalidData
    );
}

#[test]
fn open_finds_the_repository_and_the_prefix() {
    let outside = tempfile::tempdir().unwrap();
    assert!(open(outside.path()).unwrap().is_none());

    let dir = tempfile::tempdir().unwrap();
    Repository::init(dir.path()).unwrap();
    std::fs::create_dir_all(dir.path().join("clusters/dev")).unwrap();
    let root = open(dir.path()).unwrap().unwrap();
    assert_eq!(root.prefix, "");
    let sub = open(&dir.path().join("clusters/dev")).unwrap().unwrap();
    assert_eq!(sub.prefix, "clusters/dev");
    assert_eq!(
        std::fs::canonicalize(sub.repo.workdir().unwrap()).unwrap(),
        std::fs::canonicalize(dir.path()).unwrap()
    );
}

#[test]
fn is_dirty_tells_a_changed_work_tree_file() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(dir.path()).unwrap();
    let [.., c5] = linear(&repo);
    repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .unwrap();
    assert_eq!(head_sha(&repo).unwrap(), c5.to_string());

    assert!(!is_dirty(&repo, Path::new(DEV)).unwrap());
    assert!(!is_dirty(&repo, Path::new("never/there.yaml")).unwrap());
    std::fs::write(dir.path().join(DEV), values("7.0.0", "edited")).unwrap();
    assert!(is_dirty(&repo, Path::new(DEV)).unwrap());
    assert!(!is_dirty(&repo, Path::new(QA)).unwrap());
    std::fs::remove_file(dir.path().join(QA)).unwrap();
    assert!(is_dirty(&repo, Path::new(QA)).unwrap());
    std::fs::write(dir.path().join("clusters/dev/new.yaml"), "a: 1\n").unwrap();
    assert!(is_dirty(&repo, Path::new("clusters/dev/new.yaml")).unwrap());
}

#[test]
fn errors_name_their_context_without_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(dir.path()).unwrap();
    let error = head_sha(&repo).unwrap_err();
    assert!(matches!(&error, Error::Resolve { rev, .. } if rev == "HEAD"));
    let source = std::error::Error::source(&error).unwrap().to_string();
    assert!(!error.to_string().contains(&source), "{error}");
}
