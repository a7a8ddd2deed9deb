//! Chat-ops on the daemon: `POST /chatops/slack` and `POST /chatops/mattermost` (verified,
//! answered at once, the slow part posted to `response_url` afterwards) and commands in GitLab
//! MR comments (`@promoter ...`, answered with a comment). Every channel runs the same
//! commands: who asks is checked against the policies' `requesters` before anything happens,
//! and a promotion or rollback runs a reconcile of just that promotion, one at a time with the
//! daemon's own reconciles. The defences against hostile or replayed requests are in
//! [`super::chat_guard`].

use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use chrono::Utc;
use secrecy::SecretString;
use serde_json::json;
use tokio::sync::Mutex;

use super::chat_guard::{self, BUSY, ChatGuard};
use super::webhook::NoteEvent;
use crate::chatops::command::{self, Command, Known};
use crate::chatops::reply::{
    self, Accepted, Flavor, Help, ParseFailure, Refused, Replies, Status, StatusRow,
};
use crate::chatops::{SlashCommand, mattermost, post_response, slack};
use crate::dashboard::{Cell, CellState, DashboardData};
use crate::forge::Forge;
use crate::forge::gitlab::GitLab;
use crate::model::{EnvName, ServiceName};
use crate::plan::Request;
use crate::policy::access;
use crate::reconcile::policy_change::{
    PolicyChange, freeze_change, freeze_file, scope_name, unfreeze_change,
};
use crate::reconcile::{ActionKind, Reconciler, Scope};

/// What a chat command needs.
pub struct ChatOps {
    /// The reconciler (shared with the daemon loop).
    pub reconciler: Arc<Reconciler<GitLab>>,
    /// Held for the whole of every reconcile: chat runs wait for the daemon's and vice versa.
    pub flight: Arc<Mutex<()>>,
    /// The last dashboard, for `status` and `plan`.
    pub latest: Arc<RwLock<Option<DashboardData>>>,
    /// Slack's signing secret; Slack requests are refused without it.
    pub slack_secret: Option<SecretString>,
    /// Mattermost's command token; Mattermost requests are refused without it.
    pub mattermost_token: Option<SecretString>,
    /// Reply templates.
    pub replies: Replies,
    /// For `response_url`.
    pub http: reqwest::Client,
    /// `chatops.mattermost.url`: late replies are posted only to a `response_url` on this
    /// server; without it Mattermost gets its answer in the HTTP response only.
    pub mattermost_url: Option<url::Url>,
    /// Replayed Slack signatures, the bound on queued commands.
    pub guard: ChatGuard,
}

/// Who asked, where.
struct Asker {
    /// Identities to authorize, first the stable one (`slack:U024BE7LH`).
    identities: Vec<String>,
    /// Where, for the MR ("Slack #deploys").
    place: String,
}

/// The chat service, set once the reconciler exists (the server starts before the first clone).
pub type ChatCell = Arc<std::sync::OnceLock<Arc<ChatOps>>>;

fn starting() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "error": "promoter is starting; try again in a minute" })),
    )
        .into_response()
}

/// The chat-ops routes.
pub fn routes(chat: ChatCell) -> Router {
    Router::new()
        .route("/chatops/slack", post(slack_command))
        .route("/chatops/mattermost", post(mattermost_command))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .layer(axum::middleware::from_fn(super::time_limit))
        .with_state(chat)
}

fn unauthorized(message: &str) -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!({ "error": message }))).into_response()
}

async fn slack_command(State(cell): State<ChatCell>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(chat) = cell.get().cloned() else {
        return starting();
    };
    let Some(secret) = &chat.slack_secret else {
        return unauthorized("Slack is not configured (chatops.slack.signing_secret)");
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    if let Err(e) = slack::verify(
        secret,
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
        &body,
        Utc::now().timestamp(),
    ) {
        tracing::warn!(error = %e, "refused a Slack request");
        return unauthorized("invalid Slack signature");
    }
    let timestamp = header("x-slack-request-timestamp")
        .parse()
        .unwrap_or_default();
    if let Err(e) = chat.guard.seen_slack.record(
        header("x-slack-signature"),
        timestamp,
        Utc::now().timestamp(),
    ) {
        tracing::warn!(error = %e, "refused a Slack request");
        return unauthorized(&e.to_string());
    }
    let command = match slack::parse_form(&body) {
        Ok(command) => command,
        Err(crate::chatops::FormError::SslCheck) => return StatusCode::OK.into_response(),
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": e.to_string() })),
            )
                .into_response();
        }
    };
    let asker = Asker {
        // Only the user id: Slack user names are deprecated and anyone can change theirs, so
        // a name could impersonate a listed requester.
        identities: vec![format!("slack:{}", command.user_id)],
        place: format!("Slack #{}", reply::one_line(&command.channel_name)),
    };
    // Signed by Slack, so its response_url is Slack's.
    let post_to = Ok(command.response_url.clone());
    respond(
        chat,
        Flavor::Slack,
        command,
        asker,
        post_to,
        slack::ephemeral,
        slack::in_channel,
    )
    .await
}

