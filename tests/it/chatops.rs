//! Chat-ops end to end: signed Slack slash commands through the daemon's routes (in process),
//! a reconcile against the GitLab double and a bare repository, the result posted to a local
//! `response_url`; refusals with the rule's name; MR comments answered with a comment. Every
//! command goes through the daemon's one loop, as in `promoter daemon` ([`ChatStack`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::Utc;
use promoter::chatops::reply::Replies;
use promoter::daemon::{Clock, Trigger};
use promoter::handlers::Handlers;
use promoter::reconcile::Scope;
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

use crate::support::Origin;
use crate::support::chat::{
    ChatStack, Chats, SLACK_SECRET as SECRET, WEBHOOK_SECRET, body_text, handlers, response_url,
    signed, slack_form as form, wait_for_posts,
};
use crate::support::fake_gitlab::FakeGitLab;
use crate::support::world::World;

fn origin() -> Origin {
    let origin = Origin::new("2026-11-01T00:00:00Z", |s| {
        s.without_network_gates();
        s.set_tag("dev", "maths-api", "1.3.0", "1.2.1");
        s.set_tag("prod", "maths-api", "1.2.0", "1.2.1");
        s.set_tag("prod", "client", "0.3.2", "0.4.0");
        s.replace(
            "policies/qa.yaml",
            "soak: 1h\n",
            "soak: 1h\nrequesters: [\"slack:U1\", \"gitlab:alice\"]\n",
        );
        s.replace(
            "policies/prod.yaml",
            "soak: 24h\n",
            "soak: 24h\nrequesters: [\"gitlab:alice\"]\n",
        );
    });
    let released = (Utc::now() - chrono::Duration::hours(3)).to_rfc3339();
    origin.set_tag("dev", "maths-api", "1.2.1", "1.4.0", &released);
    origin
}

