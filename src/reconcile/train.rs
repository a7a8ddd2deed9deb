//! Release trains, the wiring: keeps an environment's train MR (`promoter/<env>/train`) in
//! line with its riders through the MR steps of [`super::merge_request`]: opened at the
//! schedule, updated in place (a service whose gate fails leaves at the next update with a
//! note, a newly due one joins), merged where allowed, closed when nobody rides. Who rides and
//! the train's texts are the core's, [`crate::promotion::train`].

use chrono::{DateTime, Utc};

use super::merge_request::{self, action};
use super::observe::Observed;
use super::{ActionKind, Error, Reconciler, Scope};
use crate::forge::{Forge, MergeRequest, MrUpdate, NewMergeRequest};
use crate::promotion::describe::{MAX_TEXT, truncate};
use crate::promotion::train;
// The rules, under the names the reconcile steps call them by.
pub use crate::promotion::train::{branch, edits, is_train_env, riders, rides, train_envs};
use crate::repo::Environment;

/// Keeps `env`'s train MR in line with its riders: opened at the schedule, updated in place,
/// merged where allowed, closed when nobody rides.
pub(super) async fn ensure<F: Forge>(
    r: &Reconciler<F>,
    scope: &Scope,
    observed: &Observed,
    env: &Environment,
    mr: Option<MergeRequest>,
    now: DateTime<Utc>,
) -> Result<super::Action, Error> {
    let branch = train::branch(&env.name);
    let riders = train::riders(&observed.plan, &env.name);
    let state = observed.branches.get(&branch);
    if let Some(who) = state.and_then(|s| s.foreign.clone()) {
        return merge_request::hands_off(r, &branch, mr.as_ref(), &who).await;
    }
    let edits = observed.edits.get(&branch).cloned().unwrap_or_default();
    if riders.is_empty() || edits.is_empty() {
        let reasons = ["no service is due for this train any more".to_string()];
        return merge_request::retire(r, observed, &branch, mr, &reasons).await;
    }
    let tip = state.and_then(|s| s.tip);
    if mr.is_none() && tip.is_none() && !scope.may_open(&env.name, env.schedule.is_some()) {
        return Ok(action(
            &branch,
            ActionKind::Waiting,
            format!(
                "{} service(s) due; the train leaves at the schedule of {}",
                riders.len(),
                env.name
            ),
        ));
    }
    let mut changed = Vec::new();
    let mut pushed_at = state.and_then(|s| s.pushed_at);
    let sha = match tip {
        Some(tip) if state.is_some_and(|s| s.up_to_date) => tip,
        _ => {
            let message = train::commit_message(&env.name, &riders);
            let pushed =
                merge_request::commit_and_push(r, observed.head, edits, message, &branch, tip, now)
                    .await?;
            changed.push(format!("pushed {}", pushed.short()));
            pushed_at = Some(now);
            pushed
        }
    };
    let sha = sha.to_string();
    let title = train::title(&env.name, &riders);
    let description = train::describe(&r.templates, env, &riders)?;
    let labels = train::labels(super::LABEL, &env.name);
    let mut opened = false;
    let mr = match mr {
        Some(mr) => mr,
        None => {
            let new = NewMergeRequest {
                source_branch: branch.clone(),
                target_branch: r.config.branch.clone(),
                title: title.clone(),
                description: description.clone(),
                labels: labels.clone(),
            };
            let (mr, new_now) = merge_request::open_or_adopt(r, &new).await?;
            opened = new_now;
            mr
        }
    };
    if !opened {
        let before = train::read_cars(mr.description.as_deref()).unwrap_or_default();
        let now_riding = train::cars(&riders);
        if before != now_riding {
            r.forge
                .update_merge_request(
                    mr.iid,
                    &MrUpdate {
                        title: Some(title.clone()),
                        description: Some(description.clone()),
                        labels: Some(labels.clone()),
                        close: false,
                    },
                )
                .await?;
            let note = train::changes_note(&observed.plan, &env.name, &before, &now_riding);
            r.forge.add_note(mr.iid, &truncate(&note, MAX_TEXT)).await?;
            changed.push("riders changed".to_string());
        }
    }
    if env.auto_merge
        && let Some(merged) = merge_request::try_merge(
            r,
            &observed.snapshot,
            riders[0],
            &mr,
            &sha,
            pushed_at,
            env.approvals_required,
        )
        .await?
    {
        return Ok(super::Action {
            url: Some(mr.web_url.clone()),
            iid: Some(mr.iid),
            ..action(&branch, ActionKind::Merged, format!("!{} {merged}", mr.iid))
        });
    }
    let kind = if opened {
        ActionKind::Opened
    } else if changed.is_empty() {
        ActionKind::Unchanged
    } else {
        ActionKind::Updated
    };
    Ok(super::Action {
        url: Some(mr.web_url.clone()),
        iid: Some(mr.iid),
        ..action(
            &branch,
            kind,
            format!(
                "!{} {} rider(s) {}",
                mr.iid,
                riders.len(),
                changed.join(", ")
            ),
        )
    })
}
