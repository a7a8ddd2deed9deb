//! End-to-end tests: maths-api and the client on real TCP listeners bound to
//! ephemeral ports (in-process routers, and the real `client` binary).

use std::net::TcpListener as StdTcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use client::Config;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Serves `router` on an ephemeral loopback port and returns its base URL.
async fn serve(router: axum::Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind an ephemeral port");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}")
}

async fn start_maths_api() -> String {
    serve(maths_api::router()).await
}

async fn start_client(config: Config) -> String {
    serve(client::router(config).expect("client router")).await
}

/// An endpoint where nothing listens.
fn unused_endpoint() -> String {
    let listener = StdTcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    let address = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{address}")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client")
}

async fn solve(base: &str, expression: &str) -> (StatusCode, Value) {
    let response = http()
        .post(format!("{base}/solve"))
        .json(&json!({ "expression": expression }))
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.expect("JSON body"))
}

#[tokio::test]
async fn calculates_through_the_client() {
    let maths_api = start_maths_api().await;
    let client = start_client(Config::new(&maths_api).expect("config")).await;
    let response = http()
        .post(format!("{client}/solve"))
        .json(&json!({ "expression": "2+3*(4-1)" }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "content type passed through"
    );
    assert_eq!(response.text().await.expect("body"), r#"{"result":11}"#);
    assert_eq!(
        solve(&client, "7/2").await,
        (StatusCode::OK, json!({ "result": 3.5 }))
    );
}

#[tokio::test]
async fn bad_expression_errors_pass_through_with_their_column() {
    let maths_api = start_maths_api().await;
    let client = start_client(Config::new(&format!("{maths_api}/")).expect("config")).await;
    assert_eq!(
        solve(&client, "2+*3").await,
        (
            StatusCode::BAD_REQUEST,
            json!({ "error": "unexpected '*' at column 3", "column": 3 })
        )
    );
    assert_eq!(
        solve(&client, "(1+2").await,
        (
            StatusCode::BAD_REQUEST,
            json!({ "error": "unclosed '(' at column 1", "column": 1 })
        )
    );

    // maths-api's own rejections pass through too.
    let response = http()
        .post(format!("{client}/solve"))
        .header("content-type", "text/plain")
        .body("2+2")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = response.json().await.expect("JSON body");
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn maths_api_down_gives_502_quickly() {
    let endpoint = unused_endpoint();
    let client = start_client(Config::new(&endpoint).expect("config")).await;
    let started = Instant::now();
    let (status, body) = solve(&client, "1+1").await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let message = body["error"].as_str().expect("error message");
    assert!(
        message.starts_with(&format!(
            "maths-api is unreachable at {endpoint}: cannot connect"
        )),
        "{message}"
    );
}

#[tokio::test]
async fn silent_maths_api_gives_504_after_the_timeout() {
    // Accepts connections but never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut config = Config::new(&endpoint).expect("config");
    config.request_timeout = Duration::from_millis(300);
    let client = start_client(config).await;

    let started = Instant::now();
    let (status, body) = solve(&client, "1+1").await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        body["error"],
        format!("maths-api is unreachable at {endpoint}: no answer within 300ms")
    );
}

#[tokio::test]
async fn serves_the_page_health_and_json_errors() {
    let client = start_client(Config::new(&unused_endpoint()).expect("config")).await;

    let response = http()
        .get(format!("{client}/"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let page = response.text().await.expect("page");
    assert!(page.contains("<title>Calculator</title>"));
    assert!(page.contains(r#"aria-live="polite""#));

    let response = http()
        .get(format!("{client}/health"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.expect("JSON"),
        json!({ "status": "ok" })
    );

    let response = http()
        .get(format!("{client}/missing"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.json::<Value>().await.expect("JSON"),
        json!({ "error": "not found" })
    );

    let expression = "1+".repeat(client::BODY_LIMIT / 2) + "1";
    let (status, body) = solve(&client, &expression).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body["error"].is_string());
}

/// The real `client` binary, killed when dropped.
struct ClientProcess {
    child: Child,
    base: String,
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const CLIENT_BINARY: &str = env!("CARGO_BIN_EXE_client");

/// Starts the binary on a free port and waits for its `/health`.
async fn spawn_client(maths_api: &str) -> ClientProcess {
    for _attempt in 0..3 {
        let port = StdTcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(CLIENT_BINARY)
            .env("CLIENT_PORT", port.to_string())
            .env("MATHS_API_ENDPOINT", maths_api)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn client");
        let mut process = ClientProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if process.child.try_wait().expect("child status").is_some() {
                break; // Most likely the port was taken meanwhile: try another.
            }
            let health = http()
                .get(format!("{}/health", process.base))
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            if health.is_ok_and(|response| response.status().is_success()) {
                return process;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("the client binary did not become healthy");
}

#[tokio::test]
async fn client_binary_calculates_end_to_end() {
    let maths_api = start_maths_api().await;
    let client = spawn_client(&maths_api).await;
    assert_eq!(
        solve(&client.base, "2+3*(4-1)").await,
        (StatusCode::OK, json!({ "result": 11 }))
    );
    let (status, body) = solve(&client.base, "2 + x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["column"], 5);
}

#[test]
fn client_binary_rejects_bad_settings() {
    for (name, value) in [
        ("CLIENT_PORT", "eighty"),
        ("MATHS_API_ENDPOINT", "maths-api:7779"),
    ] {
        let output = Command::new(CLIENT_BINARY)
            .env("CLIENT_PORT", "1")
            .env(name, value)
            .output()
            .expect("run client");
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(&format!("invalid {name}")), "{stderr}");
        assert!(stderr.contains(value), "{stderr}");
    }
}
