//! Everything the double remembers, behind one mutex, and how it renders as GitLab JSON.

use std::collections::HashMap;

use axum::http::Method;
use chrono::{DateTime, SecondsFormat, Utc};
use git2::Repository;
use serde_json::{Value, json};

use super::faults::Faults;
use super::git;

/// A user of the double and their personal access token.
#[derive(Debug, Clone)]
pub(super) struct User {
    pub id: u64,
    pub username: String,
    pub token: String,
}

/// A merge request as the double stores it.
#[derive(Debug, Clone)]
pub(super) struct Mr {
    pub id: u64,
    pub iid: u64,
    pub title: String,
    pub description: String,
    /// `opened`, `closed`, `merged` or `locked`.
    pub state: &'static str,
    pub source_branch: String,
    pub target_branch: String,
    /// Sorted and unique, as GitLab lists them.
    pub labels: Vec<String>,
    pub author: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub merged_at: Option<DateTime<Utc>>,
    pub merged_by: Option<u64>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<u64>,
    /// Last known head of the source branch (refreshed while opened).
    pub sha: Option<String>,
    pub merge_commit_sha: Option<String>,
    pub squash_commit_sha: Option<String>,
    pub force_remove_source_branch: bool,
    pub should_remove_source_branch: Option<bool>,
    pub squash: bool,
    pub notes: Vec<Note>,
    /// User ids, in approval order.
    pub approved_by: Vec<u64>,
}

impl Mr {
    /// GitLab's draft prefixes (`Draft:`, `[Draft]`, `(Draft)`), case-insensitive.
    pub fn draft(&self) -> bool {
        let t = self.title.trim_start().to_lowercase();
        ["draft:", "[draft]", "(draft)"]
            .iter()
            .any(|p| t.starts_with(p))
    }
}

/// An issue as the double stores it; issues and merge requests share only the project (their
/// iids count separately).
#[derive(Debug, Clone)]
pub(super) struct Issue {
    pub id: u64,
    pub iid: u64,
    pub title: String,
    /// `None` when never given (GitLab answers `null`).
    pub description: Option<String>,
    /// `opened` or `closed`.
    pub state: &'static str,
    /// Sorted and unique, as GitLab lists them.
    pub labels: Vec<String>,
    pub author: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<u64>,
}

/// A (user) note on a merge request.
#[derive(Debug, Clone)]
pub(super) struct Note {
    pub id: u64,
    pub body: String,
    pub author: u64,
    pub created_at: DateTime<Utc>,
    /// GitLab's own notes (approvals); not listed in [`MrView::notes`].
    pub system: bool,
}

/// A commit status (what CI or Flux posts on a commit).
#[derive(Debug, Clone)]
pub(super) struct CommitStatus {
    pub id: u64,
    pub sha: String,
    pub git_ref: Option<String>,
    pub status: String,
    pub name: String,
    pub description: Option<String>,
    pub target_url: Option<String>,
    pub author: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Superseded by a newer status of the same name and ref (hidden unless `all=true`).
    pub retried: bool,
}

/// A pipeline the test set on a commit.
#[derive(Debug, Clone)]
pub(super) struct Pipeline {
    pub id: u64,
    pub status: String,
}

/// One request as the double saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub method: Method,
    /// The raw path, still percent-encoded (`/api/v4/projects/acme%2Fcalculator`).
    pub path: String,
    /// The raw query string, empty when none.
    pub query: String,
    /// 0 when the request hung before it was handled and was never answered.
    pub status: u16,
    /// How long a `Delay` fault held the answer back.
    pub held: Option<std::time::Duration>,
}

/// A merge request as tests inspect it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MrRecord {
    pub iid: u64,
    pub title: String,
    pub description: String,
    /// `opened`, `closed`, `merged` or `locked`.
    pub state: String,
    pub source_branch: String,
    pub target_branch: String,
    pub labels: Vec<String>,
    pub sha: Option<String>,
    pub merge_commit_sha: Option<String>,
    /// Note bodies, oldest first.
    pub notes: Vec<String>,
    /// Usernames of the approvers, in approval order.
    pub approvals: Vec<String>,
}

/// An issue as tests inspect it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRecord {
    pub iid: u64,
    pub title: String,
    pub description: Option<String>,
    /// `opened` or `closed`.
    pub state: String,
    pub labels: Vec<String>,
    /// The author's username.
    pub author: String,
}

