//! `POST /webhooks/gitlab`: authenticates GitLab's `X-Gitlab-Token` in constant time, parses
//! the events promoter reacts to into small structs, ignores those of another project than
//! `gitlab.project` ([`super::project`]), and queues a [`Trigger`] for the daemon: a reconcile
//! trigger, or for an MR comment addressed to promoter a person's [`ChatRequest`] answered by a
//! comment. A push counts when it is to `git.branch`, where the environments live.
//! It answers within milliseconds and never reconciles inside the request (gitlab.com disables
//! hooks that are slow or failing); payloads are hints, the reconcile re-reads GitLab.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::mpsc::error::TrySendError;

use super::ServerState;
use super::project::ProjectRef;
use crate::chatops::reply::Flavor;
use crate::daemon::{Asker, ChatRequest, ReplyTo, Trigger};

/// Largest accepted body; GitLab's pipeline payloads with many builds stay well below.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Header carrying the shared secret, in plain text.
const TOKEN_HEADER: &str = "x-gitlab-token";
/// Header naming the event, e.g. `Merge Request Hook`.
const EVENT_HEADER: &str = "x-gitlab-event";
/// Header identifying one delivery (for logs).
const UUID_HEADER: &str = "x-gitlab-event-uuid";

/// Source branches of promotion MRs start with this.
const PROMOTION_BRANCH_PREFIX: &str = crate::promotion::branches::PREFIX;

/// Handles one GitLab webhook delivery.
#[tracing::instrument(skip_all, fields(event, uuid))]
pub(super) async fn gitlab(State(state): State<ServerState>, request: Request) -> Response {
    let headers = request.headers();
    let span = tracing::Span::current();
    let event = text_header(headers, EVENT_HEADER).map(str::to_string);
    if let Some(event) = &event {
        span.record("event", event.as_str());
    }
    if let Some(uuid) = text_header(headers, UUID_HEADER) {
        span.record("uuid", uuid);
    }

    if !authenticated(&state, headers) {
        return error(StatusCode::UNAUTHORIZED, "invalid X-Gitlab-Token");
    }
    if !is_json(headers) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content type must be application/json",
        );
    }
    let Some(event) = event else {
        let message = if headers.contains_key(EVENT_HEADER) {
            "X-Gitlab-Event is not ASCII text"
        } else {
            "missing X-Gitlab-Event"
        };
        return error(StatusCode::BAD_REQUEST, message);
    };
    // Read only after authenticating; the route's DefaultBodyLimit makes this a 413 beyond it.
    let body = match Bytes::from_request(request, &()).await {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), &rejection.body_text()),
    };
    match deliver(&event, &body, state.project.as_ref(), &state.branch) {
        Ok(Outcome::Trigger(trigger)) => {
            queue(&state, trigger);
            accepted()
        }
        Ok(Outcome::ChatOps(note)) => {
            tracing::info!(
                noteable_type = %note.object_attributes.noteable_type,
                user = %note.user.username,
                mr = ?note.merge_request.as_ref().map(|mr| mr.iid),
                note = %excerpt(&note.object_attributes.note),
                "note received"
            );
            // Chat-ops answers later, with a comment: GitLab gives a webhook 10 s.
            if let Some(request) = note_request(&note)
                && state.triggers.try_send(Trigger::Chat(request)).is_err()
            {
                tracing::warn!("the daemon's inbox is full or closed: note dropped");
            }
            accepted()
        }
        Ok(Outcome::Ignored(why)) if why == OTHER_PROJECT => {
            tracing::warn!(
                project = ?state.project.as_ref().map(ToString::to_string),
                "webhook ignored: its event is not about gitlab.project (a group hook?)"
            );
            (StatusCode::ACCEPTED, Json(json!({"status": "ignored"}))).into_response()
        }
        Ok(Outcome::Ignored(why)) => {
            tracing::debug!(why, "webhook ignored");
            (StatusCode::ACCEPTED, Json(json!({"status": "ignored"}))).into_response()
        }
        Err(message) => error(StatusCode::BAD_REQUEST, &message),
    }
}