async fn mattermost_command(
    State(cell): State<ChatCell>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(chat) = cell.get().cloned() else {
        return starting();
    };
    let Some(token) = &chat.mattermost_token else {
        return unauthorized("Mattermost is not configured (chatops.mattermost.token)");
    };
    // Authenticate before reading anything else: the header, else the form's `token` field.
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
    let form_token = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    if let Err(e) = mattermost::verify(token, authorization, form_token.as_deref()) {
        tracing::warn!(error = %e, "refused a Mattermost request");
        return unauthorized("invalid Mattermost token");
    }
    let form = match mattermost::parse_form(&body) {
        Ok(form) => form,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": e.to_string() })),
            )
                .into_response();
        }
    };
    let command = form.command;
    let asker = Asker {
        identities: vec![format!("mattermost:{}", command.user_name)],
        place: format!("Mattermost ~{}", reply::one_line(&command.channel_name)),
    };
    let post_to =
        chat_guard::mattermost_response_url(chat.mattermost_url.as_ref(), &command.response_url)
            .map(|()| command.response_url.clone());
    respond(
        chat,
        Flavor::Mattermost,
        command,
        asker,
        post_to,
        mattermost::ephemeral,
        mattermost::in_channel,
    )
    .await
}

/// How long a command whose result cannot be posted later is waited for inside its request
/// (under the routes' [`super::REQUEST_TIMEOUT`]).
const INLINE_WAIT: std::time::Duration = std::time::Duration::from_secs(8);

/// Answers at once; a promotion or rollback answers "working on it" and posts its result to
/// `post_to` when the reconcile is done (Slack allows 3 s for the first answer). When `post_to`
/// is `Err` (why not), nothing is posted: the result is the HTTP answer if it is ready within
/// [`INLINE_WAIT`]. Past [`chat_guard::MAX_WAITING`] queued commands the answer is "busy".
async fn respond(
    chat: Arc<ChatOps>,
    flavor: Flavor,
    slash: SlashCommand,
    asker: Asker,
    post_to: Result<String, &'static str>,
    ephemeral: fn(&str) -> serde_json::Value,
    in_channel: fn(&str) -> serde_json::Value,
) -> Response {
    let invocation = if slash.command.is_empty() {
        "/promoter".to_string()
    } else {
        slash.command.clone()
    };
    let shared = chat.clone();
    let (work, working): (std::pin::Pin<Box<dyn Future<Output = String> + Send>>, &str) =
        match prepare(&chat, flavor, &invocation, &slash.text, &asker) {
            Prepared::Reply(text) => return Json(ephemeral(&text)).into_response(),
            Prepared::Policy(change) => (
                Box::pin(async move { propose(&chat, flavor, *change).await }),
                "Working on it: the merge request follows in this channel.",
            ),
            Prepared::Run(request) => (
                Box::pin(async move { run(&chat, flavor, *request, &asker).await }),
                "Working on it: the result follows in this channel.",
            ),
        };
    // Nothing has started yet: past the bound the command is dropped unrun.
    let Some(place) = shared.guard.queue() else {
        return Json(ephemeral(BUSY)).into_response();
    };
    let http = shared.http.clone();
    let work = async move {
        let _place = place;
        work.await
    };
    match post_to {
        Ok(url) => {
            tokio::spawn(async move {
                let text = work.await;
                if let Err(e) = post_response(&http, &url, &in_channel(&text)).await {
                    tracing::warn!(error = %e, "cannot post the chat-ops result");
                }
            });
            Json(ephemeral(working)).into_response()
        }
        Err(why) => {
            tracing::warn!(
                why,
                "not posting the chat-ops result to response_url; answering in the response"
            );
            let task = tokio::spawn(work);
            match tokio::time::timeout(INLINE_WAIT, task).await {
                Ok(Ok(text)) => Json(in_channel(&text)).into_response(),
                _ => Json(ephemeral(&format!(
                    "Working on it, but the result cannot be posted here later ({why}): watch GitLab for the merge request."
                )))
                .into_response(),
            }
        }
    }
}

