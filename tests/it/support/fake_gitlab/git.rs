//! The double's view of the bare repository: branch heads, mergeability and real merges.

use std::path::Path;

use chrono::{DateTime, Utc};
use git2::{Oid, Repository, Signature, Time};

/// The head of `refs/heads/<branch>`, if the branch exists.
pub(super) fn branch_head(repo: &Repository, branch: &str) -> Option<Oid> {
    repo.refname_to_id(&format!("refs/heads/{branch}")).ok()
}

/// The branch `HEAD` points at (`main` when unreadable).
pub(super) fn default_branch(repo: &Repository) -> String {
    repo.find_reference("HEAD")
        .ok()
        .and_then(|r| r.symbolic_target().ok().flatten().map(str::to_owned))
        .and_then(|t| t.strip_prefix("refs/heads/").map(str::to_owned))
        .unwrap_or_else(|| "main".into())
}

/// Whether merging `source` into `target` would conflict. Memoized by the pair of commits, as
/// GitLab caches an MR's mergeability instead of merging trees on every list request.
pub(super) fn conflicts(repo: &Repository, target: Oid, source: Oid) -> bool {
    static KNOWN: std::sync::LazyLock<
        std::sync::Mutex<std::collections::HashMap<(Oid, Oid), bool>>,
    > = std::sync::LazyLock::new(Default::default);
    if let Some(known) = KNOWN
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&(target, source))
    {
        return *known;
    }
    let (Ok(ours), Ok(theirs)) = (repo.find_commit(target), repo.find_commit(source)) else {
        return true;
    };
    let conflicted = !builds_on(&theirs, target)
        && repo
            .merge_commits(&ours, &theirs, None)
            .map(|index| index.has_conflicts())
            .unwrap_or(true);
    KNOWN
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert((target, source), conflicted);
    conflicted
}

/// True when `source` is `target` or one of its parents is: merging it into `target` is a
/// fast-forward or a merge whose base is `target` itself, which cannot conflict. GitLab
/// computes mergeability asynchronously, off the request; the double answers this case without
/// merging the trees, and merges for real in every other.
fn builds_on(source: &git2::Commit<'_>, target: Oid) -> bool {
    source.id() == target || source.parent_ids().any(|parent| parent == target)
}

/// The full id of a commit named by `sha` (full or abbreviated).
pub(super) fn resolve_commit(repo: &Repository, sha: &str) -> Option<String> {
    let object = repo.revparse_single(sha).ok()?;
    object.peel_to_commit().ok().map(|c| c.id().to_string())
}

/// The first branch (by name) whose history contains `sha`: the `ref` GitLab picks for a
/// commit status posted without one.
pub(super) fn branch_containing(repo: &Repository, sha: &str) -> Option<String> {
    let oid = Oid::from_str(sha).ok()?;
    let mut names: Vec<(String, Oid)> = repo
        .branches(Some(git2::BranchType::Local))
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|(b, _)| Some((b.name().ok()??.to_owned(), b.get().target()?)))
        .collect();
    names.sort();
    names
        .into_iter()
        .find(|(_, head)| *head == oid || repo.graph_descendant_of(*head, oid).unwrap_or(false))
        .map(|(name, _)| name)
}

/// Why a merge did not happen.
pub(super) enum MergeError {
    Conflict,
    Git(git2::Error),
}

impl From<git2::Error> for MergeError {
    fn from(e: git2::Error) -> Self {
        Self::Git(e)
    }
}

/// The commits a merge wrote.
pub(super) struct Merged {
    pub merge_commit: String,
    pub squash_commit: Option<String>,
}

/// Merges `source` into `target_branch` as GitLab's "merge commit" method does: an optional
/// squash commit (source tree on the merge base), then a two-parent merge commit by "GitLab";
/// the target ref only moves if it still points where it did when the merge started.
pub(super) fn merge(
    repo: &Repository,
    target_branch: &str,
    source: Oid,
    message: &str,
    squash_message: Option<&str>,
    at: DateTime<Utc>,
) -> Result<Merged, MergeError> {
    let refname = format!("refs/heads/{target_branch}");
    let target = repo.refname_to_id(&refname)?;
    let sig = Signature::new(
        "GitLab",
        "gitlab@example.com",
        &Time::new(at.timestamp(), 0),
    )?;
    let ours = repo.find_commit(target)?;
    let mut theirs = repo.find_commit(source)?;
    let mut squash_commit = None;
    if let Some(squash_message) = squash_message {
        let base = repo.find_commit(repo.merge_base(target, source)?)?;
        let oid = repo.commit(None, &sig, &sig, squash_message, &theirs.tree()?, &[&base])?;
        squash_commit = Some(oid.to_string());
        theirs = repo.find_commit(oid)?;
    }
    let mut index = repo.merge_commits(&ours, &theirs, None)?;
    if index.has_conflicts() {
        return Err(MergeError::Conflict);
    }
    let tree = repo.find_tree(index.write_tree_to(repo)?)?;
    let oid = repo.commit(None, &sig, &sig, message, &tree, &[&ours, &theirs])?;
    repo.reference_matching(&refname, oid, true, target, "merge request merged")?;
    Ok(Merged {
        merge_commit: oid.to_string(),
        squash_commit,
    })
}

/// Deletes a branch (no-op when it is gone already).
pub(super) fn delete_branch(repo: &Repository, branch: &str) {
    if let Ok(mut r) = repo.find_reference(&format!("refs/heads/{branch}")) {
        let _ = r.delete();
    }
}

/// Test helper: commits `files` (path, content) on `branch` of the bare repository at
/// `bare`, starting from `branch`'s head, or from `start` (a branch) when `branch` does not
/// exist yet; creates or moves the branch. Returns the new commit's id.
pub fn commit_files(
    bare: &Path,
    branch: &str,
    start: Option<&str>,
    files: &[(&str, &str)],
    message: &str,
) -> String {
    let repo = Repository::open_bare(bare).expect("a bare repository");
    let parent = branch_head(&repo, branch)
        .or_else(|| start.and_then(|s| branch_head(&repo, s)))
        .map(|oid| repo.find_commit(oid).expect("parent commit"));
    let mut builder = git2::build::TreeUpdateBuilder::new();
    let base_tree = match &parent {
        Some(p) => p.tree().expect("parent tree"),
        None => {
            let empty = repo
                .treebuilder(None)
                .expect("treebuilder")
                .write()
                .expect("empty tree");
            repo.find_tree(empty).expect("empty tree")
        }
    };
    for (path, content) in files {
        let blob = repo.blob(content.as_bytes()).expect("blob");
        builder.upsert(*path, blob, git2::FileMode::Blob);
    }
    let tree = repo
        .find_tree(builder.create_updated(&repo, &base_tree).expect("tree"))
        .expect("tree");
    let sig = Signature::now("dev", "dev@example.com").expect("signature");
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let oid = repo
        .commit(None, &sig, &sig, message, &tree, &parents)
        .expect("commit");
    repo.reference(&format!("refs/heads/{branch}"), oid, true, message)
        .expect("branch ref");
    oid.to_string()
}
