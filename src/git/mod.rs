//! The git edge: opening the repository around a directory, reading the tree of one commit
//! through [`crate::repo::Tree`] ([`GitTree`]), and walking the first-parent history of a
//! branch for the changes to one file name under a few directories
//! ([`first_parent_changes`]). It owns every use of git2 outside the mirror; it decides
//! nothing, writes nothing to the repository and never reads the clock.

pub mod changelog;
mod commit_id;
pub mod history;
pub mod mirror;
mod push_view;
pub mod signing;
pub(crate) mod tree_diff;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use git2::{ErrorCode, ObjectType, Oid, Repository, Sort, Status};

pub use commit_id::CommitId;

use crate::model;
use crate::repo::tree::{Entry, Tree};

/// What can go wrong reading a git repository.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Discovering the repository around a directory failed for a reason other than there
    /// being none.
    #[error("cannot open the git repository containing {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
    /// A directory could not be resolved to an absolute path.
    #[error("cannot resolve the directory {}", path.display())]
    Canonicalize {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The directory is inside the repository but not inside its work tree (e.g. in `.git`).
    #[error("{} is not inside the work tree of the git repository at {}", path.display(), repo.display())]
    OutsideWorkTree { path: PathBuf, repo: PathBuf },
    /// A ref or sha did not name a commit.
    #[error("cannot resolve {rev} to a commit in {}", repo.display())]
    Resolve {
        repo: PathBuf,
        rev: String,
        #[source]
        source: git2::Error,
    },
    /// The history walk itself failed.
    #[error("cannot walk the first-parent history of {head} in {}", repo.display())]
    Walk {
        repo: PathBuf,
        head: String,
        #[source]
        source: git2::Error,
    },
    /// Reading a commit, its tree, or diffing it against its first parent failed.
    #[error("cannot diff commit {commit} against its first parent")]
    Diff {
        commit: String,
        #[source]
        source: git2::Error,
    },
    /// Reading a changed file's blob failed.
    #[error("cannot read {path} at commit {commit}")]
    Read {
        commit: String,
        path: String,
        #[source]
        source: git2::Error,
    },
    /// Reading the work-tree status of a file failed.
    #[error("cannot read the status of {} in {}", path.display(), repo.display())]
    Status {
        repo: PathBuf,
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
}

/// The work tree root of `repo`, or its git directory when bare: context for errors.
fn repo_path(repo: &Repository) -> PathBuf {
    repo.workdir().unwrap_or_else(|| repo.path()).to_path_buf()
}

/// A repository found around a directory.
pub struct Opened {
    /// The repository.
    pub repo: Repository,
    /// The directory's path relative to the work tree root, `/`-separated; `""` at the root.
    pub prefix: String,
}

impl Opened {
    /// True when HEAD names a commit (a fresh repository has none yet).
    pub fn has_commits(&self) -> bool {
        self.repo.head().is_ok()
    }
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("repo", &repo_path(&self.repo))
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Opens the git repository containing `dir`; `None` when `dir` is not inside one.
#[tracing::instrument(skip_all, fields(dir = %dir.display()))]
pub fn open(dir: &Path) -> Result<Option<Opened>, Error> {
    let repo = match Repository::discover(dir) {
        Ok(repo) => repo,
        Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Open {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let Some(workdir) = repo.workdir() else {
        // A bare repository has no work tree: the directory is its git directory.
        return Ok(Some(Opened {
            repo,
            prefix: String::new(),
        }));
    };
    let canonical = |path: &Path| {
        std::fs::canonicalize(path).map_err(|source| Error::Canonicalize {
            path: path.to_path_buf(),
            source,
        })
    };
    let root = canonical(workdir)?;
    let dir = canonical(dir)?;
    let Ok(relative) = dir.strip_prefix(&root) else {
        return Err(Error::OutsideWorkTree {
            path: dir,
            repo: root,
        });
    };
    let prefix = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    Ok(Some(Opened { repo, prefix }))
}

/// Resolves `rev` (a ref name, sha or any revspec) to a commit.
fn resolve<'r>(repo: &'r Repository, rev: &str) -> Result<git2::Commit<'r>, Error> {
    repo.revparse_single(rev)
        .and_then(|object| object.peel_to_commit())
        .map_err(|source| Error::Resolve {
            repo: repo_path(repo),
            rev: rev.to_string(),
            source,
        })
}

/// The full hex id of the commit `HEAD` points to.
pub fn head_sha(repo: &Repository) -> Result<String, Error> {
    Ok(resolve(repo, "HEAD")?.id().to_string())
}

/// True when the work-tree file `path` (relative to the work tree root) differs from `HEAD`:
/// modified, new or deleted, in the work tree or in the index. Ignored files are not dirty.
pub fn is_dirty(repo: &Repository, path: &Path) -> Result<bool, Error> {
    let status = match repo.status_file(path) {
        Ok(status) => status,
        // In neither the work tree, the index nor HEAD: nothing differs.
        Err(e) if e.code() == ErrorCode::NotFound => return Ok(false),
        Err(source) => {
            return Err(Error::Status {
                repo: repo_path(repo),
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let dirty = Status::INDEX_NEW
        | Status::INDEX_MODIFIED
        | Status::INDEX_DELETED
        | Status::INDEX_RENAMED
        | Status::INDEX_TYPECHANGE
        | Status::WT_NEW
        | Status::WT_MODIFIED
        | Status::WT_DELETED
        | Status::WT_RENAMED
        | Status::WT_TYPECHANGE
        | Status::CONFLICTED;
    Ok(status.intersects(dirty))
}

/// The tree of one commit, read through [`crate::repo::Tree`]. Submodules are not listed;
/// blobs larger than [`crate::yaml::limits::MAX_BYTES`] are refused before they are read.
pub struct GitTree<'r> {
    repo: &'r Repository,
    commit: Oid,
    tree: git2::Tree<'r>,
    /// Trees of the directories looked up so far, by path. libgit2 caches only small tree
    /// objects (4 KiB by default), so a folder of 2,000 services would be inflated again for
    /// every file under it.
    dirs: std::cell::RefCell<HashMap<String, Option<git2::Tree<'r>>>>,
}

impl fmt::Debug for GitTree<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitTree")
            .field("commit", &self.commit)
            .field("tree", &self.tree.id())
            .finish()
    }
}

impl<'r> GitTree<'r> {
    /// The tree of the commit `rev` (a ref name, sha or any revspec) resolves to.
    #[tracing::instrument(skip(repo))]
    pub fn at(repo: &'r Repository, rev: &str) -> Result<Self, Error> {
        let commit = resolve(repo, rev)?;
        let tree = commit.tree().map_err(|source| Error::Resolve {
            repo: repo_path(repo),
            rev: rev.to_string(),
            source,
        })?;
        Ok(Self {
            repo,
            commit: commit.id(),
            tree,
            dirs: Default::default(),
        })
    }

    /// The id of the commit whose tree this is.
    pub fn commit(&self) -> Oid {
        self.commit
    }

    /// The tree of directory `dir` (`""`: the root), or `None` when there is no such folder.
    fn dir_tree(&self, dir: &str) -> io::Result<Option<git2::Tree<'r>>> {
        if dir.is_empty() {
            return Ok(Some(self.tree.clone()));
        }
        if let Some(known) = self.dirs.borrow().get(dir) {
            return Ok(known.clone());
        }
        let (parent, name) = dir.rsplit_once('/').unwrap_or(("", dir));
        let found = match self.dir_tree(parent)? {
            None => None,
            Some(parent) => match parent.get_name(name) {
                Some(entry) if entry.kind() == Some(ObjectType::Tree) => {
                    Some(self.repo.find_tree(entry.id()).map_err(io::Error::other)?)
                }
                _ => None,
            },
        };
        self.dirs
            .borrow_mut()
            .insert(dir.to_string(), found.clone());
        Ok(found)
    }

    /// The entry at `path`, or `None` when there is none.
    fn entry(&self, path: &str) -> io::Result<Option<git2::TreeEntry<'static>>> {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        Ok(self
            .dir_tree(dir)?
            .and_then(|tree| tree.get_name(name).map(|e| e.to_owned())))
    }
}

