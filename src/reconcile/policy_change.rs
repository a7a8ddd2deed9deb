//! Changes to `policies/` proposed as merge requests (a freeze from chat, lifting it): one
//! commit on top of the environments' branch on a `promoter-policy/...` branch, outside the
//! promotion branches so that reconcile never takes them for promotions. A person merges.

use super::{Error, Reconciler};
use crate::forge::{self, Forge, MergeRequest, MrUpdate, NewMergeRequest};

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
        self.with_mirror(move |m| {
            let head = m.fetch(&target)?;
            let tip = m.remote_branch(&branch)?;
            let commit = m.commit_files(head, &files, &title, &author, now.timestamp())?;
            m.push(commit, &branch, tip)?;
            Ok(())
        })
        .await?;
        let labels = vec![LABEL.to_string()];
        match self.forge.open_merge_request_from(&change.branch).await? {
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
                        .open_merge_request_from(&change.branch)
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
