//! Tests that run the real `maths-api` binary as a child process.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_maths-api");

/// A child process that is killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("HTTP client")
}

/// Starts the binary on a free port (given as `:PORT`) and waits for `/health`.
async fn start() -> Server {
    for _attempt in 0..3 {
        let port = free_port();
        let child = Command::new(BINARY)
            .env("MATHS_API_PORT", format!(":{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn maths-api");
        let mut server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if server.child.try_wait().expect("child status").is_some() {
                break; // Most likely the port was taken meanwhile: try another.
            }
            if let Ok(response) = http().get(format!("{}/health", server.base)).send().await
                && response.status().is_success()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("maths-api did not become healthy");
}

#[tokio::test]
async fn binary_serves_solve_and_stops_on_sigterm() {
    let mut server = start().await;
    let response = http()
        .post(format!("{}/solve", server.base))
        .json(&json!({ "expression": "2+3*(4-1)" }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.expect("JSON"),
        json!({ "result": 11 })
    );

    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let exit = loop {
        if let Some(exit) = server.child.try_wait().expect("child status") {
            break exit;
        }
        assert!(Instant::now() < deadline, "maths-api ignored SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "{exit}");
}

#[test]
fn bad_port_exits_with_a_clear_message() {
    let output = Command::new(BINARY)
        .env("MATHS_API_PORT", "http")
        .output()
        .expect("run maths-api");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid MATHS_API_PORT"), "{stderr}");
    assert!(stderr.contains("like 7779 or :7779"), "{stderr}");
}
