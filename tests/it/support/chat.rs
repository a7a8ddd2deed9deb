//! People talking to promoter in the test world: chat-ops on a [`World`]'s reconciler through
//! the daemon's real routes and its one loop ([`ChatStack`]), signed Slack slash commands, Mattermost commands, GitLab MR comments
//! (as a Note Hook or a decoded note event), and a local `response_url` that records what
//! promoter posts to it later.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::Utc;
use hmac::{Hmac, Mac};
use promoter::chatops::reply::Replies;
use promoter::daemon::{Clock, Trigger};
use promoter::forge::gitlab::GitLab;
use promoter::handlers::Handlers;
use promoter::reconcile::{Outcome, Reconciler};
use promoter::server::chat::{ChatState, routes};
use promoter::server::{Readiness, ServerState};
use sha2::Sha256;
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

use super::world::World;

/// The Slack signing secret of the chat world (Slack's documentation's example).
pub const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
/// The Mattermost command token of the chat world.
pub const MATTERMOST_TOKEN: &str = "mm-token";
/// The GitLab webhook secret of [`ChatStack`]s.
pub const WEBHOOK_SECRET: &str = "webhook-secret";

/// What `response_url` received, in order.
pub type Posted = Arc<Mutex<Vec<serde_json::Value>>>;

/// Which chat services are configured.
#[derive(Default)]
pub struct Chats {
    /// Slack's signing secret ([`SLACK_SECRET`]), or Slack refused.
    pub slack: bool,
    /// Mattermost's token ([`MATTERMOST_TOKEN`]), or Mattermost refused.
    pub mattermost: bool,
    /// How many people's commands may wait for the loop (the daemon's bound by default).
    pub bound: Option<usize>,
}

/// The chat side of `promoter daemon`, in process: the webhook routes (with
/// [`WEBHOOK_SECRET`]) and the chat routes hand what they decode to the daemon's one loop,
/// which the handlers run on a reconciler. The loop stops when this is dropped.
pub struct ChatStack {
    /// The daemon's routes: webhooks, health, chat.
    pub app: axum::Router,
    /// What the loop runs.
    pub handlers: Arc<Handlers>,
    /// The loop's inbox.
    pub triggers: mpsc::Sender<Trigger>,
    webhook_secret: String,
    _stop: watch::Sender<bool>,
}

impl ChatStack {
    /// Starts the loop on `handlers` and builds the routes with these secrets.
    pub fn start(
        handlers: Handlers,
        slack: Option<&str>,
        mattermost: Option<&str>,
        webhook: &str,
    ) -> Self {
        let (triggers, inbox) = mpsc::channel(64);
        let (stop, shutdown) = watch::channel(false);
        let handlers = Arc::new(handlers);
        let looped = handlers.clone();
        tokio::spawn(async move { promoter::daemon::run(inbox, &*looped, shutdown).await });
        let clock = handlers.clock();
        let state = ServerState {
            webhook_secret: Some(webhook.into()),
            triggers: triggers.clone(),
            readiness: Arc::new(Readiness::new(Duration::from_secs(600))),
            project: Some(promoter::server::project::ProjectRef::parse(
                "acme/calculator",
            )),
            branch: "main".into(),
            clock,
        };
        let chat = ChatState {
            triggers: triggers.clone(),
            clock,
            slack_secret: slack.map(Into::into),
            mattermost_token: mattermost.map(Into::into),
            mattermost_url: None,
            http: reqwest::Client::new(),
            guard: Arc::default(),
        };
        let app = promoter::server::router(state).merge(routes(chat));
        Self {
            app,
            handlers,
            triggers,
            webhook_secret: webhook.to_string(),
            _stop: stop,
        }
    }

    /// The reconciler the loop runs.
    pub fn reconciler(&self) -> &Reconciler<GitLab> {
        self.handlers.reconciler()
    }

