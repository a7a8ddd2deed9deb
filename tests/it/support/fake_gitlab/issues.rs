//! The issue endpoints: list, create, get and update (edit, close, reopen). Issues share only
//! the project with merge requests: their own iids, no branches, no approvals.

use axum::response::Response;

use super::api::{Cx, error, json, message, paginate, sort_by_time};
use super::mrs::{check_title, parse_labels};
use super::state::Issue;

const STATES: [&str; 3] = ["opened", "closed", "all"];

/// GitLab's `order_by` values for issues; only `created_at` and `updated_at` are simulated, the
/// others order like `created_at`.
const ORDER_BY: [&str; 10] = [
    "created_at",
    "updated_at",
    "priority",
    "due_date",
    "relative_position",
    "label_priority",
    "milestone_due",
    "popularity",
    "weight",
    "title",
];

/// The issue with this iid, or GitLab's 404.
fn find(cx: &Cx, iid: u64) -> Result<usize, Box<Response>> {
    cx.st
        .issue_index(iid)
        .ok_or_else(|| Box::new(message(404, "404 Not found")))
}

/// `GET .../issues`: filters `state` (default all), `labels` (all must match; `None`/`Any`),
/// `iids[]`, `author_username`, `search` (title and description); `order_by` and `sort`
/// (newest first by default); offset pagination.
pub(super) fn list(cx: &Cx, id: &str) -> Response {
    let req = cx.req;
    let state = req.get("state").unwrap_or("all");
    if !STATES.contains(&state) {
        return error(400, "state does not have a valid value");
    }
    if req.get("order_by").is_some_and(|o| !ORDER_BY.contains(&o)) {
        return error(400, "order_by does not have a valid value");
    }
    if req.get("sort").is_some_and(|s| s != "asc" && s != "desc") {
        return error(400, "sort does not have a valid value");
    }
    let labels = req.get("labels").map(parse_labels);
    let iids: Vec<u64> = req.all("iids[]").filter_map(|v| v.parse().ok()).collect();
    let mut issues: Vec<&Issue> = cx
        .st
        .issues
        .iter()
        .filter(|i| state == "all" || i.state == state)
        .filter(|i| match labels.as_deref() {
            None | Some([]) => true,
            Some([only]) if only == "None" => i.labels.is_empty(),
            Some([only]) if only == "Any" => !i.labels.is_empty(),
            Some(wanted) => wanted.iter().all(|l| i.labels.contains(l)),
        })
        .filter(|i| iids.is_empty() || iids.contains(&i.iid))
        .filter(|i| {
            req.get("author_username")
                .is_none_or(|u| cx.st.username(i.author) == u)
        })
        .filter(|i| {
            req.get("search").is_none_or(|s| {
                i.title.contains(s) || i.description.as_deref().is_some_and(|d| d.contains(s))
            })
        })
        .collect();
    sort_by_time(req, &mut issues, |i| (i.created_at, i.updated_at, i.id));
    let items = issues.iter().map(|i| cx.st.issue_json(i)).collect();
    paginate(cx.st, req, &[("id", id)], items)
}

/// `POST .../issues`: `title` is required (400 when missing, blank or too long); `labels`
/// comma-separated; 201 with the issue.
pub(super) fn create(cx: &mut Cx) -> Response {
    let req = cx.req;
    let Some(title) = req.get("title") else {
        return error(400, "title is missing");
    };
    if let Err(rsp) = check_title(title) {
        return *rsp;
    }
    let now = cx.st.now();
    let iid = cx.st.issues.iter().map(|i| i.iid).max().unwrap_or(0) + 1;
    let issue = Issue {
        id: cx.st.next_id(),
        iid,
        title: title.to_owned(),
        description: req.get("description").map(str::to_owned),
        state: "opened",
        labels: req.get("labels").map(parse_labels).unwrap_or_default(),
        author: cx.user.id,
        created_at: now,
        updated_at: now,
        closed_at: None,
        closed_by: None,
    };
    let body = cx.st.issue_json(&issue);
    cx.st.issues.push(issue);
    json(201, body)
}

/// `GET .../issues/:iid`.
pub(super) fn get(cx: &Cx, iid: u64) -> Response {
    match find(cx, iid) {
        Ok(idx) => json(200, cx.st.issue_json(&cx.st.issues[idx])),
        Err(rsp) => *rsp,
    }
}

const EDITABLE: [&str; 14] = [
    "title",
    "description",
    "labels",
    "add_labels",
    "remove_labels",
    "state_event",
    "assignee_ids",
    "confidential",
    "discussion_locked",
    "due_date",
    "issue_type",
    "milestone_id",
    "updated_at",
    "weight",
];

/// `PUT .../issues/:iid`: `labels` replaces, `add_labels`/`remove_labels` adjust;
/// `state_event=close` closes an opened issue, `reopen` reopens a closed one (either is a
/// no-op in the other state).
pub(super) fn update(cx: &mut Cx, iid: u64) -> Response {
    let idx = match find(cx, iid) {
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
    let now = cx.st.now();
    let user = cx.user.id;
    let issue = &mut cx.st.issues[idx];
    if let Some(t) = req.get("title") {
        issue.title = t.to_owned();
    }
    if let Some(d) = req.get("description") {
        issue.description = Some(d.to_owned());
    }
    if let Some(l) = req.get("labels") {
        issue.labels = parse_labels(l);
    }
    if let Some(l) = req.get("add_labels") {
        issue.labels.extend(parse_labels(l));
        issue.labels.sort();
        issue.labels.dedup();
    }
    if let Some(l) = req.get("remove_labels") {
        let gone = parse_labels(l);
        issue.labels.retain(|x| !gone.contains(x));
    }
    match (event, issue.state) {
        (Some("close"), "opened") => {
            issue.state = "closed";
            issue.closed_at = Some(now);
            issue.closed_by = Some(user);
        }
        (Some("reopen"), "closed") => {
            issue.state = "opened";
            issue.closed_at = None;
            issue.closed_by = None;
        }
        _ => {}
    }
    issue.updated_at = now;
    json(200, cx.st.issue_json(&cx.st.issues[idx]))
}
