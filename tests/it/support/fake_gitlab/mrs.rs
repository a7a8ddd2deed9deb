//! The merge request endpoints: list, create, get, update (edit, close, reopen) and merge.

use axum::response::Response;
use serde_json::json;

use super::api::{Cx, error, find_mr, json, message, paginate, sort_by_time};
use super::git::{self, MergeError};
use super::state::Mr;

const STATES: [&str; 5] = ["opened", "closed", "merged", "locked", "all"];

/// Comma-separated labels, trimmed, sorted and unique.
pub(super) fn parse_labels(text: &str) -> Vec<String> {
    let mut labels: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    labels.sort();
    labels.dedup();
    labels
}

/// GitLab's model validation of a title (400 with a field-keyed message).
pub(super) fn check_title(title: &str) -> Result<(), Box<Response>> {
    let problem = if title.trim().is_empty() {
        "can't be blank"
    } else if title.chars().count() > 255 {
        "is too long (maximum is 255 characters)"
    } else {
        return Ok(());
    };
    Err(Box::new(json(
        400,
        json!({ "message": { "title": [problem] } }),
    )))
}

/// 409 when another opened MR (not `except`) has `source_branch`.
/// GitLab's `validate_branches`: one open MR per source branch *and target branch* (an MR
/// from the same source branch into another target is allowed).
fn check_duplicate(
    cx: &Cx,
    source_branch: &str,
    target_branch: &str,
    except: Option<u64>,
) -> Result<(), Box<Response>> {
    match cx.st.mrs.iter().find(|m| {
        m.state == "opened"
            && m.source_branch == source_branch
            && m.target_branch == target_branch
            && Some(m.iid) != except
    }) {
        Some(other) => Err(Box::new(json(
            409,
            json!({ "message": [format!(
                "Another open merge request already exists for this source branch: !{}",
                other.iid
            )] }),
        ))),
        None => Ok(()),
    }
}

fn check_branch(cx: &Cx, which: &str, branch: &str) -> Result<(), Box<Response>> {
    if git::branch_head(cx.repo, branch).is_some() {
        return Ok(());
    }
    Err(Box::new(json(
        422,
        json!({ "message": [format!("{which} branch \"{branch}\" does not exist")] }),
    )))
}

/// `GET .../merge_requests`: filters `state` (default all), `labels` (all must match;
/// `None`/`Any`), `source_branch`, `target_branch`, `author_username`, `search`,
/// `updated_after` (on or after); newest first.
pub(super) fn list(cx: &Cx, id: &str) -> Response {
    let req = cx.req;
    let state = req.get("state").unwrap_or("all");
    if !STATES.contains(&state) {
        return error(400, "state does not have a valid value");
    }
    let labels = req.get("labels").map(parse_labels);
    let updated_after = match req
        .get("updated_after")
        .map(chrono::DateTime::parse_from_rfc3339)
    {
        None => None,
        Some(Ok(at)) => Some(at.with_timezone(&chrono::Utc)),
        Some(Err(_)) => return error(400, "updated_after is invalid"),
    };
    let mut mrs: Vec<&Mr> = cx
        .st
        .mrs
        .iter()
        .filter(|m| state == "all" || m.state == state)
        .filter(|m| match labels.as_deref() {
            None | Some([]) => true,
            Some([only]) if only == "None" => m.labels.is_empty(),
            Some([only]) if only == "Any" => !m.labels.is_empty(),
            Some(wanted) => wanted.iter().all(|l| m.labels.contains(l)),
        })
        .filter(|m| {
            req.get("source_branch")
                .is_none_or(|b| m.source_branch == b)
        })
        .filter(|m| {
            req.get("target_branch")
                .is_none_or(|b| m.target_branch == b)
        })
        .filter(|m| {
            req.get("author_username")
                .is_none_or(|u| cx.st.username(m.author) == u)
        })
        .filter(|m| {
            req.get("search")
                .is_none_or(|s| m.title.contains(s) || m.description.contains(s))
        })
        .filter(|m| updated_after.is_none_or(|after| m.updated_at >= after))
        .collect();
    sort_by_time(req, &mut mrs, |m| (m.created_at, m.updated_at, m.id));
    let items = mrs
        .iter()
        .map(|m| cx.st.mr_json(cx.repo, m, false))
        .collect();
    paginate(cx.st, req, &[("id", id)], items)
}

