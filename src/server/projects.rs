//! The front of a daemon serving several projects (`projects:` in promoter.yaml). Each project
//! keeps its own routes under `/projects/<name>/` (webhooks, chat-ops, probes, dashboard);
//! above them:
//!
//! - `POST /webhooks/gitlab`, one URL for a group hook or every project's hook: the delivery is
//!   authenticated against the projects' secrets first (constant time, before the body is
//!   read), then handed, untouched, to the route of the project its payload names among those
//!   whose secret it carries ([`ProjectRef::matches`]: `project.id`, `project_id`,
//!   `project.path_with_namespace`), or to the one project holding that secret. That route
//!   authenticates and decodes it again as in a single-project daemon (so a malformed body
//!   gets its 400 there). A delivery with a known secret naming no project served here is
//!   answered 202 "ignored"; one with no known secret 401, so nobody without a secret learns
//!   which projects are served.
//! - `GET /readyz`: 200 while at least one project is ready (a failing project must not take
//!   the others out of a load balancer), listing each project's failing checks.
//! - `GET /healthz`, and `GET /` listing every project with its readiness and links.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Json, Redirect, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use handlebars::html_escape;
use secrecy::SecretString;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::project::ProjectRef;
use super::{Readiness, health, time_limit, webhook};
use crate::daemon::Clock;

/// One project as the front serves it.
#[derive(Clone)]
pub struct Served {
    /// `projects[].name`: its routes are under `/projects/<name>/`.
    pub name: String,
    /// Its `gitlab.project`.
    pub project: ProjectRef,
    /// Its `server.webhook_secret`.
    pub webhook_secret: Option<SecretString>,
    pub readiness: Arc<Readiness>,
    /// Its own routes (as a single-project daemon serves them at `/`).
    pub routes: Router,
}

#[derive(Clone)]
struct Front {
    served: Arc<Vec<Served>>,
    clock: Clock,
}

/// Every project's routes under `/projects/<name>`, and the front's own.
pub fn router(served: Vec<Served>, clock: Clock) -> Router {
    let mut app = Router::new();
    for project in &served {
        let prefix = format!("/projects/{}", project.name);
        // The project's dashboard is `/projects/<name>`; with a trailing slash, sent there.
        let to = prefix.clone();
        app = app.nest(&prefix, project.routes.clone()).route(
            &format!("{prefix}/"),
            get(move || async move { Redirect::permanent(&to) }),
        );
    }
    let front = Front {
        served: Arc::new(served),
        clock,
    };
    let own = Router::new()
        .route(
            "/webhooks/gitlab",
            post(route_webhook).layer(DefaultBodyLimit::max(webhook::BODY_LIMIT)),
        )
        .route("/readyz", get(readyz))
        .route("/healthz", get(health::healthz))
        .route("/", get(index))
        .layer(middleware::from_fn(time_limit))
        .with_state(front);
    app.merge(own)
}

/// Hands a delivery to the project it is about; see the module's documentation.
async fn route_webhook(State(front): State<Front>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let holders: Vec<&Served> = front
        .served
        .iter()
        .filter(|s| {
            s.webhook_secret
                .as_ref()
                .is_some_and(|secret| webhook::token_matches(secret, &parts.headers))
        })
        .collect();
    if holders.is_empty() {
        tracing::warn!("webhook refused: its X-Gitlab-Token is no project's secret");
        return error(StatusCode::UNAUTHORIZED, "invalid X-Gitlab-Token");
    }
    let bytes = match to_bytes(body, webhook::BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "the body is too large"),
    };
    let payload: Option<Value> = serde_json::from_slice(&bytes).ok();
    let named = payload
        .as_ref()
        .and_then(|payload| holders.iter().find(|s| s.project.matches(payload)));
    // One holder: its own route decides, as a single-project daemon would (400 for malformed
    // JSON, "ignored" for another project's event).
    let Some(target) = named.or(if holders.len() == 1 {
        holders.first()
    } else {
        None
    }) else {
        tracing::warn!("webhook ignored: its event is about no project served here");
        return (StatusCode::ACCEPTED, Json(json!({"status": "ignored"}))).into_response();
    };
    tracing::debug!(project = target.name, "webhook routed");
    parts.uri = Uri::from_static("/webhooks/gitlab");
    let request = Request::from_parts(parts, Body::from(bytes));
    match target.routes.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// 200 while at least one project is ready; every project's failing checks either way.
async fn readyz(State(front): State<Front>) -> Response {
    let now = front.clock.now();
    let mut projects = serde_json::Map::new();
    let mut any_ready = false;
    for served in front.served.iter() {
        let (ready, failing) = served.readiness.report(now);
        any_ready |= ready;
        let status = if ready {
            json!({"status": "ready"})
        } else {
            json!({"status": "not ready", "failing": failing})
        };
        projects.insert(served.name.clone(), status);
    }
    let status = if any_ready { "ready" } else { "not ready" };
    let body = Json(json!({"status": status, "projects": projects}));
    if any_ready {
        body.into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

/// `GET /`: every project, whether it is ready (and if not why), and its dashboard.
async fn index(State(front): State<Front>) -> Response {
    let now = front.clock.now();
    let mut rows = String::new();
    for served in front.served.iter() {
        let (ready, failing) = served.readiness.report(now);
        let state = if ready {
            "ready".to_string()
        } else {
            format!("not ready: {}", failing.join("; "))
        };
        rows.push_str(&format!(
            "<tr><td><a href=\"projects/{name}\">{name}</a></td><td>{project}</td><td>{state}</td></tr>\n",
            name = html_escape(&served.name),
            project = html_escape(&served.project.to_string()),
            state = html_escape(&state),
        ));
    }
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"refresh\" content=\"30\"><title>Projects · promoter</title></head>\
<body><h1>Projects</h1><table><thead><tr><th>Project</th><th>GitLab project</th><th>State</th></tr></thead>\
<tbody>\n{rows}</tbody></table></body></html>\n"
    );
    ([(header::CACHE_CONTROL, "no-store")], Html(page)).into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}