/// A command as far as it can go without the reconciler.
enum Prepared {
    /// The whole answer.
    Reply(String),
    /// A promotion or rollback to run.
    Run(Box<Request>),
    /// A freeze or unfreeze to propose as an MR.
    Policy(Box<PolicyChange>),
}

fn render(result: Result<String, reply::Error>) -> String {
    result.unwrap_or_else(|e| {
        tracing::error!(error = %e, "a chat-ops reply template failed");
        "promoter could not render its answer; see its log.".to_string()
    })
}

/// Parses and authorizes; answers everything that needs no reconcile.
fn prepare(
    chat: &ChatOps,
    flavor: Flavor,
    invocation: &str,
    text: &str,
    asker: &Asker,
) -> Prepared {
    let Some(snapshot) = chat.reconciler.latest_snapshot() else {
        return Prepared::Reply(
            "promoter is starting: it has not read the repository yet. Try again in a minute."
                .into(),
        );
    };
    let known = Known {
        services: snapshot
            .service_names()
            .into_iter()
            .map(ToString::to_string)
            .collect(),
        environments: snapshot
            .environments
            .iter()
            .map(|e| e.name.to_string())
            .collect(),
    };
    let parsed = match command::parse(text, &known) {
        Ok(command) => command,
        Err(error) => {
            let failure = ParseFailure {
                invocation: invocation.to_string(),
                error,
            };
            return Prepared::Reply(render(chat.replies.parse_error(flavor, &failure)));
        }
    };
    let latest = chat
        .latest
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let (service, env, tag, reason, rollback) = match parsed {
        Command::Help { topic } => {
            return Prepared::Reply(render(chat.replies.help(
                flavor,
                &Help {
                    invocation: invocation.to_string(),
                    topic,
                },
            )));
        }
        Command::Status { service } => {
            return Prepared::Reply(render(
                chat.replies
                    .status(flavor, &status(latest.as_ref(), service.as_ref())),
            ));
        }
        Command::Plan { env } => {
            return Prepared::Reply(plan_text(flavor, latest.as_ref(), env.as_ref()));
        }
        Command::Freeze {
            scope,
            until,
            reason,
        } => {
            return match authorize_scope(&snapshot, &scope, asker, "freeze") {
                Err(refused) => Prepared::Reply(render(chat.replies.refused(flavor, &refused))),
                Ok(who) => Prepared::Policy(Box::new(freeze_change(
                    &scope,
                    until,
                    &reason,
                    &who,
                    &asker.place,
                    Utc::now(),
                ))),
            };
        }
        Command::Unfreeze { scope } => {
            if let Err(refused) = authorize_scope(&snapshot, &scope, asker, "unfreeze") {
                return Prepared::Reply(render(chat.replies.refused(flavor, &refused)));
            }
            let file = freeze_file(&scope);
            if !snapshot.policies.files.iter().any(|p| p.file == file) {
                return Prepared::Reply(format!(
                    "there is no chat freeze in {file}; a freeze written in another policy file is lifted by editing that file"
                ));
            }
            return Prepared::Policy(Box::new(unfreeze_change(&scope, &asker.place)));
        }
        Command::Unhold { service, env } => {
            let scope = command::Scope::Env(env.clone());
            let who =
                match authorize_scope(&snapshot, &scope, asker, &format!("unhold {service} in")) {
                    Err(refused) => {
                        return Prepared::Reply(render(chat.replies.refused(flavor, &refused)));
                    }
                    Ok(who) => who,
                };
            let file = crate::policy::hold::file(&env, &service);
            if !snapshot.policies.holds().any(|h| h.file == file) {
                return Prepared::Reply(format!(
                    "{service} is not held in {env}: there is no {file} on the branch"
                ));
            }
            return Prepared::Policy(Box::new(crate::reconcile::policy_change::unhold_change(
                &env,
                &service,
                &who,
                &asker.place,
            )));
        }
        Command::Promote {
            service,
            to,
            tag,
            reason,
        } => {
            let Some(env) = to.or_else(|| next_env(latest.as_ref(), &service)) else {
                return Prepared::Reply(format!(
                    "nothing to promote for {}: say `to <env>`",
                    reply::escape(flavor, service.as_str())
                ));
            };
            (service, env, tag, reason, false)
        }
        Command::Rollback {
            service,
            env,
            to,
            reason,
        } => (service, env, to, reason, true),
    };
    let what = format!(
        "{} {service} {} {env}",
        if rollback { "rollback" } else { "promote" },
        if rollback { "in" } else { "to" }
    );
    let Some(target_env) = snapshot.environment(&env) else {
        return Prepared::Reply(format!(
            "no environment {}",
            reply::escape(flavor, env.as_str())
        ));
    };
    if target_env.promotes_from.is_none() {
        return Prepared::Reply(format!(
            "{env} is the first environment: its tags come from CI"
        ));
    }
    let policy = snapshot.policies.for_env(&env);
    let who = match access::authorize(&policy, &env, &asker.identities) {
        Ok(who) => who.to_string(),
        Err(refusal) => {
            tracing::info!(asker = %asker.identities[0], %env, rule = refusal.rule, "chat-ops request refused");
            let refused = Refused {
                what,
                rule: refusal.rule,
                message: refusal.message,
            };
            return Prepared::Reply(render(chat.replies.refused(flavor, &refused)));
        }
    };
    let reason = Some(match reason {
        Some(reason) => format!("{reason} (asked in {})", asker.place),
        None => format!("asked in {}", asker.place),
    });
    Prepared::Run(Box::new(Request {
        service,
        to: env,
        tag,
        requested_by: who,
        reason,
        rollback,
        requested_at: None,
    }))
}

