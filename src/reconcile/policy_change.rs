//! Changes to `policies/` proposed as merge requests (a freeze from chat, lifting it): one
//! signed commit on top of the environments' branch on a `promoter-policy/...` branch, outside
//! the promotion branches so that reconcile never takes them for promotions. A person merges.
//! A branch holding a commit promoter cannot prove it made (someone's work) is never replaced:
//! the request is refused, and the MR says so once (label `promoter:modified-by-hand`).
//!
//! What a person typed (reason, name, channel) is written into the policy file only as a
//! quoted value or through [`crate::yaml::quote::comment`], so no line break of any YAML reader
//! can add a key; and into the MR only through [`crate::text::markdown`].

use chrono::Utc;

use super::{Error, Reconciler};
use crate::chatops::command;
use crate::forge::{self, Forge, MergeRequest, MrUpdate, NewMergeRequest};
use crate::text::markdown;

/// The label of policy-change MRs.
pub const LABEL: &str = "policy-change";

/// A change to propose.
#[derive(Debug, Clone)]
pub struct PolicyChange {
    /// The branch, e.g. `promoter-policy/freeze-prod`.
    pub branch: String,
    /// Files to write (`Some`) or delete (`None`).
    pub files: Vec<(String, Option<String>)>,
    /// MR title and commit message.
    pub title: String,
    /// MR description.
    pub description: String,
}

/// `all` or the environment.
pub fn scope_name(scope: &command::Scope) -> String {
    match scope {
        command::Scope::All => "all".to_string(),
        command::Scope::Env(env) => env.to_string(),
    }
}

/// The policy file a freeze from chat or the CLI lives in.
pub fn freeze_file(scope: &command::Scope) -> String {
    format!("policies/freeze-{}.yaml", scope_name(scope))
}

/// A new policy file holding one freeze from now until `until` (or ten years: until lifted).
pub fn freeze_change(
    scope: &command::Scope,
    until: Option<command::Until>,
    reason: &str,
    who: &str,
    place: &str,
    now: chrono::DateTime<Utc>,
) -> PolicyChange {
    let end = match until {
        Some(command::Until::At(at)) => at,
        Some(command::Until::Day(day)) => (day + chrono::Days::new(1))
            .and_hms_opt(0, 0, 0)
            .map_or(now, |t| t.and_utc()),
        None => now + chrono::Duration::days(3650),
    };
    let environments = match scope {
        command::Scope::All => String::new(),
        command::Scope::Env(env) => format!("environments: [{env}]\n"),
    };
    let quoted = crate::yaml::quote::double_quoted;
    let text = format!(
        "# {}\n{environments}freezes:\n  - name: {}\n    reason: {}\n    start: {}\n    end: {}\n",
        crate::yaml::quote::comment(&format!(
            "A freeze asked for in {place} by {who}. `unfreeze {}` (or deleting this file) lifts it.",
            scope_name(scope)
        )),
        quoted(&format!("chat freeze by {who}")),
        quoted(reason),
        now.format("%Y-%m-%dT%H:%M:%SZ"),
        end.format("%Y-%m-%dT%H:%M:%SZ"),
    );
    PolicyChange {
        branch: crate::promotion::branches::freeze(&scope_name(scope)),
        files: vec![(freeze_file(scope), Some(text))],
        // The title is also the commit message: on one line, no text of the reason can add a
        // trailer or a paragraph to it.
        title: crate::promotion::describe::truncate(
            &markdown::one_line(&format!("freeze {}: {reason}", scope_name(scope))),
            crate::promotion::describe::MAX_TITLE,
        ),
        description: format!(
            "Freezes promotions into **{}** until {}, as {} asked in {}: {}\n\nMerge to freeze. Break-glass requests with a reason still pass.",
            markdown::literal(&scope_name(scope)),
            end.to_rfc3339(),
            markdown::inline(who),
            markdown::inline(place),
            markdown::inline(reason)
        ),
    }
}

