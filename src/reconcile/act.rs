//! Converging GitLab to the plan, one promotion at a time, idempotently: push the promotion
//! branch only when its files differ from what the plan wants (the branches of the next
//! promotions, up to four, in one push right before the first of their MRs: [`push_ahead`]),
//! open the MR or adopt the one GitLab says exists (409), update its text only when it changed,
//! merge when the environment allows it, close MRs (and delete branches) that are no longer
//! due. A failure stops only its own promotion; the next run tries again. The MR steps shared
//! with release trains (open or adopt, note and label, hands off, retire, push, merge) are in
//! [`super::merge_request`].

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::merge_request::{
    PushJob, action, commit_and_push, commit_and_push_all, hands_off, moved_under_the_run,
    note_and_label, open_or_adopt, retire, try_merge,
};
use super::observe::Observed;
use super::{
    Action, ActionKind, BRANCH_PREFIX, Error, LABEL, Outcome, Reconciler, Scope, parse_branch,
};
use crate::forge::{Forge, MergeRequest, MrUpdate, NewMergeRequest};
use crate::git::{CommitId, mirror};
use crate::plan::{Decision, Verdict};
use crate::promotion;
use crate::promotion::describe::{ChangeRow, GateRow, PromotionText};

const MARKER: &str = "<!-- promoter: ";

/// What an MR's text is about, recorded in its description (an HTML comment) so that the next
/// run can tell a real change from the passing of time: the description is rewritten only when
/// this changes, never because a soak grew from 2h to 3h, or when the text above it is not the
/// text promoter wrote (`text`, its SHA-256): a person who edits the description and keeps the
/// marker does not get to speak for promoter to reviewers.
#[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Marker {
    candidate: String,
    current: Option<String>,
    digest: Option<String>,
    requested_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
}

impl Marker {
    fn of(decision: &Decision) -> Self {
        Self {
            candidate: decision
                .candidate
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            current: decision.current.as_ref().map(ToString::to_string),
            digest: decision.candidate_digest.clone(),
            requested_by: decision.requested_by.clone(),
            text: None,
        }
    }

    /// This marker for the description `body` it ends.
    fn over(self, body: &str) -> Self {
        use sha2::Digest;
        let normal = body.replace("\r\n", "\n");
        let hash = sha2::Sha256::digest(normal.trim_end().as_bytes());
        Self {
            text: Some(hex::encode(hash)),
            ..self
        }
    }

    /// The marker an earlier run left in `description`, when the text above it is still the
    /// text that run wrote.
    fn read_intact(description: Option<&str>) -> Option<Self> {
        let description = description?;
        let body = &description[..description.rfind(MARKER)?];
        let recorded = Self::read(Some(description))?;
        let fresh = Self {
            text: None,
            ..Self::read(Some(description))?
        }
        .over(body);
        (recorded.text.is_some() && recorded == fresh).then_some(recorded)
    }

    fn render(&self) -> String {
        format!(
            "{MARKER}{} -->",
            serde_json::to_string(self).expect("plain data")
        )
    }

    /// The marker an earlier run left in `description`.
    fn read(description: Option<&str>) -> Option<Self> {
        let description = description?;
        let rest = &description[description.rfind(MARKER)? + MARKER.len()..];
        serde_json::from_str(rest.split(" -->").next()?).ok()
    }
}

fn labels(env: &str) -> Vec<String> {
    vec![LABEL.to_string(), format!("env:{env}")]
}

fn same_labels(a: &[String], b: &[String]) -> bool {
    a.iter().collect::<BTreeSet<_>>() == b.iter().collect::<BTreeSet<_>>()
}

