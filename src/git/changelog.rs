//! The changelog of a promotion: the commits that touched `app/<service>/` after the commit
//! that set its `.version` to the old tag, up to the one that set it to the new tag, on the
//! first-parent history of the branch. Only when the repository holds the app's sources and
//! both versions are found; otherwise there is no changelog.

use git2::{DiffOptions, Oid, Repository};

use super::first_parent_changes;

/// At most this many entries.
pub const MAX_ENTRIES: usize = 50;

/// One commit of a changelog.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// Short id.
    pub sha: String,
    /// First line of the message.
    pub summary: String,
    /// Author name.
    pub author: String,
}

/// The changes of `app/<service>/` from version `old` to `new` at `head`; `None` when the
/// history does not say (no app sources, a version never set in `.version`).
pub fn changelog(
    repo: &Repository,
    head: Oid,
    service: &str,
    old: &str,
    new: &str,
) -> Option<Vec<Entry>> {
    let dir = format!("app/{service}");
    let strip = |v: &str| v.trim().trim_start_matches('v').to_string();
    let changes = first_parent_changes(
        repo,
        &head.to_string(),
        std::slice::from_ref(&dir),
        ".version",
        |_, bytes| std::str::from_utf8(bytes).ok().map(strip),
    )
    .ok()?;
    let set_at = |version: &str| {
        changes
            .iter()
            .rev()
            .find(|c| {
                c.changes
                    .iter()
                    .any(|f| f.value.as_deref() == Some(version))
            })
            .and_then(|c| Oid::from_str(&c.commit.sha).ok())
    };
    let (from, to) = (set_at(&strip(old))?, set_at(&strip(new))?);
    let mut walk = repo.revwalk().ok()?;
    walk.simplify_first_parent().ok()?;
    walk.push(to).ok()?;
    let mut entries = Vec::new();
    for oid in walk {
        let oid = oid.ok()?;
        if oid == from {
            return Some(entries);
        }
        let commit = repo.find_commit(oid).ok()?;
        let parent_tree = commit.parent(0).ok().and_then(|p| p.tree().ok());
        let mut options = DiffOptions::new();
        options.pathspec(&dir);
        let diff = repo
            .diff_tree_to_tree(
                parent_tree.as_ref(),
                commit.tree().ok().as_ref(),
                Some(&mut options),
            )
            .ok()?;
        if diff.deltas().len() > 0 && entries.len() < MAX_ENTRIES {
            entries.push(Entry {
                sha: oid.to_string()[..8].to_string(),
                summary: commit
                    .summary()
                    .ok()
                    .flatten()
                    .unwrap_or_default()
                    .to_string(),
                author: commit.author().name().unwrap_or_default().to_string(),
            });
        }
    }
    // `from` is not an ancestor of `to` (a downgrade, or history rewritten): no changelog.
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::{Signature, Time};

    fn commit(repo: &Repository, files: &[(&str, &str)], message: &str, at: i64) -> Oid {
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let mut update = git2::build::TreeUpdateBuilder::new();
        for (path, text) in files {
            update.upsert(
                *path,
                repo.blob(text.as_bytes()).unwrap(),
                git2::FileMode::Blob,
            );
        }
        let base = match &parent {
            Some(p) => p.tree().unwrap(),
            None => repo
                .find_tree(repo.treebuilder(None).unwrap().write().unwrap())
                .unwrap(),
        };
        let tree = repo
            .find_tree(update.create_updated(repo, &base).unwrap())
            .unwrap();
        let sig = Signature::new("dev", "dev@example.com", &Time::new(at, 0)).unwrap();
        let parents: Vec<_> = parent.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .unwrap()
    }

    #[test]
    fn commits_between_two_versions_of_the_app() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        commit(
            &repo,
            &[("app/api/.version", "1.0.0\n"), ("app/api/main.rs", "a")],
            "release 1.0.0",
            1,
        );
        commit(&repo, &[("app/api/main.rs", "b")], "fix the parser", 2);
        commit(&repo, &[("README.md", "x")], "docs elsewhere", 3);
        commit(&repo, &[("app/api/main.rs", "c")], "faster sums", 4);
        let head = commit(
            &repo,
            &[("app/api/.version", "1.1.0\n")],
            "release 1.1.0",
            5,
        );
        let entries = changelog(&repo, head, "api", "1.0.0", "v1.1.0").unwrap();
        let summaries: Vec<_> = entries.iter().map(|e| e.summary.as_str()).collect();
        assert_eq!(
            summaries,
            ["release 1.1.0", "faster sums", "fix the parser"]
        );
        assert!(
            changelog(&repo, head, "api", "0.9.0", "1.1.0").is_none(),
            "an unknown version"
        );
        assert!(
            changelog(&repo, head, "web", "1.0.0", "1.1.0").is_none(),
            "no app sources"
        );
        assert!(
            changelog(&repo, head, "api", "1.1.0", "1.0.0").is_none(),
            "a downgrade"
        );
    }
}
