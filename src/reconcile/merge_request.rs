//! The merge-request steps every promoter MR goes through, shared by one promotion's MR
//! (`act.rs`) and a release train's (`train.rs`): push the branch's commit, open the MR or adopt
//! the one GitLab already has, say a note once (recorded by a label), keep hands off a branch
//! someone else pushed to, close and delete what is no longer due, and merge when allowed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::observe::Observed;
use super::{Action, ActionKind, Error, Reconciler};
use crate::forge::{self, Forge, MergeOutcome, MergeRequest, MrUpdate, NewMergeRequest};
use crate::git::{CommitId, mirror};
use crate::plan::Decision;
use crate::promotion;

pub(super) fn action(branch: &str, kind: ActionKind, detail: impl Into<String>) -> Action {
    Action {
        branch: branch.to_string(),
        kind,
        detail: detail.into(),
        url: None,
        iid: None,
    }
}

/// Closes the MR of a promotion that is no longer due and deletes its branch.
#[tracing::instrument(skip_all, fields(branch = %branch, mr = mr.as_ref().map(|m| m.iid)))]
pub(super) async fn retire<F: Forge>(
    r: &Reconciler<F>,
    observed: &Observed,
    branch: &str,
    mr: Option<MergeRequest>,
    reasons: &[String],
) -> Result<Action, Error> {
    if let Some(who) = observed
        .branches
        .get(branch)
        .and_then(|b| b.foreign.clone())
    {
        return hands_off(r, branch, mr.as_ref(), &who).await;
    }
    let tip = observed.branches.get(branch).and_then(|b| b.tip);
    let Some(mr) = mr else {
        let Some(tip) = tip else {
            return Ok(action(branch, ActionKind::Unchanged, reasons.join("; ")));
        };
        delete_branch(r, branch, tip).await?;
        return Ok(action(
            branch,
            ActionKind::BranchDeleted,
            "a promotion branch without merge request",
        ));
    };
    let note = r.templates.closed(reasons)?;
    r.forge.add_note(mr.iid, &note).await?;
    r.forge
        .update_merge_request(
            mr.iid,
            &MrUpdate {
                close: true,
                ..MrUpdate::default()
            },
        )
        .await?;
    if let Some(tip) = tip {
        delete_branch(r, branch, tip).await?;
    }
    Ok(action(
        branch,
        ActionKind::Closed,
        format!("!{}: {}", mr.iid, reasons.join("; ")),
    ))
}

/// Builds one commit of `edits` on `head` and pushes it to `branch` (leased on `tip`), only
/// while the environments' branch is still at `head`: a commit that landed meanwhile is never
/// left out of the promotion's base (the run plans again, see `Outcome::replan`).
pub(super) async fn commit_and_push<F: Forge>(
    r: &Reconciler<F>,
    head: CommitId,
    edits: Vec<promotion::FileEdit>,
    message: String,
    branch: &str,
    tip: Option<CommitId>,
    now: DateTime<Utc>,
) -> Result<CommitId, Error> {
    let (target, environments, author) = (
        branch.to_string(),
        r.config.branch.clone(),
        r.config.author.clone(),
    );
    // The mirror speaks git2's ids; the conversions stay at this call.
    r.with_mirror(move |m| {
        let commit = m.commit_edits(head.into(), &edits, &message, &author, now.timestamp())?;
        m.push_onto(
            commit,
            &target,
            tip.map(Into::into),
            &environments,
            head.into(),
        )?;
        Ok(commit.into())
    })
    .await
}

/// One promotion commit for [`commit_and_push_all`]: `edits` with `message`, for `branch`,
/// whose remote tip must still be `tip`.
pub(super) struct PushJob {
    pub branch: String,
    pub edits: Vec<promotion::FileEdit>,
    pub message: String,
    pub tip: Option<CommitId>,
}