/// Applies the plan in `observed`.
pub async fn act<F: Forge>(
    r: &Reconciler<F>,
    scope: &Scope,
    observed: Observed,
    open: Vec<MergeRequest>,
    now: DateTime<Utc>,
) -> Result<Outcome, Error> {
    let mut by_branch: BTreeMap<String, MergeRequest> = open
        .into_iter()
        .filter(|mr| mr.source_branch.starts_with(BRANCH_PREFIX))
        .map(|mr| (mr.source_branch.clone(), mr))
        .collect();
    let mut outcome = Outcome {
        head: observed.head.to_string(),
        ..Outcome::default()
    };
    let mut handled = BTreeSet::new();
    let trains = super::train::train_envs(&observed.snapshot);
    // Branches pushed ahead of their promotion's turn, several to a push (see [`push_ahead`]).
    let mut pushed = BTreeMap::new();

    for (i, decision) in observed.plan.promotions.iter().enumerate() {
        if !scope.covers_promotion(&decision.to, &decision.service) {
            continue;
        }
        let branch = promotion::branch(&decision.to, &decision.service);
        handled.insert(branch.clone());
        if !pushed.contains_key(&branch) {
            let ahead = &observed.plan.promotions[i..];
            let due = push_ahead(r, scope, &observed, &by_branch, &trains, ahead, now).await;
            pushed.extend(due);
        }
        let mr = by_branch.remove(&branch);
        let foreign = observed
            .branches
            .get(&branch)
            .and_then(|b| b.foreign.clone());
        let result = if let Some(who) = foreign {
            // Someone's commit is on the branch: whatever the plan says, promoter neither
            // overwrites, closes, pauses nor merges it.
            hands_off(r, &branch, mr.as_ref(), &who).await
        } else if super::train::rides(&trains, decision) {
            // The train carries it; an MR of its own from before the train is closed.
            let reasons = [format!(
                "rides the {} release train ({})",
                decision.to,
                super::train::branch(&decision.to)
            )];
            retire(r, &observed, &branch, mr, &reasons).await
        } else if decision.decision == Verdict::Promote {
            let pushed = pushed.remove(&branch);
            ensure(r, scope, &observed, decision, &branch, mr, pushed, now).await
        } else if let Some(mr) = mr.as_ref().filter(|_| only_frozen(decision)) {
            pause(r, &branch, mr, decision).await
        } else if decision.requested_by.is_some() {
            // A person's request that the gates refuse changes nothing: an MR opened by the
            // schedule for another candidate stays as it is.
            Ok(action(
                &branch,
                ActionKind::Unchanged,
                decision.reasons.join("; "),
            ))
        } else {
            retire(r, &observed, &branch, mr, &decision.reasons).await
        };
        outcome.actions.push(result.unwrap_or_else(|e| {
            if moved_under_the_run(&e) {
                outcome.replan = true;
            }
            tracing::warn!(branch, error = %e, "promotion failed this time");
            action(&branch, ActionKind::Failed, e.to_string())
        }));
    }

    // Release trains: one MR per environment whose policy says `group: train`.
    if scope.service.is_none() {
        for env in observed.snapshot.environments.iter().filter(|e| {
            e.promotes_from.is_some() && scope.covers(&e.name) && trains.contains(&e.name)
        }) {
            let branch = super::train::branch(&env.name);
            handled.insert(branch.clone());
            let mr = by_branch.remove(&branch);
            let result = super::train::ensure(r, scope, &observed, env, mr, now).await;
            outcome.actions.push(result.unwrap_or_else(|e| {
                if moved_under_the_run(&e) {
                    outcome.replan = true;
                }
                tracing::warn!(branch, error = %e, "the train failed this time");
                action(&branch, ActionKind::Failed, e.to_string())
            }));
        }
    }

    // MRs and branches of promotions the plan no longer has (service or environment removed).
    let leftovers: BTreeSet<String> = by_branch
        .keys()
        .chain(observed.branches.keys())
        .filter(|b| !handled.contains(*b))
        .cloned()
        .collect();
    for branch in leftovers {
        if parse_branch(&branch)
            .is_some_and(|(env, service)| !scope.covers_promotion(&env, &service))
        {
            continue;
        }
        let mr = by_branch.remove(&branch);
        let reasons = [
            "the plan no longer has this promotion (its service or environment is gone)"
                .to_string(),
        ];
        let result = retire(r, &observed, &branch, mr, &reasons).await;
        outcome
            .actions
            .push(result.unwrap_or_else(|e| action(&branch, ActionKind::Failed, e.to_string())));
    }
    Ok(outcome)
}

