//! The files (of one name, under some folders, or all of them) that differ between two trees,
//! found by walking
//! only the subtrees whose ids differ. libgit2's tree-to-tree diff expands every subtree of
//! both sides, equal or not, so diffing one release commit of a 10,000-service repository read
//! 20,000 service folders; git ids are content addresses, so an equal id is an equal subtree.

use git2::{FileMode, ObjectType, Oid, Repository, Tree, TreeEntry};

/// One file that differs: its path from the root, and what the new tree holds there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// `/`-separated, from the root.
    pub path: String,
    /// The new regular file's blob; `None` when the file is gone or is no longer a regular
    /// file (a link, a submodule).
    pub now: Option<Oid>,
}

/// The files named `file_name` at any depth under one of `roots` (`/`-separated folders from
/// the root; `""` is the whole tree) that differ between `old` (`None`: an empty tree) and
/// `new`, in path order.
pub fn changed_files(
    repo: &Repository,
    old: Option<&Tree<'_>>,
    new: &Tree<'_>,
    roots: &[&str],
    file_name: &str,
) -> Result<Vec<Changed>, git2::Error> {
    let walk = Walk {
        repo,
        roots,
        file_name: Some(file_name),
    };
    walk.run(old, new)
}

/// Every file (of any name, anywhere) that differs between `old` (`None`: an empty tree) and
/// `new`, in path order: what libgit2's tree-to-tree diff lists, reading only the subtrees
/// whose ids differ.
pub fn changed_paths(
    repo: &Repository,
    old: Option<&Tree<'_>>,
    new: &Tree<'_>,
) -> Result<Vec<Changed>, git2::Error> {
    let walk = Walk {
        repo,
        roots: &[""],
        file_name: None,
    };
    walk.run(old, new)
}

struct Walk<'a> {
    repo: &'a Repository,
    roots: &'a [&'a str],
    /// The files' name; `None`: every file.
    file_name: Option<&'a str>,
}

impl Walk<'_> {
    fn run(&self, old: Option<&Tree<'_>>, new: &Tree<'_>) -> Result<Vec<Changed>, git2::Error> {
        let mut out = Vec::new();
        self.compare("", old, Some(new), &mut out)?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// True when files under folder `dir` may matter: it is under a root, or above one.
    fn reaches(&self, dir: &str) -> bool {
        self.roots.iter().any(|root| {
            root.is_empty()
                || dir.is_empty()
                || dir == *root
                || dir.strip_prefix(*root).is_some_and(|r| r.starts_with('/'))
                || root.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
        })
    }

    /// True when a file at `path` is one of those asked for.
    fn wanted(&self, path: &str) -> bool {
        let name = path.rsplit('/').next().unwrap_or(path);
        self.file_name.is_none_or(|wanted| name == wanted)
            && self.roots.iter().any(|root| {
                root.is_empty()
                    || path
                        .strip_prefix(*root)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
    }

    /// The differences between `old` and `new` at folder `dir` (either may be absent).
    fn compare(
        &self,
        dir: &str,
        old: Option<&Tree<'_>>,
        new: Option<&Tree<'_>>,
        out: &mut Vec<Changed>,
    ) -> Result<(), git2::Error> {
        if !self.reaches(dir) {
            return Ok(());
        }
        if let Some(new) = new {
            for entry in new.iter() {
                let before = old.and_then(|o| o.get_name_bytes(entry.name_bytes()));
                // The mode as stored (`filemode` would normalize 100664 to 100644), as libgit2's
                // diff compares it.
                if before.as_ref().is_some_and(|b| {
                    b.id() == entry.id() && b.filemode_raw() == entry.filemode_raw()
                }) {
                    continue;
                }
                self.entry(dir, before.as_ref(), Some(&entry), out)?;
            }
        }
        if let Some(old) = old {
            for entry in old.iter() {
                if new.is_none_or(|n| n.get_name_bytes(entry.name_bytes()).is_none()) {
                    self.entry(dir, Some(&entry), None, out)?;
                }
            }
        }
        Ok(())
    }

    /// One name of folder `dir` whose entry differs: `old` and `new` are its two sides.
    fn entry(
        &self,
        dir: &str,
        old: Option<&TreeEntry<'_>>,
        new: Option<&TreeEntry<'_>>,
        out: &mut Vec<Changed>,
    ) -> Result<(), git2::Error> {
        // A name that is not UTF-8 is no folder or file of the snapshot (`GitTree` skips it).
        let Some(name) = new.or(old).and_then(|e| e.name().ok()) else {
            return Ok(());
        };
        let path = if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        };
        let subtree = |entry: Option<&TreeEntry<'_>>| match entry {
            Some(e) if e.kind() == Some(ObjectType::Tree) => self.repo.find_tree(e.id()).map(Some),
            _ => Ok(None),
        };
        let (old_tree, new_tree) = (subtree(old)?, subtree(new)?);
        if old_tree.is_some() || new_tree.is_some() {
            self.compare(&path, old_tree.as_ref(), new_tree.as_ref(), out)?;
        }
        if !self.wanted(&path) {
            return Ok(());
        }
        match (old.filter(|e| is_file(e)), new.filter(|e| is_file(e))) {
            (None, None) => {}
            (_, Some(now)) => {
                let regular = [FileMode::Blob, FileMode::BlobExecutable]
                    .iter()
                    .any(|m| i32::from(*m) == now.filemode_raw());
                out.push(Changed {
                    path,
                    now: regular.then(|| now.id()),
                });
            }
            (Some(_), None) => out.push(Changed { path, now: None }),
        }
        Ok(())
    }
}