/// A local `response_url` that records what is posted to it.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_and_mr_comments_promote_with_authorization() {
    let origin = origin();
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let state = tempfile::tempdir().unwrap();
    let reconciler = Arc::new(crate::support::reconciler(&fake, &origin, state.path()).await);
    // The daemon's first resync: nothing opens (qa waits for its schedule), the snapshot is read.
    let first = reconciler
        .run_once(&Scope::default(), &[], Utc::now())
        .await
        .unwrap();
    assert!(fake.merge_requests().is_empty());

    let stack = ChatStack::start(
        handlers(reconciler.clone(), &first),
        Some(SECRET),
        None,
        WEBHOOK_SECRET,
    );
    let app = stack.app.clone();
    let (hook, posted) = response_url().await;
    let now = Utc::now().timestamp();

    // A bad signature: 401, nothing happens.
    fake.reset_log();
    let forged = signed(
        &form("U1", "promote maths-api to qa", &hook),
        "not-the-secret",
        now,
    );
    let answer = app.clone().oneshot(forged).await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    // A stale timestamp (a replayed request): 401 too.
    let stale = signed(
        &form("U1", "promote maths-api to qa", &hook),
        SECRET,
        now - 600,
    );
    assert_eq!(
        app.clone().oneshot(stale).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(fake.write_count(), 0);

    // Someone not in prod's requesters: refused at once, naming the rule.
    let refused = app
        .clone()
        .oneshot(signed(
            &form("U1", "promote maths-api to prod", &hook),
            SECRET,
            now,
        ))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::OK);
    let text = body_text(refused).await;
    assert!(text.contains("requesters of policies/prod.yaml"), "{text}");
    assert_eq!(fake.write_count(), 0);

    // An allowed user: "working on it" at once, then the MR link on response_url.
    let accepted = app
        .clone()
        .oneshot(signed(
            &form(
                "U1",
                "promote maths-api to qa because needed for the demo",
                &hook,
            ),
            SECRET,
            now,
        ))
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::OK);
    assert!(body_text(accepted).await.contains("Working on it"));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while posted.lock().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing was posted to response_url"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let message = posted.lock().unwrap()[0].to_string();
    let mrs = fake.merge_requests();
    assert_eq!(mrs.len(), 1, "{mrs:#?}");
    assert!(
        message.contains("acme/calculator/-/merge_requests/1"),
        "the MR link: {message}"
    );
    assert!(message.contains("in_channel"), "{message}");
    assert!(
        mrs[0].description.contains(
            "Requested by **slack:U1**: needed for the demo (asked in Slack \\#deploys)."
        ),
        "{}",
        mrs[0].description
    );

    // An MR comment from an allowed GitLab user: answered with a comment.
    stack
        .comment(mrs[0].iid, "alice", "@promoter status maths-api")
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let comments = fake.merge_requests()[0].notes.clone();
        if let Some(answer) = comments.iter().find(|n| n.contains("maths-api")) {
            assert!(answer.contains("1.4.0"), "{answer}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no answer comment: {comments:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mattermost_tokens_and_a_recorded_break_glass_promotion() {
    let origin = Origin::new("2026-11-01T00:00:00Z", |s| {
        s.without_network_gates();
        s.replace(
            "policies/prod.yaml",
            "soak: 24h\n",
            "soak: 24h\nrequesters: [\"gitlab:alice\", \"mattermost:bob\"]\n",
        );
        s.replace(
            "policies/prod.yaml",
            "break_glass: [oncall-lead]",
            "break_glass: [oncall-lead, \"gitlab:alice\"]",
        );
    });
    // qa got 1.3.0 an hour ago: prod's 24 h soak is not over.
    let hour_ago = (Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    origin.set_tag("qa", "maths-api", "1.2.1", "1.3.0", &hour_ago);
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let state = tempfile::tempdir().unwrap();
    let reconciler = Arc::new(crate::support::reconciler(&fake, &origin, state.path()).await);
    let first = reconciler
        .run_once(&Scope::default(), &[], Utc::now())
        .await
        .unwrap();
    let stack = ChatStack::start(
        handlers(reconciler, &first),
        None,
        Some("mm-token"),
        WEBHOOK_SECRET,
    );
    let app = stack.app.clone();
    let mattermost = |token: Option<&str>, text: &str| {
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
    };
    assert_eq!(
        app.clone()
            .oneshot(mattermost(None, "help"))
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.clone()
            .oneshot(mattermost(Some("wrong"), "help"))
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let help = app
        .clone()
        .oneshot(mattermost(Some("mm-token"), "help"))
        .await
        .unwrap();
    assert_eq!(help.status(), StatusCode::OK);
    assert!(
        body_text(help).await.contains("promote"),
        "help lists the commands"
    );
    let typo = body_text(
        app.clone()
            .oneshot(mattermost(Some("mm-token"), "promte maths-api"))
            .await
            .unwrap(),
    )
    .await;
    assert!(typo.contains("promote"), "a did-you-mean answer: {typo}");

    // alice is break-glass for prod: with a reason, soak is waived, recorded and labelled.
    let note = async |text: &str| stack.comment(99, "alice", text).await;
    note("@promoter promote maths-api to prod because INC-42 hotfix").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while fake.merge_requests().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no MR was opened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mr = fake.merge_requests().remove(0);
    assert_eq!(mr.title, "promote maths-api to prod: 1.2.0 -> 1.3.0");
    assert!(
        mr.labels.iter().any(|l| l == "break-glass"),
        "{:?}",
        mr.labels
    );
    assert!(
        mr.description
            .contains("Requested by **gitlab:alice**: INC-42 hotfix (asked in GitLab \\!99)."),
        "{}",
        mr.description
    );
    assert!(
        mr.description
            .contains("waived by break-glass gitlab:alice"),
        "{}",
        mr.description
    );

    // alice freezes prod from a comment: an MR adds policies/freeze-prod.yaml.
    note("@promoter freeze prod until 2030-01-01 because launch week: \"no changes\"").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let freeze = loop {
        if let Some(mr) = fake
            .merge_requests()
            .into_iter()
            .find(|m| m.source_branch == "promoter-policy/freeze-prod")
        {
            break mr;
        }
        assert!(std::time::Instant::now() < deadline, "no freeze MR");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        freeze.title.starts_with("freeze prod: launch week"),
        "{}",
        freeze.title
    );
    assert_eq!(freeze.labels, ["policy-change"]);
    let file = origin.read("promoter-policy/freeze-prod", "policies/freeze-prod.yaml");
    let known = ["dev", "qa", "prod"]
        .into_iter()
        .map(promoter::model::EnvName::new)
        .collect();
    let parsed = promoter::policy::parse("policies/freeze-prod.yaml", file.as_bytes(), &known)
        .unwrap_or_else(|e| panic!("{e:?}\n{file}"));
    assert_eq!(parsed.freezes.len(), 1);
    assert_eq!(
        parsed.freezes[0].reason.as_deref(),
        Some("launch week: \"no changes\"")
    );

    // Merged by a person: prod is frozen, and the open prod promotion is closed with the reason.
    use promoter::forge::Forge;
    let merged = stack
        .reconciler()
        .forge()
        .merge(freeze.iid, freeze.sha.as_deref().unwrap())
        .await
        .unwrap();
    assert!(
        matches!(merged, promoter::forge::MergeOutcome::Merged(_)),
        "{merged:?}"
    );
    let outcome = stack
        .reconciler()
        .run_once(&Scope::default(), &[], Utc::now())
        .await
        .unwrap();
    // The freeze blocks prod's other promotion...
    let client = outcome
        .actions
        .iter()
        .find(|a| a.branch == "promoter/prod/client")
        .unwrap();
    assert!(
        client.detail.contains("chat freeze by gitlab:alice"),
        "{client:#?}"
    );
    // ...while alice's break-glass promotion, recorded on its branch, stays open.
    let prod = outcome
        .actions
        .iter()
        .find(|a| a.branch == "promoter/prod/maths-api")
        .unwrap();
    assert!(prod.url.is_some(), "{prod:#?}");
    assert!(
        fake.merge_requests()
            .iter()
            .any(|m| m.source_branch == "promoter/prod/maths-api" && m.state == "opened")
    );

    // A rollback left a hold on maths-api in prod; alice lifts it from a comment: an MR that
    // deletes the hold's file, for a person to merge.
    let hold = "holds:\n  - service: maths-api\n    env: prod\n    tag: \"1.4.0\"\n    by: \"gitlab:alice\"\n    because: \"5xx\"\n    since: 2026-11-20T00:00:00Z\n";
    origin.write(
        &[("policies/hold-prod-maths-api.yaml", Some(hold))],
        "rollback maths-api in prod",
        &Utc::now().to_rfc3339(),
    );
    stack
        .reconciler()
        .run_once(&Scope::default(), &[], Utc::now())
        .await
        .unwrap();
    note("@promoter unhold maths-api in prod").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let unhold = loop {
        if let Some(mr) = fake
            .merge_requests()
            .into_iter()
            .find(|m| m.source_branch == "promoter-policy/unhold-prod-maths-api")
        {
            break mr;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no unhold MR: {:#?}",
            fake.requests()
                .iter()
                .rev()
                .take(6)
                .map(|r| (r.method.to_string(), r.path.clone(), r.status))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(unhold.title, "unhold maths-api in prod");
    assert!(
        unhold
            .description
            .contains("as gitlab:alice asked in GitLab \\!99"),
        "{}",
        unhold.description
    );
    assert!(
        origin
            .head("promoter-policy/unhold-prod-maths-api")
            .is_some()
    );
}

/// A chat-ops service on the sample (slack:U1 may ask for qa) after the daemon's first resync,
/// at most `bound` commands waiting for a reconcile, with a recording `response_url`.
async fn slack_service(
    bound: usize,
) -> (
    ChatStack,
    FakeGitLab,
    Origin,
    tempfile::TempDir,
    String,
    Arc<Mutex<Vec<serde_json::Value>>>,
) {
    let w = World::new(origin()).await;
    let first = w.run_now().await;
    let chats = Chats {
        slack: true,
        bound: Some(bound),
        ..Chats::default()
    };
    let stack = w.chat_stack(&first, chats);
    let (hook, posted) = response_url().await;
    let World {
        origin,
        fake,
        state,
        ..
    } = w;
    (stack, fake, origin, state, hook, posted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_slack_request_is_refused_and_does_nothing() {
    let (stack, fake, _origin, _state, hook, posted) =
        slack_service(promoter::daemon::MAX_WAITING).await;
    let app = stack.app.clone();
    let now = Utc::now().timestamp();
    let body = form("U1", "promote maths-api to qa", &hook);
    let first = app
        .clone()
        .oneshot(signed(&body, SECRET, now))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    wait_for_posts(&posted, 1).await;
    assert_eq!(fake.merge_requests().len(), 1);

    // The same bytes again, within Slack's five minutes: the signature is valid but used.
    fake.reset_log();
    let replay = app
        .clone()
        .oneshot(signed(&body, SECRET, now))
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        body_text(replay).await,
        r#"{"error":"this signed request was already received (a replay)"}"#
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(fake.requests().is_empty(), "{:#?}", fake.requests());
    assert_eq!(posted.lock().unwrap().len(), 1, "no second result");

    // A new request from Slack (a new timestamp, so a new signature) is served.
    let again = app
        .clone()
        .oneshot(signed(&body, SECRET, now + 1))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert!(body_text(again).await.contains("Working on it"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_past_the_queue_bound_are_answered_busy() {
    use crate::support::fake_gitlab::{Effect, Hang};
    use axum::http::Method;
    use promoter::server::chat_guard::BUSY;
    const BOUND: usize = 3;
    let (stack, fake, _origin, _state, hook, posted) = slack_service(BOUND).await;
    let app = stack.app.clone();
    let now = Utc::now().timestamp();
    let ask = |n: usize| {
        signed(
            &form(
                "U1",
                &format!("promote maths-api to qa because try {n}"),
                &hook,
            ),
            SECRET,
            now,
        )
    };
    let reply = async |request: Request<Body>| {
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: serde_json::Value = serde_json::from_str(&body_text(response).await).unwrap();
        assert_eq!(body["response_type"], "ephemeral", "{body}");
        body["text"].as_str().unwrap().to_string()
    };
    // The loop is busy with a reconcile whose GitLab call hangs until released.
    let busy_loop = async || {
        let hung = fake.hung_requests().len();
        fake.hang(Hang::at(Method::GET, "/merge_requests", Effect::OnRelease));
        stack.triggers.send(Trigger::Resync).await.unwrap();
        fake.wait_until_hung(hung + 1).await;
    };

    // The first BOUND commands queue, the next is turned away.
    busy_loop().await;
    for n in 0..BOUND {
        assert!(reply(ask(n)).await.starts_with("Working on it"), "{n}");
    }
    assert_eq!(reply(ask(BOUND)).await, BUSY);
    // Commands that need no reconcile are still answered.
    assert!(reply(ask_status(&hook, now)).await.contains("maths-api"));
    // The reconcile ends: the queued commands run, and only they.
    fake.release_hangs();
    wait_for_posts(&posted, BOUND).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        posted.lock().unwrap().len(),
        BOUND,
        "the busy one never ran"
    );

    // Again with the queue full: an MR comment gets the same answer, as a comment.
    busy_loop().await;
    for n in 10..10 + BOUND {
        assert!(reply(ask(n)).await.starts_with("Working on it"), "{n}");
    }
    let iid = fake.merge_requests()[0].iid;
    stack
        .comment(iid, "alice", "@promoter promote maths-api to qa")
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !fake.merge_requests()[0]
        .notes
        .iter()
        .any(|n| n.as_str() == BUSY)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            fake.merge_requests()[0].notes
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fake.release_hangs();
    wait_for_posts(&posted, 2 * BOUND).await;
}

fn ask_status(hook: &str, now: i64) -> Request<Body> {
    signed(&form("U1", "status maths-api", hook), SECRET, now)
}

/// Tells the test each time the loop finished a reconcile.
struct Reconciled(mpsc::UnboundedSender<()>);

impl promoter::handlers::AfterReconcile for Reconciled {
    fn after<'a>(
        &'a self,
        _result: &'a Result<promoter::reconcile::Outcome, promoter::reconcile::Error>,
        _took: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        let _ = self.0.send(());
        Box::pin(async {})
    }
}

/// One clock reaches the loop's reconciles and the chat answers: the daemon's clock starts at
/// a fixed instant and follows paused tokio time, so moving it a day past prod's 24 h soak
/// changes what `plan prod` answers after the next reconcile, without waiting a day.
#[tokio::test(start_paused = true)]
async fn moving_the_daemons_clock_past_a_soak_changes_the_chat_answer() {
    use promoter::daemon::{Asker, ChatRequest, FirstAnswer, ReplyTo};
    let start = Utc::now();
    let origin = Origin::new("2026-11-01T00:00:00Z", |s| s.without_network_gates());
    // qa got 1.3.0 an hour before the clock's start: prod's 24 h soak is not over.
    let hour_before = (start - chrono::Duration::hours(1)).to_rfc3339();
    origin.set_tag("qa", "maths-api", "1.2.1", "1.3.0", &hour_before);
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let state = tempfile::tempdir().unwrap();
    let reconciler = Arc::new(crate::support::reconciler(&fake, &origin, state.path()).await);
    let (done, mut reconciled) = mpsc::unbounded_channel();
    let handlers = Handlers::new(
        reconciler,
        Clock::starting_at(start),
        Replies::new().unwrap(),
    )
    .with_after(Box::new(Reconciled(done)));
    let (triggers, inbox) = mpsc::channel(16);
    let (_stop, shutdown) = watch::channel(false);
    tokio::spawn(async move { promoter::daemon::run(inbox, &handlers, shutdown).await });
    let plan_prod = async || {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = ChatRequest {
            flavor: promoter::chatops::reply::Flavor::Mattermost,
            invocation: "/promoter".into(),
            text: "plan prod".into(),
            asker: Asker {
                identities: vec!["mattermost:bob".into()],
                place: "Mattermost ~town-square".into(),
            },
            reply: ReplyTo::Http(reply),
        };
        triggers.send(Trigger::Chat(request)).await.unwrap();
        match answer.await.unwrap() {
            FirstAnswer::Done(text) => text,
            other => panic!("{other:?}"),
        }
    };

    triggers.send(Trigger::Resync).await.unwrap();
    reconciled.recv().await.unwrap();
    let before = plan_prod().await;
    assert!(
        before.contains("maths-api → prod") && before.contains("soak"),
        "{before}"
    );

    tokio::time::advance(Duration::from_secs(24 * 3600)).await;
    triggers.send(Trigger::Resync).await.unwrap();
    reconciled.recv().await.unwrap();
    let after = plan_prod().await;
    assert!(after.contains("maths-api → prod"), "{after}");
    assert!(
        !after.contains("soak"),
        "the soak is over a day later: {after}"
    );
}