/// Trims the separators a caller may leave around a tree path.
fn tree_path(path: &str) -> &str {
    path.trim_matches('/')
}

impl Tree for GitTree<'_> {
    fn list(&self, dir: &str) -> io::Result<Vec<Entry>> {
        let dir = tree_path(dir);
        let Some(tree) = self.dir_tree(dir)? else {
            return Ok(Vec::new());
        };
        let mut entries: Vec<Entry> = tree
            .iter()
            .filter_map(|entry| {
                let is_dir = match entry.kind() {
                    Some(ObjectType::Tree) => true,
                    Some(ObjectType::Blob) => false,
                    // Submodules (commits) and anything else are not files of this tree.
                    _ => return None,
                };
                let name = entry.name().ok()?.to_string();
                Some(Entry { name, is_dir })
            })
            .collect();
        entries.sort();
        Ok(entries)
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        let path = tree_path(path);
        let not_found = || io::Error::new(io::ErrorKind::NotFound, format!("{path}: no such file"));
        if path.is_empty() {
            return Err(not_found());
        }
        let Some(entry) = self.entry(path)? else {
            return Err(not_found());
        };
        if entry.kind() != Some(ObjectType::Blob) {
            return Err(not_found());
        }
        let odb = self.repo.odb().map_err(io::Error::other)?;
        let (size, _) = odb.read_header(entry.id()).map_err(io::Error::other)?;
        if size > crate::yaml::limits::MAX_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{path}: {size} bytes, over the {}-byte limit",
                    crate::yaml::limits::MAX_BYTES
                ),
            ));
        }
        let blob = self.repo.find_blob(entry.id()).map_err(io::Error::other)?;
        Ok(blob.content().to_vec())
    }

    fn is_file(&self, path: &str) -> bool {
        let path = tree_path(path);
        !path.is_empty()
            && matches!(self.entry(path), Ok(Some(entry)) if entry.kind() == Some(ObjectType::Blob))
    }

    fn dir_id(&self, dir: &str) -> Option<String> {
        let dir = tree_path(dir);
        if dir.is_empty() {
            return Some(self.tree.id().to_string());
        }
        // The id is in the parent's entry: the directory's own tree need not be inflated.
        let entry = self.entry(dir).ok()??;
        (entry.kind() == Some(ObjectType::Tree)).then(|| entry.id().to_string())
    }
}

