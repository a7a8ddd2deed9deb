//! Gathering the facts of one reconcile from the git mirror: fetch, read the snapshot and tag
//! history at the head of the environments' branch, plan, and for every promotion compute the
//! edits and what its branch on the remote holds now. Blocking (git2); runs on a blocking
//! thread with the mirror locked.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use git2::Oid;

use crate::git::mirror::Mirror;
use crate::git::{self, GitTree};
use crate::model::{EnvName, ServiceName};
use crate::plan::{self, Facts, Plan, Request, Verdict};
use crate::promotion::{self, FileEdit};
use crate::repo::service::{VALUES, values_image};
use crate::repo::{Snapshot, TagHistory, Tree};
use crate::yaml;

/// The remote state of one promotion branch.
#[derive(Debug, Clone)]
pub struct BranchState {
    /// Its head on the remote, if it exists.
    pub tip: Option<Oid>,
    /// True when the tip holds exactly the desired content of every edited file.
    pub up_to_date: bool,
}

/// Everything reconcile needs from git, owned.
#[derive(Debug)]
pub struct Observed {
    /// Head of the environments' branch.
    pub head: Oid,
    /// The snapshot at head.
    pub snapshot: Snapshot,
    /// The plan.
    pub plan: Plan,
    /// Edits of every `promote` decision, by branch.
    pub edits: BTreeMap<String, Vec<FileEdit>>,
    /// Every `promoter/...` branch on the remote, with its state.
    pub branches: BTreeMap<String, BranchState>,
}

/// Fetches and plans. `open` lists the services with an open promotion MR per environment.
pub fn observe(
    mirror: &mut Mirror,
    branch: &str,
    open: &BTreeMap<EnvName, BTreeSet<ServiceName>>,
    requests: &[Request],
    now: DateTime<Utc>,
) -> Result<Observed, super::Error> {
    let clock = std::time::Instant::now();
    let head = mirror.fetch(branch)?;
    let fetched = clock.elapsed();
    let repo = mirror.repo();
    let tree = GitTree::at(repo, &head.to_string())?;
    let snapshot = Snapshot::load(&tree);
    let loaded = clock.elapsed();
    let history = history(repo, &head.to_string(), &snapshot, "")?;
    let walked = clock.elapsed();
    let plan = plan::plan(
        &snapshot,
        Facts {
            history: &history,
            open,
        },
        requests,
        now,
    );

    let mut edits = BTreeMap::new();
    for decision in plan
        .promotions
        .iter()
        .filter(|d| d.decision == Verdict::Promote)
    {
        let (Some(service), Some(candidate)) = (
            snapshot.service(&decision.to, &decision.service),
            &decision.candidate,
        ) else {
            continue;
        };
        match promotion::edits(
            &tree,
            service,
            candidate,
            decision.candidate_digest.as_deref(),
        ) {
            Ok(found) => {
                edits.insert(promotion::branch(&decision.to, &decision.service), found);
            }
            Err(problem) => tracing::warn!(%problem, "cannot build the promotion's edits"),
        }
    }

    let mut branches = BTreeMap::new();
    let references = repo
        .references_glob("refs/remotes/origin/promoter/*")
        .map_err(|source| git::mirror::Error::Git {
            action: "cannot list promotion branches".into(),
            source,
        })?;
    for reference in references.flatten() {
        let (Ok(name), Some(tip)) = (reference.name(), reference.target()) else {
            continue;
        };
        let name = name.trim_start_matches("refs/remotes/origin/").to_string();
        let up_to_date = match edits.get(&name) {
            Some(wanted) => holds(repo, tip, wanted),
            None => false,
        };
        branches.insert(
            name,
            BranchState {
                tip: Some(tip),
                up_to_date,
            },
        );
    }
    tracing::debug!(
        fetch_ms = fetched.as_millis() as u64,
        snapshot_ms = (loaded - fetched).as_millis() as u64,
        history_ms = (walked - loaded).as_millis() as u64,
        edits_and_branches_ms = (clock.elapsed() - walked).as_millis() as u64,
        "observed"
    );
    Ok(Observed {
        head,
        snapshot,
        plan,
        edits,
        branches,
    })
}

/// True when commit `tip` holds each edited file with its desired content.
fn holds(repo: &git2::Repository, tip: Oid, edits: &[FileEdit]) -> bool {
    let Ok(tree) = GitTree::at(repo, &tip.to_string()) else {
        return false;
    };
    edits.iter().all(|e| {
        tree.read(&e.path)
            .is_ok_and(|bytes| bytes == e.after.as_bytes())
    })
}

/// The tag history of every environment's `values.yaml` files at `head`, from one walk of the
/// first-parent history. `prefix` is where the snapshot's root sits in the repository (`""` at
/// the root, `sub/dir/` below it); history paths are recorded relative to the snapshot.
pub fn history(
    repo: &git2::Repository,
    head: &str,
    snapshot: &Snapshot,
    prefix: &str,
) -> Result<TagHistory, git::Error> {
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
    let mut history = TagHistory::new();
    for change in git::first_parent_changes(repo, head, &roots, VALUES, extract)? {
        for file in &change.changes {
            if let Some(local) = file.path.strip_prefix(prefix) {
                history.record(&change.commit, local, file.value.as_deref());
            }
        }
    }
    Ok(history)
}
