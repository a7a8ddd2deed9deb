//! One daemon serving two projects (`projects:`), through the real binary: two bare repos, two
//! projects of one GitLab host (two doubles behind [`FakeHost`]). Each project gets its own
//! MR; a webhook on the shared URL reaches only the project it names; `/metrics`, `/readyz`
//! and `/` cover both; a project that cannot start does not stop the other.

use std::process::Stdio;

use crate::support::daemon::{Daemon, SECRET, free_port, origin, promoter, wait_for};
use crate::support::fake_gitlab::FakeGitLab;
use crate::support::fake_gitlab::host::FakeHost;

const BILLING_SECRET: &str = "billing-webhook-secret";

/// promoter.yaml serving `projects` (name, gitlab.project, git.url, extra YAML of the entry).
fn config(
    dir: &std::path::Path,
    host: &FakeHost,
    port: u16,
    projects: &[(&str, &str, String, &str)],
) -> std::path::PathBuf {
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{}\n", FakeGitLab::BOT_TOKEN)).unwrap();
    let mut text = format!(
        "gitlab:\n  url: {}\n  token_file: {}\n  timeout: 5s\ngit:\n  author_name: promoter\n  author_email: promoter@example.com\n  signing_key_file: {}\nstate_dir: {}\nserver:\n  listen: 127.0.0.1:{port}\nreconcile:\n  resync_interval: 1h\nprojects:\n",
        host.url(),
        token_file.display(),
        crate::support::write_signing_key(dir).display(),
        dir.join("state").display(),
    );
    for (name, project, url, extra) in projects {
        text.push_str(&format!(
            "  - name: {name}\n    gitlab:\n      project: {project}\n    git:\n      url: {url}\n{extra}"
        ));
    }
    let file = dir.join("promoter.yaml");
    std::fs::write(&file, text).unwrap();
    file
}