/// What a delivery leads to.
#[derive(Debug)]
pub enum Outcome {
    /// Queue this trigger.
    Trigger(Trigger),
    /// A comment for chat-ops.
    ChatOps(NoteEvent),
    /// Nothing to do, and why.
    Ignored(&'static str),
}

/// Parses the body of an authenticated delivery of `event` (the `X-Gitlab-Event` header) and
/// decides what it means, `branch` being `git.branch`; `Err` (answered 400) for malformed JSON
/// or a payload whose shape does not match its event. Pure, so the fuzz targets call it.
pub fn parse_delivery(event: &str, body: &[u8], branch: &str) -> Result<Outcome, String> {
    let payload: Value =
        serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    classify(event, &payload, branch)
}

/// The person's request in an MR comment that addresses promoter (`@promoter ...` or
/// `/promoter ...`), answered with a comment on the same MR; `None` for any other comment,
/// and for an edit of one (answered when it was written).
fn note_request(note: &NoteEvent) -> Option<ChatRequest> {
    let text = note.object_attributes.note.trim();
    let addressed = text.starts_with("@promoter") || text.starts_with("/promoter");
    let mr = note.merge_request.as_ref().filter(|_| addressed)?;
    if note.object_attributes.action == "update" {
        return None;
    }
    Some(ChatRequest {
        flavor: Flavor::GitLab,
        invocation: "@promoter".into(),
        text: text.to_string(),
        asker: Asker {
            identities: vec![format!("gitlab:{}", note.user.username)],
            place: format!("GitLab !{}", mr.iid),
        },
        reply: ReplyTo::MergeRequest {
            iid: mr.iid,
            author: note.user.username.clone(),
        },
    })
}

/// Why an event that would have acted is ignored: it names another project (or none).
const OTHER_PROJECT: &str = "event of another project than gitlab.project";

/// [`parse_delivery`], then an event that would act (a trigger or a chat-ops comment) is
/// ignored unless its payload names `project`; with no project configured every such event is.
fn deliver(
    event: &str,
    body: &[u8],
    project: Option<&ProjectRef>,
    branch: &str,
) -> Result<Outcome, String> {
    let payload: Value =
        serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let outcome = classify(event, &payload, branch)?;
    Ok(match outcome {
        Outcome::Ignored(_) => outcome,
        _ if project.is_some_and(|p| p.matches(&payload)) => outcome,
        _ => Outcome::Ignored(OTHER_PROJECT),
    })
}

/// Decides what an authenticated, well-formed delivery means (`branch` is `git.branch`); `Err`
/// for a payload whose shape does not match its event.
fn classify(event: &str, payload: &Value, branch: &str) -> Result<Outcome, String> {
    let outcome = match event {
        "Merge Request Hook" => {
            let mr: MergeRequestEvent = shape(event, payload)?;
            let attrs = &mr.object_attributes;
            if attrs.action == "merge" || attrs.source_branch.starts_with(PROMOTION_BRANCH_PREFIX) {
                let mut detail = format!(
                    "!{} {} {} -> {}",
                    attrs.iid, attrs.action, attrs.source_branch, attrs.target_branch
                );
                if !mr.labels.is_empty() {
                    let labels: Vec<_> = mr.labels.iter().map(|l| l.title.as_str()).collect();
                    detail.push_str(&format!(" [{}]", labels.join(", ")));
                }
                webhook(event, detail)
            } else {
                Outcome::Ignored("merge request is neither merged nor a promotion")
            }
        }
        "Pipeline Hook" => {
            let pipeline: PipelineEvent = shape(event, payload)?;
            let attrs = &pipeline.object_attributes;
            webhook(
                event,
                format!(
                    "pipeline {} {} on {}",
                    attrs.id, attrs.status, attrs.git_ref
                ),
            )
        }
        "Push Hook" => {
            let push: PushEvent = shape(event, payload)?;
            match push.git_ref.strip_prefix("refs/heads/") {
                Some(pushed) if !branch.is_empty() && pushed == branch => webhook(
                    event,
                    format!("push to {pushed} at {}", short(&push.checkout_sha)),
                ),
                _ => Outcome::Ignored("push to another branch than git.branch"),
            }
        }
        "Note Hook" => match parse_note(payload) {
            Some(note) => Outcome::ChatOps(note),
            None => return Err("invalid Note Hook payload".to_string()),
        },
        _ => Outcome::Ignored("event not handled"),
    };
    Ok(outcome)
}

fn webhook(event: &str, detail: String) -> Outcome {
    Outcome::Trigger(Trigger::Webhook {
        event: event.to_string(),
        detail,
    })
}

/// Deserializes a payload into the struct for its event.
fn shape<T: DeserializeOwned>(event: &str, payload: &Value) -> Result<T, String> {
    T::deserialize(payload).map_err(|e| format!("invalid {event} payload: {e}"))
}

/// Parses a Note Hook payload (a comment on an MR, issue, commit or snippet). The hook point for
/// chat-ops: `/promote`-style commands arrive here.
pub fn parse_note(payload: &Value) -> Option<NoteEvent> {
    let note = NoteEvent::deserialize(payload).ok()?;
    (note.object_kind.is_empty() || note.object_kind == "note").then_some(note)
}

/// Queues a trigger without waiting: a full queue means a reconcile is pending anyway, and the
/// resync ticker catches up on anything lost.
fn queue(state: &ServerState, trigger: Trigger) {
    match state.triggers.try_send(trigger) {
        Ok(()) => tracing::info!("webhook queued a reconcile"),
        Err(TrySendError::Full(trigger)) => {
            tracing::warn!(%trigger, "trigger queue full; dropped, a resync will catch up");
        }
        Err(TrySendError::Closed(trigger)) => {
            tracing::warn!(%trigger, "daemon loop stopped; trigger dropped");
        }
    }
}

/// Whether `X-Gitlab-Token` equals the configured secret, compared in constant time over
/// SHA-256 digests of both (comparing the bytes themselves would return early on a length
/// mismatch and so tell the secret's length). With no secret configured every delivery is
/// refused: webhooks trigger writes, so never unauthenticated.
fn authenticated(state: &ServerState, headers: &HeaderMap) -> bool {
    let Some(secret) = &state.webhook_secret else {
        tracing::warn!("webhook refused: server.webhook_secret is not configured");
        return false;
    };
    if !headers.contains_key(TOKEN_HEADER) {
        tracing::warn!("webhook refused: no X-Gitlab-Token");
        return false;
    }
    let matches = token_matches(secret, headers);
    if !matches {
        tracing::warn!("webhook refused: wrong X-Gitlab-Token");
    }
    matches
}

/// Whether the delivery's `X-Gitlab-Token` is `secret`, compared in constant time (of the
/// digests, so neither length leaks).
pub(super) fn token_matches(secret: &secrecy::SecretString, headers: &HeaderMap) -> bool {
    let Some(given) = headers.get(TOKEN_HEADER) else {
        return false;
    };
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(secret.expose_secret().as_bytes());
    given.ct_eq(&expected).into()
}

/// Whether the body is declared as JSON (`application/json`, parameters allowed).
fn is_json(headers: &HeaderMap) -> bool {
    text_header(headers, header::CONTENT_TYPE.as_str()).is_some_and(|value| {
        let essence = value.split(';').next().unwrap_or_default().trim();
        essence.eq_ignore_ascii_case("application/json")
    })
}

fn text_header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, Json(json!({"status": "accepted"}))).into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