/// The change lifting the freeze of `scope` (deleting its file).
pub fn unfreeze_change(scope: &command::Scope, place: &str) -> PolicyChange {
    let file = freeze_file(scope);
    PolicyChange {
        branch: crate::promotion::branches::unfreeze(&scope_name(scope)),
        files: vec![(file.clone(), None)],
        title: format!("unfreeze {}", scope_name(scope)),
        description: format!(
            "Lifts the freeze of `{}`, as asked in {}. Merge to lift it.",
            markdown::literal(&file),
            markdown::inline(place)
        ),
    }
}

/// The change lifting the hold a rollback left on `service` in `env` (deleting its file).
pub fn unhold_change(
    env: &crate::model::EnvName,
    service: &crate::model::ServiceName,
    who: &str,
    place: &str,
) -> PolicyChange {
    let file = crate::policy::hold::file(env, service);
    PolicyChange {
        branch: crate::promotion::branches::unhold(env, service),
        files: vec![(file.clone(), None)],
        title: format!("unhold {service} in {env}"),
        description: format!(
            "Lifts the rollback hold of `{}`, as {} asked in {}. Once merged, the next run may promote the held tag (and anything newer) into {} and downstream again.",
            markdown::literal(&file),
            markdown::inline(who),
            markdown::inline(place),
            markdown::literal(env.as_str())
        ),
    }
}

impl<F: Forge> Reconciler<F> {
    /// Pushes the change and opens (or updates) its MR.
    pub async fn propose_policy_change(
        &self,
        change: PolicyChange,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<MergeRequest, Error> {
        let (branch, target, author) = (
            change.branch.clone(),
            self.config.branch.clone(),
            self.config.author.clone(),
        );
        let (files, title) = (change.files.clone(), change.title.clone());
        let pushed = self.with_mirror(move |m| {
            let head = m.fetch(&target)?;
            let tree = crate::git::GitTree::at(m.repo(), &head.to_string())?;
            for (path, text) in &files {
                if text.is_none() && !crate::repo::Tree::is_file(&tree, path) {
                    return Err(Error::NothingToChange(format!(
                        "{path} is not on {target}: there is nothing to lift (if its merge request is still open, close it instead)"
                    )));
                }
            }
            let tip = m.remote_branch(&branch)?;
            if let Some(who) =
                tip.and_then(|tip| super::observe::unproven(m.repo(), tip, &author.keys))
            {
                return Err(Error::HandsOff { branch, who });
            }
            let commit = m.commit_files(head, &files, &title, &author, now.timestamp())?;
            m.push(commit, &branch, tip)?;
            Ok(())
        })
        .await;
        if let Err(Error::HandsOff { branch, who }) = &pushed
            && let Some(mr) = self
                .forge
                .open_merge_request_from(branch, &self.config.branch)
                .await?
            && !mr
                .labels
                .iter()
                .any(|l| l == super::merge_request::MODIFIED_LABEL)
        {
            let note = format!(
                "`{branch}` holds a commit promoter cannot prove it made: {who}. promoter will not replace it with a new request or touch this merge request. To hand it back, close this merge request and delete the branch, then ask again."
            );
            super::merge_request::note_and_label(
                self,
                &mr,
                &note,
                super::merge_request::MODIFIED_LABEL,
            )
            .await?;
        }
        pushed?;
        let labels = vec![LABEL.to_string()];
        match self
            .forge
            .open_merge_request_from(&change.branch, &self.config.branch)
            .await?
        {
            Some(mr) => {
                let update = MrUpdate {
                    title: Some(change.title),
                    description: Some(change.description),
                    labels: Some(labels),
                    close: false,
                };
                Ok(self.forge.update_merge_request(mr.iid, &update).await?)
            }
            None => {
                let new = NewMergeRequest {
                    source_branch: change.branch.clone(),
                    target_branch: self.config.branch.clone(),
                    title: change.title,
                    description: change.description,
                    labels,
                };
                match self.forge.create_merge_request(&new).await {
                    Err(forge::Error::Duplicate { .. }) => self
                        .forge
                        .open_merge_request_from(&change.branch, &self.config.branch)
                        .await?
                        .ok_or_else(|| {
                            Error::Forge(forge::Error::Decode {
                                operation: "adopt".into(),
                                message: "no open MR".into(),
                            })
                        }),
                    other => Ok(other?),
                }
            }
        }
    }
}