/// [`commit_and_push`] for many branches at once: each job's commit built on `head`, then
/// pushed several to a connection ([`mirror::Mirror::push_all_onto`]: one walk of the
/// target's tree per push instead of per branch). Each job's answer, by branch: a failure
/// (its commit, its lease, its rejection, or the target moving) is that branch's alone. The
/// mirror is held for one push at a time, not for the whole batch.
pub(super) async fn commit_and_push_all<F: Forge>(
    r: &Reconciler<F>,
    head: CommitId,
    jobs: Vec<PushJob>,
    now: DateTime<Utc>,
) -> BTreeMap<String, Result<CommitId, Error>> {
    let mut answers = BTreeMap::new();
    let mut jobs = jobs.into_iter().peekable();
    while jobs.peek().is_some() {
        let chunk: Vec<PushJob> = jobs.by_ref().take(mirror::MAX_BRANCHES_PER_PUSH).collect();
        let branches: Vec<String> = chunk.iter().map(|j| j.branch.clone()).collect();
        let (environments, author) = (r.config.branch.clone(), r.config.author.clone());
        let pushed = r
            .with_mirror(move |m| {
                Ok(commit_and_push_chunk(
                    m,
                    head,
                    chunk,
                    &environments,
                    &author,
                    now,
                ))
            })
            .await;
        match pushed {
            Ok(pushed) => answers.extend(pushed),
            Err(e) => {
                let message = e.to_string();
                answers.extend(
                    branches
                        .into_iter()
                        .map(|b| (b, Err(Error::Worker(message.clone())))),
                );
            }
        }
    }
    answers
}

/// One push of [`commit_and_push_all`]: the jobs' commits, then their push.
fn commit_and_push_chunk(
    m: &mut mirror::Mirror,
    head: CommitId,
    jobs: Vec<PushJob>,
    environments: &str,
    author: &mirror::Author,
    now: DateTime<Utc>,
) -> Vec<(String, Result<CommitId, Error>)> {
    let mut answers = Vec::new();
    let mut updates = Vec::new();
    for job in jobs {
        match m.commit_edits(
            head.into(),
            &job.edits,
            &job.message,
            author,
            now.timestamp(),
        ) {
            Ok(commit) => updates.push(mirror::BranchUpdate {
                commit,
                branch: job.branch,
                expected: job.tip.map(Into::into),
            }),
            Err(e) => answers.push((job.branch, Err(Error::from(e)))),
        }
    }
    let pushed = m.push_all_onto(&updates, environments, head.into());
    for (update, result) in updates.into_iter().zip(pushed) {
        let answer = result.map(|()| update.commit.into()).map_err(Error::from);
        answers.push((update.branch, answer));
    }
    answers
}

/// True when `error` says a branch moved under the run: the environments' branch (the
/// promotion must be built on its new head) or the promotion branch itself (the lease was
/// refused: someone pushed; the next cycle sees their commit and keeps its hands off). Either
/// way the run plans again.
pub(super) fn moved_under_the_run(error: &Error) -> bool {
    matches!(
        error,
        Error::Mirror(mirror::Error::TargetMoved { .. } | mirror::Error::Lease { .. })
    )
}

/// Says `note` on the MR, then adds `label` (the label records that the note was said: a run
/// killed between the two says it again, never not at all).
pub(super) async fn note_and_label<F: Forge>(
    r: &Reconciler<F>,
    mr: &MergeRequest,
    note: &str,
    label: &str,
) -> Result<(), Error> {
    r.forge.add_note(mr.iid, note).await?;
    let mut labels = mr.labels.clone();
    labels.push(label.to_string());
    r.forge
        .update_merge_request(
            mr.iid,
            &MrUpdate {
                labels: Some(labels),
                ..MrUpdate::default()
            },
        )
        .await?;
    Ok(())
}

/// Opens the MR, or adopts the open one when GitLab answers 409 for its source branch.
/// `(mr, true)` when opened now.
pub(super) async fn open_or_adopt<F: Forge>(
    r: &Reconciler<F>,
    new: &NewMergeRequest,
) -> Result<(MergeRequest, bool), Error> {
    match r.forge.create_merge_request(new).await {
        Ok(mr) => Ok((mr, true)),
        Err(forge::Error::Duplicate { .. }) => r
            .forge
            .open_merge_request_from(&new.source_branch, &new.target_branch)
            .await?
            .map(|mr| (mr, false))
            .ok_or_else(|| {
                Error::Forge(forge::Error::Decode {
                    operation: format!("adopt the MR of {}", new.source_branch),
                    message: "GitLab says an MR exists for the branch but lists none".into(),
                })
            }),
        Err(e) => Err(e.into()),
    }
}

/// The label on an MR whose branch someone pushed to by hand.
pub const MODIFIED_LABEL: &str = "promoter:modified-by-hand";

