//! Secrets stay secret when the forge misbehaves: the real binary against a hostile GitLab (or
//! a proxy in front of it) that answers every request with an error quoting the request back,
//! `PRIVATE-TOKEN` header and full URL included. Neither `reconcile --once` nor the daemon's
//! logs (text or JSON) ever show the token; a `gitlab.url` with userinfo and an invalid one
//! never echo the password; a megabyte error body is cut to an excerpt.

use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;

const TOKEN: &str = "glpat-SECRET-9f8e7d6c5b4a";
const PASSWORD: &str = "hunter2-userinfo-secret";
const WEBHOOK_SECRET: &str = "webhook-secret-never-logged";

/// How the hostile server answers.
#[derive(Clone, Copy)]
enum Answer {
    /// 401 with GitLab's JSON error shape, the message quoting the request.
    Unauthorized,
    /// 500 with a plain-text proxy page quoting the request, padded to a megabyte; the first
    /// request (the client library's connection check, which shows no body) passes, so the
    /// page reaches promoter's own error handling.
    HugeProxyPage,
}

/// A server that quotes every request back in its error answer; its base URL.
async fn hostile(answer: Answer) -> String {
    let seen = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
        let first = seen.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            let token = headers
                .get("private-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let quoted = format!("{method} {uri} PRIVATE-TOKEN: {token}");
            match answer {
                Answer::Unauthorized => (
                    StatusCode::UNAUTHORIZED,
                    [("content-type", "application/json")],
                    serde_json::json!({ "message": format!("401 Unauthorized: {quoted}") })
                        .to_string(),
                )
                    .into_response(),
                Answer::HugeProxyPage if first => (
                    StatusCode::OK,
                    [("content-type", "application/json")],
                    r#"{"id":1,"username":"promoter-bot"}"#.to_string(),
                )
                    .into_response(),
                Answer::HugeProxyPage => {
                    let mut body = format!("proxy error for {quoted}\n");
                    body.push_str(&"x".repeat(1 << 20));
                    body.push_str(&format!("\n{quoted}"));
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        [("content-type", "text/plain")],
                        body,
                    )
                        .into_response()
                }
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A configuration naming `gitlab_url`; the token comes from the environment.
fn config(dir: &std::path::Path, gitlab_url: &str) -> std::path::PathBuf {
    let file = dir.join("promoter.yaml");
    std::fs::write(
        &file,
        format!(
            "gitlab:\n  url: \"{gitlab_url}\"\n  project: acme/calculator\n  timeout: 5s\n  max_retries: 0\ngit:\n  url: file:///nonexistent/envs.git\n  signing_key_file: {}\nstate_dir: {}\nserver:\n  listen: 127.0.0.1:{}\n",
            crate::support::write_signing_key(dir).display(),
            dir.join("state").display(),
            free_port()
        ),
    )
    .unwrap();
    file
}

fn promoter(config: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_promoter"));
    command
        .arg("--config")
        .arg(config)
        .args(args)
        .env("PROMOTER__GITLAB__TOKEN", TOKEN)
        .env("PROMOTER__SERVER__WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    command
}

async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The daemon fails at start; a hang would be a bug of its own.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("promoter did not exit");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// No secret, in any form, in `output`.
fn assert_no_secret(output: &str) {
    for secret in [TOKEN, PASSWORD, WEBHOOK_SECRET, "hunter2"] {
        assert!(!output.contains(secret), "{secret} leaked:\n{output}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_once_never_prints_the_token_gitlab_quotes_back() {
    let url = hostile(Answer::Unauthorized).await;
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), &url);
    let out = run(promoter(&file, &["reconcile", "--once"])).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("401"),
        "the failure is still told: {stderr}"
    );
    assert!(stderr.contains("[REDACTED]"), "{stderr}");
    assert_no_secret(&stdout);
    assert_no_secret(&stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_logs_no_token_in_text_or_json() {
    for answer in [Answer::Unauthorized, Answer::HugeProxyPage] {
        let url = hostile(answer).await;
        let dir = tempfile::tempdir().unwrap();
        let file = config(dir.path(), &url);

        let out = run(promoter(&file, &["daemon"])).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
        assert!(stderr.contains("cannot reach GitLab"), "{stderr}");
        assert_no_secret(&stdout);
        assert_no_secret(&stderr);

        let out = run(promoter(&file, &["--log-format", "json", "daemon"])).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
        assert_no_secret(&stdout);
        assert_no_secret(&stderr);
        let lines: Vec<serde_json::Value> = stderr
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l}")))
            .collect();
        let failure = lines
            .iter()
            .find(|l| l["level"] == "ERROR")
            .unwrap_or_else(|| panic!("the start-up failure is a JSON line: {stderr}"));
        let error = failure["fields"]["error"].as_str().unwrap();
        assert!(error.contains("cannot reach GitLab"), "{failure}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_megabyte_error_body_is_cut_to_an_excerpt() {
    let url = hostile(Answer::HugeProxyPage).await;
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), &url);
    let out = run(promoter(&file, &["reconcile", "--once"])).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.len() < 16_000, "{} bytes of stderr", stderr.len());
    assert!(stderr.contains(" more bytes"), "{stderr}");
    assert_no_secret(&stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_in_gitlab_url_is_never_echoed() {
    let url = hostile(Answer::Unauthorized).await;
    let with_userinfo = url.replace("http://", &format!("http://deploy:{PASSWORD}@"));
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), &with_userinfo);
    let out = run(promoter(&file, &["reconcile", "--once"])).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_no_secret(&stdout);
    assert_no_secret(&stderr);

    // A URL that does not parse is named by its key, without its userinfo.
    for bad in [
        format!("https://deploy:{PASSWORD}@gitlab example.com"),
        format!("ftp://deploy:{PASSWORD}@gitlab.example.com"),
    ] {
        let file = config(dir.path(), &bad);
        for format in ["text", "json"] {
            let out = run(promoter(
                &file,
                &["--log-format", format, "reconcile", "--once"],
            ))
            .await;
            let (stdout, stderr) = text(&out);
            assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
            assert!(stderr.contains("gitlab.url"), "{stderr}");
            assert!(stderr.contains("[REDACTED]@gitlab"), "{stderr}");
            assert_no_secret(&stderr);
        }
    }
}