fn is_due(cell: &Cell) -> bool {
    matches!(cell.state, CellState::Promotable | CellState::Blocked)
}

/// `1.2.1 -> 1.3.0, promote` or `..., blocked: soak: ...`.
fn summary(cell: &Cell) -> String {
    let tags = format!(
        "{} -> {}",
        cell.tag.as_deref().unwrap_or("(none)"),
        cell.candidate.as_deref().unwrap_or("?")
    );
    match cell.state {
        CellState::Blocked => format!("{tags}, blocked: {}", cell.reasons.join("; ")),
        _ => format!("{tags}, promote"),
    }
}

/// Freezing an environment takes being a requester of it; freezing all, of every one.
fn authorize_scope(
    snapshot: &crate::repo::Snapshot,
    scope: &command::Scope,
    asker: &Asker,
    what: &str,
) -> Result<String, Refused> {
    let envs: Vec<EnvName> = match scope {
        command::Scope::Env(env) => vec![env.clone()],
        command::Scope::All => snapshot
            .environments
            .iter()
            .filter(|e| e.promotes_from.is_some())
            .map(|e| e.name.clone())
            .collect(),
    };
    let mut who = String::new();
    for env in envs {
        match access::authorize(&snapshot.policies.for_env(&env), &env, &asker.identities) {
            Ok(id) => who = id.to_string(),
            Err(refusal) => {
                return Err(Refused {
                    what: format!("{what} {}", scope_name(scope)),
                    rule: refusal.rule,
                    message: refusal.message,
                });
            }
        }
    }
    Ok(who)
}

/// The first environment after the first where the service's upstream tag differs.
fn next_env(latest: Option<&DashboardData>, service: &ServiceName) -> Option<EnvName> {
    let data = latest?;
    let row = data.rows.iter().find(|r| r.service == service.as_str())?;
    row.cells
        .iter()
        .zip(&data.environments)
        .skip(1)
        .find(|(c, _)| is_due(c))
        .map(|(_, e)| EnvName::new(e.as_str()))
}

fn status(latest: Option<&DashboardData>, service: Option<&ServiceName>) -> Status {
    let Some(data) = latest else {
        return Status::default();
    };
    Status {
        environments: data.environments.clone(),
        rows: data
            .rows
            .iter()
            .filter(|r| service.is_none_or(|s| r.service == s.as_str()))
            .map(|r| StatusRow {
                service: r.service.clone(),
                tags: r.cells.iter().map(|c| c.tag.clone()).collect(),
            })
            .collect(),
    }
}

fn plan_text(flavor: Flavor, latest: Option<&DashboardData>, env: Option<&EnvName>) -> String {
    let Some(data) = latest else {
        return "no plan yet: promoter has not reconciled".into();
    };
    let mut lines = Vec::new();
    for row in &data.rows {
        for (cell, name) in row.cells.iter().zip(&data.environments) {
            if env.is_some_and(|e| e.as_str() != name) || !is_due(cell) {
                continue;
            }
            let what = format!("{} → {name}: {}", row.service, summary(cell));
            lines.push(format!("- {}", reply::escape(flavor, &what)));
        }
    }
    if lines.is_empty() {
        return "nothing is due: every environment runs its upstream's tag".into();
    }
    format!(
        "What the next scheduled run would do:\n{}",
        lines.join("\n")
    )
}