/// The first line of a comment, at most 80 characters, for logs.
fn excerpt(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(80) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_string(),
    }
}

/// The first 8 characters of a commit id. Characters, not bytes: the payload is untrusted, and
/// cutting a non-ASCII `checkout_sha` at byte 8 panicked the handler (see
/// tests/it/fuzz_regressions.rs).
fn short(sha: &str) -> &str {
    sha.char_indices()
        .nth(8)
        .map_or(sha, |(cut, _)| &sha[..cut])
}

/// `null` as the default: GitLab sends `null` for many absent values.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A `Merge Request Hook` payload, the parts promoter reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MergeRequestEvent {
    /// The merge request and what happened to it.
    #[serde(deserialize_with = "nullable")]
    pub object_attributes: MergeRequestAttributes,
    /// Its labels.
    #[serde(deserialize_with = "nullable")]
    pub labels: Vec<Label>,
}

/// `object_attributes` of a merge request event.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MergeRequestAttributes {
    /// Project-scoped id.
    pub iid: u64,
    /// `open`, `close`, `reopen`, `update`, `approved`, `merge`, ...
    #[serde(deserialize_with = "nullable")]
    pub action: String,
    /// `opened`, `closed`, `merged`, `locked`.
    #[serde(deserialize_with = "nullable")]
    pub state: String,
    /// Source branch.
    #[serde(deserialize_with = "nullable")]
    pub source_branch: String,
    /// Target branch.
    #[serde(deserialize_with = "nullable")]
    pub target_branch: String,
}

