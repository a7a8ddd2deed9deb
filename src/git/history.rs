//! The tag history of every environment's `values.yaml` files, read from the first-parent
//! history of the environments' branch in one walk: whole, or extended by the commits after a
//! head already read (the daemon's cycles), which gives the same history as reading it whole.

use git2::{Oid, Repository};

use super::Error;
use crate::repo::service::{VALUES, values_image};
use crate::repo::{Snapshot, TagHistory};
use crate::yaml;

/// The tag history at `head`. `prefix` is where the snapshot's root sits in the repository
/// (`""` at the root, `sub/dir/` below it); history paths are recorded relative to the
/// snapshot.
pub fn tag_history(
    repo: &Repository,
    head: &str,
    snapshot: &Snapshot,
    prefix: &str,
) -> Result<TagHistory, Error> {
    let mut history = TagHistory::new();
    read_into(repo, head, None, snapshot, prefix, &mut history)?;
    Ok(history)
}

/// Extends `history`, read at `since`, to `head` with the commits after `since`; the values
/// files those commits changed (each once, relative to the snapshot). `None` (and `history`
/// untouched) when `since` is not on `head`'s first-parent line, for example after a force
/// push: the history must be read whole. The snapshot's environments must be those `history`
/// was read with (they say where the tag is in each file).
pub fn extend_tag_history(
    repo: &Repository,
    history: &mut TagHistory,
    since: Oid,
    head: &str,
    snapshot: &Snapshot,
    prefix: &str,
) -> Result<Option<Vec<String>>, Error> {
    read_into(repo, head, Some(since), snapshot, prefix, history)
}

fn read_into(
    repo: &Repository,
    head: &str,
    since: Option<Oid>,
    snapshot: &Snapshot,
    prefix: &str,
    history: &mut TagHistory,
) -> Result<Option<Vec<String>>, Error> {
    let roots: Vec<String> = snapshot
        .environments
        .iter()
        .map(|e| format!("{prefix}{}", e.path))
        .collect();
    let extract = |path: &str, bytes: &[u8]| -> Option<String> {
        let (env, service) = snapshot.owner_of(path.strip_prefix(prefix)?)?;
        let text = yaml::decode(bytes).ok()?;
        values_image(text, env.services.get(service))
            .ok()?
            .tag
            .map(|t| t.to_string())
    };
    let Some(changes) =
        super::first_parent_changes_since(repo, head, since, &roots, VALUES, extract)?
    else {
        return Ok(None);
    };
    let mut changed = std::collections::BTreeSet::new();
    for change in &changes {
        for file in &change.changes {
            if let Some(local) = file.path.strip_prefix(prefix) {
                history.record(&change.commit, local, file.value.as_deref());
                if since.is_some() {
                    changed.insert(local);
                }
            }
        }
    }
    Ok(Some(changed.into_iter().map(str::to_string).collect()))
}
