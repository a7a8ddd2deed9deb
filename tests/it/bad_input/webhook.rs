//! Through the daemon's real router in process: every bad delivery gets its exact status and
//! error, and neither a reconcile trigger nor a chat-ops comment is queued (the only ways a
//! webhook leads to a write).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use http_body_util::channel::Channel;
use promoter::daemon::Trigger;
use promoter::server::webhook::BODY_LIMIT;
use promoter::server::{Readiness, ServerState, router};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tower::ServiceExt;

const SECRET: &str = "webhook-secret";

struct Daemon {
    app: axum::Router,
    triggers: mpsc::Receiver<Trigger>,
}

impl Daemon {
    fn new() -> Self {
        let (trigger_tx, triggers) = mpsc::channel(16);
        let state = ServerState {
            webhook_secret: Some(SECRET.into()),
            triggers: trigger_tx,
            readiness: Arc::new(Readiness::new(Duration::from_secs(600))),
            project: Some(promoter::server::project::ProjectRef::parse(
                "acme/calculator",
            )),
            branch: "main".into(),
            clock: promoter::daemon::Clock::system(),
        };
        Self {
            app: router(state),
            triggers,
        }
    }

    async fn call(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, body)
    }

    /// Nothing reached the loop (neither a reconcile trigger nor a chat-ops request).
    fn assert_nothing_queued(&mut self, case: &str) {
        assert!(self.triggers.try_recv().is_err(), "{case}: a trigger");
    }
}

fn hook(event: Option<&str>, content_type: Option<&str>, body: Body) -> Request<Body> {
    let mut request = Request::post("/webhooks/gitlab").header("X-Gitlab-Token", SECRET);
    if let Some(event) = event {
        request = request.header("X-Gitlab-Event", event);
    }
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    request.body(body).unwrap()
}

fn json_hook(event: &str, body: impl Into<Body>) -> Request<Body> {
    hook(Some(event), Some("application/json"), body.into())
}

const NOTE: &str = r#"{"object_kind": "note", "user": {"id": 7, "username": "alice"},
 "object_attributes": {"id": 1, "note": "@promoter status", "noteable_type": "MergeRequest", "action": "create"},
 "merge_request": {"iid": 1, "source_branch": "promoter/qa/maths-api"},
 "project": {"id": 42, "path_with_namespace": "acme/calculator"}}"#;

#[tokio::test]
async fn bad_webhook_bodies_get_exact_errors_and_queue_nothing() {
    let mut daemon = Daemon::new();
    let huge = format!(
        "{{\"object_kind\": \"note\", \"padding\": \"{}\"}}",
        "x".repeat(BODY_LIMIT)
    );
    let nested = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let cases: Vec<(&str, Request<Body>, StatusCode, Value)> = vec![
        (
            "over 1 MiB",
            json_hook("Note Hook", huge.clone()),
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": "Failed to buffer the request body: length limit exceeded"}),
        ),
        (
            "over 1 MiB without a length",
            json_hook("Note Hook", streamed(huge.into_bytes())),
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": "Failed to buffer the request body: length limit exceeded"}),
        ),
        (
            "truncated JSON",
            json_hook("Note Hook", &NOTE[..NOTE.len() / 2]),
            StatusCode::BAD_REQUEST,
            json!({"error": "malformed JSON: EOF while parsing a value at line 2 column 93"}),
        ),
        (
            "empty body",
            json_hook("Note Hook", ""),
            StatusCode::BAD_REQUEST,
            json!({"error": "malformed JSON: EOF while parsing a value at line 1 column 0"}),
        ),
        (
            "nested 200 deep",
            json_hook("Pipeline Hook", nested),
            StatusCode::BAD_REQUEST,
            json!({"error": "malformed JSON: recursion limit exceeded at line 1 column 128"}),
        ),
        (
            "not UTF-8",
            json_hook("Push Hook", &b"{\"ref\": \"\xff\xfe\"}"[..]),
            StatusCode::BAD_REQUEST,
            json!({"error": "malformed JSON: invalid unicode code point at line 1 column 10"}),
        ),
        (
            "a form",
            hook(
                Some("Note Hook"),
                Some("application/x-www-form-urlencoded"),
                Body::from("payload=%7B%7D"),
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            json!({"error": "content type must be application/json"}),
        ),
        (
            "no content type",
            hook(Some("Note Hook"), None, Body::from(NOTE)),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            json!({"error": "content type must be application/json"}),
        ),
        (
            "no event header",
            hook(None, Some("application/json"), Body::from(NOTE)),
            StatusCode::BAD_REQUEST,
            json!({"error": "missing X-Gitlab-Event"}),
        ),
        (
            "an event promoter does not handle",
            json_hook("Deployment Hook", NOTE),
            StatusCode::ACCEPTED,
            json!({"status": "ignored"}),
        ),
        (
            "an event name made up",
            json_hook("<!channel> Hook", "{}"),
            StatusCode::ACCEPTED,
            json!({"status": "ignored"}),
        ),
        (
            "an event name that is not ASCII",
            json_hook("Note Hook\u{202e}", NOTE),
            StatusCode::BAD_REQUEST,
            json!({"error": "X-Gitlab-Event is not ASCII text"}),
        ),
        (
            "a known event of the wrong shape",
            json_hook(
                "Merge Request Hook",
                r#"{"object_attributes": {"iid": "three"}}"#,
            ),
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid Merge Request Hook payload: invalid type: string \"three\", expected u64"}),
        ),
        (
            "a note that is an array",
            json_hook("Note Hook", "[1, 2]"),
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid Note Hook payload"}),
        ),
        (
            "a merge request that is neither merged nor a promotion",
            json_hook(
                "Merge Request Hook",
                r#"{"object_attributes": {"iid": 3, "action": "open", "source_branch": "feature"}}"#,
            ),
            StatusCode::ACCEPTED,
            json!({"status": "ignored"}),
        ),
    ];
    for (case, request, status, body) in cases {
        assert_eq!(daemon.call(request).await, (status, body), "{case}");
        daemon.assert_nothing_queued(case);
    }

    // The same note, well formed, does reach chat-ops: the cases above were refused for what
    // they are, not because the route is closed.
    let (status, _) = daemon.call(json_hook("Note Hook", NOTE)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(matches!(daemon.triggers.try_recv(), Ok(Trigger::Chat(_))));
}

/// A body whose bytes come in 64 KiB chunks with no length given.
fn streamed(bytes: Vec<u8>) -> Body {
    let (mut sender, body) = Channel::<Bytes>::new(4);
    tokio::spawn(async move {
        for chunk in bytes.chunks(64 * 1024) {
            if sender
                .send_data(Bytes::copy_from_slice(chunk))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    Body::new(body)
}

#[tokio::test(start_paused = true)]
async fn a_body_that_stops_arriving_times_out_instead_of_hanging() {
    let mut daemon = Daemon::new();
    let (mut sender, body) = Channel::<Bytes>::new(1);
    sender
        .send_data(Bytes::from_static(b"{\"object_kind\": \"no"))
        .await
        .unwrap();
    let request = json_hook("Note Hook", Body::new(body));
    // The sender stays alive: the body never ends. Paused time lets the timeout fire at once
    // (and this test's own minute, should the route ever wait forever again).
    let (status, body) = tokio::time::timeout(Duration::from_secs(60), daemon.call(request))
        .await
        .expect("the request hung");
    assert_eq!(
        (status, body),
        (
            StatusCode::REQUEST_TIMEOUT,
            json!({"error": "the request did not arrive within 10 s"})
        )
    );
    daemon.assert_nothing_queued("stalled body");
    drop(sender);
}