/// A label as webhooks carry it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Label {
    /// Its name.
    #[serde(deserialize_with = "nullable")]
    pub title: String,
}

/// A `Pipeline Hook` payload, the parts promoter reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PipelineEvent {
    /// The pipeline.
    #[serde(deserialize_with = "nullable")]
    pub object_attributes: PipelineAttributes,
    /// The merge request it ran for, if any.
    pub merge_request: Option<MergeRequestRef>,
}

/// `object_attributes` of a pipeline event.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PipelineAttributes {
    /// Pipeline id.
    pub id: u64,
    /// Branch or tag it ran on.
    #[serde(rename = "ref", deserialize_with = "nullable")]
    pub git_ref: String,
    /// `pending`, `running`, `success`, `failed`, `canceled`, ...
    #[serde(deserialize_with = "nullable")]
    pub status: String,
    /// Commit it ran on.
    #[serde(deserialize_with = "nullable")]
    pub sha: String,
}

/// A merge request referenced from another event.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MergeRequestRef {
    /// Project-scoped id.
    pub iid: u64,
    /// Source branch.
    #[serde(deserialize_with = "nullable")]
    pub source_branch: String,
}

/// A `Push Hook` payload, the parts promoter reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PushEvent {
    /// `refs/heads/<branch>` or `refs/tags/<tag>`.
    #[serde(rename = "ref", deserialize_with = "nullable")]
    pub git_ref: String,
    /// The new head.
    #[serde(deserialize_with = "nullable")]
    pub checkout_sha: String,
    /// The project pushed to.
    #[serde(deserialize_with = "nullable")]
    pub project: Project,
}

/// The project of an event.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Project {
    /// Project id.
    pub id: u64,
    /// `group/name`.
    #[serde(deserialize_with = "nullable")]
    pub path_with_namespace: String,
    /// GitLab's default branch (not what a push is compared with: `git.branch` is).
    #[serde(deserialize_with = "nullable")]
    pub default_branch: String,
}

/// A `Note Hook` payload: a comment, as chat-ops will read it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NoteEvent {
    /// `note`.
    #[serde(deserialize_with = "nullable")]
    pub object_kind: String,
    /// The comment.
    #[serde(deserialize_with = "nullable")]
    pub object_attributes: NoteAttributes,
    /// Who wrote it.
    #[serde(deserialize_with = "nullable")]
    pub user: User,
    /// The merge request it is on, when `noteable_type` is `MergeRequest`.
    pub merge_request: Option<MergeRequestRef>,
}

/// `object_attributes` of a note event.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NoteAttributes {
    /// Note id.
    pub id: u64,
    /// The comment's text (Markdown).
    #[serde(deserialize_with = "nullable")]
    pub note: String,
    /// `MergeRequest`, `Issue`, `Commit` or `Snippet`.
    #[serde(deserialize_with = "nullable")]
    pub noteable_type: String,
    /// `create` or `update`.
    #[serde(deserialize_with = "nullable")]
    pub action: String,
}