/// The label on an MR whose soak or freeze a break-glass request waived.
pub const BREAK_GLASS_LABEL: &str = "break-glass";

/// The label on an open promotion MR that a freeze stopped: it stays open, unmerged.
pub const FROZEN_LABEL: &str = "promoter:frozen";

/// True when a freeze is the only thing stopping the promotion: its MR waits, open.
fn only_frozen(decision: &Decision) -> bool {
    let failed: Vec<_> = decision.gates.iter().filter(|g| !g.passed).collect();
    !failed.is_empty()
        && failed
            .iter()
            .all(|g| g.gate == crate::policy::gate::Gate::Freeze)
}

/// Stops the line for an open promotion: the MR stays as it is, gets a note and a label once
/// when the freeze starts, and is not merged while it lasts.
async fn pause<F: Forge>(
    r: &Reconciler<F>,
    branch: &str,
    mr: &MergeRequest,
    decision: &Decision,
) -> Result<Action, Error> {
    let why = decision.reasons.join("; ");
    if !mr.labels.iter().any(|l| l == FROZEN_LABEL) {
        let note = promotion::describe::truncate(
            &format!(
                "**Stop the line.** {}.\n\nThis merge request stays open and promoter will not merge it while the freeze lasts; it says so here when the freeze ends.",
                crate::text::markdown::inline(&why)
            ),
            promotion::describe::MAX_TEXT,
        );
        note_and_label(r, mr, &note, FROZEN_LABEL).await?;
        return Ok(action(
            branch,
            ActionKind::Updated,
            format!("!{} frozen: {why}", mr.iid),
        ));
    }
    Ok(action(
        branch,
        ActionKind::Unchanged,
        format!("!{} frozen: {why}", mr.iid),
    ))
}

/// When the first promotion of `ahead` is one [`ensure`] will push: its branch and those of
/// the next promotions ensure will push, up to [`mirror::MAX_BRANCHES_PER_PUSH`], built and
/// pushed together ([`commit_and_push_all`]: one connection and one walk of the target's tree
/// for all of them) before their MRs. Each promotion's push still comes before its MR, and a
/// run killed between the push and the MRs leaves at most that many branches without MR,
/// which the next run finds up to date and opens the MRs of. Each answer, by branch, is used
/// by [`push_branch`]; nothing when the first promotion needs no push.
async fn push_ahead<F: Forge>(
    r: &Reconciler<F>,
    scope: &Scope,
    observed: &Observed,
    by_branch: &BTreeMap<String, MergeRequest>,
    trains: &BTreeSet<&crate::model::EnvName>,
    ahead: &[Decision],
    now: DateTime<Utc>,
) -> BTreeMap<String, Result<CommitId, Error>> {
    let Some((first, rest)) = ahead.split_first() else {
        return BTreeMap::new();
    };
    let Some(first) = push_job(scope, observed, by_branch, trains, first, now) else {
        return BTreeMap::new();
    };
    let jobs: Vec<PushJob> = std::iter::once(first)
        .chain(
            rest.iter()
                .filter_map(|decision| push_job(scope, observed, by_branch, trains, decision, now)),
        )
        .take(mirror::MAX_BRANCHES_PER_PUSH)
        .collect();
    commit_and_push_all(r, observed.head, jobs, now).await
}

