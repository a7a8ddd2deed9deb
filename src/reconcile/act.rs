//! Converging GitLab to the plan, one promotion at a time, idempotently: push the promotion
//! branch only when its files differ from what the plan wants, open the MR or adopt the one
//! GitLab says exists (409), update its text only when it changed, merge when the environment
//! allows it, close MRs (and delete branches) that are no longer due. A failure stops only its
//! own promotion; the next run tries again.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::observe::Observed;
use super::{
    Action, ActionKind, BRANCH_PREFIX, Error, LABEL, Outcome, Reconciler, Scope, parse_branch,
};
use crate::forge::{self, Forge, MergeOutcome, MergeRequest, MrUpdate, NewMergeRequest};
use crate::git::mirror;
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

pub(super) fn action(branch: &str, kind: ActionKind, detail: impl Into<String>) -> Action {
    Action {
        branch: branch.to_string(),
        kind,
        detail: detail.into(),
        url: None,
    }
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

    for decision in &observed.plan.promotions {
        if !scope.covers_promotion(&decision.to, &decision.service) {
            continue;
        }
        let branch = promotion::branch(&decision.to, &decision.service);
        handled.insert(branch.clone());
        let mr = by_branch.remove(&branch);
        let foreign = observed
            .branches
            .get(&branch)
            .and_then(|b| b.foreign.clone());
        let result = if let Some(who) = foreign {
            // Someone's commit is on the branch: whatever the plan says, promoter neither
            // overwrites, closes, pauses nor merges it.
            hands_off(r, &branch, mr.as_ref(), &who).await
        } else if super::train::rides(&observed.snapshot, decision) {
            // The train carries it; an MR of its own from before the train is closed.
            let reasons = [format!(
                "rides the {} release train ({})",
                decision.to,
                super::train::branch(&decision.to)
            )];
            retire(r, &observed, &branch, mr, &reasons).await
        } else if decision.decision == Verdict::Promote {
            ensure(r, scope, &observed, decision, &branch, mr, now).await
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
            e.promotes_from.is_some()
                && scope.covers(&e.name)
                && super::train::is_train_env(&observed.snapshot, &e.name)
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

/// Builds one commit of `edits` on `head` and pushes it to `branch` (leased on `tip`), only
/// while the environments' branch is still at `head`: a commit that landed meanwhile is never
/// left out of the promotion's base (the run plans again, see `Outcome::replan`).
pub(super) async fn commit_and_push<F: Forge>(
    r: &Reconciler<F>,
    head: git2::Oid,
    edits: Vec<promotion::FileEdit>,
    message: String,
    branch: &str,
    tip: Option<git2::Oid>,
    now: DateTime<Utc>,
) -> Result<git2::Oid, Error> {
    let (target, environments, author) = (
        branch.to_string(),
        r.config.branch.clone(),
        r.config.author.clone(),
    );
    r.with_mirror(move |m| {
        let commit = m.commit_edits(head, &edits, &message, &author, now.timestamp())?;
        m.push_onto(commit, &target, tip, &environments, head)?;
        Ok(commit)
    })
    .await
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
    tip: git2::Oid,
) -> Result<(), Error> {
    let branch = branch.to_string();
    r.with_mirror(move |m| m.delete_branch(&branch, tip).map_err(Error::from))
        .await
}

/// Makes sure the promotion's branch, MR and (where allowed) merge exist.
#[tracing::instrument(skip_all, fields(branch = %branch, service = %decision.service, env = %decision.to, mr = mr.as_ref().map(|m| m.iid)))]
async fn ensure<F: Forge>(
    r: &Reconciler<F>,
    scope: &Scope,
    observed: &Observed,
    decision: &Decision,
    branch: &str,
    mr: Option<MergeRequest>,
    now: DateTime<Utc>,
) -> Result<Action, Error> {
    let (Some(env), Some(candidate)) = (
        observed.snapshot.environment(&decision.to),
        decision.candidate.clone(),
    ) else {
        return Ok(action(
            branch,
            ActionKind::Failed,
            "a promotion without environment or candidate",
        ));
    };
    let state = observed.branches.get(branch);
    let tip = state.and_then(|s| s.tip);
    if let Some(who) = state.and_then(|s| s.foreign.clone()) {
        return hands_off(r, branch, mr.as_ref(), &who).await;
    }
    if mr.is_none() && tip.is_none() && !scope.may_open(&env.name, env.schedule.is_some()) {
        let when = env.schedule_text.as_deref().unwrap_or("");
        return Ok(action(
            branch,
            ActionKind::Waiting,
            format!("due; opens at the schedule of {} ({when})", env.name),
        ));
    }
    let Some(edits) = observed.edits.get(branch) else {
        return Ok(action(
            branch,
            ActionKind::Failed,
            "the promotion's edits could not be built (see the log)",
        ));
    };

    let text = PromotionText {
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
        changelog_more: observed
            .changelogs
            .get(branch)
            .map_or(0, |log| log.len().saturating_sub(promotion::describe::MAX_CHANGELOG)),
        hold: observed
            .edits
            .get(branch)
            .into_iter()
            .flatten()
            .find(|e| e.path.starts_with("policies/hold-"))
            .map(|e| {
                let literal = crate::text::markdown::literal;
                format!(
                    "this rollback also records a hold in `{}`: {} and anything newer stay out of {} and the environments downstream until `promoter unhold {} --env {}`",
                    literal(&e.path),
                    literal(&decision.current.as_ref().map_or("(none)".to_string(), ToString::to_string)),
                    literal(decision.to.as_str()),
                    literal(decision.service.as_str()),
                    literal(decision.to.as_str())
                )
            }),
        changelog: observed
            .changelogs
            .get(branch)
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
    };
    let title = r.templates.title(&text)?;
    let body = r.templates.description(&text)?;
    let marker = Marker::of(decision).over(&body);
    let description = format!("{body}\n\n{}", marker.render());
    let mut changed = Vec::new();

    // 1. The branch: rebuilt on the current head when its files are not what the plan wants,
    //    or when GitLab says it no longer merges cleanly.
    let conflicted = mr
        .as_ref()
        .and_then(|m| m.detailed_merge_status.as_deref())
        .is_some_and(|s| matches!(s, "conflict" | "need_rebase"));
    let mut pushed_at = state.and_then(|s| s.pushed_at);
    let sha = match tip {
        Some(tip) if state.is_some_and(|s| s.up_to_date) && !conflicted => tip,
        _ => {
            let (edits, head) = (edits.clone(), observed.head);
            let mut message = promotion::commit_message(
                &decision.service,
                &decision.to,
                decision.current.as_ref(),
                &candidate,
            );
            // A person's request is recorded in the commit, so that later runs keep it.
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
            let pushed = commit_and_push(r, head, edits, message, branch, tip, now).await?;
            changed.push(format!("pushed {}", &pushed.to_string()[..8]));
            pushed_at = Some(now);
            pushed
        }
    };
    let sha = sha.to_string();

    // 2. The MR: opened, or adopted when GitLab says one exists, then kept in line.
    let mut labels = labels(env.name.as_str());
    if decision.break_glass {
        labels.push(BREAK_GLASS_LABEL.to_string());
    }
    // The lapse of a recorded request was said; the label stays while no new request stands.
    if decision.requested_by.is_none()
        && mr
            .as_ref()
            .is_some_and(|m| m.labels.iter().any(|l| l == super::recorded::LAPSED_LABEL))
    {
        labels.push(super::recorded::LAPSED_LABEL.to_string());
    }
    let mut opened = false;
    let mr = match mr {
        Some(mr) => mr,
        None => {
            let new = NewMergeRequest {
                source_branch: branch.to_string(),
                target_branch: r.config.branch.clone(),
                title: title.clone(),
                description: description.clone(),
                labels: labels.clone(),
            };
            let (mr, new_now) = open_or_adopt(r, &new).await?;
            if !new_now {
                changed.push(format!("adopted !{}", mr.iid));
            }
            opened = new_now;
            mr
        }
    };
    if !opened && mr.labels.iter().any(|l| l == FROZEN_LABEL) {
        r.forge
            .add_note(
                mr.iid,
                "**The freeze has ended.** promoter carries on with this promotion from here.",
            )
            .await?;
        changed.push("freeze ended".to_string());
    }
    if !opened {
        let recorded = Marker::read(mr.description.as_deref());
        let previous = recorded.as_ref().map(|m| m.candidate.clone());
        let update = MrUpdate {
            title: (mr.title != title).then(|| title.clone()),
            description: (Marker::read_intact(mr.description.as_deref())
                .map(|m| Marker { text: None, ..m })
                != Some(Marker {
                    text: None,
                    ..Marker::of(decision)
                }))
            .then(|| description.clone()),
            labels: (!same_labels(&mr.labels, &labels)).then(|| labels.clone()),
            close: false,
        };
        // The note first: the description's marker records that it was said, so a run that
        // dies in between says it again rather than never.
        if let Some(previous) = previous.filter(|p| *p != candidate.as_str()) {
            r.forge
                .add_note(mr.iid, &r.templates.superseded(&text, &previous)?)
                .await?;
            changed.push(format!("superseded {previous}"));
        }
        if update != MrUpdate::default() {
            r.forge.update_merge_request(mr.iid, &update).await?;
            changed.push("text updated".to_string());
        }
    }

    // 3. The merge, where the environment lets promoter merge.
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
        ..action(branch, kind, format!("!{} {}", mr.iid, changed.join(", ")))
    })
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