/// One changed file of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// The file's path from the repository root, `/`-separated.
    pub path: String,
    /// What the caller's `extract` made of the new content; `None` when the file was deleted
    /// (or is no longer a regular file, or is over the size limit).
    pub value: Option<String>,
}

/// A commit on the first-parent history and the matching files it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitChanges {
    /// The commit.
    pub commit: model::Commit,
    /// The matching files it changed against its first parent, in path order.
    pub changes: Vec<FileChange>,
}

/// Walks the first-parent history of `head` (a ref name or sha), oldest first, and returns
/// the commits that changed a file named `file_name` at any depth under one of the
/// directories `roots`, with `extract(path, bytes)` of each changed file's new content.
///
/// One revwalk and one pathspec-restricted tree-to-tree diff per commit; `extract` runs once
/// per distinct blob. A merge commit carries its whole branch's change (against its first
/// parent); the branch's own commits are not visited.
#[tracing::instrument(skip_all, fields(head, roots = roots.len(), file_name))]
pub fn first_parent_changes(
    repo: &Repository,
    head: &str,
    roots: &[String],
    file_name: &str,
    extract: impl FnMut(&str, &[u8]) -> Option<String>,
) -> Result<Vec<CommitChanges>, Error> {
    Ok(
        first_parent_changes_since(repo, head, None, roots, file_name, extract)?
            .unwrap_or_default(),
    )
}

