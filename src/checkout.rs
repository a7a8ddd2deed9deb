//! A checkout as the CLI reads it: the snapshot of a directory plus the tag history of the git
//! repository around it (first-parent history of HEAD), when there is one. Glue between the
//! core ([`repo`](crate::repo)) and the git edge.

use std::path::Path;

use crate::git;
use crate::repo::{DirTree, Snapshot, TagHistory};

/// A directory read as promoter sees it.
#[derive(Debug)]
pub struct Checkout {
    /// The files.
    pub tree: DirTree,
    /// Environments, policies, services.
    pub snapshot: Snapshot,
    /// When each tag landed; unknown outside git.
    pub history: TagHistory,
}

/// Reads `dir` and, when it is inside a git repository, the history of HEAD.
pub fn read(dir: &Path) -> Result<Checkout, git::Error> {
    let tree = DirTree::new(dir);
    let snapshot = Snapshot::load(&tree);
    let history = history(dir, &snapshot)?;
    Ok(Checkout {
        tree,
        snapshot,
        history,
    })
}

/// The tag history of every environment's `values.yaml` files, from one walk of HEAD's
/// first-parent history. Unknown when `dir` is not in a git repository or has no commits.
pub fn history(dir: &Path, snapshot: &Snapshot) -> Result<TagHistory, git::Error> {
    let Some(opened) = git::open(dir)? else {
        return Ok(TagHistory::unknown());
    };
    if !opened.has_commits() {
        return Ok(TagHistory::unknown());
    }
    let prefix = if opened.prefix.is_empty() {
        String::new()
    } else {
        format!("{}/", opened.prefix)
    };
    crate::git::history::tag_history(&opened.repo, "HEAD", snapshot, &prefix)
}
