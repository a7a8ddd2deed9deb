//! The repository a push is sent from, so that a push costs the same however many promotion
//! branches the remote holds.
//!
//! libgit2's push hides every tip the remote advertises that the pushing repository holds and
//! walks the whole tree of each one (`queue_objects` in libgit2's `push.c`,
//! `mark_edges_uninteresting` in `pack-objects.c`). The mirror holds every promotion branch,
//! whose trees differ from the target's down to `clusters/<env>/apps/`, so a push from the
//! mirror reads one `apps/` tree (one entry per service) per open promotion branch. Tips the
//! pushing repository does not hold are skipped (`git_revwalk_hide` ignores `ENOTFOUND`).
//!
//! So promoter pushes from a view: the *push base*, a bare repository next to the mirror that
//! fetches only the target branch (its history and trees, no promotion branch), plus an
//! in-memory object store ([`git2::Mempack`]) holding the objects of the pushed commit that the
//! base lacks, copied from the mirror and dropped with the view. The only advertised tip the
//! view holds is the target branch: one tree walk per push, whatever the number of branches. A
//! deletion pushes no objects and is sent from a view with no history at all.

use std::path::{Path, PathBuf};

use git2::{FetchOptions, ObjectType, Odb, Oid, RemoteCallbacks, Repository};

/// Commits of a push that the base may lack: one promotion commit, rarely a few. More means
/// the base is far behind; the push is then sent from the mirror.
const MAX_MISSING_COMMITS: usize = 64;

/// The push base: a bare repository at `dir` fetching only the target branch from `url`.
#[derive(Debug, Clone)]
pub(super) struct PushBase {
    dir: PathBuf,
}

impl PushBase {
    /// The push base of the mirror at `mirror_dir`: its sibling `<name>.push-base`.
    pub(super) fn beside(mirror_dir: &Path) -> Self {
        let trimmed = mirror_dir
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        Self {
            dir: PathBuf::from(format!("{trimmed}.push-base")),
        }
    }

    /// The base repository, created when missing or unusable. It keeps no remote: fetches and
    /// pushes name the URL each time, so a changed `git.url` needs nothing here.
    fn open(&self) -> Result<Repository, git2::Error> {
        if !self.dir.exists() {
            return Repository::init_bare(&self.dir);
        }
        match Repository::open_bare(&self.dir) {
            Ok(repo) => Ok(repo),
            Err(_) => {
                tracing::warn!(dir = %self.dir.display(), "the push base is unusable; building it again");
                self.rebuild()
            }
        }
    }

    /// An empty base in place of whatever is at its path.
    fn rebuild(&self) -> Result<Repository, git2::Error> {
        let removed = if self.dir.is_dir() {
            std::fs::remove_dir_all(&self.dir)
        } else if self.dir.exists() {
            std::fs::remove_file(&self.dir)
        } else {
            Ok(())
        };
        removed.map_err(|e| git2::Error::from_str(&e.to_string()))?;
        Repository::init_bare(&self.dir)
    }

    /// Brings the base up to `branch` on the remote; a base whose refs name objects it lacks
    /// (damaged files) is built again.
    fn fetch<'c>(
        &self,
        base: Repository,
        url: &str,
        branch: &str,
        callbacks: &dyn Fn() -> RemoteCallbacks<'c>,
    ) -> Result<Repository, git2::Error> {
        match fetch_branch(&base, url, branch, callbacks()) {
            Ok(()) => Ok(base),
            Err(e) if !lacks_objects(&base) => Err(e),
            Err(e) => {
                tracing::warn!(error = %crate::redact::redact(e.message()), "the push base is damaged; building it again");
                drop(base);
                let base = self.rebuild()?;
                fetch_branch(&base, url, branch, callbacks())?;
                Ok(base)
            }
        }
    }

    /// A repository to push `commits` from (or, with `push` `None`, a deletion): the base,
    /// brought up to `branch` on the remote when it lacks `parent`, plus the objects of
    /// `commits` it lacks, copied from `mirror` into memory. `None` when the base cannot serve
    /// (it cannot fetch, or the commit's history is far ahead of it): push from the mirror.
    pub(super) fn view<'c>(
        &self,
        mirror: &Repository,
        url: &str,
        callbacks: &dyn Fn() -> RemoteCallbacks<'c>,
        push: Option<(&[Oid], &str, Oid)>,
    ) -> Result<Option<Repository>, git2::Error> {
        let mut base = self.open()?;
        let odb = Odb::new()?;
        odb.add_new_mempack_backend(1000)?;
        let Some((commits, branch, parent)) = push else {
            // A deletion sends no objects: a view that holds nothing hides nothing.
            base.set_odb(&odb)?;
            return Ok(Some(base));
        };
        if !base.odb()?.exists(parent) {
            base = self.fetch(base, url, branch, callbacks)?;
        }
        if !base.odb()?.exists(parent) {
            return Ok(None);
        }
        odb.add_disk_alternate(&base.path().join("objects").to_string_lossy())?;
        for commit in commits {
            if !copy_missing(mirror, &odb, *commit)? {
                return Ok(None);
            }
        }
        base.set_odb(&odb)?;
        Ok(Some(base))
    }
}