/// True for an entry that is not a folder (a file, a link, a submodule).
fn is_file(entry: &TreeEntry<'_>) -> bool {
    entry.kind() != Some(ObjectType::Tree)
}

#[cfg(test)]
mod tests {
    use git2::{DiffOptions, FileMode, Oid, Repository};

    use super::*;

    /// A tree of `files` (path, text, mode), built in `repo`.
    fn tree(repo: &Repository, files: &[(&str, &str, FileMode)]) -> Oid {
        let empty = repo.treebuilder(None).unwrap().write().unwrap();
        let mut update = git2::build::TreeUpdateBuilder::new();
        for (path, text, mode) in files {
            update.upsert(*path, repo.blob(text.as_bytes()).unwrap(), *mode);
        }
        update
            .create_updated(repo, &repo.find_tree(empty).unwrap())
            .unwrap()
    }

    /// What libgit2's tree-to-tree diff reports for the same question, as the history read
    /// asked it before: every delta, filtered to `file_name` under `roots`.
    fn by_libgit2(
        repo: &Repository,
        old: Option<&Tree<'_>>,
        new: &Tree<'_>,
        roots: &[&str],
        file_name: Option<&str>,
    ) -> Vec<Changed> {
        let mut options = DiffOptions::new();
        options.disable_pathspec_match(true);
        for root in roots.iter().filter(|r| !r.is_empty()) {
            options.pathspec(*root);
        }
        let walk = Walk {
            repo,
            roots,
            file_name,
        };
        let diff = repo
            .diff_tree_to_tree(old, Some(new), Some(&mut options))
            .unwrap();
        let mut out: Vec<Changed> = diff
            .deltas()
            .filter_map(|delta| {
                let deleted = delta.status() == git2::Delta::Deleted;
                let file = if deleted {
                    delta.old_file()
                } else {
                    delta.new_file()
                };
                let path = std::str::from_utf8(file.path_bytes()?).ok()?.to_string();
                let regular = matches!(file.mode(), FileMode::Blob | FileMode::BlobExecutable);
                walk.wanted(&path).then(|| Changed {
                    now: (!deleted && regular).then(|| file.id()),
                    path,
                })
            })
            .collect();
        // A file that became a link, or a link that became a file, is two deltas to libgit2
        // (the old one deleted, then the new one added): the last one is what the path holds
        // now, and recording both or only the last gives the same history.
        out.sort_by(|a, b| a.path.cmp(&b.path));
        let mut last: Vec<Changed> = Vec::new();
        for change in out {
            match last.last_mut() {
                Some(previous) if previous.path == change.path => *previous = change,
                _ => last.push(change),
            }
        }
        last
    }