/// The commit [`ensure`] would build and push for `decision`, if it would push one: the same
/// checks, in the same order, as the run's loop and [`ensure`].
fn push_job(
    scope: &Scope,
    observed: &Observed,
    by_branch: &BTreeMap<String, MergeRequest>,
    trains: &BTreeSet<&crate::model::EnvName>,
    decision: &Decision,
    now: DateTime<Utc>,
) -> Option<PushJob> {
    if decision.decision != Verdict::Promote
        || !scope.covers_promotion(&decision.to, &decision.service)
        || super::train::rides(trains, decision)
    {
        return None;
    }
    let branch = promotion::branch(&decision.to, &decision.service);
    let mr = by_branch.get(&branch);
    let Ready::Go {
        candidate, edits, ..
    } = ready(scope, observed, decision, &branch, mr)
    else {
        return None;
    };
    needs_push(observed, &branch, mr).then(|| PushJob {
        message: commit_message(decision, &candidate, &branch, now),
        edits: edits.to_vec(),
        tip: observed.branches.get(&branch).and_then(|s| s.tip),
        branch,
    })
}

/// Makes sure the promotion's branch, MR and (where allowed) merge exist, in three steps:
/// [`push_branch`], [`open_or_update_mr`], then [`try_merge`] where the environment allows it.
/// `pushed` is what [`push_ahead`] did to the branch, if it pushed it.
#[allow(clippy::too_many_arguments)]
#[tracing::instrument(skip_all, fields(branch = %branch, service = %decision.service, env = %decision.to, mr = mr.as_ref().map(|m| m.iid)))]
async fn ensure<F: Forge>(
    r: &Reconciler<F>,
    scope: &Scope,
    observed: &Observed,
    decision: &Decision,
    branch: &str,
    mr: Option<MergeRequest>,
    pushed: Option<Result<CommitId, Error>>,
    now: DateTime<Utc>,
) -> Result<Action, Error> {
    let (env, candidate, edits) = match ready(scope, observed, decision, branch, mr.as_ref()) {
        Ready::Go {
            env,
            candidate,
            edits,
        } => (env, candidate, edits),
        Ready::Stop(action) => return Ok(action),
        Ready::HandsOff(who) => return hands_off(r, branch, mr.as_ref(), &who).await,
    };
    let text = promotion_text(observed, decision, env, &candidate, edits, branch);
    let mut changed = Vec::new();
    let branch_push = BranchPush {
        decision,
        candidate: &candidate,
        branch,
        mr: mr.as_ref(),
        pushed,
    };
    let (sha, pushed_at) = push_branch(r, observed, branch_push, now).await?;
    if let Some(sha) = &sha.pushed {
        changed.push(format!("pushed {}", &sha.to_string()[..8]));
    }
    let sha = sha.head.to_string();
    let (mr, opened) = open_or_update_mr(
        r,
        decision,
        env,
        &candidate,
        &text,
        branch,
        mr,
        &mut changed,
    )
    .await?;

    // The merge, where the environment lets promoter merge.
    if env.auto_merge
        && let Some(merged) = try_merge(
            r,
            &observed.snapshot,
            decision,
            &mr,
            &sha,
            pushed_at,
            env.approvals_required,
        )
        .await?
    {
        return Ok(Action {
            url: Some(mr.web_url.clone()),
            iid: Some(mr.iid),
            ..action(branch, ActionKind::Merged, format!("!{} {merged}", mr.iid))
        });
    }
    let kind = if opened {
        ActionKind::Opened
    } else if changed.is_empty() {
        ActionKind::Unchanged
    } else {
        ActionKind::Updated
    };
    Ok(Action {
        url: Some(mr.web_url.clone()),
        iid: Some(mr.iid),
        ..action(branch, kind, format!("!{} {}", mr.iid, changed.join(", ")))
    })
}

/// Whether [`ensure`] goes on with a promotion, and what it needs to.
enum Ready<'o> {
    /// The environment, the candidate and the promotion's edits.
    Go {
        env: &'o crate::repo::Environment,
        candidate: crate::model::Tag,
        edits: &'o [promotion::FileEdit],
    },
    /// What happened instead: a schedule to wait for, nothing to build.
    Stop(Action),
    /// Someone's commit (by this author) is on the branch: hands off.
    HandsOff(String),
}

