//! [`Forge`] on GitLab's REST API through the `gitlab` crate (async): typed endpoints, one
//! paginated list call per cycle for open promotion MRs, 409 on create turned into
//! [`Error::Duplicate`], merge answers (405/406/409/422) turned into [`MergeOutcome`]s; the
//! dashboard issue found by label (oldest open first), created and edited. Every request goes
//! through [`retry::RetryClient`]. The token is only ever handed to the client; it is in no
//! message and no log.

pub mod budget;
pub mod retry;

use std::sync::Arc;

use gitlab::api::common::SortOrder;
use gitlab::api::projects::issues::{CreateIssue, EditIssue, IssueOrderBy, IssueState, Issues};
use gitlab::api::projects::merge_requests::{
    self as mr, MergeRequestState, MergeRequestStateEvent, approvals::MergeRequestApprovals,
    notes::CreateMergeRequestNote,
};
use gitlab::api::{self, ApiError, AsyncQuery, Pagination};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{
    Approval, CommitStatus, Deployment, Error, Forge, Issue, MergeOutcome, MergeRequest, MrUpdate,
    NewMergeRequest, Result,
};
pub use retry::{Calls, RetryPolicy};

/// Where and how to reach GitLab.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Base URL, e.g. `https://gitlab.example.com` (http for tests).
    pub url: url::Url,
    /// Personal, project or group access token with the `api` scope.
    pub token: SecretString,
    /// Project id or `group/name` path.
    pub project: String,
    /// Timeouts and retries.
    pub policy: RetryPolicy,
    /// The request budget for the host, shared by every request of this client.
    pub budget: budget::BudgetSettings,
}

/// A GitLab project as a forge.
#[derive(Debug, Clone)]
pub struct GitLab {
    client: retry::RetryClient<gitlab::AsyncGitlab>,
    project: String,
    username: String,
}

impl GitLab {
    /// Connects (the client asks GitLab who the token belongs to, which proves the URL and the
    /// token), retrying a failed first contact with the policy's backoff.
    pub async fn connect(connection: &Connection) -> Result<Self> {
        let budget = Arc::new(budget::TokenBucket::new(connection.budget));
        Self::connect_sharing(connection, budget).await
    }