/// `promoter daemon` on `file`, its log in `dir/daemon.log`.
fn start(file: &std::path::Path, dir: &std::path::Path) -> Daemon {
    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    Daemon(
        promoter(file, &["daemon"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

fn hook(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    project_id: u64,
    path: &str,
) -> reqwest::RequestBuilder {
    http.post(format!("{base}/webhooks/gitlab"))
        .header("Content-Type", "application/json")
        .header("X-Gitlab-Event", "Merge Request Hook")
        .header("X-Gitlab-Token", token)
        .body(format!(
            r#"{{"object_kind":"merge_request","object_attributes":{{"iid":1,"action":"approved","state":"opened","source_branch":"promoter/qa/maths-api","target_branch":"main"}},"labels":[],"project":{{"id":{project_id},"path_with_namespace":"{path}"}}}}"#
        ))
}

fn opened(fake: &FakeGitLab) -> bool {
    fake.merge_requests().iter().any(|m| m.state == "opened")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_daemon_serves_two_projects_and_routes_webhooks_by_project() {
    let (calculator, billing) = (origin(), origin());
    let fake_calculator = FakeGitLab::start_as(&calculator.bare, "acme/calculator", 42).await;
    let fake_billing = FakeGitLab::start_as(&billing.bare, "acme/billing", 43).await;
    let host = FakeHost::start(&[&fake_calculator, &fake_billing]).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let billing_extra = format!("    server:\n      webhook_secret: {BILLING_SECRET}\n");
    let file = config(
        dir.path(),
        &host,
        port,
        &[
            ("calculator", "acme/calculator", calculator.url(), ""),
            ("billing", "43", billing.url(), &billing_extra),
        ],
    );
    let _daemon = start(&file, dir.path());
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let daemon_log = || std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();

    // Each project's first resync opens its own qa promotion, through the one host.
    wait_for("both projects' MRs", async || {
        opened(&fake_calculator) && opened(&fake_billing)
    })
    .await;
    assert!(host.requests() > 0);
    assert!(dir.path().join("state/calculator/mirror.git").is_dir());
    assert!(dir.path().join("state/billing/mirror.git").is_dir());
    // Each project's first reconcile is over (and with it any merge it could do).
    for project in ["calculator", "billing"] {
        wait_for("the project's readyz", async || {
            http.get(format!("{base}/projects/{project}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
    }
    assert_eq!(
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // The shared URL: the billing secret and a billing event reach billing only.
    assert_eq!(
        hook(&http, &base, "wrong", 43, "acme/billing")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // The calculator's secret does not open billing's door: its event is ignored.
    let answer = hook(&http, &base, SECRET, 43, "acme/billing")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    assert_eq!(answer.text().await.unwrap(), r#"{"status":"ignored"}"#);

    // One project holds the secret: its own route answers, as a single-project daemon does.
    let malformed = http
        .post(format!("{base}/webhooks/gitlab"))
        .header("Content-Type", "application/json")
        .header("X-Gitlab-Event", "Merge Request Hook")
        .header("X-Gitlab-Token", BILLING_SECRET)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);

    fake_billing.approve(1, "alice");
    fake_calculator.approve(1, "alice");
    let answer = hook(&http, &base, BILLING_SECRET, 43, "acme/billing")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202, "{}", daemon_log());
    wait_for("billing's merge", async || {
        fake_billing
            .merge_requests()
            .iter()
            .any(|m| m.state == "merged")
    })
    .await;
    assert!(
        billing
            .read("main", "clusters/qa/calculator/maths-api/values.yaml")
            .contains("tag: 1.4.0")
    );
    // The calculator was approved too, but nobody told its loop: it merges on its next
    // trigger, not on billing's.
    assert!(opened(&fake_calculator), "{}", daemon_log());
    assert_eq!(
        hook(&http, &base, SECRET, 42, "acme/calculator")
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    wait_for("the calculator's merge", async || {
        fake_calculator
            .merge_requests()
            .iter()
            .any(|m| m.state == "merged")
    })
    .await;

    // One exposition, each family once, every sample labelled with its project.
    let merged = |metrics: &str, project: &str| {
        metrics.contains(&format!(
            "promoter_promotions_total{{project=\"{project}\",env=\"qa\",action=\"merged\"}} 1"
        ))
    };
    let mut metrics = String::new();
    wait_for("both merges counted", async || {
        metrics = match http.get(format!("{base}/metrics")).send().await {
            Ok(answer) => answer.text().await.unwrap_or_default(),
            Err(_) => return false,
        };
        merged(&metrics, "calculator") && merged(&metrics, "billing")
    })
    .await;
    assert_eq!(
        metrics
            .matches("# TYPE promoter_reconciles counter")
            .count(),
        1,
        "{metrics}"
    );
    assert!(metrics.trim_end().ends_with("# EOF"));

    // The front page lists both; each project's dashboard and probes sit under its name.
    let index = http.get(format!("{base}/")).send().await.unwrap();
    let index = index.text().await.unwrap();
    assert!(
        index.contains("href=\"projects/calculator\"")
            && index.contains("href=\"projects/billing\""),
        "{index}"
    );
    for project in ["calculator", "billing"] {
        let ready = http
            .get(format!("{base}/projects/{project}/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200, "{project}");
        wait_for("the project's dashboard", async || {
            http.get(format!("{base}/projects/{project}/"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
    }
    let log = daemon_log();
    assert!(!log.contains(FakeGitLab::BOT_TOKEN) && !log.contains(BILLING_SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_that_cannot_start_does_not_stop_the_others() {
    let calculator = origin();
    let fake_calculator = FakeGitLab::start_as(&calculator.bare, "acme/calculator", 42).await;
    let host = FakeHost::start(&[&fake_calculator]).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let missing = format!("file://{}", dir.path().join("no-such-repo.git").display());
    let file = config(
        dir.path(),
        &host,
        port,
        &[
            ("broken", "acme/missing", missing, ""),
            ("calculator", "acme/calculator", calculator.url(), ""),
        ],
    );
    let _daemon = start(&file, dir.path());
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_for("the calculator's MR", async || opened(&fake_calculator)).await;

    // Ready as a whole (the calculator is), the broken project named with its reason.
    let mut body = serde_json::Value::Null;
    wait_for("readyz", async || {
        let Ok(answer) = http.get(format!("{base}/readyz")).send().await else {
            return false;
        };
        let ok = answer.status() == 200;
        body = answer.json().await.unwrap_or_default();
        ok && body["projects"]["calculator"]["status"] == "ready"
    })
    .await;
    let failing = body["projects"]["broken"]["failing"].to_string();
    assert_eq!(body["projects"]["broken"]["status"], "not ready");
    assert!(failing.contains("cannot start"), "{body}");
    let broken = http
        .get(format!("{base}/projects/broken/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), 503);
}

#[test]
fn two_projects_with_one_name_are_refused_at_start_naming_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("promoter.yaml");
    std::fs::write(
        &file,
        "gitlab:\n  url: https://gitlab.example.com\n  token: t\nprojects:\n  - name: calculator\n    gitlab:\n      project: acme/calculator\n    git:\n      url: file:///srv/a.git\n  - name: calculator\n    gitlab:\n      project: acme/billing\n    git:\n      url: file:///srv/b.git\n",
    )
    .unwrap();
    let out = promoter(&file, &["daemon"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("projects[1].name") && stderr.contains("names two projects"),
        "{stderr}"
    );
}

#[test]
fn a_one_shot_command_refuses_a_configuration_of_several_projects() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("promoter.yaml");
    std::fs::write(
        &file,
        "gitlab:\n  url: https://gitlab.example.com\n  token: t\nprojects:\n  - name: calculator\n    gitlab:\n      project: acme/calculator\n    git:\n      url: file:///srv/a.git\n",
    )
    .unwrap();
    let out = promoter(&file, &["reconcile", "--once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("this command works on one project") && stderr.contains("\"calculator\""),
        "{stderr}"
    );
}