    #[test]
    fn the_changed_files_are_those_libgit2s_diff_finds() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let (blob, exe, link) = (FileMode::Blob, FileMode::BlobExecutable, FileMode::Link);
        let before = tree(
            &repo,
            &[
                ("clusters/dev/a/values.yaml", "tag: 1\n", blob),
                ("clusters/dev/b/values.yaml", "tag: 1\n", blob),
                ("clusters/dev/c/values.yaml", "tag: 1\n", blob),
                ("clusters/dev/gone/values.yaml", "tag: 1\n", blob),
                ("clusters/dev/deep/x/y/values.yaml", "tag: 1\n", blob),
                ("clusters/dev/d/values.yaml", "tag: 1\n", blob),
                ("clusters/dev/e/values.yaml", "tag: 1\n", blob),
                ("clusters/dev/f/values.yaml", "tag: 1\n", blob),
                ("clusters/dev.old/values.yaml", "tag: 1\n", blob),
                ("clusters/qa/a/values.yaml", "tag: 1\n", blob),
                ("clusters/qa/a/release.yml", "x\n", blob),
                ("elsewhere/values.yaml", "tag: 1\n", blob),
            ],
        );
        let after = tree(
            &repo,
            &[
                ("clusters/dev/a/values.yaml", "tag: 2\n", blob),
                ("clusters/dev/b/values.yaml", "tag: 1\n", blob),
                ("clusters/dev/c/values.yaml", "tag: 1\n", exe),
                ("clusters/dev/deep/x/y/values.yaml", "tag: 3\n", blob),
                (
                    "clusters/dev/d/values.yaml/inner/values.yaml",
                    "tag: 1\n",
                    blob,
                ),
                ("clusters/dev/e/values.yaml", "target\n", link),
                ("clusters/dev/f/other.yaml", "tag: 1\n", blob),
                ("clusters/dev/new/values.yaml", "tag: 1\n", blob),
                ("clusters/dev.old/values.yaml", "tag: 2\n", blob),
                ("clusters/qa/a/values.yaml", "tag: 1\n", blob),
                ("clusters/qa/a/release.yml", "y\n", blob),
                ("elsewhere/values.yaml", "tag: 2\n", blob),
            ],
        );
        let (before, after) = (
            repo.find_tree(before).unwrap(),
            repo.find_tree(after).unwrap(),
        );
        for roots in [
            vec!["clusters/dev", "clusters/qa"],
            vec!["clusters/dev"],
            vec!["clusters"],
        ] {
            for (old, new) in [
                (Some(&before), &after),
                (Some(&after), &before),
                (None, &after),
                (Some(&after), &after),
            ] {
                let ours = changed_files(&repo, old, new, &roots, "values.yaml").unwrap();
                let theirs = by_libgit2(&repo, old, new, &roots, Some("values.yaml"));
                assert_eq!(ours, theirs, "roots {roots:?}");
            }
        }
        for (old, new) in [
            (Some(&before), &after),
            (Some(&after), &before),
            (None, &after),
            (Some(&after), &after),
        ] {
            let ours = changed_paths(&repo, old, new).unwrap();
            assert_eq!(ours, by_libgit2(&repo, old, new, &[""], None));
        }
        let every: Vec<String> = changed_paths(&repo, Some(&before), &after)
            .unwrap()
            .into_iter()
            .map(|c| c.path)
            .collect();
        assert!(every.contains(&"clusters/qa/a/release.yml".to_string()));
        assert!(every.contains(&"elsewhere/values.yaml".to_string()));
        assert!(!every.contains(&"clusters/dev/b/values.yaml".to_string()));
        let ours = changed_files(
            &repo,
            Some(&before),
            &after,
            &["clusters/dev"],
            "values.yaml",
        )
        .unwrap();
        let paths: Vec<&str> = ours.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "clusters/dev/a/values.yaml",
                "clusters/dev/c/values.yaml",
                "clusters/dev/d/values.yaml",
                "clusters/dev/d/values.yaml/inner/values.yaml",
                "clusters/dev/deep/x/y/values.yaml",
                "clusters/dev/e/values.yaml",
                "clusters/dev/f/values.yaml",
                "clusters/dev/gone/values.yaml",
                "clusters/dev/new/values.yaml",
            ],
            "not clusters/dev.old (another folder), nor b (unchanged)"
        );
    }
}