/// Runs the request as a reconcile of that one promotion; the answer for the channel.
async fn run(chat: &ChatOps, flavor: Flavor, request: Request, asker: &Asker) -> String {
    let what = format!(
        "{} {} {}",
        if request.rollback {
            "rollback"
        } else {
            "promote"
        },
        request.service,
        request.to
    );
    let scope = Scope {
        only: Some(request.to.clone()),
        service: Some(request.service.clone()),
        ..Scope::all()
    };
    let branch = crate::promotion::branch(&request.to, &request.service);
    let outcome = {
        let _flight = chat.flight.lock().await;
        chat.reconciler
            .run_once(&scope, std::slice::from_ref(&request), Utc::now())
            .await
    };
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "chat-ops reconcile failed");
            let refused = Refused {
                what,
                rule: "promoter".into(),
                message: "the reconcile failed; see promoter's log".into(),
            };
            return render(chat.replies.refused(flavor, &refused));
        }
    };
    let Some(action) = outcome.actions.iter().find(|a| a.branch == branch) else {
        let refused = Refused {
            what,
            rule: "plan".into(),
            message: "the plan has no such promotion".into(),
        };
        return render(chat.replies.refused(flavor, &refused));
    };
    match (&action.kind, &action.url) {
        (
            ActionKind::Opened | ActionKind::Updated | ActionKind::Unchanged | ActionKind::Merged,
            Some(url),
        ) => {
            let decision_tags = action.detail.clone();
            tracing::info!(asker = %asker.identities[0], branch, detail = decision_tags, "chat-ops request done");
            let accepted = Accepted {
                action: if request.rollback {
                    reply::Action::Rollback
                } else {
                    reply::Action::Promotion
                },
                service: request.service.to_string(),
                env: request.to.to_string(),
                from_tag: None,
                to_tag: request
                    .tag
                    .as_ref()
                    .map_or_else(|| "the upstream tag".to_string(), ToString::to_string),
                mr_url: url.clone(),
                mr_iid: action
                    .detail
                    .strip_prefix('!')
                    .and_then(|d| d.split_whitespace().next())
                    .and_then(|n| n.parse().ok()),
                requested_by: request.requested_by.clone(),
                reason: request.reason.clone(),
            };
            render(chat.replies.accepted(flavor, &accepted))
        }
        _ => {
            let refused = Refused {
                what,
                rule: "gates".into(),
                // A failed action's detail may quote GitLab's answer: no secret goes to chat.
                message: crate::redact::redact(&action.detail),
            };
            render(chat.replies.refused(flavor, &refused))
        }
    }
}

/// Opens the MR of a freeze or unfreeze; the answer for the channel.
async fn propose(chat: &ChatOps, flavor: Flavor, change: PolicyChange) -> String {
    let title = change.title.clone();
    let result = {
        let _flight = chat.flight.lock().await;
        chat.reconciler
            .propose_policy_change(change, Utc::now())
            .await
    };
    match result {
        // The title holds the reason as typed: shown as code, escaped for the chat.
        Ok(mr) => format!(
            "Proposed {}: {} — it takes effect when merged.",
            reply::code(flavor, &title),
            mr.web_url
        ),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot propose the policy change");
            "promoter could not open the merge request; see its log.".to_string()
        }
    }
}

/// Handles MR comments that address promoter (`@promoter ...` or `/promoter ...`), replying
/// with a comment on the same MR. Comments by promoter itself are ignored.
pub async fn serve_notes(
    chat: Arc<ChatOps>,
    mut notes: tokio::sync::mpsc::Receiver<NoteEvent>,
    bot: String,
) {
    while let Some(note) = notes.recv().await {
        let text = note.object_attributes.note.trim();
        let addressed = text.starts_with("@promoter") || text.starts_with("/promoter");
        let Some(mr) = note.merge_request.as_ref().filter(|_| addressed) else {
            continue;
        };
        if note.user.username == bot || note.object_attributes.action == "update" {
            continue;
        }
        let asker = Asker {
            identities: vec![format!("gitlab:{}", note.user.username)],
            place: format!("GitLab !{}", mr.iid),
        };
        let answer = match prepare(&chat, Flavor::GitLab, "@promoter", text, &asker) {
            Prepared::Reply(text) => text,
            prepared => match chat.guard.queue() {
                None => BUSY.to_string(),
                Some(_place) => match prepared {
                    Prepared::Run(request) => run(&chat, Flavor::GitLab, *request, &asker).await,
                    Prepared::Policy(change) => propose(&chat, Flavor::GitLab, *change).await,
                    Prepared::Reply(text) => text,
                },
            },
        };
        if let Err(e) = chat.reconciler.forge().add_note(mr.iid, &answer).await {
            tracing::warn!(error = %e, iid = mr.iid, "cannot answer an MR comment");
        }
    }
}
