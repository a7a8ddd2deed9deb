//! Gathering the facts of one reconcile from the git mirror: fetch, read the snapshot and tag
//! history at the head of the environments' branch, plan, and for every promotion compute the
//! edits and what its branch on the remote holds now. Blocking (git2); runs on a blocking
//! thread with the mirror locked.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use git2::Oid;

use crate::git::mirror::Mirror;
use crate::git::signing::SigningKeys;
use crate::git::{self, GitTree};
use crate::plan::{Plan, Verdict};
use crate::promotion::{self, FileEdit};
use crate::repo::changed::{ChangedSince, changed_services};
use crate::repo::reuse::LoadCache;
use crate::repo::{Snapshot, TagHistory, Tree};

/// The remote state of one promotion branch.
#[derive(Debug, Clone)]
pub struct BranchState {
    /// Its head on the remote, if it exists.
    pub tip: Option<git::CommitId>,
    /// True when the tip holds exactly the desired content of every edited file.
    pub up_to_date: bool,
    /// Who made the tip commit, when promoter cannot prove it did (no valid signature by a
    /// trusted key): someone pushed to the branch by hand, and promoter keeps its hands off.
    pub foreign: Option<String>,
    /// When the tip was made: promoter commits and pushes in one go, so for its own commits
    /// this is the last push, which approvals must come after.
    pub pushed_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Everything reconcile needs from git, owned.
#[derive(Debug)]
pub struct Observed {
    /// Head of the environments' branch.
    pub head: git::CommitId,
    /// The snapshot at head (shared with what the daemon keeps for the next cycle).
    pub snapshot: Arc<Snapshot>,
    /// The plan (shared with the run's outcome).
    pub plan: Arc<Plan>,
    /// Edits of every `promote` decision, by branch.
    pub edits: BTreeMap<String, Vec<FileEdit>>,
    /// Every `promoter/...` branch on the remote, with its state.
    pub branches: BTreeMap<String, BranchState>,
    /// Tag history at head (shared with what the daemon keeps for the next cycle).
    pub history: Arc<TagHistory>,
    /// The app's changelog of each promotion, by branch, when the history says.
    pub changelogs: BTreeMap<String, Vec<git::changelog::Entry>>,
    /// The daemon's: what changed since the snapshot it read last (`None`: read whole).
    pub changed: Option<ChangedSince>,
}

/// The repository at the head of the environments' branch, read once per reconcile.
#[derive(Debug)]
pub struct Read {
    /// Head of the environments' branch.
    pub head: Oid,
    /// The snapshot at head (shared with what the daemon keeps for the next cycle).
    pub snapshot: Arc<Snapshot>,
    /// Tag history at head (shared with what the daemon keeps for the next cycle).
    pub history: Arc<TagHistory>,
    /// Requests recorded in promoter's signed commits on promotion branches.
    pub recorded: Vec<crate::plan::Request>,
    /// The daemon's: what changed since the snapshot it read last (`None`: read whole).
    pub changed: Option<ChangedSince>,
}

/// Who made commit `tip`, when promoter cannot prove it made it (its signature does not verify
/// against a trusted key): `name <email> (why)`. `None` for promoter's own commits.
pub fn unproven(repo: &git2::Repository, tip: Oid, keys: &SigningKeys) -> Option<String> {
    let why = keys.verify_commit(repo, tip).err()?;
    let who = repo.find_commit(tip).ok().map_or_else(
        || "someone".to_string(),
        |c| {
            let author = c.author();
            format!(
                "{} <{}>",
                author.name().unwrap_or("?"),
                author.email().unwrap_or("?")
            )
        },
    );
    Some(format!(
        "{who} (commit {}, not signed by promoter: {why})",
        &tip.to_string()[..8]
    ))
}

/// The requests recorded in the tips of the promotion branches that promoter provably made
/// (signed), each for the promotion its branch names: a request whose signed `Promotion:`
/// trailer names another promotion (a genuine commit copied onto another branch) is not read.
fn recorded_requests(
    repo: &git2::Repository,
    keys: &SigningKeys,
    mut proofs: Option<&mut HashMap<Oid, Option<String>>>,
) -> Vec<crate::plan::Request> {
    let Ok(references) = repo.references_glob(promotion::branches::REMOTE_GLOB) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut tips = std::collections::HashSet::new();
    for reference in references.flatten() {
        let (Ok(name), Ok(commit)) = (reference.name(), reference.peel_to_commit()) else {
            continue;
        };
        tips.insert(commit.id());
        let branch = name.trim_start_matches("refs/remotes/origin/");
        let Some((to, service)) = super::parse_branch(branch) else {
            continue;
        };
        let who = match proofs.as_deref_mut() {
            Some(known) => known
                .entry(commit.id())
                .or_insert_with(|| unproven(repo, commit.id(), keys))
                .clone(),
            None => unproven(repo, commit.id(), keys),
        };
        if let Some(who) = who {
            tracing::debug!(
                branch,
                who,
                "not reading requests from a commit promoter did not make"
            );
            continue;
        }
        let Some(recorded) = commit
            .message()
            .ok()
            .and_then(promotion::RecordedRequest::parse)
        else {
            continue;
        };
        if recorded.promotion.as_deref() != Some(branch) {
            tracing::warn!(
                branch,
                recorded_for = ?recorded.promotion,
                "a request recorded for another promotion is not honoured here"
            );
            continue;
        }
        out.push(crate::plan::Request {
            service,
            to,
            tag: recorded.tag,
            requested_by: recorded.requested_by,
            reason: recorded.reason,
            rollback: recorded.rollback,
            requested_at: recorded.requested_at,
        });
    }
    // Only tips still on the remote are worth remembering.
    if let Some(known) = proofs {
        known.retain(|tip, _| tips.contains(tip));
    }
    out
}

/// What the daemon's cycles learned of the repository, in memory only (git stays the record):
/// the head last read with its snapshot and tag history, and what each tree id held. The next
/// cycle reuses it where nothing changed: the same head is the same read; a head after it
/// extends the history by the new commits and reads again only the folders whose tree ids
/// changed.
#[derive(Debug, Default)]
pub struct Learned {
    at: Option<LearnedAt>,
    cache: LoadCache,
    /// Who made each promotion-branch tip promoter could not prove it made (`None`: it did).
    proofs: HashMap<Oid, Option<String>>,
    /// Each promotion's edits and changelog, by branch, as built for a head and candidate.
    prepared: HashMap<String, Prepared>,
    /// Whether each promotion-branch tip holds the edits wanted of it, by tip: the wanted
    /// edits' keyed hash and the answer (a tip is immutable; the edits may change).
    held: HashMap<Oid, (u64, bool)>,
    /// The key of those hashes (random per process: nobody can aim at a collision).
    hasher: std::hash::RandomState,
}

/// What a promotion's edits and changelog were built from: the same gives the same. Edits
/// read only the service's folder, and the changelog only the history of `app/<service>/`, so
/// a new head that changed neither (another service's release) reuses them. (A head whose
/// commits changed `app/<service>/` and changed it back keeps the changelog read before; its
/// text only, never what is promoted.)
#[derive(Debug, Clone, PartialEq, Eq)]
struct PreparedKey {
    /// The service's folder (the edits name its files).
    dir: String,
    /// The tree id of the service's folder (the head's id where it has none).
    folder: String,
    /// The tree id of `app/<service>/`, if the repository holds the app's sources.
    app: Option<String>,
    candidate: String,
    current: Option<String>,
    digest: Option<String>,
}

/// A promotion's edits and changelog, with what they were built from.
type Prepared = (
    PreparedKey,
    Vec<FileEdit>,
    Option<Vec<git::changelog::Entry>>,
);

#[derive(Debug)]
struct LearnedAt {
    head: Oid,
    /// The tree id of `environments/` at `head`: the history was read with these definitions.
    environments: Option<String>,
    snapshot: Arc<Snapshot>,
    history: Arc<TagHistory>,
}

impl Learned {
    /// How many service folders the last read of a new head read (not reused).
    pub fn folders_read_last(&self) -> usize {
        self.cache.read_last()
    }
}

/// Fetches, then reads the snapshot and the tag history at the head of `branch`, reusing what
/// `learned` holds (the daemon) or reading everything (`None`: a one-off reconcile). A mirror
/// found damaged on the way (missing objects) is cloned again and read whole once more.
pub fn read(
    mirror: &mut Mirror,
    branch: &str,
    keys: &SigningKeys,
    mut learned: Option<&mut Learned>,
) -> Result<Read, super::Error> {
    match read_fetched(mirror, branch, keys, learned.as_deref_mut()) {
        Err(e) if damaged(&e) => {
            tracing::warn!(error = %e, "the mirror is damaged; cloning it again");
            mirror.reclone()?;
            if let Some(learned) = learned.as_deref_mut() {
                *learned = Learned::default();
            }
            read_fetched(mirror, branch, keys, learned)
        }
        other => other,
    }
}

/// The environments at the head of `branch`, in promotion order, and the pairs lead time is
/// measured over ([`crate::history::pairs`]); fetched but neither verified nor planned on: for
/// listing metrics before the first reconcile.
pub fn environments(mirror: &mut Mirror, branch: &str) -> Result<super::Graph, super::Error> {
    let head = mirror.fetch(branch)?;
    let tree = GitTree::at(mirror.repo(), &head.to_string())?;
    let environments = Snapshot::load(&tree).environments;
    let names = environments.iter().map(|e| e.name.to_string()).collect();
    let pairs = crate::history::pairs(&environments)
        .into_iter()
        .map(|(from, to)| (from.to_string(), to.to_string()))
        .collect();
    Ok((names, pairs))
}

/// True for failures that come from objects missing in (or unreadable from) the mirror.
fn damaged(error: &super::Error) -> bool {
    use git2::ErrorClass::{Object, Odb, Tree, Zlib};
    let source = match error {
        super::Error::Mirror(git::mirror::Error::Damaged { .. }) => return true,
        super::Error::Git(
            git::Error::Resolve { source, .. }
            | git::Error::Walk { source, .. }
            | git::Error::Diff { source, .. }
            | git::Error::Read { source, .. },
        ) => source,
        _ => return false,
    };
    matches!(source.class(), Odb | Object | Tree | Zlib)
}

fn read_fetched(
    mirror: &mut Mirror,
    branch: &str,
    keys: &SigningKeys,
    learned: Option<&mut Learned>,
) -> Result<Read, super::Error> {
    let clock = std::time::Instant::now();
    let head = mirror.fetch(branch)?;
    let fetched = clock.elapsed();
    let (snapshot, history, changed, proofs) = match learned {
        Some(learned) => {
            let (snapshot, history, changed) = read_learned(mirror, head, learned)?;
            (snapshot, history, changed, Some(&mut learned.proofs))
        }
        None => {
            mirror.verify_tree(head)?;
            let repo = mirror.repo();
            let tree = GitTree::at(repo, &head.to_string())?;
            let snapshot = Snapshot::load(&tree);
            let history = git::history::tag_history(repo, &head.to_string(), &snapshot, "")?;
            (Arc::new(snapshot), Arc::new(history), None, None)
        }
    };
    let recorded = recorded_requests(mirror.repo(), keys, proofs);
    tracing::debug!(
        fetch_ms = fetched.as_millis() as u64,
        read_ms = (clock.elapsed() - fetched).as_millis() as u64,
        "read the repository"
    );
    Ok(Read {
        head,
        snapshot,
        history,
        recorded,
        changed,
    })
}

/// A read of the daemon's: the snapshot, the tag history, and what changed since the last.
type LearnedRead = (Arc<Snapshot>, Arc<TagHistory>, Option<ChangedSince>);

/// The snapshot and history at `head`, from what `learned` holds: the same head is the same
/// read; otherwise the changed folders are read again and the history grows by the commits
/// after the last head (read whole when the branch was rewritten or `environments/` changed).
/// What it returns is shared with what `learned` keeps, not copied; with it, what changed
/// since the snapshot read last (`None` when everything was read again).
fn read_learned(
    mirror: &Mirror,
    head: Oid,
    learned: &mut Learned,
) -> Result<LearnedRead, super::Error> {
    if let Some(at) = learned.at.as_ref().filter(|at| at.head == head) {
        let unchanged = ChangedSince {
            before: Arc::downgrade(&at.snapshot),
            services: Arc::default(),
        };
        return Ok((at.snapshot.clone(), at.history.clone(), Some(unchanged)));
    }
    let repo = mirror.repo();
    let tree = GitTree::at(repo, &head.to_string())?;
    let environments = tree.dir_id(crate::repo::environment::DIR);
    // Only what changed since the head verified last is checked, unless everything is read
    // again (other environment definitions): then every folder read is checked first.
    let verified = learned
        .at
        .as_ref()
        .filter(|at| environments.is_some() && at.environments == environments)
        .map(|at| at.head);
    mirror.verify_tree_since(head, verified)?;
    let snapshot = Snapshot::load_reusing(&tree, &mut learned.cache);
    let sha = head.to_string();
    let mut changed = None;
    let extended = match learned.at.take() {
        Some(at) if environments.is_some() && at.environments == environments => {
            let before = at.snapshot;
            // The last cycle's copy is gone by now; if not, the history is copied once.
            let mut history = Arc::unwrap_or_clone(at.history);
            let files =
                git::history::extend_tag_history(repo, &mut history, at.head, &sha, &snapshot, "")?;
            files.map(|files| {
                changed = changed_services(&before, &snapshot, &files)
                    .map(|services| (before, Arc::new(services)));
                history
            })
        }
        _ => None,
    };
    let history = match extended {
        Some(history) => history,
        None => {
            tracing::info!("reading the whole tag history");
            changed = None;
            git::history::tag_history(repo, &sha, &snapshot, "")?
        }
    };
    tracing::debug!(
        folders_read = learned.cache.read_last(),
        services_changed = changed.as_ref().map(|(_, s)| s.len()),
        "read the changed folders"
    );
    let (snapshot, history) = (Arc::new(snapshot), Arc::new(history));
    learned.at = Some(LearnedAt {
        head,
        environments,
        snapshot: snapshot.clone(),
        history: history.clone(),
    });
    // The snapshot before is dropped here unless the daemon still holds it (its dashboard and
    // deployments): a change from a snapshot nobody holds says nothing to anyone.
    let changed = changed.map(|(before, services)| ChangedSince {
        before: Arc::downgrade(&before),
        services,
    });
    Ok((snapshot, history, changed))
}

/// The first-parent commits from `head` back to `stop` (included), newest first, at most
/// `limit`; when `stop` is not among them, the newest `limit`.
pub fn chain(
    mirror: &Mirror,
    head: Oid,
    stop: &str,
    limit: usize,
) -> Result<Vec<String>, super::Error> {
    let repo = mirror.repo();
    let fail = |source| git::mirror::Error::Git {
        action: "cannot walk the branch's history".into(),
        source,
    };
    let mut walk = repo.revwalk().map_err(fail)?;
    walk.simplify_first_parent().map_err(fail)?;
    walk.push(head).map_err(fail)?;
    let mut out = Vec::new();
    for oid in walk.take(limit) {
        let oid = oid.map_err(fail)?.to_string();
        let done = oid == stop;
        out.push(oid);
        if done {
            break;
        }
    }
    Ok(out)
}

/// For the plan's promotions this run may act on (see [`ActsOn`]): the edits, and what each
/// promotion branch holds on the remote.
pub fn prepare(
    mirror: &Mirror,
    read: Read,
    plan: Plan,
    acts_on: &ActsOn,
    keys: &SigningKeys,
    mut learned: Option<&mut Learned>,
) -> Result<Observed, super::Error> {
    let clock = std::time::Instant::now();
    let Read {
        head,
        snapshot,
        history,
        changed,
        ..
    } = read;
    let repo = mirror.repo();
    let tree = GitTree::at(repo, &head.to_string())?;
    let remote = remote_branches(repo)?;
    let pushed: HashSet<&str> = remote.iter().map(|(name, _)| name.as_str()).collect();
    let trains = promotion::train::train_envs(&snapshot);
    let mut edits = BTreeMap::new();
    let mut changelogs = BTreeMap::new();
    // Promotions this run waits on (see [`ActsOn`]): their edits are built when it acts.
    let mut waiting = HashSet::new();
    for decision in plan
        .promotions
        .iter()
        .filter(|d| d.decision == Verdict::Promote)
    {
        let branch = promotion::branch(&decision.to, &decision.service);
        if !trains.contains(&decision.to)
            && !acts_on.may_touch(&snapshot, decision, &branch, &pushed)
        {
            waiting.insert(branch);
            continue;
        }
        let (Some(service), Some(candidate)) = (
            snapshot.service(&decision.to, &decision.service),
            &decision.candidate,
        ) else {
            continue;
        };
        // The same promotion from the same folder gives the same edits and changelog.
        let key = PreparedKey {
            dir: service.dir.clone(),
            folder: tree
                .dir_id(&service.dir)
                .unwrap_or_else(|| head.to_string()),
            app: tree.dir_id(&format!("app/{}", decision.service)),
            candidate: candidate.to_string(),
            current: decision.current.as_ref().map(|c| c.to_string()),
            digest: decision.candidate_digest.clone(),
        };
        let reusable = rollback_hold(decision, plan.generated_at).is_none();
        if reusable
            && let Some(learned) = learned.as_deref()
            && let Some((found, log)) = learned
                .prepared
                .get(&branch)
                .filter(|p| p.0 == key)
                .map(|p| (&p.1, &p.2))
        {
            if let Some(log) = log {
                changelogs.insert(branch.clone(), log.clone());
            }
            edits.insert(branch, found.clone());
            continue;
        }
        match promotion::edits(
            &tree,
            service,
            candidate,
            decision.candidate_digest.as_deref(),
        ) {
            Ok(mut found) => {
                if let Some(hold) = rollback_hold(decision, plan.generated_at) {
                    found.push(promotion::hold_edit(&tree, &hold));
                }
                if let Some(old) = &decision.current
                    && let Some(log) = git::changelog::changelog(
                        repo,
                        head,
                        decision.service.as_str(),
                        old.as_str(),
                        candidate.as_str(),
                    )
                {
                    changelogs.insert(branch.clone(), log);
                }
                if reusable && let Some(learned) = learned.as_deref_mut() {
                    let log = changelogs.get(&branch).cloned();
                    learned
                        .prepared
                        .insert(branch.clone(), (key, found.clone(), log));
                }
                edits.insert(branch, found);
            }
            Err(problem) => tracing::warn!(%problem, "cannot build the promotion's edits"),
        }
    }
    if let Some(learned) = learned.as_deref_mut() {
        learned
            .prepared
            .retain(|branch, _| edits.contains_key(branch) || waiting.contains(branch));
    }
    for env in snapshot
        .environments
        .iter()
        .filter(|e| e.promotes_from.is_some())
    {
        if promotion::train::is_train_env(&snapshot, &env.name) {
            let riders = promotion::train::riders(&plan, &env.name);
            let combined = promotion::train::edits(&riders, &edits);
            if !combined.is_empty() {
                edits.insert(promotion::train::branch(&env.name), combined);
            }
        }
    }
    let mut branches = BTreeMap::new();
    for (name, tip) in remote {
        let up_to_date = edits
            .get(&name)
            .is_some_and(|wanted| match learned.as_deref_mut() {
                Some(learned) => {
                    let key = std::hash::BuildHasher::hash_one(&learned.hasher, wanted);
                    match learned.held.get(&tip) {
                        Some(&(known, answer)) if known == key => answer,
                        _ => {
                            let answer = holds(repo, tip, wanted);
                            learned.held.insert(tip, (key, answer));
                            answer
                        }
                    }
                }
                None => holds(repo, tip, wanted),
            });
        let pushed_at = repo
            .find_commit(tip)
            .ok()
            .and_then(|c| chrono::DateTime::from_timestamp(c.committer().when().seconds(), 0));
        let foreign = match learned.as_deref_mut() {
            Some(learned) => learned
                .proofs
                .entry(tip)
                .or_insert_with(|| unproven(repo, tip, keys))
                .clone(),
            None => unproven(repo, tip, keys),
        };
        branches.insert(
            name,
            BranchState {
                tip: Some(tip.into()),
                up_to_date,
                foreign,
                pushed_at,
            },
        );
    }
    if let Some(learned) = learned {
        // Only tips still on the remote are worth remembering.
        let tips: std::collections::HashSet<Oid> = branches
            .values()
            .filter_map(|b| b.tip.map(Oid::from))
            .collect();
        learned.held.retain(|tip, _| tips.contains(tip));
    }
    tracing::debug!(
        prepare_ms = clock.elapsed().as_millis() as u64,
        "prepared the promotions"
    );
    Ok(Observed {
        head: head.into(),
        snapshot,
        plan: Arc::new(plan),
        edits,
        branches,
        history,
        changelogs,
        changed,
    })
}

/// The promotion branches on the remote, by name, with their tips.
fn remote_branches(repo: &git2::Repository) -> Result<Vec<(String, Oid)>, super::Error> {
    let references = repo
        .references_glob(promotion::branches::REMOTE_GLOB)
        .map_err(|source| git::mirror::Error::Git {
            action: "cannot list promotion branches".into(),
            source,
        })?;
    Ok(references
        .flatten()
        .filter_map(|reference| {
            let name = reference.name().ok()?;
            let name = name.trim_start_matches("refs/remotes/origin/").to_string();
            Some((name, reference.target()?))
        })
        .collect())
}

/// What a run may act on, for [`prepare`] to build only the edits it can use.
#[derive(Debug, Clone, Default)]
pub struct ActsOn {
    /// The run's scope.
    pub scope: super::Scope,
    /// The source branches of the open promotion MRs.
    pub open: HashSet<String>,
}

impl ActsOn {
    /// False for a due promotion this run only reports as waiting: out of its scope, or with
    /// neither an MR nor a branch while its environment may not open one now (its schedule has
    /// not fired). Its edits and changelog would not be used.
    fn may_touch(
        &self,
        snapshot: &Snapshot,
        decision: &crate::plan::Decision,
        branch: &str,
        pushed: &HashSet<&str>,
    ) -> bool {
        if !self.scope.covers_promotion(&decision.to, &decision.service) {
            return false;
        }
        let scheduled = snapshot
            .environment(&decision.to)
            .is_some_and(|e| e.schedule.is_some());
        self.scope.may_open(&decision.to, scheduled)
            || self.open.contains(branch)
            || pushed.contains(branch)
    }
}

/// The hold a rollback records in its MR: the tag rolled back from, who, why, since when.
fn rollback_hold(
    decision: &crate::plan::Decision,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<crate::policy::hold::Hold> {
    let (true, Some(from), Some(to), Some(by)) = (
        decision.rollback,
        decision.current.clone(),
        decision.candidate.as_ref(),
        decision.requested_by.clone(),
    ) else {
        return None;
    };
    (from != *to).then(|| crate::policy::hold::Hold {
        file: crate::policy::hold::file(&decision.to, &decision.service),
        service: decision.service.clone(),
        env: decision.to.clone(),
        tag: from,
        by,
        because: decision
            .request_reason
            .clone()
            .unwrap_or_else(|| "rollback".to_string()),
        since: decision.requested_at.unwrap_or(now),
    })
}

/// True when commit `tip` holds each edited file with its desired content, and its own
/// change touches no other file (a train a service left must be rebuilt without it).
fn holds(repo: &git2::Repository, tip: Oid, edits: &[FileEdit]) -> bool {
    let Ok(tree) = GitTree::at(repo, &tip.to_string()) else {
        return false;
    };
    let contents = edits.iter().all(|e| {
        tree.read(&e.path)
            .is_ok_and(|bytes| bytes == e.after.as_bytes())
    });
    contents && touches_only(repo, tip, edits).unwrap_or(false)
}

/// True when the tip commit changes (against its first parent) only files of `edits`.
fn touches_only(
    repo: &git2::Repository,
    tip: Oid,
    edits: &[FileEdit],
) -> Result<bool, git2::Error> {
    let commit = repo.find_commit(tip)?;
    let parent = commit.parent(0)?.tree()?;
    // Only the subtrees whose ids differ are read: one service's folder, not every `apps/`.
    let changed = git::tree_diff::changed_paths(repo, Some(&parent), &commit.tree()?)?;
    Ok(changed
        .iter()
        .all(|c| edits.iter().any(|e| e.path == c.path)))
}
