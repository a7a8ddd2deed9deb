//! The real binary against the GitLab double: `reconcile --once` from a configuration file,
//! and `promoter daemon` serving webhooks, reconciling on them, and stopping on SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;

// Re-exported under their old paths (`super::daemon::config`) for tests written against them.
use crate::support::Origin;
pub(super) use crate::support::daemon::{
    Daemon, SECRET, config, free_port, origin, promoter, wait_for,
};
use crate::support::fake_gitlab::FakeGitLab;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_once_from_a_config_file_opens_the_mr() {
    let origin = origin();
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), &fake, &origin, free_port());
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
    assert!(
        !stderr.contains(FakeGitLab::BOT_TOKEN),
        "the token never reaches the logs"
    );
    assert_eq!(fake.merge_requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_fails_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("promoter.yaml");
    std::fs::write(
        &file,
        "gitlab:\n  url: https://gitlab.example.com\n  timeout: soon\n",
    )
    .unwrap();
    let out = promoter(&file, &["reconcile", "--once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("gitlab.timeout"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_reconciles_on_webhooks_and_stops_on_sigterm() {
    let origin = origin();
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = config(dir.path(), &fake, &origin, port);
    let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
    let mut daemon = Daemon(
        promoter(&file, &["daemon"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    wait_for("healthz", async || {
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    // The first resync opens the qa promotion (qa has no schedule: continuous).
    wait_for("the qa MR", async || {
        fake.merge_requests().iter().any(|m| m.state == "opened")
    })
    .await;
    wait_for("readyz", async || {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;

    let hook = |token: &str| {
        http.post(format!("{base}/webhooks/gitlab"))
            .header("Content-Type", "application/json")
            .header("X-Gitlab-Event", "Merge Request Hook")
            .header("X-Gitlab-Token", token)
            .body(r#"{"object_kind":"merge_request","object_attributes":{"iid":1,"action":"approved","state":"opened","source_branch":"promoter/qa/maths-api","target_branch":"main"},"labels":[],"project":{"id":42,"path_with_namespace":"acme/calculator"}}"#)
            .send()
    };
    assert_eq!(hook("wrong").await.unwrap().status(), 401);

    // Approve in GitLab, tell promoter: it merges (qa is auto_merge with one approval).
    fake.approve(1, "alice");
    assert_eq!(hook(SECRET).await.unwrap().status(), 202);
    wait_for("the merge", async || {
        fake.merge_requests().iter().any(|m| m.state == "merged")
    })
    .await;
    assert!(
        origin
            .read("main", "clusters/qa/calculator/maths-api/values.yaml")
            .contains("tag: 1.4.0")
    );

    // The series operators scrape, and the dashboard, from the running daemon.
    wait_for("metrics after the merge", async || {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.contains("action=\"merged\"")
    })
    .await;
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        "promoter_reconciles_total{outcome=\"success\"}",
        "promoter_reconcile_duration_seconds_bucket",
        "promoter_promotions_total{env=\"qa\",action=\"opened\"}",
        "promoter_promotions_total{env=\"qa\",action=\"merged\"}",
        "promoter_gate_verdicts_total{gate=\"soak\",verdict=\"pass\"}",
        "promoter_gitlab_requests_total{endpoint=\"GET /projects/:id/merge_requests\",status=\"200\"}",
        "promoter_last_successful_reconcile_timestamp_seconds",
        "promoter_tag_age_seconds{service=\"maths-api\",env=\"qa\"}",
    ] {
        assert!(
            metrics.contains(series),
            "{series} missing from /metrics:\n{metrics}"
        );
    }
    // The dashboard issue in GitLab, kept by the daemon.
    wait_for("the dashboard issue", async || !fake.issues().is_empty()).await;
    assert_eq!(fake.issues()[0].title, "Promotion dashboard");
    let page = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<table") && html.contains("maths-api"),
        "{html}"
    );

    // SIGTERM: a clean exit.
    let pid = daemon.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = daemon.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the daemon did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let log = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap();
    assert!(status.success(), "{status}\n{log}");
    assert!(
        !log.contains(FakeGitLab::BOT_TOKEN) && !log.contains(SECRET),
        "no secret in the logs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_freeze_and_unfreeze_from_the_command_line() {
    let origin = origin();
    let two_hours_ago = (Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    origin.set_tag("qa", "maths-api", "1.2.1", "1.3.0", &two_hours_ago);
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), &fake, &origin, free_port());
    let run = |args: &'static [&'static str]| {
        let file = file.clone();
        tokio::task::spawn_blocking(move || {
            promoter(&file, args)
                .env("PROMOTER_USER", "oncall")
                .output()
                .unwrap()
        })
    };

    // Roll qa back to the tag it ran before 1.3.0.
    let out = run(&[
        "rollback",
        "maths-api",
        "--env",
        "qa",
        "--because",
        "1.3.0 breaks sums",
    ])
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mr = fake
        .merge_requests()
        .into_iter()
        .find(|m| m.source_branch == "promoter/qa/maths-api")
        .unwrap();
    assert_eq!(mr.title, "promote maths-api to qa: 1.3.0 -> 1.2.1");
    assert!(
        mr.description
            .contains("Requested by **oncall**: 1.3.0 breaks sums."),
        "{}",
        mr.description
    );

    // Stop the line, then lift it: each an MR for a person to merge.
    let out = run(&["freeze", "--all", "--because", "incident 42"])
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let freeze = origin.read("promoter-policy/freeze-all", "policies/freeze-all.yaml");
    assert!(freeze.contains("reason: \"incident 42\""), "{freeze}");
    assert!(
        !freeze.contains("environments:"),
        "all environments: {freeze}"
    );
    // Lifting a freeze that was never merged says so.
    let out = run(&["unfreeze", "--all"]).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("policies/freeze-all.yaml is not on main"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A person merges the freeze; then it can be lifted.
    let mr = fake
        .merge_requests()
        .into_iter()
        .find(|m| m.source_branch == "promoter-policy/freeze-all")
        .unwrap();
    let merged = reqwest::Client::new()
        .put(format!(
            "{}/api/v4/projects/42/merge_requests/{}/merge",
            fake.url(),
            mr.iid
        ))
        .header("PRIVATE-TOKEN", FakeGitLab::BOT_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(merged.status().is_success());
    let out = run(&["unfreeze", "--all"]).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        fake.merge_requests()
            .iter()
            .any(|m| m.source_branch == "promoter-policy/unfreeze-all")
    );
}

/// Starts `promoter daemon` with `env` added, logging to `dir/daemon.log`; its base URL once
/// `/readyz` answers 200 (the first resync is done).
async fn start_ready(
    dir: &std::path::Path,
    fake: &FakeGitLab,
    origin: &Origin,
    env: &[(&str, &str)],
) -> (Daemon, String) {
    let port = free_port();
    let file = config(dir, fake, origin, port);
    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    let mut command = promoter(&file, &["daemon"]);
    for (key, value) in env {
        command.env(key, value);
    }
    let daemon = Daemon(command.stdout(Stdio::null()).stderr(log).spawn().unwrap());
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_for("readyz", async || {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    (daemon, base)
}

/// Mattermost may be set up to send its slash command as a GET: the fields come in the query
/// string, the token is checked the same way, and the command runs through the daemon's loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mattermost_get_runs_a_command() {
    let origin = Origin::new("2026-11-01T00:00:00Z", |s| {
        s.without_network_gates();
        s.set_tag("dev", "maths-api", "1.3.0", "1.2.1");
        s.set_tag("prod", "maths-api", "1.2.0", "1.2.1");
        s.replace("environments/qa.yaml", "schedule: \"0 0 2 * * *\"\n", "");
        s.replace(
            "policies/qa.yaml",
            "soak: 1h\n",
            "soak: 1h\nrequesters: [\"mattermost:bob\"]\n",
        );
    });
    let released = (Utc::now() - chrono::Duration::hours(3)).to_rfc3339();
    origin.set_tag("dev", "maths-api", "1.2.1", "1.4.0", &released);
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let dir = tempfile::tempdir().unwrap();
    let token = [("PROMOTER__CHATOPS__MATTERMOST__TOKEN", "mm-token")];
    let (_daemon, base) = start_ready(dir.path(), &fake, &origin, &token).await;
    wait_for("the qa MR", async || !fake.merge_requests().is_empty()).await;
    let http = reqwest::Client::new();
    let get = |token: &str, text: &str| {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("team_id", "t1")
            .append_pair("channel_id", "c1")
            .append_pair("channel_name", "town-square")
            .append_pair("response_url", "http://127.0.0.1:9/hooks/commands/x")
            .append_pair("command", "/promoter")
            .append_pair("text", text)
            .append_pair("user_id", "u1")
            .append_pair("user_name", "bob")
            .finish();
        http.get(format!("{base}/chatops/mattermost?{query}"))
            .send()
    };

    let refused = get("wrong", "promote maths-api to qa").await.unwrap();
    assert_eq!(refused.status(), 401);
    let answer = get("mm-token", "promote maths-api to qa").await.unwrap();
    assert_eq!(answer.status(), 200);
    let answer: serde_json::Value = answer.json().await.unwrap();
    // No chatops.mattermost.url: the result is the HTTP answer, with the MR's link.
    assert_eq!(answer["response_type"], "in_channel", "{answer}");
    let text = answer["text"].as_str().unwrap();
    assert!(
        text.contains("acme/calculator/-/merge_requests/1"),
        "{text}"
    );
    let status = get("mm-token", "status maths-api").await.unwrap();
    let status: serde_json::Value = status.json().await.unwrap();
    assert!(
        status["text"].as_str().unwrap().contains("1.4.0"),
        "{status}"
    );
}

/// The environments live on `environments`, not on GitLab's default branch `main`: a push to
/// `environments` reconciles at once, a push to `main` does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_to_the_configured_branch_reconciles_and_one_to_main_does_not() {
    let origin = origin();
    branch_from_main(&origin, "environments");
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let dir = tempfile::tempdir().unwrap();
    let branch = [("PROMOTER__GIT__BRANCH", "environments")];
    let (_daemon, base) = start_ready(dir.path(), &fake, &origin, &branch).await;
    wait_for("the qa MR", async || !fake.merge_requests().is_empty()).await;
    assert_eq!(fake.merge_requests()[0].target_branch, "environments");

    // client 0.5.0 reaches dev on `environments`: due for qa, seen at the next reconcile.
    let released = (Utc::now() - chrono::Duration::hours(3)).to_rfc3339();
    origin.set_tag("dev", "client", "0.4.0", "0.5.0", &released);
    branch_from_main(&origin, "environments");
    let http = reqwest::Client::new();
    let push = async |branch: &str| {
        let body = serde_json::json!({
            "object_kind": "push",
            "ref": format!("refs/heads/{branch}"),
            "checkout_sha": origin.head(branch).unwrap(),
            "project_id": 42,
            "project": {"id": 42, "path_with_namespace": "acme/calculator", "default_branch": "main"},
        });
        let answer = http
            .post(format!("{base}/webhooks/gitlab"))
            .header("Content-Type", "application/json")
            .header("X-Gitlab-Event", "Push Hook")
            .header("X-Gitlab-Token", SECRET)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202);
        answer.json::<serde_json::Value>().await.unwrap()["status"].clone()
    };
    let client_mr = || {
        fake.merge_requests()
            .iter()
            .any(|m| m.source_branch == "promoter/qa/client")
    };

    assert_eq!(push("main").await, "ignored");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!client_mr(), "a push to main reconciled");
    assert_eq!(push("environments").await, "accepted");
    wait_for("the client MR", async || client_mr()).await;
}

/// Points `branch` of the origin at main's head.
fn branch_from_main(origin: &Origin, branch: &str) {
    let repo = git2::Repository::open_bare(&origin.bare).unwrap();
    let main = repo.refname_to_id("refs/heads/main").unwrap();
    repo.reference(&format!("refs/heads/{branch}"), main, true, "test")
        .unwrap();
}

/// Attack on the daemon's change tracking, through the binary: a person with push rights on the
/// environments' branch releases a tag and reverts it in one push, so the service's folder is
/// byte for byte what the daemon read before (the same tree id) and only the history moved. A
/// daemon that judged "changed" by folders alone would keep serving the old landing; the tag's
/// age on `/metrics` (read from the daemon's kept dashboard) must follow the revert's commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_reverted_within_one_push_moves_the_landing_the_daemon_serves() {
    let origin = origin();
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let dir = tempfile::tempdir().unwrap();
    let (_daemon, base) = start_ready(dir.path(), &fake, &origin, &[]).await;
    let http = reqwest::Client::new();
    let age = async || -> Option<f64> {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|l| {
                l.strip_prefix("promoter_tag_age_seconds{service=\"client\",env=\"dev\"} ")
            })?
            .trim()
            .parse()
            .ok()
    };
    // dev's client landed with the sample, a month or more ago.
    wait_for("client's age in dev", async || {
        age().await.is_some_and(|s| s > 86_400.0 * 20.0)
    })
    .await;
    let folder = "clusters/dev/calculator/client";
    let before = git2::Repository::open_bare(&origin.bare)
        .unwrap()
        .revparse_single(&format!("main:{folder}"))
        .unwrap()
        .id();

    let hour_ago = (Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let half_hour_ago = (Utc::now() - chrono::Duration::minutes(30)).to_rfc3339();
    origin.set_tag("dev", "client", "0.4.0", "9.9.9-evil", &hour_ago);
    origin.set_tag("dev", "client", "9.9.9-evil", "0.4.0", &half_hour_ago);
    let after = git2::Repository::open_bare(&origin.bare)
        .unwrap()
        .revparse_single(&format!("main:{folder}"))
        .unwrap()
        .id();
    assert_eq!(before, after, "the folder is as the daemon read it");

    let body = serde_json::json!({
        "object_kind": "push",
        "ref": "refs/heads/main",
        "checkout_sha": origin.head("main").unwrap(),
        "project_id": 42,
        "project": {"id": 42, "path_with_namespace": "acme/calculator", "default_branch": "main"},
    });
    let answer = http
        .post(format!("{base}/webhooks/gitlab"))
        .header("Content-Type", "application/json")
        .header("X-Gitlab-Event", "Push Hook")
        .header("X-Gitlab-Token", SECRET)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    // The revert is the landing now: about 30 minutes old, not a month.
    wait_for("client's landing at the revert", async || {
        age().await.is_some_and(|s| (1_700.0..2_000.0).contains(&s))
    })
    .await;
}
