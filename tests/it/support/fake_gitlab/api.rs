//! The HTTP side: one handler that records, applies faults, authenticates and routes; request
//! parameters; GitLab's offset pagination; and the small endpoints (user, project, notes,
//! approvals, commit statuses). Merge request endpoints are in `mrs.rs`, issues in `issues.rs`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::extract::{Request, State as AxumState};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use git2::Repository;
use serde_json::{Value, json};

use super::faults::{self, Effect, FaultKind};
use super::git;
use super::issues;
use super::mrs;
use super::state::{CommitStatus, Note, Recorded, State, User, pipeline_active};

/// What the server and the test share.
pub(super) struct Ctx {
    pub state: Mutex<State>,
    pub repo: PathBuf,
    /// Bumped by `release_hangs`: hung requests wait for it to change.
    pub released: tokio::sync::watch::Sender<u64>,
}

impl Ctx {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How long an answer is held back after the request was handled.
enum Hold {
    Not,
    For(Duration),
    /// Until `released` moves past this value.
    UntilReleased(u64),
    /// Until `released` moves past this value; then the request is handled (no faults).
    ThenHandle(u64),
}

/// The one axum handler. The body is read first; then everything happens synchronously under
/// the state lock; only a `Delay` fault's sleep or a hang comes after the lock is released.
pub(super) async fn serve(
    AxumState(ctx): AxumState<std::sync::Arc<Ctx>>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 16 << 20)
        .await
        .unwrap_or_default();
    let (rsp, hold) = handle(&ctx, &parts, &body, true);
    match hold {
        Hold::Not => rsp,
        Hold::For(delay) => {
            tokio::time::sleep(delay).await;
            rsp
        }
        Hold::UntilReleased(seen) => {
            let mut released = ctx.released.subscribe();
            let _ = released.wait_for(|now| *now != seen).await;
            rsp
        }
        Hold::ThenHandle(seen) => {
            let mut released = ctx.released.subscribe();
            let _ = released.wait_for(|now| *now != seen).await;
            handle(&ctx, &parts, &body, false).0
        }
    }
}

/// Records, applies hangs, hooks and faults (unless `inject` is false), authenticates and
/// routes.
fn handle(ctx: &Ctx, parts: &Parts, body: &[u8], inject: bool) -> (Response, Hold) {
    let method = &parts.method;
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or("");
    let mut st = ctx.lock();
    let record = |status: u16, held: Option<Duration>| Recorded {
        method: method.clone(),
        path: path.to_owned(),
        query: query.to_owned(),
        status,
        held,
    };
    let hang = if inject {
        st.faults.take_hang(method, path)
    } else {
        None
    };
    let generation = *ctx.released.borrow();
    match hang {
        Some(Effect::Never) => {
            // Never handled: as if the request had not arrived. Status 0: never answered.
            st.log.push(record(0, None));
            st.hung.push(record(0, None));
            let rsp = message(503, "503 Service Unavailable");
            return (rsp, Hold::UntilReleased(generation));
        }
        Some(Effect::OnRelease) => {
            st.hung.push(record(0, None));
            let rsp = message(503, "503 Service Unavailable");
            return (rsp, Hold::ThenHandle(generation));
        }
        Some(Effect::First) | None => {}
    }
    if inject && let Some(hook) = st.faults.take_hook(method, path) {
        hook(&ctx.repo);
    }
    let fault = if hang.is_some() || !inject {
        None
    } else {
        st.faults.take(method, path)
    };
    let mut hold = Hold::Not;
    let rsp = match fault
        .as_ref()
        .and_then(|k| faults::error_response(k, Utc::now()))
    {
        Some(rsp) => rsp,
        None => {
            if let Some(FaultKind::Delay(d)) = fault {
                hold = Hold::For(d);
            }
            let req = Req::parse(method, path, query, &parts.headers, body);
            route(ctx, &mut st, &req, &parts.headers)
        }
    };
    let held = match hold {
        Hold::For(d) => Some(d),
        _ => None,
    };
    st.log.push(record(rsp.status().as_u16(), held));
    if hang.is_some() {
        st.hung.push(record(rsp.status().as_u16(), None));
        hold = Hold::UntilReleased(generation);
    }
    (rsp, hold)
}