    /// [`GitLab::connect`], taking every request's token from `budget`: the bucket of the
    /// host, shared by every project a daemon serves there.
    pub async fn connect_sharing(
        connection: &Connection,
        budget: Arc<budget::TokenBucket>,
    ) -> Result<Self> {
        let host = match connection.url.port() {
            Some(port) => format!("{}:{port}", connection.url.host_str().unwrap_or_default()),
            None => connection.url.host_str().unwrap_or_default().to_string(),
        };
        let host = format!("{host}{}", connection.url.path().trim_end_matches('/'));
        let shown = crate::redact::without_userinfo(connection.url.as_str());
        let mut attempt = 0;
        let client = loop {
            let mut builder =
                gitlab::GitlabBuilder::new(host.as_str(), connection.token.expose_secret());
            if connection.url.scheme() == "http" {
                builder.insecure();
            }
            let built =
                tokio::time::timeout(connection.policy.timeout, builder.build_async()).await;
            match built {
                Ok(Ok(client)) => break client,
                Ok(Err(e))
                    if attempt >= connection.policy.max_retries
                        || matches!(e, gitlab::GitlabError::AuthError { .. }) =>
                {
                    return Err(Error::Transport {
                        operation: format!("connect to {shown}"),
                        message: excerpt(&e.to_string()),
                    });
                }
                Err(_) if attempt >= connection.policy.max_retries => {
                    return Err(Error::Transport {
                        operation: format!("connect to {shown}"),
                        message: format!(
                            "no answer within {}s",
                            connection.policy.timeout.as_secs()
                        ),
                    });
                }
                _ => {
                    let wait = connection
                        .policy
                        .base_delay
                        .saturating_mul(1 << attempt.min(10))
                        .min(connection.policy.max_delay);
                    tracing::warn!(url = %shown, attempt, "cannot reach GitLab yet; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        };
        let client = retry::RetryClient::new(client, connection.policy).with_budget(budget);
        let me = gitlab::api::users::CurrentUser::builder()
            .build()
            .map_err(|e| build_error("read the token's user", e))?;
        let user: UserJson = me
            .query_async(&client)
            .await
            .map_err(|e| to_error("read the token's user", e))?;
        Ok(Self {
            client,
            project: connection.project.clone(),
            username: user.username,
        })
    }

    /// The user the token belongs to (promoter's own comments are recognised by it).
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Counters of the requests sent.
    pub fn calls(&self) -> Arc<Calls> {
        self.client.calls()
    }

    /// Reports every request's endpoint and status to `observer` (metrics).
    pub fn with_observer(mut self, observer: retry::Observer) -> Self {
        self.client = self.client.with_observer(observer);
        self
    }

    async fn query<T: DeserializeOwned + Send + 'static, E>(
        &self,
        operation: &str,
        endpoint: E,
    ) -> Result<T>
    where
        E: api::Endpoint + Sync + Send,
    {
        endpoint
            .query_async(&self.client)
            .await
            .map_err(|e| to_error(operation, e))
    }
}

/// The parts of a merge request's JSON promoter reads.
#[derive(Debug, Deserialize)]
struct MrJson {
    iid: u64,
    title: String,
    #[serde(default)]
    description: Option<String>,
    source_branch: String,
    target_branch: String,
    state: super::MrState,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    sha: Option<String>,
    #[serde(default)]
    merge_commit_sha: Option<String>,
    #[serde(default)]
    squash_commit_sha: Option<String>,
    #[serde(default)]
    detailed_merge_status: Option<String>,
    #[serde(default)]
    web_url: String,
    #[serde(default)]
    head_pipeline: Option<super::Pipeline>,
    #[serde(default)]
    author: Option<UserJson>,
    #[serde(default)]
    created_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    updated_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default)]
    source_project_id: Option<u64>,
    #[serde(default)]
    target_project_id: Option<u64>,
}

impl From<MrJson> for MergeRequest {
    fn from(j: MrJson) -> Self {
        Self {
            iid: j.iid,
            title: j.title,
            description: j.description,
            source_branch: j.source_branch,
            target_branch: j.target_branch,
            state: j.state,
            labels: j.labels,
            sha: j.sha,
            merge_commit_sha: j.merge_commit_sha.or(j.squash_commit_sha),
            detailed_merge_status: j.detailed_merge_status,
            web_url: j.web_url,
            head_pipeline: j.head_pipeline,
            author: j.author.map(|a| a.username),
            created_at: j.created_at,
            updated_at: j.updated_at,
            from_fork: j.source_project_id != j.target_project_id,
        }
    }
}

#[derive(Debug, Deserialize)]
struct ApprovalsJson {
    #[serde(default)]
    approved_by: Vec<ApprovedBy>,
}

#[derive(Debug, Deserialize)]
struct ApprovedBy {
    user: UserJson,
}

#[derive(Debug, Deserialize)]
struct UserJson {
    username: String,
}

/// A note as GitLab lists it; approvals leave system notes.
#[derive(Debug, Deserialize)]
struct NoteJson {
    body: String,
    author: UserJson,
    created_at: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    system: bool,
}

/// When each user last approved, from the system notes GitLab leaves on approve (newest
/// first); an `unapproved` note after it cancels it.
fn approval_times(
    notes: &[NoteJson],
) -> std::collections::HashMap<String, chrono::DateTime<chrono::Utc>> {
    let mut out = std::collections::HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for note in notes.iter().filter(|n| n.system) {
        let body = note.body.trim();
        let approved = body.starts_with("approved this merge request");
        let unapproved = body.starts_with("unapproved this merge request");
        if !(approved || unapproved) {
            continue;
        }
        // Newest first: a user's first approve or unapprove note is their standing word.
        let first_word = seen.insert(note.author.username.clone());
        if first_word && approved {
            out.insert(note.author.username.clone(), note.created_at);
        }
    }
    out
}

/// What an error message keeps of a text GitLab (or a proxy in front of it) sent: a bounded
/// excerpt, since such a text may be a whole error page or quote the request back.
fn excerpt(text: &str) -> String {
    crate::text::excerpt::excerpt(text.trim(), crate::text::excerpt::ERROR_BODY)
}

/// The status and message of a GitLab error answer, when it is one.
fn status_of<E: std::error::Error + Send + Sync + 'static>(
    e: &ApiError<E>,
) -> Option<(u16, String)> {
    match e {
        ApiError::GitlabWithStatus { status, msg } => Some((status.as_u16(), excerpt(msg))),
        ApiError::GitlabObjectWithStatus { status, obj }
        | ApiError::GitlabUnrecognizedWithStatus { status, obj } => {
            let message = match obj.get("message").or_else(|| obj.get("error")) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Array(items)) => items
                    .iter()
                    .filter_map(|i| i.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
                Some(other) => other.to_string(),
                None => obj.to_string(),
            };
            Some((status.as_u16(), excerpt(&message)))
        }
        ApiError::GitlabService { status, data } => {
            Some((status.as_u16(), crate::text::excerpt::error_body(data)))
        }
        ApiError::GitlabRateLimited { retry_after, .. } => Some((
            429,
            format!("rate limited; retry after {}s", retry_after.as_secs()),
        )),
        _ => None,
    }
}

