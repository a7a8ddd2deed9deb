//! Several doubles as the projects of one GitLab host: one address that hands
//! `/api/v4/projects/:id/...` (a numeric id or a URL-encoded path, as GitLab takes both) to the
//! double serving that project, and every other request (`/api/v4/user`) to the first. What
//! a daemon serving several projects on one host sees. Every request is counted, so a test can
//! see that the projects share one host.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;

use super::FakeGitLab;

struct Projects {
    /// (project id, project path, the double's base URL).
    doubles: Vec<(u64, String, String)>,
    http: reqwest::Client,
    requests: AtomicUsize,
}

/// One GitLab host serving several doubles' projects; stops when dropped.
pub struct FakeHost {
    addr: std::net::SocketAddr,
    projects: Arc<Projects>,
    stop: Option<oneshot::Sender<()>>,
}

impl FakeHost {
    /// Serves `doubles` (each started with its own project id and path) at one address.
    pub async fn start(doubles: &[&FakeGitLab]) -> FakeHost {
        let projects = Arc::new(Projects {
            doubles: doubles
                .iter()
                .map(|d| (d.project_id(), d.project_path(), d.url()))
                .collect(),
            http: reqwest::Client::new(),
            requests: AtomicUsize::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local address");
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(projects.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        FakeHost {
            addr,
            projects,
            stop: Some(stop),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests the host answered so far, every project's.
    pub fn requests(&self) -> usize {
        self.projects.requests.load(Ordering::Relaxed)
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The double a request is for: the project named after `/api/v4/projects/`, else the first.
fn double_of<'a>(projects: &'a Projects, path: &str) -> Option<&'a str> {
    let named = path
        .strip_prefix("/api/v4/projects/")
        .and_then(|rest| rest.split('/').next());
    let Some(named) = named else {
        return projects.doubles.first().map(|d| d.2.as_str());
    };
    let decoded = named.replace("%2F", "/").replace("%2f", "/");
    projects
        .doubles
        .iter()
        .find(|(id, path, _)| {
            decoded
                .parse::<u64>()
                .map_or(decoded.eq_ignore_ascii_case(path), |n| n == *id)
        })
        .map(|d| d.2.as_str())
}

async fn forward(State(projects): State<Arc<Projects>>, request: Request) -> Response {
    projects.requests.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = request.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let Some(base) = double_of(&projects, parts.uri.path()) else {
        return (
            axum::http::StatusCode::NOT_FOUND,
            r#"{"message":"404 Project Not Found"}"#,
        )
            .into_response();
    };
    let body = to_bytes(body, usize::MAX).await.unwrap_or_default();
    let mut outgoing = projects
        .http
        .request(parts.method.clone(), format!("{base}{path_and_query}"))
        .body(body.to_vec());
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            outgoing = outgoing.header(name.as_str(), value.as_bytes());
        }
    }
    let answer = match outgoing.send().await {
        Ok(answer) => answer,
        Err(e) => {
            return (axum::http::StatusCode::BAD_GATEWAY, e.to_string()).into_response();
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if name != "content-length" && name != "transfer-encoding" {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_str().as_bytes()),
                HeaderValue::from_bytes(value.as_bytes()),
            ) else {
                continue;
            };
            response.headers_mut().append(name, value);
        }
    }
    response
}
