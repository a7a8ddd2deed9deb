//! Announcements through the real binary: `promoter reconcile --once` against the GitLab
//! double posts to local incoming webhooks (an axum server on 127.0.0.1:0 recording bodies) in
//! Slack's, Mattermost's and a Teams workflow's format, routed per environment; text people
//! wrote is inert in each; an unreachable webhook is logged without its URL and the reconcile
//! still succeeds.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::Uri;
use serde_json::Value;

use crate::daemon::{config, free_port, origin, promoter};
use crate::support::fake_gitlab::FakeGitLab;

/// What people wrote: every way to mention or link in the three formats.
pub(super) const HOSTILE: &str =
    "<!channel> <@U123> @here [x](http://evil.example) <http://evil.example|click> <at>all</at>";

/// Every (path, JSON body) posted.
type Posted = Arc<Mutex<Vec<(String, Value)>>>;

/// A local incoming-webhook server: records (path, JSON body) of every POST, answers 200.
pub(super) struct Hooks {
    pub(super) base: String,
    bodies: Posted,
}

impl Hooks {
    pub(super) async fn start() -> Hooks {
        let bodies: Posted = Arc::default();
        let app = Router::new()
            .fallback(
                async |State(bodies): State<Posted>, uri: Uri, body: Bytes| {
                    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    bodies.lock().unwrap().push((uri.path().to_string(), json));
                    "ok"
                },
            )
            .with_state(bodies.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Hooks { base, bodies }
    }

    /// The bodies posted to `path`.
    pub(super) fn at(&self, path: &str) -> Vec<Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }
}

/// Appends `notify:` (YAML under it) to the configuration file.
pub(super) fn add_notify(file: &std::path::Path, notify: &str) {
    let mut text = std::fs::read_to_string(file).unwrap();
    text.push_str("notify:\n");
    text.push_str(notify);
    std::fs::write(file, text).unwrap();
}

/// A freeze of prod (where nothing is due) whose reason is [`HOSTILE`].
fn freeze_prod(origin: &crate::support::Origin) {
    let freeze = format!(
        "environments: [prod]\nfreezes:\n  - name: incident\n    reason: \"{HOSTILE}\"\n    start: 2026-01-01T00:00:00Z\n    end: 2036-01-01T00:00:00Z\n"
    );
    origin.write(
        &[("policies/freeze-prod.yaml", Some(&freeze))],
        "freeze prod",
        &chrono::Utc::now().to_rfc3339(),
    );
}

