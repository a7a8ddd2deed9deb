//! The real binary (`promoter daemon`) against hostile clients on 127.0.0.1: connections that
//! never finish their headers are closed while `/healthz` keeps answering, and a Mattermost
//! command cannot make promoter post its result to a `response_url` off the configured server.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use chrono::Utc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::Origin;
use crate::support::daemon::{Daemon, config, free_port, promoter, wait_for};
use crate::support::fake_gitlab::FakeGitLab;

/// How many stalled clients: more than the daemon's file descriptors allowed before the header
/// timeout was added would have been needed to sink it outright, but each one used to stay
/// open forever.
const STALLED: usize = 150;

/// Starts `promoter daemon` on a free port with `env` added; its log goes to `dir/daemon.log`.
async fn start_daemon(
    dir: &std::path::Path,
    fake: &FakeGitLab,
    origin: &Origin,
    env: &[(&str, String)],
) -> (Daemon, String) {
    let port = free_port();
    let file = config(dir, fake, origin, port);
    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    let mut command = promoter(&file, &["daemon"]);
    for (key, value) in env {
        command.env(key, value);
    }
    let daemon = Daemon(
        command
            .stdout(std::process::Stdio::null())
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
    (daemon, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_clients_are_closed_while_healthz_answers() {
    let origin = crate::support::daemon::origin();
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let dir = tempfile::tempdir().unwrap();
    let (_daemon, base) = start_daemon(dir.path(), &fake, &origin, &[]).await;
    let addr = base.trim_start_matches("http://").to_string();

    // Each client sends part of a request line and header, then nothing, and waits for the
    // server to close the connection (read gives 0 bytes or an error).
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..STALLED {
        let mut stream = TcpStream::connect(addr.as_str()).await.unwrap();
        stream
            .write_all(b"POST /webhooks/gitlab HTTP/1.1\r\nHost: promoter\r\nX-Gitl")
            .await
            .unwrap();
        clients.spawn(async move {
            let mut rest = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut rest))
                .await
                .expect("a stalled connection was still open after 60 s");
            started.elapsed()
        });
    }

    // /healthz answers while they hang, on fresh connections each time.
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut probes = 0;
    let mut closed = Vec::new();
    while closed.len() < STALLED {
        let health = probe.get(format!("{base}/healthz")).send().await;
        let status = health.as_ref().map(reqwest::Response::status);
        assert!(
            status.as_ref().is_ok_and(|s| *s == StatusCode::OK),
            "/healthz failed with {} stalled clients open: {status:?}",
            STALLED - closed.len()
        );
        probes += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
        while let Some(done) = clients.try_join_next() {
            closed.push(done.unwrap());
        }
    }
    let slowest = closed.iter().max().unwrap();
    assert!(*slowest < Duration::from_secs(60), "{slowest:?}");
    assert!(probes >= 10, "probed throughout: {probes} times");

    // And the daemon still serves a whole request.
    assert_eq!(
        probe
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

/// The sample with qa continuous, maths-api 1.4.0 in dev, and bob allowed to ask for qa.
fn origin_with_requester() -> Origin {
    let origin = Origin::new("2026-11-01T00:00:00Z", |s| {
        s.without_network_gates();
        s.set_tag("dev", "maths-api", "1.3.0", "1.2.1");
        s.set_tag("prod", "maths-api", "1.2.0", "1.2.1");
        s.set_tag("prod", "client", "0.3.2", "0.4.0");
        s.replace("environments/qa.yaml", "schedule: \"0 0 2 * * *\"\n", "");
        s.replace(
            "policies/qa.yaml",
            "soak: 1h\n",
            "soak: 1h\nrequesters: [\"mattermost:bob\"]\n",
        );
    });
    let released = (Utc::now() - chrono::Duration::hours(3)).to_rfc3339();
    origin.set_tag("dev", "maths-api", "1.2.1", "1.4.0", &released);
    origin
}

/// A local HTTP server that records every request it receives; its base URL.
async fn recorder() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |body: String| {
        let record = record.clone();
        async move {
            record.lock().unwrap().push(body);
            StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mattermost_results_are_posted_only_to_the_configured_server() {
    let origin = origin_with_requester();
    let fake = FakeGitLab::start(&origin.bare, "acme/calculator").await;
    let dir = tempfile::tempdir().unwrap();
    // The configured Mattermost server, and another local port an attacker names instead.
    let (mattermost, on_server) = recorder().await;
    let (elsewhere, off_server) = recorder().await;
    let (_daemon, base) = start_daemon(
        dir.path(),
        &fake,
        &origin,
        &[
            ("PROMOTER__CHATOPS__MATTERMOST__TOKEN", "mm-token".into()),
            ("PROMOTER__CHATOPS__MATTERMOST__URL", mattermost.clone()),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    wait_for("readyz", async || {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let command = |response_url: String| {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("team_id", "t1")
            .append_pair("channel_id", "c1")
            .append_pair("channel_name", "town-square")
            .append_pair("response_url", &response_url)
            .append_pair("command", "/promoter")
            .append_pair("text", "promote maths-api to qa")
            .append_pair("user_id", "u1")
            .append_pair("user_name", "bob")
            .finish();
        http.post(format!("{base}/chatops/mattermost"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", "Token mm-token")
            .body(form)
            .send()
    };

    // Off the configured server: nothing is posted there; the answer comes in the response.
    let answer = command(format!("{elsewhere}/hooks/commands/x"))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let answer: serde_json::Value = answer.json().await.unwrap();
    assert!(answer["text"].is_string(), "{answer}");
    // On the configured server: the result is posted there (the check is not "never post").
    let working = command(format!("{mattermost}/hooks/commands/y"))
        .await
        .unwrap();
    assert_eq!(working.status(), StatusCode::OK);
    wait_for("the result on the configured server", async || {
        !on_server.lock().unwrap().is_empty()
    })
    .await;
    assert!(
        on_server.lock().unwrap()[0].contains("maths-api"),
        "{:?}",
        on_server.lock().unwrap()
    );
    assert!(
        off_server.lock().unwrap().is_empty(),
        "posted off the configured server: {:?}",
        off_server.lock().unwrap()
    );
    let log = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap();
    assert!(
        log.contains("response_url is not on the server of chatops.mattermost.url"),
        "the log says why: {log}"
    );
    assert!(!log.contains("mm-token"), "no token in the log");
}