fn to_error<E: std::error::Error + Send + Sync + 'static>(
    operation: &str,
    e: ApiError<E>,
) -> Error {
    if let Some((status, message)) = status_of(&e) {
        return Error::Status {
            operation: operation.to_string(),
            status,
            message,
        };
    }
    match e {
        ApiError::Json { .. } | ApiError::DataType { .. } => Error::Decode {
            operation: operation.to_string(),
            message: excerpt(&e.to_string()),
        },
        other => Error::Transport {
            operation: operation.to_string(),
            message: excerpt(&other.to_string()),
        },
    }
}

fn build_error(operation: &str, e: impl std::fmt::Display) -> Error {
    Error::Transport {
        operation: operation.to_string(),
        message: format!("cannot build the request: {e}"),
    }
}

impl Forge for GitLab {
    fn own_username(&self) -> Option<&str> {
        Some(&self.username)
    }

    #[tracing::instrument(skip_all, fields(label))]
    async fn open_merge_requests(&self, label: &str) -> Result<Vec<MergeRequest>> {
        let op = "list open merge requests";
        let endpoint = mr::MergeRequests::builder()
            .project(self.project.as_str())
            .state(MergeRequestState::Opened)
            .label(label)
            .build()
            .map_err(|e| build_error(op, e))?;
        let found: Vec<MrJson> = api::paged(endpoint, Pagination::All)
            .query_async(&self.client)
            .await
            .map_err(|e| to_error(op, e))?;
        Ok(found.into_iter().map(Into::into).collect())
    }

