//! The forge: where merge requests live. A small trait over what promoter needs from GitLab
//! (find, open, update, close and merge promotion MRs, notes, approvals, the dashboard issue),
//! with the GitLab implementation in [`gitlab`]. Reconcile is written against the trait.

pub mod gitlab;

use serde::{Deserialize, Serialize};

/// A merge request's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MrState {
    /// Open for review.
    Opened,
    /// Closed without merging.
    Closed,
    /// Merged.
    Merged,
    /// Locked (being merged).
    Locked,
}

/// A merge request as promoter uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeRequest {
    /// Project-scoped id (`!7`).
    pub iid: u64,
    /// Title.
    pub title: String,
    /// Description (Markdown).
    #[serde(default)]
    pub description: Option<String>,
    /// Source branch.
    pub source_branch: String,
    /// Target branch.
    pub target_branch: String,
    /// State.
    pub state: MrState,
    /// Labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Head commit of the source branch, as GitLab last saw it.
    #[serde(default)]
    pub sha: Option<String>,
    /// The merge commit, once merged.
    #[serde(default)]
    pub merge_commit_sha: Option<String>,
    /// GitLab's mergeability verdict (`mergeable`, `not_approved`, `ci_still_running`, ...).
    #[serde(default)]
    pub detailed_merge_status: Option<String>,
    /// Link for people.
    #[serde(default)]
    pub web_url: String,
    /// The latest pipeline of the source branch's head, when GitLab says (single-MR reads).
    #[serde(default)]
    pub head_pipeline: Option<Pipeline>,
    /// Who opened it (username), when GitLab says.
    #[serde(default)]
    pub author: Option<String>,
    /// When it was opened, when GitLab says.
    #[serde(default)]
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it last changed, by GitLab's clock, when GitLab says: an approval, a note, an edit,
    /// a close or a merge moves it (each writes the MR or a note, and a note touches its MR).
    #[serde(default)]
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Its source branch is in another project (a fork), whatever the branch is called.
    #[serde(default)]
    pub from_fork: bool,
}

/// A pipeline as an MR reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipeline {
    /// The commit it ran on.
    pub sha: String,
    /// `success`, `failed`, `running`, ...
    pub status: String,
}

/// A commit status (a CI job, or Flux reporting what it applied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitStatus {
    /// The status's name, e.g. `kustomization/calculator/0c9c2e41`.
    pub name: String,
    /// `success`, `failed`, `pending`, `running`, `canceled`, `skipped`.
    pub status: String,
    /// The commit.
    pub sha: String,
    /// What the reporter said.
    #[serde(default)]
    pub description: Option<String>,
    /// When it was posted (RFC 3339).
    #[serde(default)]
    pub created_at: Option<String>,
    /// Who posted it (the user of the token), when GitLab says.
    #[serde(default)]
    pub author: Option<StatusAuthor>,
}

/// The user who posted a commit status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusAuthor {
    /// Their GitLab username.
    pub username: String,
}

impl CommitStatus {
    /// The username of whoever posted it, if known.
    pub fn author_username(&self) -> Option<&str> {
        self.author.as_ref().map(|a| a.username.as_str())
    }
}

/// An issue's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IssueState {
    /// Open.
    Opened,
    /// Closed.
    Closed,
}

/// An issue as promoter uses it (the dashboard issue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// Project-scoped id (`#7`).
    pub iid: u64,
    /// Title.
    pub title: String,
    /// Description (Markdown); GitLab answers `null` for an empty one.
    #[serde(default)]
    pub description: Option<String>,
    /// Link for people.
    #[serde(default)]
    pub web_url: String,
    /// State.
    pub state: IssueState,
}

/// What to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMergeRequest {
    /// Branch with the promotion commit.
    pub source_branch: String,
    /// Branch the environments live on.
    pub target_branch: String,
    /// Title (at most 255 characters).
    pub title: String,
    /// Description.
    pub description: String,
    /// Labels.
    pub labels: Vec<String>,
}

/// Changes to an open merge request; `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MrUpdate {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// The full new label set.
    pub labels: Option<Vec<String>>,
    /// Close it.
    pub close: bool,
}

/// The answer to a merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    /// Merged; the merge (or squash) commit when GitLab says.
    Merged(Option<String>),
    /// GitLab refused: not mergeable now (405/406/422), with its message.
    NotMergeable(String),
    /// The source branch moved since promoter looked (409): re-plan.
    ShaMismatch,
}

