//! Chat-ops over HTTP: `POST /chatops/slack` and `POST`/`GET /chatops/mattermost` (Mattermost
//! sends a custom slash command either way; GET carries the fields in the query string). Each
//! request is verified (Slack's signature and replay check, Mattermost's token), decoded into
//! a [`ChatRequest`] and handed to the daemon's loop, which answers at once or says "working on
//! it"; the result of a command that runs a reconcile is posted to `response_url` afterwards
//! (Slack allows 3 s for the first answer). Nothing here parses the command language, decides,
//! or reads anything but the request: the handlers in the wiring do.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use secrecy::SecretString;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::chat_guard::{self, BUSY, ChatGuard};
use crate::chatops::reply::{self, Flavor};
use crate::chatops::{SlashCommand, mattermost, post_response, slack};
use crate::daemon::{Asker, ChatRequest, Clock, FirstAnswer, ReplyTo, Trigger};

/// What the chat routes need: the secrets to verify with and the loop's inbox.
#[derive(Debug, Clone)]
pub struct ChatState {
    /// The daemon loop's inbox.
    pub triggers: mpsc::Sender<Trigger>,
    /// The daemon's clock (Slack's timestamps are checked against it).
    pub clock: Clock,
    /// Slack's signing secret; Slack requests are refused without it.
    pub slack_secret: Option<SecretString>,
    /// Mattermost's command token; Mattermost requests are refused without it.
    pub mattermost_token: Option<SecretString>,
    /// `chatops.mattermost.url`: late replies are posted only to a `response_url` on this
    /// server; without it Mattermost gets its answer in the HTTP response only.
    pub mattermost_url: Option<url::Url>,
    /// For `response_url`.
    pub http: reqwest::Client,
    /// Slack signatures already used.
    pub guard: Arc<ChatGuard>,
}

/// The chat-ops routes.
pub fn routes(chat: ChatState) -> Router {
    Router::new()
        .route("/chatops/slack", post(slack_command))
        .route(
            "/chatops/mattermost",
            post(mattermost_command).get(mattermost_query),
        )
        .layer(DefaultBodyLimit::max(16 * 1024))
        .layer(axum::middleware::from_fn(super::time_limit))
        .with_state(Arc::new(chat))
}

fn unauthorized(message: &str) -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!({ "error": message }))).into_response()
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

fn starting() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "error": "promoter is starting; try again in a minute" })),
    )
        .into_response()
}