/// The whole state of the double.
#[derive(Debug)]
pub(super) struct State {
    pub project_id: u64,
    pub project_path: String,
    pub base_url: String,
    pub users: Vec<User>,
    pub mrs: Vec<Mr>,
    pub issues: Vec<Issue>,
    pub statuses: Vec<CommitStatus>,
    pub deployments: Vec<super::deployments::Deployment>,
    pub pipelines: HashMap<String, Pipeline>,
    pub require_pipeline: bool,
    pub clock: Option<DateTime<Utc>>,
    pub faults: Faults,
    pub log: Vec<Recorded>,
    /// Requests that hung, in order (kept across `reset_log`).
    pub hung: Vec<Recorded>,
    next_id: u64,
}

/// Mergeability of an MR, read from the repository.
pub(super) struct Live {
    pub has_conflicts: bool,
    pub detailed_merge_status: &'static str,
}

/// GitLab's timestamp format (`2026-11-24T10:00:00.000Z`).
pub(super) fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn opt_ts(at: Option<DateTime<Utc>>) -> Value {
    at.map_or(Value::Null, |t| Value::String(ts(t)))
}

/// Pipeline statuses that are still going.
pub(super) fn pipeline_active(status: &str) -> bool {
    matches!(
        status,
        "created" | "waiting_for_resource" | "preparing" | "pending" | "running" | "scheduled"
    )
}

impl State {
    pub fn new(project_id: u64, project_path: &str, base_url: String) -> Self {
        Self {
            project_id,
            project_path: project_path.to_owned(),
            base_url,
            users: Vec::new(),
            mrs: Vec::new(),
            issues: Vec::new(),
            statuses: Vec::new(),
            deployments: Vec::new(),
            pipelines: HashMap::new(),
            require_pipeline: false,
            clock: None,
            faults: Faults::default(),
            log: Vec::new(),
            hung: Vec::new(),
            next_id: 1,
        }
    }

    /// A copy of everything but the faults, the log and the hung requests.
    pub fn fork(&self) -> Self {
        Self {
            project_id: self.project_id,
            project_path: self.project_path.clone(),
            base_url: self.base_url.clone(),
            users: self.users.clone(),
            mrs: self.mrs.clone(),
            issues: self.issues.clone(),
            statuses: self.statuses.clone(),
            deployments: self.deployments.clone(),
            pipelines: self.pipelines.clone(),
            require_pipeline: self.require_pipeline,
            clock: self.clock,
            faults: Faults::default(),
            log: Vec::new(),
            hung: Vec::new(),
            next_id: self.next_id,
        }
    }

    /// A fresh id for any object (users, notes, statuses, pipelines).
    pub fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// A system note by `author` now, as GitLab leaves on approve and unapprove.
    pub fn system_note(&mut self, author: u64, body: &str) -> Note {
        Note {
            id: self.next_id(),
            body: body.to_string(),
            author,
            created_at: self.now(),
            system: true,
        }
    }

