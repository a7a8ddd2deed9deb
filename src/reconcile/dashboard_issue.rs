//! The "Promotion dashboard" issue: the dashboard as the description of one GitLab issue, found
//! by its label, opened when there is none and rewritten only when its content changed.
//! Idempotent: the `Updated` line is left out of the comparison, so a cycle with nothing new
//! makes no write call. The oldest open issue with the label is the dashboard; one closed by
//! someone is left alone and a new one is opened. Two replicas that open one at once: the
//! one whose issue is not the oldest closes its own. Renders nothing itself
//! ([`crate::dashboard::markdown`] does).

use serde::Serialize;

use super::{Error, Reconciler};
use crate::dashboard::DashboardData;
use crate::dashboard::markdown::{markdown, without_updated_line};
use crate::forge::Forge;

/// The label that marks the dashboard issue.
pub const ISSUE_LABEL: &str = "promoter-dashboard";
/// The title of a new dashboard issue (people may rename it; it is found by label).
pub const ISSUE_TITLE: &str = "Promotion dashboard";

/// What [`Reconciler::ensure_dashboard_issue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueChange {
    /// There was no open dashboard issue: one was opened.
    Created,
    /// The description changed and was rewritten.
    Updated,
    /// The description already said the same (apart from its `Updated` line): no write.
    Unchanged,
}

/// The dashboard issue after [`Reconciler::ensure_dashboard_issue`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DashboardIssue {
    /// What was done.
    pub change: IssueChange,
    /// Its project-scoped id.
    pub iid: u64,
    /// Its web address.
    pub url: String,
}

impl<F: Forge> Reconciler<F> {
    /// Makes the dashboard issue show `data`: opens it when missing, rewrites its description
    /// when the content changed, else writes nothing.
    #[tracing::instrument(skip_all)]
    pub async fn ensure_dashboard_issue(
        &self,
        data: &DashboardData,
    ) -> Result<DashboardIssue, Error> {
        let description = markdown(data);
        let text = without_updated_line(&description).to_string();
        if self.incremental
            && let Some((iid, url, known)) = &self.watched.lock().await.dashboard
            && *known == text
        {
            // The daemon read or wrote this very text (since the last full listing).
            return Ok(DashboardIssue {
                change: IssueChange::Unchanged,
                iid: *iid,
                url: url.clone(),
            });
        }
        let shown = self.show_dashboard(&description).await?;
        if self.incremental {
            self.watched.lock().await.dashboard = Some((shown.iid, shown.url.clone(), text));
        }
        Ok(shown)
    }

    async fn show_dashboard(&self, description: &str) -> Result<DashboardIssue, Error> {
        let description = description.to_string();
        let Some(issue) = self.forge.issue_with_label(ISSUE_LABEL).await? else {
            let issue = self
                .forge
                .create_issue(ISSUE_TITLE, &description, &[ISSUE_LABEL.to_string()])
                .await?;
            // Another replica may have opened one meanwhile: the oldest stays, ours goes.
            if let Some(oldest) = self.forge.issue_with_label(ISSUE_LABEL).await?
                && oldest.iid != issue.iid
            {
                self.forge.close_issue(issue.iid).await?;
                tracing::info!(
                    iid = issue.iid,
                    kept = oldest.iid,
                    "closed a second dashboard issue opened at the same time as another"
                );
                return Ok(DashboardIssue {
                    change: IssueChange::Unchanged,
                    iid: oldest.iid,
                    url: oldest.web_url,
                });
            }
            tracing::info!(iid = issue.iid, "opened the dashboard issue");
            return Ok(DashboardIssue {
                change: IssueChange::Created,
                iid: issue.iid,
                url: issue.web_url,
            });
        };
        let current = issue.description.as_deref().unwrap_or_default();
        if without_updated_line(current) == without_updated_line(&description) {
            return Ok(DashboardIssue {
                change: IssueChange::Unchanged,
                iid: issue.iid,
                url: issue.web_url,
            });
        }
        let updated = self
            .forge
            .update_issue_description(issue.iid, &description)
            .await?;
        tracing::info!(iid = updated.iid, "updated the dashboard issue");
        Ok(DashboardIssue {
            change: IssueChange::Updated,
            iid: updated.iid,
            url: updated.web_url,
        })
    }
}