async fn slack_command(
    State(chat): State<Arc<ChatState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(secret) = &chat.slack_secret else {
        return unauthorized("Slack is not configured (chatops.slack.signing_secret)");
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let now = chat.clock.now().timestamp();
    let timestamp = header("x-slack-request-timestamp");
    let signature = header("x-slack-signature");
    if let Err(e) = slack::verify(secret, timestamp, signature, &body, now) {
        tracing::warn!(error = %e, "refused a Slack request");
        return unauthorized("invalid Slack signature");
    }
    let sent = timestamp.parse().unwrap_or_default();
    if let Err(e) = chat.guard.seen_slack.record(signature, sent, now) {
        tracing::warn!(error = %e, "refused a Slack request");
        return unauthorized(&e.to_string());
    }
    let command = match slack::parse_form(&body) {
        Ok(command) => command,
        Err(crate::chatops::FormError::SslCheck) => return StatusCode::OK.into_response(),
        Err(e) => return bad_request(&e.to_string()),
    };
    let asker = Asker {
        // Only the user id: Slack user names are deprecated and anyone can change theirs, so
        // a name could impersonate a listed requester.
        identities: vec![format!("slack:{}", command.user_id)],
        place: format!("Slack #{}", reply::one_line(&command.channel_name)),
    };
    // Signed by Slack, so its response_url is Slack's.
    let post_to = Ok(command.response_url.clone());
    let answers = Answers {
        flavor: Flavor::Slack,
        post_to,
        ephemeral: slack::ephemeral,
        in_channel: slack::in_channel,
    };
    respond(&chat, command, asker, answers).await
}

/// Mattermost's GET: the same fields, in the query string.
async fn mattermost_query(
    State(chat): State<Arc<ChatState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    mattermost_command(State(chat), headers, Bytes::from(query)).await
}

async fn mattermost_command(
    State(chat): State<Arc<ChatState>>,
    headers: HeaderMap,
    form: Bytes,
) -> Response {
    let Some(token) = &chat.mattermost_token else {
        return unauthorized("Mattermost is not configured (chatops.mattermost.token)");
    };
    // Authenticate before reading anything else: the header, else the form's `token` field.
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
    let form_token = url::form_urlencoded::parse(&form)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    if let Err(e) = mattermost::verify(token, authorization, form_token.as_deref()) {
        tracing::warn!(error = %e, "refused a Mattermost request");
        return unauthorized("invalid Mattermost token");
    }
    let command = match mattermost::parse_form(&form) {
        Ok(form) => form.command,
        Err(e) => return bad_request(&e.to_string()),
    };
    let asker = Asker {
        identities: vec![format!("mattermost:{}", command.user_name)],
        place: format!("Mattermost ~{}", reply::one_line(&command.channel_name)),
    };
    let post_to =
        chat_guard::mattermost_response_url(chat.mattermost_url.as_ref(), &command.response_url)
            .map(|()| command.response_url.clone());
    let answers = Answers {
        flavor: Flavor::Mattermost,
        post_to,
        ephemeral: mattermost::ephemeral,
        in_channel: mattermost::in_channel,
    };
    respond(&chat, command, asker, answers).await
}

/// How one chat shapes and delivers answers.
struct Answers {
    flavor: Flavor,
    /// Where a late result goes, or why it cannot be posted (then it is the HTTP answer).
    post_to: Result<String, &'static str>,
    ephemeral: fn(&str) -> serde_json::Value,
    in_channel: fn(&str) -> serde_json::Value,
}

/// How long the loop may take to give the first answer (under Slack's 3 s).
const FIRST_ANSWER: Duration = Duration::from_secs(2);

/// How long a command whose result cannot be posted later is waited for inside its request
/// (under the routes' [`super::REQUEST_TIMEOUT`]).
const INLINE_WAIT: Duration = Duration::from_secs(8);

/// Hands the command to the daemon's loop and answers with its first answer; a result that
/// follows is posted to `response_url`, or when it cannot be, waited for up to
/// [`INLINE_WAIT`] and given as the HTTP answer.
async fn respond(
    chat: &ChatState,
    slash: SlashCommand,
    asker: Asker,
    answers: Answers,
) -> Response {
    let invocation = if slash.command.is_empty() {
        "/promoter".to_string()
    } else {
        slash.command
    };
    let (reply, first) = oneshot::channel();
    let request = ChatRequest {
        flavor: answers.flavor,
        invocation,
        text: slash.text,
        asker,
        reply: ReplyTo::Http(reply),
    };
    if chat.triggers.try_send(Trigger::Chat(request)).is_err() {
        tracing::warn!("the daemon's inbox is full or closed: a chat command was answered busy");
        return Json((answers.ephemeral)(BUSY)).into_response();
    }
    // No first answer in time: the loop is not running yet (the first clone). The request is
    // dropped unrun, as its reply channel is closed.
    let first = match tokio::time::timeout(FIRST_ANSWER, first).await {
        Ok(Ok(first)) => first,
        _ => return starting(),
    };
    let (note, result) = match first {
        FirstAnswer::Done(text) => return Json((answers.ephemeral)(&text)).into_response(),
        FirstAnswer::Busy => return Json((answers.ephemeral)(BUSY)).into_response(),
        FirstAnswer::Working { note, result } => (note, result),
    };
    match answers.post_to {
        Ok(url) => {
            let http = chat.http.clone();
            tokio::spawn(async move {
                let Ok(text) = result.await else { return };
                if let Err(e) = post_response(&http, &url, &(answers.in_channel)(&text)).await {
                    tracing::warn!(error = %e, "cannot post the chat-ops result");
                }
            });
            Json((answers.ephemeral)(&note)).into_response()
        }
        Err(why) => {
            tracing::warn!(
                why,
                "not posting the chat-ops result to response_url; answering in the response"
            );
            match tokio::time::timeout(INLINE_WAIT, result).await {
                Ok(Ok(text)) => Json((answers.in_channel)(&text)).into_response(),
                _ => Json((answers.ephemeral)(&format!(
                    "Working on it, but the result cannot be posted here later ({why}): watch GitLab for the merge request."
                )))
                .into_response(),
            }
        }
    }
}