/// `POST .../merge_requests`. Checked in GitLab's order: missing parameters (400), same
/// branches and missing branches (422), an open MR for the source branch (409), the title (400).
pub(super) fn create(cx: &mut Cx) -> Response {
    let req = cx.req;
    let missing: Vec<String> = ["source_branch", "target_branch", "title"]
        .into_iter()
        .filter_map(|k| match req.get(k) {
            None => Some(format!("{k} is missing")),
            Some("") => Some(format!("{k} is empty")),
            Some(_) => None,
        })
        .collect();
    if !missing.is_empty() {
        return error(400, &missing.join(", "));
    }
    let source = req.get("source_branch").unwrap_or_default().to_owned();
    let target = req.get("target_branch").unwrap_or_default().to_owned();
    let title = req.get("title").unwrap_or_default().to_owned();
    if source == target {
        return json(
            422,
            json!({ "message": ["You can't use same project/branch for source and target"] }),
        );
    }
    if let Err(rsp) = check_branch(cx, "Source", &source)
        .and_then(|()| check_branch(cx, "Target", &target))
        .and_then(|()| check_duplicate(cx, &source, &target, None))
        .and_then(|()| check_title(&title))
    {
        return *rsp;
    }
    let now = cx.st.now();
    let iid = cx.st.mrs.iter().map(|m| m.iid).max().unwrap_or(0) + 1;
    let mr = Mr {
        id: 1000 + iid,
        iid,
        title,
        description: req.get("description").unwrap_or_default().to_owned(),
        state: "opened",
        sha: git::branch_head(cx.repo, &source).map(|o| o.to_string()),
        source_branch: source,
        target_branch: target,
        labels: req.get("labels").map(parse_labels).unwrap_or_default(),
        author: cx.user.id,
        created_at: now,
        updated_at: now,
        merged_at: None,
        merged_by: None,
        closed_at: None,
        closed_by: None,
        merge_commit_sha: None,
        squash_commit_sha: None,
        force_remove_source_branch: req.flag("remove_source_branch").unwrap_or(false),
        should_remove_source_branch: None,
        squash: req.flag("squash").unwrap_or(false),
        notes: Vec::new(),
        approved_by: Vec::new(),
    };
    let body = cx.st.mr_json(cx.repo, &mr, true);
    cx.st.mrs.push(mr);
    json(201, body)
}

/// `GET .../merge_requests/:iid`, with `head_pipeline`.
pub(super) fn get(cx: &Cx, iid: u64) -> Response {
    match find_mr(cx.st, iid) {
        Ok(idx) => json(200, cx.st.mr_json(cx.repo, &cx.st.mrs[idx], true)),
        Err(rsp) => *rsp,
    }
}

const EDITABLE: [&str; 13] = [
    "title",
    "description",
    "labels",
    "add_labels",
    "remove_labels",
    "state_event",
    "target_branch",
    "remove_source_branch",
    "squash",
    "discussion_locked",
    "assignee_id",
    "assignee_ids",
    "reviewer_ids",
];

/// `PUT .../merge_requests/:iid`: `labels` replaces, `add_labels`/`remove_labels` adjust;
/// `state_event=close` closes an opened MR (ignored on a merged one), `reopen` reopens a closed
/// one (409 if another MR for its source branch is open meanwhile).
pub(super) fn update(cx: &mut Cx, iid: u64) -> Response {
    let idx = match find_mr(cx.st, iid) {
        Ok(i) => i,
        Err(rsp) => return *rsp,
    };
    let req = cx.req;
    if !EDITABLE.iter().any(|k| req.has(k)) {
        let names = EDITABLE.join(", ");
        return error(
            400,
            &format!("{names} are missing, at least one parameter must be provided"),
        );
    }
    let event = req.get("state_event");
    if event.is_some_and(|e| e != "close" && e != "reopen") {
        return error(400, "state_event does not have a valid value");
    }
    if let Some(Err(rsp)) = req.get("title").map(check_title) {
        return *rsp;
    }
    if let Some(Err(rsp)) = req
        .get("target_branch")
        .map(|t| check_branch(cx, "Target", t))
    {
        return *rsp;
    }
    let mr = &cx.st.mrs[idx];
    let target = req
        .get("target_branch")
        .unwrap_or(mr.target_branch.as_str())
        .to_owned();
    let open_after = event == Some("reopen") || (event.is_none() && mr.state == "opened");
    if open_after
        && let Err(rsp) = check_duplicate(cx, &mr.source_branch.clone(), &target, Some(iid))
    {
        return *rsp;
    }
    let now = cx.st.now();
    let user = cx.user.id;
    let mr = &mut cx.st.mrs[idx];
    if let Some(t) = req.get("title") {
        mr.title = t.to_owned();
    }
    if let Some(d) = req.get("description") {
        mr.description = d.to_owned();
    }
    if let Some(t) = req.get("target_branch") {
        mr.target_branch = t.to_owned();
    }
    if let Some(l) = req.get("labels") {
        mr.labels = parse_labels(l);
    }
    if let Some(l) = req.get("add_labels") {
        mr.labels.extend(parse_labels(l));
        mr.labels.sort();
        mr.labels.dedup();
    }
    if let Some(l) = req.get("remove_labels") {
        let gone = parse_labels(l);
        mr.labels.retain(|x| !gone.contains(x));
    }
    if let Some(flag) = req.flag("remove_source_branch") {
        mr.force_remove_source_branch = flag;
    }
    if let Some(flag) = req.flag("squash") {
        mr.squash = flag;
    }
    match (event, mr.state) {
        (Some("close"), "opened") => {
            mr.state = "closed";
            mr.closed_at = Some(now);
            mr.closed_by = Some(user);
        }
        (Some("reopen"), "closed") => {
            mr.state = "opened";
            mr.closed_at = None;
            mr.closed_by = None;
        }
        _ => {}
    }
    mr.updated_at = now;
    let repo = cx.repo;
    cx.st.refresh_heads(repo);
    json(200, cx.st.mr_json(repo, &cx.st.mrs[idx], true))
}