/// A parsed request: query and body parameters merged (the body wins), as Grape does.
pub(super) struct Req<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    query_pairs: Vec<(String, String)>,
    params: HashMap<String, String>,
}

impl<'a> Req<'a> {
    fn parse(
        method: &'a Method,
        path: &'a str,
        query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Self {
        let query_pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let mut params: HashMap<String, String> = query_pairs.iter().cloned().collect();
        let json_body = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if json_body {
            if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
                for (k, v) in map {
                    let text = match v {
                        Value::Null => continue,
                        Value::String(s) => s,
                        Value::Array(items) => items
                            .iter()
                            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                            .collect::<Vec<_>>()
                            .join(","),
                        other => other.to_string(),
                    };
                    params.insert(k, text);
                }
            }
        } else {
            params.extend(url::form_urlencoded::parse(body).into_owned());
        }
        Self {
            method,
            path,
            query_pairs,
            params,
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    /// Every value of a repeated query parameter (`iids[]=1&iids[]=2`), in order.
    pub fn all<'k>(&'k self, key: &'k str) -> impl Iterator<Item = &'k str> {
        self.query_pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, key: &str) -> bool {
        self.params.contains_key(key)
    }

    /// A Grape boolean (`true`/`false`, `1`/`0`, `yes`/`no`, `t`/`f`); `None` when absent.
    pub fn flag(&self, key: &str) -> Option<bool> {
        self.get(key)
            .map(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "t"))
    }
}

/// What endpoint handlers get.
pub(super) struct Cx<'a> {
    pub st: &'a mut State,
    pub repo: &'a Repository,
    pub user: &'a User,
    pub req: &'a Req<'a>,
}

pub(super) fn json(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).expect("status"),
        axum::Json(body),
    )
        .into_response()
}

/// `{"message": ...}`, GitLab's usual error body.
pub(super) fn message(status: u16, text: &str) -> Response {
    json(status, json!({ "message": text }))
}

/// `{"error": ...}`, Grape's parameter-validation body.
pub(super) fn error(status: u16, text: &str) -> Response {
    json(status, json!({ "error": text }))
}

/// Percent-decodes one path segment (`acme%2Fcalculator` -> `acme/calculator`).
fn decode_segment(seg: &str) -> String {
    let bytes = seg.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(ctx: &Ctx, st: &mut State, req: &Req, headers: &HeaderMap) -> Response {
    let token = headers
        .get("private-token")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        });
    let Some(user) = token.and_then(|t| st.user_by_token(t)) else {
        return message(401, "401 Unauthorized");
    };
    let Some(rest) = req.path.strip_prefix("/api/v4/") else {
        return error(404, "404 Not Found");
    };
    let segs: Vec<String> = rest
        .trim_end_matches('/')
        .split('/')
        .map(decode_segment)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    if let ["projects", id, ..] = segs.as_slice() {
        let known = id
            .parse::<u64>()
            .map_or(*id == st.project_path, |n| n == st.project_id);
        if !known {
            return message(404, "404 Project Not Found");
        }
    }
    let repo = match Repository::open_bare(&ctx.repo) {
        Ok(repo) => repo,
        Err(e) => return message(500, &format!("500 Internal Server Error: {e}")),
    };
    st.refresh_heads(&repo);
    let mut cx = Cx {
        st,
        repo: &repo,
        user: &user,
        req,
    };
    let iid = |s: &str| s.parse::<u64>().ok();
    match (req.method.as_str(), segs.as_slice()) {
        ("GET", ["user"]) => json(200, cx.st.user_json(user.id)),
        ("GET", ["projects", _]) => project(&cx),
        ("GET", ["projects", id, "merge_requests"]) => mrs::list(&cx, id),
        ("POST", ["projects", _, "merge_requests"]) => mrs::create(&mut cx),
        ("GET", ["projects", _, "merge_requests", n]) if iid(n).is_some() => {
            mrs::get(&cx, iid(n).unwrap_or_default())
        }
        ("PUT", ["projects", _, "merge_requests", n]) if iid(n).is_some() => {
            mrs::update(&mut cx, iid(n).unwrap_or_default())
        }
        ("PUT", ["projects", _, "merge_requests", n, "merge"]) if iid(n).is_some() => {
            mrs::merge(&mut cx, iid(n).unwrap_or_default())
        }
        ("GET", ["projects", id, "merge_requests", n, "notes"]) if iid(n).is_some() => {
            list_notes(&cx, id, n)
        }
        ("POST", ["projects", _, "merge_requests", n, "notes"]) if iid(n).is_some() => {
            create_note(&mut cx, iid(n).unwrap_or_default())
        }
        ("GET", ["projects", _, "merge_requests", n, "approvals"]) if iid(n).is_some() => {
            approvals(&cx, iid(n).unwrap_or_default())
        }
        ("POST", ["projects", _, "merge_requests", n, "approve"]) if iid(n).is_some() => {
            approve(&mut cx, iid(n).unwrap_or_default())
        }
        ("POST", ["projects", _, "merge_requests", n, "unapprove"]) if iid(n).is_some() => {
            unapprove(&mut cx, iid(n).unwrap_or_default())
        }
        ("GET", ["projects", id, "issues"]) => issues::list(&cx, id),
        ("POST", ["projects", _, "issues"]) => issues::create(&mut cx),
        ("GET", ["projects", _, "issues", n]) if iid(n).is_some() => {
            issues::get(&cx, iid(n).unwrap_or_default())
        }
        ("PUT", ["projects", _, "issues", n]) if iid(n).is_some() => {
            issues::update(&mut cx, iid(n).unwrap_or_default())
        }
        ("GET", ["projects", id, "repository", "commits", sha, "statuses"]) => {
            list_statuses(&cx, id, sha)
        }
        ("POST", ["projects", _, "statuses", sha]) => create_status(&mut cx, sha),
        ("GET", ["projects", id, "deployments"]) => super::deployments::list(&cx, id),
        ("POST", ["projects", _, "deployments"]) => super::deployments::create(&mut cx),
        _ => error(404, "404 Not Found"),
    }
}