    /// An MR comment by `user` on MR `iid`, delivered as GitLab's Note Hook.
    pub async fn comment(&self, iid: u64, user: &str, text: &str) {
        let payload = serde_json::json!({
            "object_kind": "note",
            "user": {"id": 7, "username": user},
            "object_attributes": {"id": 1, "note": text, "noteable_type": "MergeRequest", "action": "create"},
            "merge_request": {"iid": iid, "source_branch": "feature"},
            "project": {"id": 42, "path_with_namespace": "acme/calculator"}
        });
        let request = Request::post("/webhooks/gitlab")
            .header("content-type", "application/json")
            .header("x-gitlab-event", "Note Hook")
            .header("x-gitlab-token", &self.webhook_secret)
            .body(Body::from(payload.to_string()))
            .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
}

/// Handlers on `reconciler` by the system clock, starting from the dashboard of a first
/// reconcile's `outcome` (which answers `status` and `plan`).
pub fn handlers(reconciler: Arc<Reconciler<GitLab>>, outcome: &Outcome) -> Handlers {
    Handlers::new(reconciler, Clock::system(), Replies::new().unwrap())
        .with_latest(outcome.dashboard.clone())
}

impl World {
    /// Chat-ops on this world's reconciler through the daemon's loop, as `promoter daemon`
    /// builds it after `first`, its first reconcile.
    pub fn chat_stack(&self, first: &Outcome, chats: Chats) -> ChatStack {
        let mut handlers = handlers(self.reconciler.clone(), first);
        if let Some(bound) = chats.bound {
            handlers = handlers.with_bound(bound);
        }
        ChatStack::start(
            handlers,
            chats.slack.then_some(SLACK_SECRET),
            chats.mattermost.then_some(MATTERMOST_TOKEN),
            WEBHOOK_SECRET,
        )
    }
}

/// A local `response_url` that records what is posted to it.
pub async fn response_url() -> (String, Posted) {
    let seen: Posted = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(body);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// Waits (30 s at most) until `response_url` received `n` posts.
pub async fn wait_for_posts(posted: &Mutex<Vec<serde_json::Value>>, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while posted.lock().unwrap().len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {n} results posted",
            posted.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Slack slash command's form body from `user` in #deploys.
pub fn slack_form(user: &str, text: &str, response_url: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("team_id", "T1")
        .append_pair("channel_id", "C1")
        .append_pair("channel_name", "deploys")
        .append_pair("user_id", user)
        .append_pair("user_name", "someone")
        .append_pair("command", "/promoter")
        .append_pair("text", text)
        .append_pair("response_url", response_url)
        .finish()
}

/// `body` posted to `/chatops/slack`, signed with `secret` at unix time `at` as Slack signs
/// (`v0=` HMAC-SHA256 of `v0:{timestamp}:{body}`).
pub fn signed(body: &str, secret: &str, at: i64) -> Request<Body> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{at}:{body}").as_bytes());
    let signature = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
    Request::post("/chatops/slack")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", at.to_string())
        .header("x-slack-signature", signature)
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// `/promoter text` from Slack user `user`, signed now with [`SLACK_SECRET`].
pub fn slack(user: &str, text: &str, response_url: &str) -> Request<Body> {
    signed(
        &slack_form(user, text, response_url),
        SLACK_SECRET,
        Utc::now().timestamp(),
    )
}

/// `/promoter text` from Mattermost user bob in town-square, with `token` (if any).
pub fn mattermost(token: Option<&str>, text: &str) -> Request<Body> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("team_id", "t1")
        .append_pair("channel_id", "c1")
        .append_pair("channel_name", "town-square")
        .append_pair("response_url", "http://127.0.0.1:9/hooks/commands/x")
        .append_pair("command", "/promoter")
        .append_pair("text", text)
        .append_pair("user_id", "u1")
        .append_pair("user_name", "bob")
        .finish();
    let mut request = Request::post("/chatops/mattermost")
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(token) = token {
        request = request.header("authorization", format!("Token {token}"));
    }
    request.body(Body::from(body)).unwrap()
}

/// GitLab's Note Hook payload: alice comments `text` on MR `iid` from `source_branch`.
pub fn note_payload(text: &str, iid: u64, source_branch: &str) -> serde_json::Value {
    serde_json::json!({
        "object_kind": "note",
        "user": {"id": 7, "username": "alice"},
        "object_attributes": {"id": 1, "note": text, "noteable_type": "MergeRequest", "action": "create"},
        "merge_request": {"iid": iid, "source_branch": source_branch},
        "project": {"id": 42, "path_with_namespace": "acme/calculator"}
    })
}

/// alice's comment posted to `/webhooks/gitlab` as a Note Hook with [`WEBHOOK_SECRET`].
pub fn note_hook(text: &str, iid: u64, source_branch: &str) -> Request<Body> {
    Request::post("/webhooks/gitlab")
        .header("content-type", "application/json")
        .header("X-Gitlab-Event", "Note Hook")
        .header("X-Gitlab-Token", WEBHOOK_SECRET)
        .body(Body::from(
            note_payload(text, iid, source_branch).to_string(),
        ))
        .unwrap()
}

/// A response's body as text.
pub async fn body_text(response: axum::response::Response) -> String {
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The `text` of an immediate Slack or Mattermost reply (200, ephemeral).
pub async fn reply_text(app: &axum::Router, request: Request<Body>) -> String {
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = serde_json::from_str(&body_text(response).await).unwrap();
    assert_eq!(body["response_type"], "ephemeral", "{body}");
    body["text"].as_str().unwrap().to_string()
}