/// `PUT .../merge_requests/:iid/merge`, checked in the order of GitLab's `merge` endpoint:
/// not mergeable now (not opened, draft, a branch gone, required pipeline not successful)
/// -> 405; conflicts -> 406 `Branch cannot be merged` (the documented status; gitlab.com has
/// been seen answering 405, see gitlab#364102); `sha` not the source head -> 409. Otherwise a
/// real merge commit in the bare repository.
pub(super) fn merge(cx: &mut Cx, iid: u64) -> Response {
    let idx = match find_mr(cx.st, iid) {
        Ok(i) => i,
        Err(rsp) => return *rsp,
    };
    let req = cx.req;
    let mr = cx.st.mrs[idx].clone();
    let not_allowed = || message(405, "405 Method Not Allowed");
    if mr.state != "opened" || mr.draft() {
        return not_allowed();
    }
    let (Some(source), Some(_)) = (
        git::branch_head(cx.repo, &mr.source_branch),
        git::branch_head(cx.repo, &mr.target_branch),
    ) else {
        return not_allowed();
    };
    let head = source.to_string();
    if cx.st.require_pipeline {
        let status = cx.st.pipelines.get(&head).map(|p| p.status.as_str());
        if status != Some("success") {
            return not_allowed();
        }
    }
    if cx.st.live(cx.repo, &mr).has_conflicts {
        return message(406, "Branch cannot be merged");
    }
    if req.get("sha").is_some_and(|sha| sha != head) {
        return message(
            409,
            &format!("SHA does not match HEAD of source branch: {head}"),
        );
    }
    let commit_message = req.get("merge_commit_message").map_or_else(
        || {
            format!(
                "Merge branch '{}' into '{}'\n\n{}\n\nSee merge request {}!{}",
                mr.source_branch, mr.target_branch, mr.title, cx.st.project_path, mr.iid
            )
        },
        str::to_owned,
    );
    let squash = req.flag("squash").unwrap_or(mr.squash);
    let squash_message = squash.then(|| req.get("squash_commit_message").unwrap_or(&mr.title));
    let now = cx.st.now();
    let merged = match git::merge(
        cx.repo,
        &mr.target_branch,
        source,
        &commit_message,
        squash_message,
        now,
    ) {
        Ok(merged) => merged,
        Err(MergeError::Conflict) => return message(406, "Branch cannot be merged"),
        Err(MergeError::Git(e)) => return message(500, &format!("500 Internal Server Error: {e}")),
    };
    let remove_param = req.flag("should_remove_source_branch");
    if remove_param.unwrap_or(mr.force_remove_source_branch) {
        git::delete_branch(cx.repo, &mr.source_branch);
    }
    let user = cx.user.id;
    let stored = &mut cx.st.mrs[idx];
    stored.state = "merged";
    stored.sha = Some(head);
    stored.merge_commit_sha = Some(merged.merge_commit);
    stored.squash_commit_sha = merged.squash_commit;
    stored.merged_at = Some(now);
    stored.merged_by = Some(user);
    stored.updated_at = now;
    stored.should_remove_source_branch = remove_param;
    json(200, cx.st.mr_json(cx.repo, &cx.st.mrs[idx], true))
}