    /// The double's clock: fixed by the test, else the wall clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.unwrap_or_else(Utc::now)
    }

    /// The user named `username`, created with a derived token if new.
    pub fn user_or_add(&mut self, username: &str) -> User {
        if let Some(u) = self.users.iter().find(|u| u.username == username) {
            return u.clone();
        }
        let id = self.next_id();
        let user = User {
            id,
            username: username.to_owned(),
            token: format!("glpat-{username}-{id}"),
        };
        self.users.push(user.clone());
        user
    }

    pub fn user_by_token(&self, token: &str) -> Option<User> {
        self.users.iter().find(|u| u.token == token).cloned()
    }

    pub fn username(&self, id: u64) -> String {
        self.users
            .iter()
            .find(|u| u.id == id)
            .map(|u| u.username.clone())
            .unwrap_or_default()
    }

    pub fn mr_index(&self, iid: u64) -> Option<usize> {
        self.mrs.iter().position(|m| m.iid == iid)
    }

    pub fn issue_index(&self, iid: u64) -> Option<usize> {
        self.issues.iter().position(|i| i.iid == iid)
    }

    /// Re-reads the head of every open MR's source branch (kept when the branch is gone).
    pub fn refresh_heads(&mut self, repo: &Repository) {
        for mr in self.mrs.iter_mut().filter(|m| m.state == "opened") {
            if let Some(head) = git::branch_head(repo, &mr.source_branch) {
                mr.sha = Some(head.to_string());
            }
        }
    }

    /// What GitLab would say about merging `mr` now.
    pub fn live(&self, repo: &Repository, mr: &Mr) -> Live {
        if mr.state != "opened" {
            return Live {
                has_conflicts: false,
                detailed_merge_status: "not_open",
            };
        }
        let source = git::branch_head(repo, &mr.source_branch);
        let target = git::branch_head(repo, &mr.target_branch);
        let has_conflicts = match (target, source) {
            (Some(t), Some(s)) => git::conflicts(repo, t, s),
            _ => false,
        };
        let detailed_merge_status = if mr.draft() {
            "draft_status"
        } else if source.is_none() || target.is_none() {
            "commits_status"
        } else if has_conflicts {
            "conflict"
        } else if self.require_pipeline {
            match mr.sha.as_ref().and_then(|s| self.pipelines.get(s)) {
                Some(p) if p.status == "success" => "mergeable",
                Some(p) if pipeline_active(&p.status) => "ci_still_running",
                _ => "ci_must_pass",
            }
        } else {
            "mergeable"
        };
        Live {
            has_conflicts,
            detailed_merge_status,
        }
    }

    pub fn user_json(&self, id: u64) -> Value {
        let username = self.username(id);
        json!({
            "id": id,
            "username": username,
            "name": username,
            "state": "active",
            "locked": false,
            "avatar_url": null,
            "web_url": format!("{}/{username}", self.base_url),
        })
    }

    fn opt_user_json(&self, id: Option<u64>) -> Value {
        id.map_or(Value::Null, |id| self.user_json(id))
    }

    fn head_pipeline_json(&self, mr: &Mr) -> Value {
        let Some((sha, p)) = mr
            .sha
            .as_ref()
            .and_then(|s| Some((s, self.pipelines.get(s)?)))
        else {
            return Value::Null;
        };
        json!({
            "id": p.id,
            "iid": p.id,
            "project_id": self.project_id,
            "sha": sha,
            "ref": mr.source_branch,
            "status": p.status,
            "source": "push",
            "web_url": format!("{}/{}/-/pipelines/{}", self.base_url, self.project_path, p.id),
        })
    }

    /// The MR as `GET .../merge_requests` lists it, or (with `single`) as the single-MR
    /// endpoints answer, which adds `head_pipeline`, `diff_refs` and a few more.
    pub fn mr_json(&self, repo: &Repository, mr: &Mr, single: bool) -> Value {
        let live = self.live(repo, mr);
        let path = &self.project_path;
        let mut v = json!({
            "id": mr.id,
            "iid": mr.iid,
            "project_id": self.project_id,
            "title": mr.title,
            "description": mr.description,
            "state": mr.state,
            "created_at": ts(mr.created_at),
            "updated_at": ts(mr.updated_at),
            "merged_by": self.opt_user_json(mr.merged_by),
            "merge_user": self.opt_user_json(mr.merged_by),
            "merged_at": opt_ts(mr.merged_at),
            "closed_by": self.opt_user_json(mr.closed_by),
            "closed_at": opt_ts(mr.closed_at),
            "target_branch": mr.target_branch,
            "source_branch": mr.source_branch,
            "user_notes_count": mr.notes.len(),
        });
        let more = json!({
            "upvotes": 0,
            "downvotes": 0,
            "author": self.user_json(mr.author),
            "assignees": [],
            "assignee": null,
            "reviewers": [],
            "source_project_id": self.project_id,
            "target_project_id": self.project_id,
            "labels": mr.labels,
            "draft": mr.draft(),
            "work_in_progress": mr.draft(),
            "milestone": null,
            "merge_when_pipeline_succeeds": false,
            "merge_status": if live.has_conflicts { "cannot_be_merged" } else { "can_be_merged" },
            "detailed_merge_status": live.detailed_merge_status,
            "sha": mr.sha,
            "merge_commit_sha": mr.merge_commit_sha,
            "squash_commit_sha": mr.squash_commit_sha,
            "discussion_locked": null,
            "should_remove_source_branch": mr.should_remove_source_branch,
            "force_remove_source_branch": mr.force_remove_source_branch,
            "reference": format!("!{}", mr.iid),
            "references": {
                "short": format!("!{}", mr.iid),
                "relative": format!("!{}", mr.iid),
                "full": format!("{path}!{}", mr.iid),
            },
            "web_url": format!("{}/{path}/-/merge_requests/{}", self.base_url, mr.iid),
            "squash": mr.squash,
            "squash_on_merge": mr.squash,
            "task_completion_status": { "count": 0, "completed_count": 0 },
            "has_conflicts": live.has_conflicts,
            "blocking_discussions_resolved": true,
        });
        let obj = v.as_object_mut().expect("an object");
        if let Value::Object(more) = more {
            obj.extend(more);
        }
        if single {
            obj.insert("head_pipeline".into(), self.head_pipeline_json(mr));
            let base = git::branch_head(repo, &mr.target_branch)
                .zip(mr.sha.as_deref().and_then(|s| git2::Oid::from_str(s).ok()))
                .and_then(|(t, s)| repo.merge_base(t, s).ok())
                .map(|o| o.to_string());
            obj.insert(
                "diff_refs".into(),
                json!({ "base_sha": base, "head_sha": mr.sha, "start_sha": base }),
            );
            obj.insert("merge_error".into(), Value::Null);
            obj.insert("first_contribution".into(), Value::Bool(false));
            obj.insert("user".into(), json!({ "can_merge": true }));
        }
        v
    }

    /// The issue as `GET .../issues` lists it and the single-issue endpoints answer.
    pub fn issue_json(&self, issue: &Issue) -> Value {
        let path = &self.project_path;
        json!({
            "id": issue.id,
            "iid": issue.iid,
            "project_id": self.project_id,
            "title": issue.title,
            "description": issue.description,
            "state": issue.state,
            "created_at": ts(issue.created_at),
            "updated_at": ts(issue.updated_at),
            "closed_at": opt_ts(issue.closed_at),
            "closed_by": self.opt_user_json(issue.closed_by),
            "labels": issue.labels,
            "milestone": null,
            "assignees": [],
            "assignee": null,
            "author": self.user_json(issue.author),
            "type": "ISSUE",
            "issue_type": "issue",
            "user_notes_count": 0,
            "merge_requests_count": 0,
            "upvotes": 0,
            "downvotes": 0,
            "due_date": null,
            "confidential": false,
            "discussion_locked": null,
            "web_url": format!("{}/{path}/-/issues/{}", self.base_url, issue.iid),
            "time_stats": {
                "time_estimate": 0,
                "total_time_spent": 0,
                "human_time_estimate": null,
                "human_total_time_spent": null,
            },
            "task_completion_status": { "count": 0, "completed_count": 0 },
            "has_tasks": false,
            "references": {
                "short": format!("#{}", issue.iid),
                "relative": format!("#{}", issue.iid),
                "full": format!("{path}#{}", issue.iid),
            },
            "severity": "UNKNOWN",
            "moved_to_id": null,
            "service_desk_reply_to": null,
        })
    }

    pub fn issue_record(&self, issue: &Issue) -> IssueRecord {
        IssueRecord {
            iid: issue.iid,
            title: issue.title.clone(),
            description: issue.description.clone(),
            state: issue.state.to_owned(),
            labels: issue.labels.clone(),
            author: self.username(issue.author),
        }
    }

    pub fn note_json(&self, mr: &Mr, note: &Note) -> Value {
        json!({
            "id": note.id,
            "type": null,
            "body": note.body,
            "attachment": null,
            "author": self.user_json(note.author),
            "created_at": ts(note.created_at),
            "updated_at": ts(note.created_at),
            "system": note.system,
            "noteable_id": mr.id,
            "noteable_type": "MergeRequest",
            "noteable_iid": mr.iid,
            "project_id": self.project_id,
            "resolvable": false,
            "confidential": false,
            "internal": false,
        })
    }

    /// `GET .../approvals` as GitLab Free answers it, for the user `viewer`.
    pub fn approvals_json(&self, mr: &Mr, viewer: u64) -> Value {
        let approved_by: Vec<Value> = mr
            .approved_by
            .iter()
            .map(|&id| json!({ "user": self.user_json(id) }))
            .collect();
        let has_approved = mr.approved_by.contains(&viewer);
        json!({
            "id": mr.id,
            "iid": mr.iid,
            "project_id": self.project_id,
            "title": mr.title,
            "description": mr.description,
            "state": mr.state,
            "created_at": ts(mr.created_at),
            "updated_at": ts(mr.updated_at),
            "approved": !mr.approved_by.is_empty(),
            "approved_by": approved_by,
            "user_has_approved": has_approved,
            "user_can_approve": mr.state == "opened" && !has_approved,
        })
    }

    pub fn status_json(&self, s: &CommitStatus) -> Value {
        let finished = !pipeline_active(&s.status);
        json!({
            "id": s.id,
            "sha": s.sha,
            "ref": s.git_ref,
            "status": s.status,
            "name": s.name,
            "target_url": s.target_url,
            "description": s.description,
            "created_at": ts(s.created_at),
            "started_at": if s.status == "pending" { Value::Null } else { Value::String(ts(s.created_at)) },
            "finished_at": if finished { Value::String(ts(s.updated_at)) } else { Value::Null },
            "allow_failure": false,
            "coverage": null,
            "author": self.user_json(s.author),
        })
    }

    pub fn record(&self, mr: &Mr) -> MrRecord {
        MrRecord {
            iid: mr.iid,
            title: mr.title.clone(),
            description: mr.description.clone(),
            state: mr.state.to_owned(),
            source_branch: mr.source_branch.clone(),
            target_branch: mr.target_branch.clone(),
            labels: mr.labels.clone(),
            sha: mr.sha.clone(),
            merge_commit_sha: mr.merge_commit_sha.clone(),
            notes: mr
                .notes
                .iter()
                .filter(|n| !n.system)
                .map(|n| n.body.clone())
                .collect(),
            approvals: mr.approved_by.iter().map(|&id| self.username(id)).collect(),
        }
    }
}
