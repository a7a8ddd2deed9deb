//! Deployments (`GET|POST /projects/:id/deployments`), as GitLab records them on every tier:
//! a POST with `environment`, `sha`, `ref`, `tag` and `status` creates the environment when it
//! does not exist; a GET filters by `environment` and `status` and orders by `id` (default),
//! `created_at` or `updated_at`, ascending unless `sort=desc`, with offset pagination.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use axum::response::Response;

use super::api::{Cx, error, json as answer, paginate};
use super::state::ts;

/// One recorded deployment.
#[derive(Debug, Clone)]
pub(super) struct Deployment {
    pub id: u64,
    pub iid: u64,
    pub environment: String,
    pub sha: String,
    pub git_ref: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub user: u64,
}

const STATUSES: [&str; 4] = ["running", "success", "failed", "canceled"];

fn to_json(cx: &Cx, d: &Deployment) -> Value {
    json!({
        "id": d.id,
        "iid": d.iid,
        "ref": d.git_ref,
        "sha": d.sha,
        "status": d.status,
        "created_at": ts(d.created_at),
        "updated_at": ts(d.created_at),
        "finished_at": ts(d.created_at),
        "user": cx.st.user_json(d.user),
        "environment": {"id": env_id(cx, &d.environment), "name": d.environment},
        "deployable": null,
    })
}

fn env_id(cx: &Cx, name: &str) -> usize {
    let mut names: Vec<&str> = cx
        .st
        .deployments
        .iter()
        .map(|d| d.environment.as_str())
        .collect();
    names.dedup();
    names.iter().position(|n| *n == name).unwrap_or(0) + 1
}

pub(super) fn list(cx: &Cx, id: &str) -> Response {
    let mut found: Vec<&Deployment> = cx
        .st
        .deployments
        .iter()
        .filter(|d| cx.req.get("environment").is_none_or(|e| e == d.environment))
        .filter(|d| cx.req.get("status").is_none_or(|s| s == d.status))
        .collect();
    found.sort_by_key(|d| (d.created_at, d.id));
    if cx.req.get("order_by").is_none_or(|o| o == "id") {
        found.sort_by_key(|d| d.id);
    }
    if cx.req.get("sort") == Some("desc") {
        found.reverse();
    }
    let items = found.iter().map(|d| to_json(cx, d)).collect();
    paginate(cx.st, cx.req, &[("id", id)], items)
}

pub(super) fn create(cx: &mut Cx) -> Response {
    let field = |name: &str| cx.req.get(name).map(str::to_string);
    let (Some(environment), Some(sha), Some(git_ref), Some(status)) = (
        field("environment"),
        field("sha"),
        field("ref"),
        field("status"),
    ) else {
        return error(
            400,
            "environment, sha, ref, tag, status are missing, at least one parameter must be provided",
        );
    };
    if !STATUSES.contains(&status.as_str()) {
        return error(400, "status does not have a valid value");
    }
    let created_at = cx.st.now();
    let deployment = Deployment {
        id: cx.st.next_id(),
        iid: cx.st.deployments.len() as u64 + 1,
        environment,
        sha,
        git_ref,
        status,
        created_at,
        user: cx.user.id,
    };
    cx.st.deployments.push(deployment.clone());
    answer(201, to_json(cx, &deployment))
}