/// Offset pagination as GitLab answers it: the page of `items` plus `X-Total`,
/// `X-Total-Pages`, `X-Per-Page`, `X-Page`, `X-Next-Page`, `X-Prev-Page` (empty when none),
/// `X-Page-Type: offset`, and a `Link` header whose URLs repeat the route and query
/// parameters sorted by name (Rails' `to_query`) with `page` and `per_page` set.
pub(super) fn paginate(
    st: &State,
    req: &Req,
    route_params: &[(&str, &str)],
    items: Vec<Value>,
) -> Response {
    let number = |key: &str| {
        req.get(key)
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
    };
    let per_page = number("per_page").unwrap_or(20).min(100);
    let page = number("page").unwrap_or(1);
    let total = items.len();
    let total_pages = total.div_ceil(per_page).max(1);
    let body: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let next = (page < total_pages).then_some(page + 1);
    let prev = (page > 1 && page <= total_pages).then(|| page - 1);
    let link = |target: usize, rel: &str| {
        let mut params: BTreeMap<String, String> = route_params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        params.extend(req.query_pairs.iter().cloned());
        params.insert("page".into(), target.to_string());
        params.insert("per_page".into(), per_page.to_string());
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        format!("<{}{}?{query}>; rel=\"{rel}\"", st.base_url, req.path)
    };
    let mut links = Vec::new();
    if let Some(p) = prev {
        links.push(link(p, "prev"));
    }
    if let Some(n) = next {
        links.push(link(n, "next"));
    }
    links.push(link(1, "first"));
    links.push(link(total_pages, "last"));
    let mut rsp = json(200, Value::Array(body));
    let headers = rsp.headers_mut();
    let opt = |n: Option<usize>| n.map(|n| n.to_string()).unwrap_or_default();
    for (name, value) in [
        ("x-total", total.to_string()),
        ("x-total-pages", total_pages.to_string()),
        ("x-per-page", per_page.to_string()),
        ("x-page", page.to_string()),
        ("x-next-page", opt(next)),
        ("x-prev-page", opt(prev)),
        ("x-page-type", "offset".to_owned()),
        ("link", links.join(", ")),
    ] {
        headers.insert(name, HeaderValue::from_str(&value).expect("header value"));
    }
    rsp
}