/// Leaves a promotion alone because someone pushed to its branch; says so on the MR once.
pub(super) async fn hands_off<F: Forge>(
    r: &Reconciler<F>,
    branch: &str,
    mr: Option<&MergeRequest>,
    who: &str,
) -> Result<Action, Error> {
    if let Some(mr) = mr
        && !mr.labels.iter().any(|l| l == MODIFIED_LABEL)
    {
        let note = format!(
            "{} holds a commit promoter cannot prove it made: {}. promoter signs every commit it makes, so this is someone's work: promoter will not overwrite that work or merge this MR. To hand the promotion back to promoter, close this MR and delete the branch; promoter opens a fresh one at the next run.",
            crate::text::markdown::code(branch),
            crate::text::markdown::inline(who)
        );
        note_and_label(r, mr, &note, MODIFIED_LABEL).await?;
    }
    Ok(action(
        branch,
        ActionKind::HandsOff,
        format!("blocked: modified by {who}; delete the branch to hand it back"),
    ))
}

async fn delete_branch<F: Forge>(
    r: &Reconciler<F>,
    branch: &str,
    tip: CommitId,
) -> Result<(), Error> {
    let branch = branch.to_string();
    r.with_mirror(move |m| m.delete_branch(&branch, tip.into()).map_err(Error::from))
        .await
}

/// Merges when GitLab has seen the pushed head, calls it mergeable, and enough allowed
/// approvers approved. `listed` is the MR as this run's list call returned it: it decides
/// whether approvals are worth reading; the MR is read fresh only right before merging.
/// `Some(detail)` when merged.
pub(super) async fn try_merge<F: Forge>(
    r: &Reconciler<F>,
    snapshot: &crate::repo::Snapshot,
    decision: &Decision,
    listed: &MergeRequest,
    sha: &str,
    pushed_at: Option<DateTime<Utc>>,
    required: u32,
) -> Result<Option<String>, Error> {
    let iid = listed.iid;
    let ready = |mr: &MergeRequest| {
        mr.sha.as_deref() == Some(sha) && mr.detailed_merge_status.as_deref() == Some("mergeable")
    };
    if !ready(listed) {
        tracing::info!(iid, status = ?listed.detailed_merge_status, "not mergeable yet (or GitLab has not seen the push)");
        return Ok(None);
    }
    let allowed = snapshot.policies.for_env(&decision.to).approvers;
    let approvals = r.approvals_of(listed).await?;
    // Only approvals given after the last push count: an approval of an older commit is not
    // an approval of what would be merged. Without a time (no system note), it does not count.
    let counted = approvals
        .iter()
        .filter(|a| allowed.is_empty() || allowed.contains(&a.username))
        .filter(|a| match (a.at, pushed_at) {
            (Some(at), Some(pushed)) => at >= pushed,
            (None, _) => false,
            (Some(_), None) => true,
        })
        .count();
    if counted < required as usize {
        tracing::info!(iid, counted, required, "waiting for approvals");
        return Ok(None);
    }
    let fresh = r.forge.merge_request(iid).await?;
    let require_pipeline = snapshot.policies.for_env(&decision.to).require_pipeline;
    match &fresh.head_pipeline {
        Some(p) if p.sha != sha || p.status != "success" => {
            tracing::info!(
                iid,
                pipeline_sha = p.sha,
                status = p.status,
                "the pipeline of the pushed commit has not succeeded"
            );
            return Ok(None);
        }
        None if require_pipeline => {
            tracing::info!(
                iid,
                "waiting for a pipeline on the pushed commit (require_pipeline)"
            );
            return Ok(None);
        }
        _ => {}
    }
    if !ready(&fresh) {
        tracing::info!(iid, status = ?fresh.detailed_merge_status, "not mergeable any more");
        return Ok(None);
    }
    match r.forge.merge(iid, sha).await? {
        MergeOutcome::Merged(commit) => Ok(Some(format!(
            "merged with {counted} approval(s){}",
            commit.map(|c| format!(" as {c}")).unwrap_or_default()
        ))),
        MergeOutcome::ShaMismatch => {
            tracing::info!(
                iid,
                "the branch moved before the merge; re-planning next run"
            );
            Ok(None)
        }
        MergeOutcome::NotMergeable(why) => {
            tracing::info!(iid, why, "GitLab refused the merge");
            Ok(None)
        }
    }
}