/// The texts a Teams message shows: its text runs.
fn teams_text(body: &Value) -> String {
    let card = &body["attachments"][0]["content"];
    card["body"][0]["inlines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opened_mr_is_announced_in_each_format_and_what_people_wrote_is_inert() {
    let origin = origin();
    freeze_prod(&origin);
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let hooks = Hooks::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), &fake, &origin, free_port());
    let base = &hooks.base;
    add_notify(
        &file,
        &format!(
            "  webhooks:\n    - name: slack\n      kind: slack\n      url: {base}/slack\n    - name: mattermost\n      kind: mattermost\n      url: {base}/mattermost\n      channel: releases\n    - name: teams\n      kind: teams\n      url: {base}/teams\n    - name: prod-only\n      kind: slack\n      url: {base}/prod\n      environments: [prod]\n"
        ),
    );
    let out = tokio::task::spawn_blocking(move || {
        promoter(&file, &["reconcile", "--once"]).output().unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let mrs = fake.merge_requests();
    assert_eq!(mrs.len(), 1);
    let url = format!(
        "{}/acme/calculator/-/merge_requests/{}",
        fake.url(),
        mrs[0].iid
    );

    // Each format: the opened MR in one line with its link, and the freeze.
    let slack = hooks.at("/slack");
    let texts: Vec<&str> = slack.iter().map(|b| b["text"].as_str().unwrap()).collect();
    let opened = texts
        .iter()
        .find(|t| t.contains("Promotion opened"))
        .unwrap_or_else(|| panic!("{texts:#?}"));
    assert!(opened.contains("maths-api 1.4.0 → qa"), "{opened}");
    assert!(
        opened.ends_with(&format!("<{url}|merge request>")),
        "{opened}"
    );
    let mattermost = hooks.at("/mattermost");
    let opened = mattermost
        .iter()
        .find(|b| b["text"].as_str().unwrap().contains("Promotion opened"))
        .unwrap_or_else(|| panic!("{mattermost:#?}"));
    assert_eq!(opened["channel"], "releases");
    assert!(
        opened["text"]
            .as_str()
            .unwrap()
            .ends_with(&format!("[merge request]({url})")),
        "{opened}"
    );
    let teams = hooks.at("/teams");
    let opened = teams
        .iter()
        .find(|b| teams_text(b).contains("Promotion opened"))
        .unwrap_or_else(|| panic!("{teams:#?}"));
    assert_eq!(opened["type"], "message");
    assert_eq!(
        opened["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(
        opened["attachments"][0]["content"]["actions"][0]["url"],
        url
    );

    // What people wrote (the freeze's reason) links and mentions nothing in any format.
    let frozen = |texts: Vec<String>| {
        texts
            .into_iter()
            .find(|t| t.contains("are frozen"))
            .unwrap_or_else(|| panic!("no freeze line"))
    };
    let slack = frozen(texts.iter().map(ToString::to_string).collect());
    assert!(slack.contains("&lt;!channel&gt;"), "{slack}");
    for live in ["<!channel>", "<@U123>", "<http", "@here", "http://evil"] {
        assert!(!slack.contains(live), "{live} in {slack}");
    }
    let mattermost = frozen(
        mattermost
            .iter()
            .map(|b| b["text"].as_str().unwrap().to_string())
            .collect(),
    );
    assert!(mattermost.contains("\\[x\\]"), "{mattermost}");
    for live in ["[x](", "@here", "http://evil", "<at>"] {
        assert!(!mattermost.contains(live), "{live} in {mattermost}");
    }
    let teams_line = frozen(teams.iter().map(teams_text).collect());
    for live in ["@here", "http://evil"] {
        assert!(!teams_line.contains(live), "{live} in {teams_line}");
    }
    let freeze_body = teams
        .iter()
        .find(|b| teams_text(b).contains("are frozen"))
        .unwrap();
    assert!(
        freeze_body["attachments"][0]["content"]["actions"].is_null(),
        "a freeze has no link, and the reason makes none: {freeze_body}"
    );

    // Routing: the prod-only webhook heard the prod freeze, not the qa promotion.
    let prod: Vec<String> = hooks
        .at("/prod")
        .iter()
        .map(|b| b["text"].as_str().unwrap().to_string())
        .collect();
    assert!(prod.iter().any(|t| t.contains("are frozen")), "{prod:#?}");
    assert!(!prod.iter().any(|t| t.contains("→ qa")), "{prod:#?}");

    // Announced once: a second run with nothing new says nothing new.
    let before = hooks.at("/slack").len();
    let file = dir.path().join("promoter.yaml");
    let out = tokio::task::spawn_blocking(move || {
        promoter(&file, &["reconcile", "--once"]).output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success());
    assert_eq!(
        hooks.at("/slack").len(),
        before,
        "{:#?}",
        hooks.at("/slack")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_webhook_is_logged_without_its_url_and_the_reconcile_goes_on() {
    let origin = origin();
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), &fake, &origin, free_port());
    // Nothing listens there.
    let port = free_port();
    add_notify(
        &file,
        &format!(
            "  slack_webhook_url: http://127.0.0.1:{port}/services/T000/B000/SECRETHOOKPATH\n"
        ),
    );
    let out = tokio::task::spawn_blocking(move || {
        promoter(&file, &["reconcile", "--once"]).output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("opened") && l.contains("promoter/qa/maths-api")),
        "{stdout}"
    );
    assert_eq!(fake.merge_requests().len(), 1);
    assert!(
        stderr.contains("cannot post an announcement"),
        "the failure is logged: {stderr}"
    );
    assert!(
        !stderr.contains("SECRETHOOKPATH") && !stdout.contains("SECRETHOOKPATH"),
        "the webhook URL is a secret: {stderr}"
    );
}

#[test]
fn the_readme_announcements_example_is_valid() {
    let readme = std::fs::read_to_string(crate::support::project_root().join("README.md")).unwrap();
    let section = &readme[readme.find("## Announcements").unwrap()..];
    let start = section.find("```yaml\n").unwrap() + "```yaml\n".len();
    let example = &section[start..start + section[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let hook = dir.path().join("mattermost-hook");
    std::fs::write(&hook, "https://chat.example.com/hooks/abc\n").unwrap();
    let file = dir.path().join("promoter.yaml");
    std::fs::write(
        &file,
        example.replace("/etc/promoter/mattermost-hook", &hook.display().to_string()),
    )
    .unwrap();
    let settings = promoter::config::load(Some(&file), Some(Default::default())).unwrap();
    let sinks = settings.announce_sinks().unwrap();
    let names: Vec<&str> = sinks.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["slack", "prod-releases", "qa-teams"]);
}