fn project(cx: &Cx) -> Response {
    let st = &cx.st;
    let path = &st.project_path;
    let name = path.rsplit('/').next().unwrap_or(path);
    json(
        200,
        json!({
            "id": st.project_id,
            "name": name,
            "path": name,
            "path_with_namespace": path,
            "name_with_namespace": path.replace('/', " / "),
            "default_branch": git::default_branch(cx.repo),
            "visibility": "private",
            "web_url": format!("{}/{path}", st.base_url),
            "http_url_to_repo": format!("{}/{path}.git", st.base_url),
            "merge_method": "merge",
            "squash_option": "default_off",
            "only_allow_merge_if_pipeline_succeeds": st.require_pipeline,
            "remove_source_branch_after_merge": true,
        }),
    )
}

/// The MR with this iid, or GitLab's 404.
pub(super) fn find_mr(st: &State, iid: u64) -> Result<usize, Box<Response>> {
    st.mr_index(iid)
        .ok_or_else(|| Box::new(message(404, "404 Not found")))
}

/// Sorts by `order_by` (`created_at` default, or `updated_at`) then id, `desc` unless
/// `sort=asc`; GitLab's default order for merge requests and notes.
pub(super) fn sort_by_time<T>(
    req: &Req,
    items: &mut [T],
    key: impl Fn(&T) -> (chrono::DateTime<Utc>, chrono::DateTime<Utc>, u64),
) {
    let updated = req.get("order_by") == Some("updated_at");
    items.sort_by_key(|item| {
        let (created, updated_at, id) = key(item);
        (if updated { updated_at } else { created }, id)
    });
    if req.get("sort") != Some("asc") {
        items.reverse();
    }
}

fn list_notes(cx: &Cx, id: &str, iid: &str) -> Response {
    let idx = match find_mr(cx.st, iid.parse().unwrap_or_default()) {
        Ok(i) => i,
        Err(rsp) => return *rsp,
    };
    let mr = &cx.st.mrs[idx];
    let mut notes: Vec<&Note> = mr.notes.iter().collect();
    sort_by_time(cx.req, &mut notes, |n| (n.created_at, n.created_at, n.id));
    let items = notes.iter().map(|n| cx.st.note_json(mr, n)).collect();
    paginate(cx.st, cx.req, &[("id", id), ("noteable_id", iid)], items)
}

fn create_note(cx: &mut Cx, iid: u64) -> Response {
    let idx = match find_mr(cx.st, iid) {
        Ok(i) => i,
        Err(rsp) => return *rsp,
    };
    let body = match cx.req.get("body") {
        None => return error(400, "body is missing"),
        Some(b) if b.trim().is_empty() => return error(400, "body is empty"),
        Some(b) => b.to_owned(),
    };
    let now = cx.st.now();
    let note = Note {
        id: cx.st.next_id(),
        body,
        author: cx.user.id,
        created_at: now,
        system: false,
    };
    let mr = &mut cx.st.mrs[idx];
    mr.notes.push(note.clone());
    mr.updated_at = now;
    json(201, cx.st.note_json(&cx.st.mrs[idx], &note))
}

fn approvals(cx: &Cx, iid: u64) -> Response {
    match find_mr(cx.st, iid) {
        Ok(idx) => json(200, cx.st.approvals_json(&cx.st.mrs[idx], cx.user.id)),
        Err(rsp) => *rsp,
    }
}

/// `sha` must be the source head (409); approving twice, or a merge request that is not
/// open, is "not allowed": 401, as GitLab >= 13 answers (`unauthorized! unless success`).
fn approve(cx: &mut Cx, iid: u64) -> Response {
    let idx = match find_mr(cx.st, iid) {
        Ok(i) => i,
        Err(rsp) => return *rsp,
    };
    let mr = &cx.st.mrs[idx];
    let head = mr.sha.clone().unwrap_or_default();
    if cx.req.get("sha").is_some_and(|sha| sha != head) {
        return message(
            409,
            &format!("SHA does not match HEAD of source branch: {head}"),
        );
    }
    if mr.state != "opened" || mr.approved_by.contains(&cx.user.id) {
        return message(401, "401 Unauthorized");
    }
    let now = cx.st.now();
    let note = cx.st.system_note(cx.user.id, "approved this merge request");
    let mr = &mut cx.st.mrs[idx];
    mr.approved_by.push(cx.user.id);
    mr.notes.push(note);
    mr.updated_at = now;
    json(201, cx.st.approvals_json(&cx.st.mrs[idx], cx.user.id))
}

