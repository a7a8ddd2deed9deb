//! The daemon's HTTP server: GitLab webhooks ([`webhook`]), chat commands ([`chat`]) and
//! health probes ([`health`]), served with connection limits ([`conn`]). Handlers only verify
//! and decode: each request becomes a [`Trigger`] in the daemon loop's inbox (a person's
//! command carries its reply channel). They never run a reconcile, touch git or call GitLab,
//! and need nothing from the daemon but that vocabulary and its [`Clock`]: [`run`] takes a
//! bound listener and a shutdown future.

pub mod chat;
pub mod chat_guard;
pub mod conn;
pub mod health;
pub mod project;
pub mod projects;
pub mod webhook;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use secrecy::SecretString;
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::daemon::{Clock, Trigger};
pub use health::Readiness;

/// What can go wrong serving HTTP.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error("server.listen: cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct ServerState {
    /// GitLab's `X-Gitlab-Token`; `None` refuses every webhook.
    pub webhook_secret: Option<SecretString>,
    /// The daemon loop's trigger queue.
    pub triggers: mpsc::Sender<Trigger>,
    /// Marks read by `/readyz`.
    pub readiness: Arc<Readiness>,
    /// `gitlab.project`: events of any other project are ignored; `None` ignores them all.
    pub project: Option<project::ProjectRef>,
    /// `git.branch`: pushes to this branch (where the environments live) trigger a reconcile.
    pub branch: String,
    /// The daemon's clock, for readiness answers.
    pub clock: Clock,
}

/// The routes: `POST /webhooks/gitlab`, `GET /healthz`, `GET /readyz`.
pub fn router(state: ServerState) -> Router {
    Router::new()
        .route(
            "/webhooks/gitlab",
            post(webhook::gitlab).layer(DefaultBodyLimit::max(webhook::BODY_LIMIT)),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .layer(middleware::from_fn(time_limit))
        .with_state(state)
}

/// How long one request may take, its body included. Every handler answers at once, so only a
/// client that stops sending its body part-way reaches this limit; without it such a request
/// would hold its task forever.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers 408 to a request that is not done within [`REQUEST_TIMEOUT`].
pub(crate) async fn time_limit(request: Request, next: middleware::Next) -> Response {
    let path = request.uri().path().to_string();
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(path, "request timed out: its body stopped arriving");
            (
                StatusCode::REQUEST_TIMEOUT,
                Json(json!({
                    "error": format!(
                        "the request did not arrive within {} s",
                        REQUEST_TIMEOUT.as_secs()
                    )
                })),
            )
                .into_response()
        }
    }
}

/// Binds the server's socket (so a daemon can fail at start on a port in use).
pub async fn bind(listen: SocketAddr) -> Result<tokio::net::TcpListener, Error> {
    tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| Error::Bind {
            addr: listen,
            source,
        })
}