/// One person's standing approval of a merge request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// Who.
    pub username: String,
    /// When they last approved (from the merge request's system notes; GitLab Free's
    /// approvals API has no times); `None` when no note says.
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A deployment GitLab recorded for an environment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Deployment {
    /// GitLab's id.
    pub id: u64,
    /// The commit deployed.
    pub sha: String,
    /// The branch.
    #[serde(rename = "ref")]
    pub reference: String,
    /// `created`, `running`, `success`, `failed`, `canceled`, `blocked`.
    pub status: String,
}

/// Forge failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The forge answered with an error status.
    #[error("{operation}: GitLab answered {status}: {message}")]
    Status {
        operation: String,
        status: u16,
        message: String,
    },
    /// A second MR for one source branch (GitLab's 409 on create).
    #[error("{operation}: an open merge request already exists for source branch {branch}")]
    Duplicate { operation: String, branch: String },
    /// Could not talk to the forge at all (after retries).
    #[error("{operation}: {message}")]
    Transport { operation: String, message: String },
    /// The forge's answer was not what its API documents.
    #[error("{operation}: unexpected answer: {message}")]
    Decode { operation: String, message: String },
}

/// Result of forge calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What promoter needs from a forge. Implementations retry rate limits and transient errors
/// themselves; an error here is final for this reconcile.
pub trait Forge: Send + Sync {
    /// The username promoter acts as on the forge (learned once, when connecting), if known:
    /// only merge requests it opened itself carry requests recorded on their branches.
    fn own_username(&self) -> Option<&str> {
        None
    }

    /// Every open merge request carrying `label` (all pages).
    fn open_merge_requests(
        &self,
        label: &str,
    ) -> impl Future<Output = Result<Vec<MergeRequest>>> + Send;

    /// Every merge request into `target_branch`, in any state and with any labels, that
    /// changed on or after `after` (GitLab's `updated_after`; all pages): what changed since
    /// an earlier listing.
    fn merge_requests_updated_after(
        &self,
        target_branch: &str,
        after: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<Vec<MergeRequest>>> + Send;

    /// The open merge request from `source_branch` (of this project, not a fork's) into
    /// `target_branch`, if any. GitLab allows one per source *and* target branch, so a person
    /// may open another from the same branch into a branch of theirs: that one is never it.
    fn open_merge_request_from(
        &self,
        source_branch: &str,
        target_branch: &str,
    ) -> impl Future<Output = Result<Option<MergeRequest>>> + Send;

    /// One merge request, fresh.
    fn merge_request(&self, iid: u64) -> impl Future<Output = Result<MergeRequest>> + Send;

    /// Opens a merge request; [`Error::Duplicate`] when one is open for the source branch.
    fn create_merge_request(
        &self,
        new: &NewMergeRequest,
    ) -> impl Future<Output = Result<MergeRequest>> + Send;

    /// Edits (or closes) a merge request.
    fn update_merge_request(
        &self,
        iid: u64,
        update: &MrUpdate,
    ) -> impl Future<Output = Result<MergeRequest>> + Send;

    /// Adds a comment.
    fn add_note(&self, iid: u64, body: &str) -> impl Future<Output = Result<()>> + Send;

    /// Everyone whose approval stands, with when they gave it.
    fn approvals(&self, iid: u64) -> impl Future<Output = Result<Vec<Approval>>> + Send;

    /// The newest deployments recorded for `environment` (one page, newest first).
    fn deployments(
        &self,
        environment: &str,
    ) -> impl Future<Output = Result<Vec<Deployment>>> + Send;

    /// Records a successful deployment of `sha` (on branch `reference`) to `environment`;
    /// GitLab creates the environment when it does not exist.
    fn create_deployment(
        &self,
        environment: &str,
        sha: &str,
        reference: &str,
    ) -> impl Future<Output = Result<Deployment>> + Send;

    /// Merges, only if the source branch head is still `sha`.
    fn merge(&self, iid: u64, sha: &str) -> impl Future<Output = Result<MergeOutcome>> + Send;

    /// The latest status of each name posted on commit `sha`.
    fn commit_statuses(&self, sha: &str) -> impl Future<Output = Result<Vec<CommitStatus>>> + Send;

    /// The oldest open issue carrying `label`, if any (one list call).
    fn issue_with_label(&self, label: &str) -> impl Future<Output = Result<Option<Issue>>> + Send;

    /// Opens an issue.
    fn create_issue(
        &self,
        title: &str,
        description: &str,
        labels: &[String],
    ) -> impl Future<Output = Result<Issue>> + Send;

    /// Replaces an issue's description (nothing else changes).
    fn update_issue_description(
        &self,
        iid: u64,
        description: &str,
    ) -> impl Future<Output = Result<Issue>> + Send;

    /// Closes an issue.
    fn close_issue(&self, iid: u64) -> impl Future<Output = Result<Issue>> + Send;
}