/// The checks before a promotion's branch is touched: its environment and candidate exist,
/// nobody else's commit is on the branch, the schedule lets it open, its edits were built.
/// Asked by [`push_ahead`] and again by [`ensure`], which therefore agree on every branch.
fn ready<'o>(
    scope: &Scope,
    observed: &'o Observed,
    decision: &Decision,
    branch: &str,
    mr: Option<&MergeRequest>,
) -> Ready<'o> {
    let (Some(env), Some(candidate)) = (
        observed.snapshot.environment(&decision.to),
        decision.candidate.clone(),
    ) else {
        return Ready::Stop(action(
            branch,
            ActionKind::Failed,
            "a promotion without environment or candidate",
        ));
    };
    let state = observed.branches.get(branch);
    if let Some(who) = state.and_then(|s| s.foreign.clone()) {
        return Ready::HandsOff(who);
    }
    let tip = state.and_then(|s| s.tip);
    if mr.is_none() && tip.is_none() && !scope.may_open(&env.name, env.schedule.is_some()) {
        let when = env.schedule_text.as_deref().unwrap_or("");
        return Ready::Stop(action(
            branch,
            ActionKind::Waiting,
            format!("due; opens at the schedule of {} ({when})", env.name),
        ));
    }
    let Some(edits) = observed.edits.get(branch) else {
        return Ready::Stop(action(
            branch,
            ActionKind::Failed,
            "the promotion's edits could not be built (see the log)",
        ));
    };
    Ready::Go {
        env,
        candidate,
        edits,
    }
}

/// What the MR says about the promotion: the data its title and description are rendered from.
fn promotion_text(
    observed: &Observed,
    decision: &Decision,
    env: &crate::repo::Environment,
    candidate: &crate::model::Tag,
    edits: &[promotion::FileEdit],
    branch: &str,
) -> PromotionText {
    let changelog = observed.changelogs.get(branch);
    PromotionText {
        service: decision.service.to_string(),
        from: decision.from.to_string(),
        to: decision.to.to_string(),
        old: decision
            .current
            .as_ref()
            .map_or("(none)".to_string(), ToString::to_string),
        new: candidate.to_string(),
        digest: decision.candidate_digest.clone(),
        gates: decision
            .gates
            .iter()
            .map(|g| GateRow {
                name: g.gate.name().to_string(),
                passed: g.passed,
                message: g.message.clone(),
            })
            .collect(),
        files: edits.iter().map(|e| e.path.clone()).collect(),
        requested_by: decision.requested_by.clone(),
        reason: decision.request_reason.clone(),
        auto_merge: env.auto_merge,
        approvals_required: env.approvals_required,
        planned_at: observed.plan.generated_at.to_rfc3339(),
        changelog_more: changelog.map_or(0, |log| {
            log.len().saturating_sub(promotion::describe::MAX_CHANGELOG)
        }),
        hold: hold_text(decision, edits),
        changelog: changelog
            .into_iter()
            .flatten()
            .take(promotion::describe::MAX_CHANGELOG)
            .map(|e| ChangeRow {
                sha: e.sha.clone(),
                summary: e.summary.clone(),
                author: e.author.clone(),
            })
            .collect(),
        reviewers: observed
            .snapshot
            .policies
            .for_env(&decision.to)
            .reviewers
            .into_iter()
            .collect(),
    }
}

/// The sentence about the hold a rollback records, when its edits write one.
fn hold_text(decision: &Decision, edits: &[promotion::FileEdit]) -> Option<String> {
    let literal = crate::text::markdown::literal;
    let hold = edits
        .iter()
        .find(|e| e.path.starts_with("policies/hold-"))?;
    Some(format!(
        "this rollback also records a hold in `{}`: {} and anything newer stay out of {} and the environments downstream until `promoter unhold {} --env {}`",
        literal(&hold.path),
        literal(
            &decision
                .current
                .as_ref()
                .map_or("(none)".to_string(), ToString::to_string)
        ),
        literal(decision.to.as_str()),
        literal(decision.service.as_str()),
        literal(decision.to.as_str())
    ))
}