fn unapprove(cx: &mut Cx, iid: u64) -> Response {
    let idx = match find_mr(cx.st, iid) {
        Ok(i) => i,
        Err(rsp) => return *rsp,
    };
    let user = cx.user.id;
    if !cx.st.mrs[idx].approved_by.contains(&user) {
        return message(404, "404 Not found");
    }
    let note = cx.st.system_note(user, "unapproved this merge request");
    let mr = &mut cx.st.mrs[idx];
    mr.approved_by.retain(|&id| id != user);
    mr.notes.push(note);
    json(201, cx.st.approvals_json(&cx.st.mrs[idx], user))
}

const STATUS_STATES: [&str; 6] = [
    "pending", "running", "success", "failed", "canceled", "skipped",
];

/// `GET .../repository/commits/:sha/statuses`: oldest first; only the latest per name and
/// ref unless `all=true`; filters `ref` and `name`.
fn list_statuses(cx: &Cx, id: &str, sha: &str) -> Response {
    let Some(full) = git::resolve_commit(cx.repo, sha) else {
        return message(404, "404 Commit Not Found");
    };
    let all = cx.req.flag("all").unwrap_or(false);
    let items = cx
        .st
        .statuses
        .iter()
        .filter(|s| s.sha == full && (all || !s.retried))
        .filter(|s| {
            cx.req
                .get("ref")
                .is_none_or(|r| s.git_ref.as_deref() == Some(r))
        })
        .filter(|s| cx.req.get("name").is_none_or(|n| s.name == n))
        .map(|s| cx.st.status_json(s))
        .collect();
    paginate(cx.st, cx.req, &[("id", id), ("sha", sha)], items)
}

/// `POST .../statuses/:sha`: a status still pending or running is moved to the new state in
/// place (same id); a finished one is kept as history (`retried`) and a new one added.
/// Re-posting the same pending/running state is refused (400) as GitLab's state machine does.
fn create_status(cx: &mut Cx, sha: &str) -> Response {
    let Some(full) = git::resolve_commit(cx.repo, sha) else {
        return message(404, "404 Commit Not Found");
    };
    let state = match cx.req.get("state") {
        None => return error(400, "state is missing"),
        Some(s) if !STATUS_STATES.contains(&s) => {
            return error(400, "state does not have a valid value");
        }
        Some(s) => s.to_owned(),
    };
    let name = cx
        .req
        .get("name")
        .or(cx.req.get("context"))
        .unwrap_or("default")
        .to_owned();
    let git_ref = cx
        .req
        .get("ref")
        .map(str::to_owned)
        .or_else(|| git::branch_containing(cx.repo, &full));
    let now = cx.st.now();
    let req = cx.req;
    let same =
        |s: &CommitStatus| s.sha == full && s.name == name && s.git_ref == git_ref && !s.retried;
    if let Some(existing) = cx.st.statuses.iter_mut().find(|s| same(s)) {
        if pipeline_active(&existing.status) {
            if existing.status == state {
                let event = if state == "pending" { "enqueue" } else { "run" };
                return message(
                    400,
                    &format!("Cannot transition status via :{event} from :{state}"),
                );
            }
            existing.status = state;
            existing.updated_at = now;
            if let Some(d) = req.get("description") {
                existing.description = Some(d.to_owned());
            }
            if let Some(u) = req.get("target_url") {
                existing.target_url = Some(u.to_owned());
            }
            let updated = existing.clone();
            return json(201, cx.st.status_json(&updated));
        }
        existing.retried = true;
    }
    let status = CommitStatus {
        id: cx.st.next_id(),
        sha: full,
        git_ref,
        status: state,
        name,
        description: req.get("description").map(str::to_owned),
        target_url: req.get("target_url").map(str::to_owned),
        author: cx.user.id,
        created_at: now,
        updated_at: now,
        retried: false,
    };
    cx.st.statuses.push(status.clone());
    json(201, cx.st.status_json(&status))
}