/// [`first_parent_changes`] of the commits after `since` only, when `since` is on the
/// first-parent line of `head` (it is `head`, or the first parent of the oldest commit after
/// it); `None` when it is not (the branch was rewritten): read it all again.
#[tracing::instrument(skip_all, fields(head, since = ?since, roots = roots.len(), file_name))]
pub fn first_parent_changes_since(
    repo: &Repository,
    head: &str,
    since: Option<Oid>,
    roots: &[String],
    file_name: &str,
    mut extract: impl FnMut(&str, &[u8]) -> Option<String>,
) -> Result<Option<Vec<CommitChanges>>, Error> {
    let roots: Vec<&str> = roots.iter().map(|root| tree_path(root)).collect();
    let tip = resolve(repo, head)?;
    if since == Some(tip.id()) {
        return Ok(Some(Vec::new()));
    }
    if roots.is_empty() {
        return Ok(since.is_none().then(Vec::new));
    }
    let walk_error = |source| Error::Walk {
        repo: repo_path(repo),
        head: head.to_string(),
        source,
    };
    let mut walk = repo.revwalk().map_err(walk_error)?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)
        .map_err(walk_error)?;
    walk.simplify_first_parent().map_err(walk_error)?;
    walk.push(tip.id()).map_err(walk_error)?;
    if let Some(since) = since {
        walk.hide(since).map_err(walk_error)?;
    }

    let odb = repo.odb().map_err(walk_error)?;
    let mut cache: HashMap<Oid, Option<String>> = HashMap::new();
    let mut out = Vec::new();
    let mut walked = 0usize;

    for id in walk {
        let id = id.map_err(walk_error)?;
        walked += 1;
        let sha = id.to_string();
        let diff_error = |source| Error::Diff {
            commit: sha.clone(),
            source,
        };
        let commit = repo.find_commit(id).map_err(diff_error)?;
        if walked == 1
            && let Some(since) = since
            && commit.parent_id(0).ok() != Some(since)
        {
            return Ok(None);
        }
        let tree = commit.tree().map_err(diff_error)?;
        let parent_tree = match commit.parents().next() {
            Some(parent) => Some(parent.tree().map_err(diff_error)?),
            None => None,
        };
        if parent_tree
            .as_ref()
            .is_some_and(|parent| parent.id() == tree.id())
        {
            continue;
        }
        let changed =
            tree_diff::changed_files(repo, parent_tree.as_ref(), &tree, &roots, file_name)
                .map_err(diff_error)?;

        let mut changes = Vec::new();
        for tree_diff::Changed { path, now } in changed {
            let value = match now {
                None => None,
                Some(blob) => match cache.get(&blob) {
                    Some(value) => value.clone(),
                    None => {
                        let read_error = |source| Error::Read {
                            commit: sha.clone(),
                            path: path.clone(),
                            source,
                        };
                        let (size, _) = odb.read_header(blob).map_err(read_error)?;
                        let value = if size > crate::yaml::limits::MAX_BYTES {
                            tracing::warn!(commit = %sha, path, size, "changed file over the size limit; not read");
                            None
                        } else {
                            let found = repo.find_blob(blob).map_err(read_error)?;
                            extract(&path, found.content())
                        };
                        cache.insert(blob, value.clone());
                        value
                    }
                },
            };
            changes.push(FileChange { path, value });
        }
        if !changes.is_empty() {
            out.push(CommitChanges {
                commit: to_model(&commit),
                changes,
            });
        }
    }
    tracing::debug!(
        walked,
        returned = out.len(),
        blobs = cache.len(),
        "walked first-parent history"
    );
    if walked == 0 && since.is_some() {
        // `head` is behind `since`: the branch was reset.
        return Ok(None);
    }
    Ok(Some(out))
}

/// The domain's view of a git commit: committer time (when it landed), author name, first line.
fn to_model(commit: &git2::Commit<'_>) -> model::Commit {
    let seconds = commit.committer().when().seconds();
    let message = String::from_utf8_lossy(commit.message_bytes());
    model::Commit::from(model::CommitInfo {
        sha: commit.id().to_string(),
        time: DateTime::<Utc>::from_timestamp(seconds, 0).unwrap_or_default(),
        author: String::from_utf8_lossy(commit.author().name_bytes()).into_owned(),
        summary: message
            .trim_start()
            .lines()
            .next()
            .unwrap_or("")
            .trim_end()
            .to_string(),
    })
}

#[cfg(test)]
mod tests;