/// The promotion branch's head after [`push_branch`], and the commit pushed, if one was.
struct BranchHead {
    head: CommitId,
    pushed: Option<CommitId>,
}

/// True when the promotion's branch must be (re)built: it is missing, its files are not what
/// the plan wants, or GitLab says it no longer merges cleanly.
fn needs_push(observed: &Observed, branch: &str, mr: Option<&MergeRequest>) -> bool {
    let state = observed.branches.get(branch);
    let conflicted = mr
        .and_then(|m| m.detailed_merge_status.as_deref())
        .is_some_and(|s| matches!(s, "conflict" | "need_rebase"));
    let kept = state.is_some_and(|s| s.tip.is_some() && s.up_to_date);
    !kept || conflicted
}

/// What [`push_branch`] works on: the promotion, its branch and MR, and what [`push_ahead`]
/// did to the branch, if it pushed it.
struct BranchPush<'a> {
    decision: &'a Decision,
    candidate: &'a crate::model::Tag,
    branch: &'a str,
    mr: Option<&'a MergeRequest>,
    pushed: Option<Result<CommitId, Error>>,
}

/// Step 1, the branch: rebuilt on the current head when [`needs_push`] says so (by
/// [`push_ahead`], or here when it did not). Returns its head and when it was last pushed.
async fn push_branch<F: Forge>(
    r: &Reconciler<F>,
    observed: &Observed,
    push: BranchPush<'_>,
    now: DateTime<Utc>,
) -> Result<(BranchHead, Option<DateTime<Utc>>), Error> {
    let branch = push.branch;
    let state = observed.branches.get(branch);
    let pushed_at = state.and_then(|s| s.pushed_at);
    let tip = state.and_then(|s| s.tip);
    if let Some(tip) = tip
        && !needs_push(observed, branch, push.mr)
    {
        let head = BranchHead {
            head: tip,
            pushed: None,
        };
        return Ok((head, pushed_at));
    }
    let pushed = match push.pushed {
        Some(answer) => answer?,
        None => {
            let edits = observed.edits.get(branch).cloned().unwrap_or_default();
            let message = commit_message(push.decision, push.candidate, branch, now);
            commit_and_push(r, observed.head, edits, message, branch, tip, now).await?
        }
    };
    let head = BranchHead {
        head: pushed,
        pushed: Some(pushed),
    };
    Ok((head, Some(now)))
}

/// The promotion commit's message; a person's request is recorded in it (as trailers), so
/// that later runs keep it.
fn commit_message(
    decision: &Decision,
    candidate: &crate::model::Tag,
    branch: &str,
    now: DateTime<Utc>,
) -> String {
    let mut message = promotion::commit_message(
        &decision.service,
        &decision.to,
        decision.current.as_ref(),
        candidate,
    );
    if let Some(who) = &decision.requested_by {
        let recorded = promotion::RecordedRequest {
            promotion: Some(branch.to_string()),
            requested_by: who.clone(),
            reason: decision.request_reason.clone(),
            tag: decision
                .requested_tag
                .clone()
                .or_else(|| decision.rollback.then(|| candidate.clone())),
            rollback: decision.rollback,
            requested_at: Some(decision.requested_at.unwrap_or(now)),
        };
        message.push_str(&recorded.trailers());
    }
    message
}

/// Step 2, the MR: opened, or adopted when GitLab says one exists, then kept in line with the
/// plan (title, description, labels; a note when the candidate changed or a freeze ended).
/// `(mr, true)` when opened now.
#[allow(clippy::too_many_arguments)]
async fn open_or_update_mr<F: Forge>(
    r: &Reconciler<F>,
    decision: &Decision,
    env: &crate::repo::Environment,
    candidate: &crate::model::Tag,
    text: &PromotionText,
    branch: &str,
    mr: Option<MergeRequest>,
    changed: &mut Vec<String>,
) -> Result<(MergeRequest, bool), Error> {
    let title = r.templates.title(text)?;
    let body = r.templates.description(text)?;
    let marker = Marker::of(decision).over(&body);
    let description = format!("{body}\n\n{}", marker.render());
    let wanted = NewMergeRequest {
        source_branch: branch.to_string(),
        target_branch: r.config.branch.clone(),
        title,
        description,
        labels: wanted_labels(decision, env, mr.as_ref()),
    };
    let mr = match mr {
        Some(mr) => mr,
        None => {
            let (mr, opened) = open_or_adopt(r, &wanted).await?;
            if opened {
                return Ok((mr, true));
            }
            // Adopted: kept in line like any MR of an earlier run.
            changed.push(format!("adopted !{}", mr.iid));
            mr
        }
    };
    let mr = keep_in_line(r, decision, candidate, text, mr, &wanted, changed).await?;
    Ok((mr, false))
}