/// The user of an event.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct User {
    /// User id.
    pub id: u64,
    /// Login name.
    #[serde(deserialize_with = "nullable")]
    pub username: String,
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Payloads shaped like the examples in GitLab's webhook documentation.

    /// A promotion MR being merged (`Merge Request Hook`, `action: merge`).
    pub const MERGE_REQUEST_MERGE: &str = r##"{
  "object_kind": "merge_request",
  "event_type": "merge_request",
  "user": {"id": 1, "name": "Administrator", "username": "root",
           "avatar_url": "http://www.gravatar.com/avatar/e64c7d89f26bd1972efa854d13d7dd61?s=40&d=identicon",
           "email": "admin@example.com"},
  "project": {"id": 14, "name": "environments", "description": "GitOps environments",
              "web_url": "http://example.com/platform/environments", "avatar_url": null,
              "git_ssh_url": "git@example.com:platform/environments.git",
              "git_http_url": "http://example.com/platform/environments.git",
              "namespace": "platform", "visibility_level": 0,
              "path_with_namespace": "platform/environments", "default_branch": "main",
              "ci_config_path": null, "homepage": "http://example.com/platform/environments"},
  "object_attributes": {
    "id": 99, "iid": 12, "target_branch": "main", "source_branch": "promoter/qa/api",
    "source_project_id": 14, "author_id": 51, "assignee_ids": [], "assignee_id": null,
    "reviewer_ids": [], "title": "Promote api 1.4.0 to qa",
    "created_at": "2026-03-03T17:23:34Z", "updated_at": "2026-03-03T17:30:01Z",
    "last_edited_at": null, "last_edited_by_id": null, "milestone_id": null,
    "state_id": 3, "state": "merged", "blocking_discussions_resolved": true,
    "work_in_progress": false, "draft": false, "first_contribution": false,
    "merge_status": "can_be_merged", "target_project_id": 14,
    "description": "Promotes **api** from dev to qa.", "prepared_at": "2026-03-03T17:23:40Z",
    "total_time_spent": 0, "time_change": 0, "human_total_time_spent": null,
    "human_time_change": null, "human_time_estimate": null,
    "url": "http://example.com/platform/environments/-/merge_requests/12",
    "last_commit": {"id": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
                    "message": "promote api 1.4.0 to qa\n", "title": "promote api 1.4.0 to qa",
                    "timestamp": "2026-03-03T17:23:30+00:00",
                    "url": "http://example.com/platform/environments/-/commit/da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
                    "author": {"name": "promoter", "email": "promoter@localhost"}},
    "merge_commit_sha": "7b5c3cc8be40ee161ae89a06bba6229da1032a0c",
    "labels": [{"id": 206, "title": "promotion", "color": "#428BCA", "project_id": 14,
                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
                "template": false, "description": null, "type": "ProjectLabel", "group_id": null}],
    "action": "merge", "detailed_merge_status": "not_open"
  },
  "labels": [{"id": 206, "title": "promotion", "color": "#428BCA", "project_id": 14,
              "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
              "template": false, "description": null, "type": "ProjectLabel", "group_id": null}],
  "changes": {"state_id": {"previous": 1, "current": 3},
              "updated_at": {"previous": "2026-03-03 17:23:34 UTC", "current": "2026-03-03 17:30:01 UTC"}},
  "repository": {"name": "environments", "url": "git@example.com:platform/environments.git",
                 "description": "GitOps environments", "homepage": "http://example.com/platform/environments"},
  "assignees": [], "reviewers": []
}"##;

    /// A comment on a merge request (`Note Hook`).
    pub const NOTE_ON_MERGE_REQUEST: &str = r##"{
  "object_kind": "note",
  "event_type": "note",
  "user": {"id": 7, "name": "Alice", "username": "alice",
           "avatar_url": null, "email": "[REDACTED]"},
  "project_id": 14,
  "project": {"id": 14, "name": "environments", "web_url": "http://example.com/platform/environments",
              "path_with_namespace": "platform/environments", "default_branch": "main"},
  "repository": {"name": "environments", "url": "git@example.com:platform/environments.git"},
  "object_attributes": {
    "id": 1244, "note": "/promoter approve\nLooks good.", "noteable_type": "MergeRequest",
    "author_id": 7, "created_at": "2026-03-03 18:21:36 UTC", "updated_at": "2026-03-03 18:21:36 UTC",
    "project_id": 14, "attachment": null, "line_code": null, "commit_id": "",
    "noteable_id": 99, "system": false, "st_diff": null, "action": "create",
    "url": "http://example.com/platform/environments/-/merge_requests/12#note_1244"
  },
  "merge_request": {
    "id": 99, "iid": 12, "target_branch": "main", "source_branch": "promoter/prod/api",
    "source_project_id": 14, "author_id": 51, "assignee_id": null, "title": "Promote api 1.4.0 to prod",
    "created_at": "2026-03-03T17:23:34Z", "updated_at": "2026-03-03T18:21:36Z",
    "milestone_id": null, "state": "opened", "merge_status": "can_be_merged",
    "target_project_id": 14, "description": "", "position": 0,
    "labels": [], "draft": false, "work_in_progress": false,
    "detailed_merge_status": "not_approved"
  }
}"##;

    /// A finished pipeline (`Pipeline Hook`).
    pub const PIPELINE_SUCCESS: &str = r##"{
  "object_kind": "pipeline",
  "object_attributes": {
    "id": 31, "iid": 3, "name": "Pipeline for branch: promoter/qa/api",
    "ref": "promoter/qa/api", "tag": false,
    "sha": "bcbb5ec396a2c0f828686f14fac9b80b780504f2",
    "before_sha": "bcbb5ec396a2c0f828686f14fac9b80b780504f2",
    "source": "merge_request_event", "status": "success", "detailed_status": "passed",
    "stages": ["validate", "render"], "created_at": "2026-03-03 15:23:28 UTC",
    "finished_at": "2026-03-03 15:26:29 UTC", "duration": 63, "queued_duration": 12,
    "variables": [{"key": "NESTOR_PROD_ENVIRONMENT", "value": "us-west-1"}],
    "url": "http://example.com/platform/environments/-/pipelines/31"
  },
  "merge_request": {
    "id": 99, "iid": 12, "title": "Promote api 1.4.0 to qa", "source_branch": "promoter/qa/api",
    "source_project_id": 14, "target_branch": "main", "target_project_id": 14,
    "state": "opened", "merge_status": "can_be_merged", "detailed_merge_status": "mergeable",
    "url": "http://example.com/platform/environments/-/merge_requests/12"
  },
  "user": {"id": 1, "name": "Administrator", "username": "root", "avatar_url": null,
           "email": "[REDACTED]"},
  "project": {"id": 14, "name": "environments", "web_url": "http://example.com/platform/environments",
              "path_with_namespace": "platform/environments", "default_branch": "main"},
  "commit": {"id": "bcbb5ec396a2c0f828686f14fac9b80b780504f2", "message": "promote api 1.4.0 to qa",
             "title": "promote api 1.4.0 to qa", "timestamp": "2026-03-03T15:20:00+00:00",
             "url": "http://example.com/platform/environments/-/commit/bcbb5ec396a2c0f828686f14fac9b80b780504f2",
             "author": {"name": "promoter", "email": "promoter@localhost"}},
  "source_pipeline": null,
  "builds": [
    {"id": 380, "stage": "validate", "name": "check", "status": "success",
     "created_at": "2026-03-03 15:23:28 UTC", "started_at": "2026-03-03 15:24:00 UTC",
     "finished_at": "2026-03-03 15:25:00 UTC", "duration": 60.0, "queued_duration": 1.5,
     "failure_reason": null, "when": "on_success", "manual": false, "allow_failure": false,
     "user": {"id": 1, "name": "Administrator", "username": "root"},
     "runner": null, "artifacts_file": {"filename": null, "size": null},
     "environment": null}
  ]
}"##;

    /// A push to the default branch (`Push Hook`).
    pub const PUSH_TO_MAIN: &str = r##"{
  "object_kind": "push", "event_name": "push",
  "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
  "after": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
  "ref": "refs/heads/main", "ref_protected": true,
  "checkout_sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
  "user_id": 4, "user_name": "John Smith", "user_username": "jsmith",
  "user_email": "john@example.com", "user_avatar": null, "project_id": 14,
  "project": {"id": 14, "name": "environments", "description": "",
              "web_url": "http://example.com/platform/environments",
              "path_with_namespace": "platform/environments", "default_branch": "main"},
  "commits": [{"id": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", "message": "bump dev\n",
               "title": "bump dev", "timestamp": "2026-03-03T17:00:00+00:00",
               "url": "http://example.com/platform/environments/-/commit/da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
               "author": {"name": "John Smith", "email": "john@example.com"},
               "added": [], "modified": ["clusters/dev/api/values.yaml"], "removed": []}],
  "total_commits_count": 1,
  "repository": {"name": "environments", "url": "git@example.com:platform/environments.git"}
}"##;
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    fn payload(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn detail(outcome: Outcome) -> String {
        match outcome {
            Outcome::Trigger(Trigger::Webhook { detail, .. }) => detail,
            other => panic!("not a webhook trigger: {other:?}"),
        }
    }

    #[test]
    fn merge_request_merge_event_parses_and_triggers() {
        let mr: MergeRequestEvent = shape("x", &payload(MERGE_REQUEST_MERGE)).unwrap();
        assert_eq!(mr.object_attributes.iid, 12);
        assert_eq!(mr.object_attributes.action, "merge");
        assert_eq!(mr.object_attributes.state, "merged");
        assert_eq!(mr.object_attributes.source_branch, "promoter/qa/api");
        assert_eq!(mr.object_attributes.target_branch, "main");
        assert_eq!(mr.labels[0].title, "promotion");
        let outcome =
            classify("Merge Request Hook", &payload(MERGE_REQUEST_MERGE), "main").unwrap();
        assert_eq!(
            detail(outcome),
            "!12 merge promoter/qa/api -> main [promotion]"
        );
    }

    #[test]
    fn merge_request_events_trigger_on_merge_or_promotion_branches_only() {
        let cases = [
            ("merge", "feature/x", true),
            ("update", "promoter/prod/api", true),
            ("approved", "promoter/prod/train", true),
            ("open", "feature/x", false),
            ("update", "promoterx/qa", false),
        ];
        for (action, branch, triggers) in cases {
            let mut p = payload(MERGE_REQUEST_MERGE);
            p["object_attributes"]["action"] = json!(action);
            p["object_attributes"]["source_branch"] = json!(branch);
            let outcome = classify("Merge Request Hook", &p, "main").unwrap();
            assert_eq!(
                matches!(outcome, Outcome::Trigger(_)),
                triggers,
                "{action} {branch}"
            );
        }
    }

    #[test]
    fn note_on_merge_request_parses_for_chat_ops() {
        let note = parse_note(&payload(NOTE_ON_MERGE_REQUEST)).unwrap();
        assert_eq!(note.object_attributes.id, 1244);
        assert_eq!(
            note.object_attributes.note,
            "/promoter approve\nLooks good."
        );
        assert_eq!(note.object_attributes.noteable_type, "MergeRequest");
        assert_eq!(note.object_attributes.action, "create");
        assert_eq!(note.user.username, "alice");
        assert_eq!(note.merge_request.as_ref().unwrap().iid, 12);
        assert!(matches!(
            classify("Note Hook", &payload(NOTE_ON_MERGE_REQUEST), "main"),
            Ok(Outcome::ChatOps(_))
        ));
        assert!(parse_note(&payload(PIPELINE_SUCCESS)).is_none());
        assert_eq!(excerpt(&"x".repeat(100)), format!("{}...", "x".repeat(80)));
    }

    #[test]
    fn pipeline_event_parses_and_triggers() {
        let pipeline: PipelineEvent = shape("x", &payload(PIPELINE_SUCCESS)).unwrap();
        assert_eq!(pipeline.object_attributes.id, 31);
        assert_eq!(pipeline.object_attributes.status, "success");
        assert_eq!(
            pipeline.object_attributes.sha,
            "bcbb5ec396a2c0f828686f14fac9b80b780504f2"
        );
        assert_eq!(
            pipeline.merge_request.unwrap().source_branch,
            "promoter/qa/api"
        );
        let outcome = classify("Pipeline Hook", &payload(PIPELINE_SUCCESS), "main").unwrap();
        assert_eq!(detail(outcome), "pipeline 31 success on promoter/qa/api");
    }

    #[test]
    fn push_triggers_only_on_the_configured_branch() {
        let outcome = classify("Push Hook", &payload(PUSH_TO_MAIN), "main").unwrap();
        assert_eq!(detail(outcome), "push to main at da156088");
        for git_ref in ["refs/heads/feature", "refs/tags/main"] {
            let mut p = payload(PUSH_TO_MAIN);
            p["ref"] = json!(git_ref);
            assert!(matches!(
                classify("Push Hook", &p, "main"),
                Ok(Outcome::Ignored(_))
            ));
        }
        // The payload's default branch does not matter: `git.branch` does.
        let mut p = payload(PUSH_TO_MAIN);
        p["ref"] = json!("refs/heads/environments");
        let outcome = classify("Push Hook", &p, "environments").unwrap();
        assert_eq!(detail(outcome), "push to environments at da156088");
        let main = classify("Push Hook", &payload(PUSH_TO_MAIN), "environments");
        assert!(matches!(main, Ok(Outcome::Ignored(_))));
    }

    #[test]
    fn nulls_and_missing_fields_are_defaults_but_wrong_types_are_errors() {
        let p = json!({"object_attributes": {"iid": 3, "action": null}, "labels": null});
        let mr: MergeRequestEvent = shape("x", &p).unwrap();
        assert_eq!(mr.object_attributes.iid, 3);
        assert_eq!(mr.object_attributes.action, "");
        assert!(mr.labels.is_empty());

        let p = json!({"object_attributes": {"iid": "three"}});
        let err = classify("Merge Request Hook", &p, "main").unwrap_err();
        assert!(
            err.starts_with("invalid Merge Request Hook payload: "),
            "{err}"
        );
        assert!(classify("Note Hook", &json!([1]), "main").is_err());
        assert!(matches!(
            classify("Emoji Hook", &json!({}), "main"),
            Ok(Outcome::Ignored(_))
        ));
    }
}