/// Serves `app` (promoter's routes, merged with metrics and the dashboard by the caller) on a
/// bound `listener` within [`conn::Limits::default`] until `shutdown` resolves, then finishes
/// open requests.
pub async fn run(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: ([0, 0, 0, 0], 0).into(),
        source,
    })?;
    tracing::info!(%addr, "http server listening");
    let (stop, stopping) = watch::channel(false);
    let signal = tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
        // Keep the sender so the connections see the flag, not a closed channel.
        stop.closed().await;
    });
    conn::serve(listener, app, conn::Limits::default(), stopping).await;
    signal.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::webhook::fixtures::*;
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use http_body_util::BodyExt;
    use serde_json::{Value, json};
    use std::time::Duration;
    use tower::ServiceExt;

    const SECRET: &str = "s3cret-hook-token";

    fn state(secret: Option<&str>) -> (ServerState, mpsc::Receiver<Trigger>) {
        let (tx, rx) = mpsc::channel(4);
        let state = ServerState {
            project: Some(project::ProjectRef::parse("platform/environments")),
            webhook_secret: secret.map(SecretString::from),
            triggers: tx,
            readiness: Arc::new(Readiness::new(Duration::from_secs(600))),
            branch: "main".into(),
            clock: Clock::system(),
        };
        (state, rx)
    }

    fn hook(event: &str, token: Option<&str>, body: impl Into<Body>) -> Request<Body> {
        let mut request = Request::post("/webhooks/gitlab")
            .header(header::CONTENT_TYPE, "application/json")
            .header("X-Gitlab-Event", event)
            .header(
                "X-Gitlab-Event-UUID",
                "13792a34-cac6-4fda-95a8-c58e00a3954e",
            );
        if let Some(token) = token {
            request = request.header("X-Gitlab-Token", token);
        }
        request.body(body.into()).unwrap()
    }

    async fn call(state: &ServerState, request: Request<Body>) -> (StatusCode, Value) {
        let response = router(state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, body)
    }

    #[tokio::test]
    async fn good_token_queues_a_trigger_and_answers_202() {
        let (state, mut rx) = state(Some(SECRET));
        let request = hook("Merge Request Hook", Some(SECRET), MERGE_REQUEST_MERGE);
        let (status, body) = call(&state, request).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(body, json!({"status": "accepted"}));
        assert_eq!(
            rx.try_recv().unwrap(),
            Trigger::Webhook {
                event: "Merge Request Hook".into(),
                detail: "!12 merge promoter/qa/api -> main [promotion]".into(),
            }
        );

        for (event, fixture) in [
            ("Pipeline Hook", PIPELINE_SUCCESS),
            ("Push Hook", PUSH_TO_MAIN),
        ] {
            let (status, _) = call(&state, hook(event, Some(SECRET), fixture)).await;
            assert_eq!(status, StatusCode::ACCEPTED);
            assert!(
                matches!(rx.try_recv(), Ok(Trigger::Webhook { .. })),
                "{event}"
            );
        }
    }

    #[tokio::test]
    async fn bad_or_missing_token_is_401_without_trigger() {
        let (state, mut rx) = state(Some(SECRET));
        for token in [
            Some("wrong"),
            Some(""),
            Some("s3cret-hook-token-and-more"),
            None,
        ] {
            let request = hook("Merge Request Hook", token, MERGE_REQUEST_MERGE);
            let (status, body) = call(&state, request).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
            assert_eq!(body, json!({"error": "invalid X-Gitlab-Token"}));
        }
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn without_a_configured_secret_every_webhook_is_401() {
        let (state, mut rx) = state(None);
        for token in [Some(SECRET), Some(""), None] {
            let request = hook("Merge Request Hook", token, MERGE_REQUEST_MERGE);
            let (status, _) = call(&state, request).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn body_over_one_mib_is_413() {
        let (state, mut rx) = state(Some(SECRET));
        let huge = format!(
            "{{\"padding\": \"{}\"}}",
            "x".repeat(webhook::BODY_LIMIT + 1)
        );
        let (status, _) = call(&state, hook("Pipeline Hook", Some(SECRET), huge)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn truncated_json_is_400() {
        let (state, mut rx) = state(Some(SECRET));
        let truncated = &MERGE_REQUEST_MERGE[..MERGE_REQUEST_MERGE.len() / 2];
        let request = hook("Merge Request Hook", Some(SECRET), truncated.to_string());
        let (status, body) = call(&state, request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let message = body["error"].as_str().unwrap();
        assert!(message.starts_with("malformed JSON: "), "{message}");
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn wrong_content_type_is_415() {
        let (state, mut rx) = state(Some(SECRET));
        for content_type in [
            Some("application/x-www-form-urlencoded"),
            Some("text/plain"),
            None,
        ] {
            let mut request = Request::post("/webhooks/gitlab")
                .header("X-Gitlab-Event", "Pipeline Hook")
                .header("X-Gitlab-Token", SECRET);
            if let Some(content_type) = content_type {
                request = request.header(header::CONTENT_TYPE, content_type);
            }
            let request = request.body(Body::from(PIPELINE_SUCCESS)).unwrap();
            let (status, body) = call(&state, request).await;
            assert_eq!(
                status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{content_type:?}"
            );
            assert!(body["error"].is_string());
        }
        let mut request = hook("Pipeline Hook", Some(SECRET), PIPELINE_SUCCESS);
        request.headers_mut().insert(
            header::CONTENT_TYPE,
            "Application/JSON; charset=utf-8".parse().unwrap(),
        );
        assert_eq!(call(&state, request).await.0, StatusCode::ACCEPTED);
        assert!(rx.try_recv().is_ok());
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn unknown_events_and_notes_are_202_without_trigger() {
        let (state, mut rx) = state(Some(SECRET));
        let (status, body) = call(&state, hook("Emoji Hook", Some(SECRET), "{}")).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(body, json!({"status": "ignored"}));

        let note = hook("Note Hook", Some(SECRET), NOTE_ON_MERGE_REQUEST);
        let (status, body) = call(&state, note).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(body, json!({"status": "accepted"}));
        // A comment addressed to promoter is a person's request for the loop.
        match rx.try_recv() {
            Ok(Trigger::Chat(request)) => assert_eq!(request.asker.place, "GitLab !12"),
            other => panic!("{other:?}"),
        }
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn events_of_another_project_are_ignored_through_the_route() {
        let (mut state, mut rx) = state(Some(SECRET));
        let other = |fixture: &str| {
            let mut payload: Value = serde_json::from_str(fixture).unwrap();
            payload["project"]["id"] = json!(15);
            payload["project"]["path_with_namespace"] = json!("platform/other");
            if payload.get("project_id").is_some() {
                payload["project_id"] = json!(15);
            }
            payload.to_string()
        };
        let events = [
            ("Merge Request Hook", MERGE_REQUEST_MERGE),
            ("Pipeline Hook", PIPELINE_SUCCESS),
            ("Push Hook", PUSH_TO_MAIN),
            ("Note Hook", NOTE_ON_MERGE_REQUEST),
        ];
        for configured in ["platform/environments", "14"] {
            state.project = Some(project::ProjectRef::parse(configured));
            for (event, fixture) in events {
                let (status, body) = call(&state, hook(event, Some(SECRET), other(fixture))).await;
                assert_eq!(status, StatusCode::ACCEPTED, "{event}");
                assert_eq!(body, json!({"status": "ignored"}), "{configured} {event}");
                // A payload naming no project is not ours either.
                let mut bare: Value = serde_json::from_str(fixture).unwrap();
                bare.as_object_mut().unwrap().remove("project");
                bare.as_object_mut().unwrap().remove("project_id");
                let (_, body) = call(&state, hook(event, Some(SECRET), bare.to_string())).await;
                assert_eq!(body, json!({"status": "ignored"}), "{configured} {event}");
            }
            assert!(
                rx.try_recv().is_err(),
                "no trigger nor chat-ops for another project"
            );
            // The same events of the configured project act.
            for (event, fixture) in events {
                let (_, body) = call(&state, hook(event, Some(SECRET), fixture)).await;
                assert_eq!(body, json!({"status": "accepted"}), "{configured} {event}");
            }
            assert_eq!(std::iter::from_fn(|| rx.try_recv().ok()).count(), 4);
        }
        // Without a configured project nothing acts.
        state.project = None;
        let (_, body) = call(
            &state,
            hook("Pipeline Hook", Some(SECRET), PIPELINE_SUCCESS),
        )
        .await;
        assert_eq!(body, json!({"status": "ignored"}));
    }

    #[tokio::test]
    async fn a_full_trigger_queue_still_answers_202() {
        let (state, mut rx) = state(Some(SECRET));
        for _ in 0..6 {
            let (status, _) = call(
                &state,
                hook("Pipeline Hook", Some(SECRET), PIPELINE_SUCCESS),
            )
            .await;
            assert_eq!(status, StatusCode::ACCEPTED);
        }
        let mut queued = 0;
        while rx.try_recv().is_ok() {
            queued += 1;
        }
        assert_eq!(queued, 4, "channel capacity");
    }

    #[tokio::test]
    async fn healthz_is_ok_and_readyz_follows_the_marks() {
        let (state, _rx) = state(Some(SECRET));
        let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
        assert_eq!(
            call(&state, get("/healthz")).await,
            (StatusCode::OK, json!({"status": "ok"}))
        );

        let (status, body) = call(&state, get("/readyz")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "not ready");
        assert_eq!(body["failing"].as_array().unwrap().len(), 3);

        state.readiness.mark_config_loaded();
        state.readiness.mark_fetched(state.clock.now());
        let (status, body) = call(&state, get("/readyz")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["failing"], json!(["no successful gitlab contact yet"]));

        state.readiness.mark_gitlab_ok(state.clock.now());
        assert_eq!(
            call(&state, get("/readyz")).await,
            (StatusCode::OK, json!({"status": "ready"}))
        );
    }

    #[tokio::test]
    async fn serve_stops_on_shutdown() {
        let (state, _rx) = state(Some(SECRET));
        let (stop, shutdown) = tokio::sync::oneshot::channel::<()>();
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let task = tokio::spawn(run(listener, router(state), async {
            let _ = shutdown.await;
        }));
        tokio::task::yield_now().await;
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("stops")
            .unwrap()
            .unwrap();
    }
}