/// The labels a promotion's MR carries.
fn wanted_labels(
    decision: &Decision,
    env: &crate::repo::Environment,
    mr: Option<&MergeRequest>,
) -> Vec<String> {
    let mut labels = labels(env.name.as_str());
    if decision.break_glass {
        labels.push(BREAK_GLASS_LABEL.to_string());
    }
    // The lapse of a recorded request was said; the label stays while no new request stands.
    if decision.requested_by.is_none()
        && mr.is_some_and(|m| m.labels.iter().any(|l| l == super::recorded::LAPSED_LABEL))
    {
        labels.push(super::recorded::LAPSED_LABEL.to_string());
    }
    labels
}

/// Brings an MR of an earlier run in line with `wanted`: says when a freeze ended or the
/// candidate changed, and updates only what differs.
async fn keep_in_line<F: Forge>(
    r: &Reconciler<F>,
    decision: &Decision,
    candidate: &crate::model::Tag,
    text: &PromotionText,
    mr: MergeRequest,
    wanted: &NewMergeRequest,
    changed: &mut Vec<String>,
) -> Result<MergeRequest, Error> {
    if mr.labels.iter().any(|l| l == FROZEN_LABEL) {
        r.forge
            .add_note(
                mr.iid,
                "**The freeze has ended.** promoter carries on with this promotion from here.",
            )
            .await?;
        changed.push("freeze ended".to_string());
    }
    let previous = Marker::read(mr.description.as_deref()).map(|m| m.candidate);
    let update = MrUpdate {
        title: (mr.title != wanted.title).then(|| wanted.title.clone()),
        description: (Marker::read_intact(mr.description.as_deref())
            .map(|m| Marker { text: None, ..m })
            != Some(Marker {
                text: None,
                ..Marker::of(decision)
            }))
        .then(|| wanted.description.clone()),
        labels: (!same_labels(&mr.labels, &wanted.labels)).then(|| wanted.labels.clone()),
        close: false,
    };
    // The note first: the description's marker records that it was said, so a run that
    // dies in between says it again rather than never.
    if let Some(previous) = previous.filter(|p| *p != candidate.as_str()) {
        r.forge
            .add_note(mr.iid, &r.templates.superseded(text, &previous)?)
            .await?;
        changed.push(format!("superseded {previous}"));
    }
    if update != MrUpdate::default() {
        r.forge.update_merge_request(mr.iid, &update).await?;
        changed.push("text updated".to_string());
    }
    Ok(mr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_reads_back() {
        let marker = Marker {
            candidate: "1.3.0".into(),
            current: Some("1.2.0".into()),
            digest: None,
            requested_by: None,
            text: None,
        };
        let body = "text with <!-- comments -->";
        let marker = marker.over(body);
        let description = format!("{body}\n\n{}", marker.render());
        assert_eq!(Marker::read(Some(&description)), Some(marker));
        assert!(Marker::read_intact(Some(&description)).is_some());
        let edited = description.replace("text with", "all gates green, text with");
        assert!(Marker::read(Some(&edited)).is_some());
        assert_eq!(Marker::read_intact(Some(&edited)), None, "edited by hand");
        assert_eq!(Marker::read(Some("no marker")), None);
        assert_eq!(Marker::read(None), None);
    }
}