    #[tracing::instrument(skip_all, fields(target_branch, %after))]
    async fn merge_requests_updated_after(
        &self,
        target_branch: &str,
        after: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<MergeRequest>> {
        let op = "list merge requests updated since the last cycle";
        let endpoint = mr::MergeRequests::builder()
            .project(self.project.as_str())
            .target_branch(target_branch)
            .updated_after(after)
            .build()
            .map_err(|e| build_error(op, e))?;
        let found: Vec<MrJson> = api::paged(endpoint, Pagination::All)
            .query_async(&self.client)
            .await
            .map_err(|e| to_error(op, e))?;
        Ok(found.into_iter().map(Into::into).collect())
    }

    #[tracing::instrument(skip_all, fields(source_branch))]
    async fn open_merge_request_from(
        &self,
        source_branch: &str,
        target_branch: &str,
    ) -> Result<Option<MergeRequest>> {
        let op = "find the merge request of a branch";
        let endpoint = mr::MergeRequests::builder()
            .project(self.project.as_str())
            .state(MergeRequestState::Opened)
            .source_branch(source_branch)
            .target_branch(target_branch)
            .build()
            .map_err(|e| build_error(op, e))?;
        let found: Vec<MrJson> = api::paged(endpoint, Pagination::Limit(20))
            .query_async(&self.client)
            .await
            .map_err(|e| to_error(op, e))?;
        Ok(found
            .into_iter()
            .map(MergeRequest::from)
            .find(|mr| !mr.from_fork && mr.target_branch == target_branch))
    }

    #[tracing::instrument(skip_all, fields(iid))]
    async fn merge_request(&self, iid: u64) -> Result<MergeRequest> {
        let op = format!("read merge request !{iid}");
        let endpoint = mr::MergeRequest::builder()
            .project(self.project.as_str())
            .merge_request(iid)
            .build()
            .map_err(|e| build_error(&op, e))?;
        self.query::<MrJson, _>(&op, endpoint).await.map(Into::into)
    }

    #[tracing::instrument(skip_all, fields(source_branch = new.source_branch))]
    async fn create_merge_request(&self, new: &NewMergeRequest) -> Result<MergeRequest> {
        let op = format!("open a merge request from {}", new.source_branch);
        let endpoint = mr::CreateMergeRequest::builder()
            .project(self.project.as_str())
            .source_branch(new.source_branch.as_str())
            .target_branch(new.target_branch.as_str())
            .title(new.title.as_str())
            .description(new.description.as_str())
            .labels(new.labels.iter().map(String::as_str))
            .remove_source_branch(true)
            .build()
            .map_err(|e| build_error(&op, e))?;
        match self.query::<MrJson, _>(&op, endpoint).await {
            Err(Error::Status { status: 409, .. }) => Err(Error::Duplicate {
                operation: op,
                branch: new.source_branch.clone(),
            }),
            other => other.map(Into::into),
        }
    }

    #[tracing::instrument(skip_all, fields(iid))]
    async fn update_merge_request(&self, iid: u64, update: &MrUpdate) -> Result<MergeRequest> {
        let op = format!("update merge request !{iid}");
        let mut builder = mr::EditMergeRequest::builder();
        builder.project(self.project.as_str()).merge_request(iid);
        if let Some(title) = &update.title {
            builder.title(title.as_str());
        }
        if let Some(description) = &update.description {
            builder.description(description.as_str());
        }
        if let Some(labels) = &update.labels {
            builder.labels(labels.iter().map(String::as_str));
        }
        if update.close {
            builder.state_event(MergeRequestStateEvent::Close);
        }
        let endpoint = builder.build().map_err(|e| build_error(&op, e))?;
        self.query::<MrJson, _>(&op, endpoint).await.map(Into::into)
    }

    #[tracing::instrument(skip_all, fields(iid))]
    async fn add_note(&self, iid: u64, body: &str) -> Result<()> {
        let op = format!("comment on merge request !{iid}");
        let endpoint = CreateMergeRequestNote::builder()
            .project(self.project.as_str())
            .merge_request(iid)
            .body(body)
            .build()
            .map_err(|e| build_error(&op, e))?;
        api::ignore(endpoint)
            .query_async(&self.client)
            .await
            .map_err(|e| to_error(&op, e))
    }

    #[tracing::instrument(skip_all, fields(iid))]
    async fn approvals(&self, iid: u64) -> Result<Vec<Approval>> {
        let op = format!("read approvals of !{iid}");
        let endpoint = MergeRequestApprovals::builder()
            .project(self.project.as_str())
            .merge_request(iid)
            .build()
            .map_err(|e| build_error(&op, e))?;
        let approvals: ApprovalsJson = self.query(&op, endpoint).await?;
        if approvals.approved_by.is_empty() {
            return Ok(Vec::new());
        }
        let notes = mr::notes::MergeRequestNotes::builder()
            .project(self.project.as_str())
            .merge_request(iid)
            .order_by(mr::notes::NoteOrderBy::CreatedAt)
            .sort(SortOrder::Descending)
            .build()
            .map_err(|e| build_error(&op, e))?;
        let notes: Vec<NoteJson> = api::paged(notes, Pagination::Limit(200))
            .query_async(&self.client)
            .await
            .map_err(|e| to_error(&op, e))?;
        let times = approval_times(&notes);
        Ok(approvals
            .approved_by
            .into_iter()
            .map(|a| Approval {
                at: times.get(&a.user.username).copied(),
                username: a.user.username,
            })
            .collect())
    }

    #[tracing::instrument(skip_all, fields(environment))]
    async fn deployments(&self, environment: &str) -> Result<Vec<Deployment>> {
        let op = format!("read the deployments of {environment}");
        let endpoint = gitlab::api::projects::deployments::Deployments::builder()
            .project(self.project.as_str())
            .environment(environment)
            .order_by(gitlab::api::projects::deployments::DeploymentOrderBy::Id)
            .sort(SortOrder::Descending)
            .build()
            .map_err(|e| build_error(&op, e))?;
        // One page (GitLab's 20 newest): the newest landing is among them or not recorded.
        self.query(&op, endpoint).await
    }

    #[tracing::instrument(skip_all, fields(environment, sha))]
    async fn create_deployment(
        &self,
        environment: &str,
        sha: &str,
        reference: &str,
    ) -> Result<Deployment> {
        let op = format!(
            "record the deployment of {} to {environment}",
            &sha[..sha.len().min(8)]
        );
        let endpoint = gitlab::api::projects::deployments::CreateDeployment::builder()
            .project(self.project.as_str())
            .environment(environment)
            .sha(sha)
            .ref_(reference)
            .tag(false)
            .status(gitlab::api::projects::deployments::DeploymentStatus::Success)
            .build()
            .map_err(|e| build_error(&op, e))?;
        self.query(&op, endpoint).await
    }

    #[tracing::instrument(skip_all, fields(iid, sha))]
    async fn merge(&self, iid: u64, sha: &str) -> Result<MergeOutcome> {
        let op = format!("merge !{iid}");
        let endpoint = mr::MergeMergeRequest::builder()
            .project(self.project.as_str())
            .merge_request(iid)
            .sha(sha)
            .should_remove_source_branch(true)
            .build()
            .map_err(|e| build_error(&op, e))?;
        match self.query::<MrJson, _>(&op, endpoint).await {
            Ok(merged) => Ok(MergeOutcome::Merged(
                merged.merge_commit_sha.or(merged.squash_commit_sha),
            )),
            Err(Error::Status { status: 409, .. }) => Ok(MergeOutcome::ShaMismatch),
            Err(Error::Status {
                status: 405 | 406 | 422,
                message,
                ..
            }) => Ok(MergeOutcome::NotMergeable(message)),
            Err(e) => Err(e),
        }
    }

    #[tracing::instrument(skip_all, fields(sha))]
    async fn commit_statuses(&self, sha: &str) -> Result<Vec<CommitStatus>> {
        let op = format!("read the statuses of {}", &sha[..sha.len().min(12)]);
        let endpoint = gitlab::api::projects::repository::commits::CommitStatuses::builder()
            .project(self.project.as_str())
            .commit(sha)
            .build()
            .map_err(|e| build_error(&op, e))?;
        api::paged(endpoint, Pagination::Limit(200))
            .query_async(&self.client)
            .await
            .map_err(|e| to_error(&op, e))
    }

    #[tracing::instrument(skip_all, fields(label))]
    async fn issue_with_label(&self, label: &str) -> Result<Option<Issue>> {
        let op = format!("find the open issue labelled {label}");
        let endpoint = Issues::builder()
            .project(self.project.as_str())
            .label(label)
            .state(IssueState::Opened)
            .order_by(IssueOrderBy::CreatedAt)
            .sort(SortOrder::Ascending)
            .build()
            .map_err(|e| build_error(&op, e))?;
        // One page of one: the oldest open issue wins when people made a second by hand.
        let found: Vec<Issue> = api::paged(endpoint, Pagination::Limit(1))
            .query_async(&self.client)
            .await
            .map_err(|e| to_error(&op, e))?;
        Ok(found.into_iter().next())
    }

    #[tracing::instrument(skip_all)]
    async fn create_issue(
        &self,
        title: &str,
        description: &str,
        labels: &[String],
    ) -> Result<Issue> {
        let op = format!("open the issue {title:?}");
        let endpoint = CreateIssue::builder()
            .project(self.project.as_str())
            .title(title)
            .description(description)
            .labels(labels.iter().map(String::as_str))
            .build()
            .map_err(|e| build_error(&op, e))?;
        self.query(&op, endpoint).await
    }

    #[tracing::instrument(skip_all, fields(iid))]
    async fn update_issue_description(&self, iid: u64, description: &str) -> Result<Issue> {
        let op = format!("update the description of issue #{iid}");
        let endpoint = EditIssue::builder()
            .project(self.project.as_str())
            .issue(iid)
            .description(description)
            .build()
            .map_err(|e| build_error(&op, e))?;
        self.query(&op, endpoint).await
    }

    #[tracing::instrument(skip_all, fields(iid))]
    async fn close_issue(&self, iid: u64) -> Result<Issue> {
        let op = format!("close issue #{iid}");
        let endpoint = EditIssue::builder()
            .project(self.project.as_str())
            .issue(iid)
            .state_event(gitlab::api::projects::issues::IssueStateEvent::Close)
            .build()
            .map_err(|e| build_error(&op, e))?;
        self.query(&op, endpoint).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(user: &str, body: &str, at: &str) -> NoteJson {
        NoteJson {
            body: body.into(),
            author: UserJson {
                username: user.into(),
            },
            created_at: at.parse().unwrap(),
            system: true,
        }
    }

    #[test]
    fn each_users_newest_approval_note_counts_and_an_unapproval_cancels_it() {
        // Newest first, as listed with sort=desc.
        let notes = [
            note(
                "bob",
                "unapproved this merge request",
                "2026-11-24T12:00:00Z",
            ),
            note(
                "alice",
                "approved this merge request",
                "2026-11-24T11:00:00Z",
            ),
            note("bob", "approved this merge request", "2026-11-24T10:00:00Z"),
            note(
                "alice",
                "approved this merge request",
                "2026-11-24T09:00:00Z",
            ),
            NoteJson {
                system: false,
                ..note(
                    "carol",
                    "approved this merge request",
                    "2026-11-24T08:00:00Z",
                )
            },
        ];
        let times = approval_times(&notes);
        assert_eq!(
            times.get("alice"),
            Some(&"2026-11-24T11:00:00Z".parse().unwrap())
        );
        assert_eq!(times.get("bob"), None, "bob took his approval back");
        assert_eq!(times.get("carol"), None, "a user's comment is no approval");
    }
}