/// True when a ref of `base` names a commit it lacks.
fn lacks_objects(base: &Repository) -> bool {
    let Ok(odb) = base.odb() else {
        return true;
    };
    let Ok(references) = base.references() else {
        return true;
    };
    references
        .flatten()
        .filter_map(|r| r.target())
        .any(|oid| !odb.exists(oid))
}

/// Fetches `branch` (only) into the base.
fn fetch_branch(
    base: &Repository,
    url: &str,
    branch: &str,
    callbacks: RemoteCallbacks<'_>,
) -> Result<(), git2::Error> {
    if let Some(path) = local_path(url) {
        return copy_branch(base, &path, branch);
    }
    let mut remote = base.remote_anonymous(url)?;
    let mut options = FetchOptions::new();
    options.remote_callbacks(callbacks);
    remote.fetch(
        &[format!("+refs/heads/{branch}:refs/remotes/origin/{branch}")],
        Some(&mut options),
        None,
    )
}

/// Copies into `view` the objects of `commit` that it lacks, read from `mirror`: the commits
/// down to ones it holds, and of their trees only the parts it lacks (a tree it holds is
/// complete). False when more than [`MAX_MISSING_COMMITS`] commits are missing.
fn copy_missing(mirror: &Repository, view: &Odb, commit: Oid) -> Result<bool, git2::Error> {
    let source = mirror.odb()?;
    let mut pending = vec![commit];
    let mut copied = 0;
    while let Some(id) = pending.pop() {
        if view.exists(id) {
            continue;
        }
        copied += 1;
        if copied > MAX_MISSING_COMMITS {
            return Ok(false);
        }
        copy_object(&source, view, id)?;
        let found = mirror.find_commit(id)?;
        copy_tree(mirror, &source, view, found.tree_id())?;
        pending.extend(found.parent_ids());
    }
    Ok(true)
}

fn copy_tree(mirror: &Repository, source: &Odb, view: &Odb, id: Oid) -> Result<(), git2::Error> {
    if view.exists(id) {
        return Ok(());
    }
    copy_object(source, view, id)?;
    let tree = mirror.find_tree(id)?;
    for entry in tree.iter() {
        match entry.kind() {
            Some(ObjectType::Tree) => copy_tree(mirror, source, view, entry.id())?,
            Some(ObjectType::Blob) if !view.exists(entry.id()) => {
                copy_object(source, view, entry.id())?;
            }
            // Submodules are commits of other repositories: not pushed.
            _ => {}
        }
    }
    Ok(())
}

fn copy_object(source: &Odb, view: &Odb, id: Oid) -> Result<(), git2::Error> {
    let object = source.read(id)?;
    view.write(object.kind(), object.data())?;
    Ok(())
}

/// The repository path of a local URL (`file://` or an absolute path).
fn local_path(url: &str) -> Option<PathBuf> {
    if url.starts_with('/') {
        return Some(PathBuf::from(url));
    }
    url::Url::parse(url)
        .ok()
        .filter(|u| u.scheme() == "file")
        .and_then(|u| u.to_file_path().ok())
}

/// The fetch of `branch` from a repository on this machine. libgit2's local transport sends
/// the objects of every ref the remote has, whatever the refspec asks for
/// (`local_download_pack` in `transports/local.c`): the base would hold every promotion
/// branch. So the pack is built here from `branch`'s history alone, less what the base holds.
fn copy_branch(base: &Repository, path: &Path, branch: &str) -> Result<(), git2::Error> {
    let remote = Repository::open(path)?;
    let tip = remote
        .find_reference(&format!("refs/heads/{branch}"))?
        .peel_to_commit()?
        .id();
    let mut walk = remote.revwalk()?;
    walk.push(tip)?;
    let held = base.odb()?;
    for reference in base.references()?.flatten() {
        // Only what the base holds (with all its history) can be left out of the pack; a ref
        // the remote does not know hides nothing.
        if let Some(id) = reference.target().filter(|id| held.exists(*id)) {
            let _ = walk.hide(id);
        }
    }
    let mut pack = remote.packbuilder()?;
    pack.insert_walk(&mut walk)?;
    if pack.object_count() > 0 {
        let mut buffer = git2::Buf::new();
        pack.write_buf(&mut buffer)?;
        let odb = base.odb()?;
        let mut writer = odb.packwriter()?;
        std::io::Write::write_all(&mut writer, &buffer)
            .map_err(|e| git2::Error::from_str(&e.to_string()))?;
        writer.commit()?;
    }
    base.reference(
        &format!("refs/remotes/origin/{branch}"),
        tip,
        true,
        "push base: fetched",
    )?;
    Ok(())
}
