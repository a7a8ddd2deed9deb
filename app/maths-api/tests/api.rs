//! Tests of the maths-api router served in-process on a real TCP listener.

use reqwest::StatusCode;
use serde_json::{Value, json};

/// Serves the router on an ephemeral port and returns its base URL.
async fn start() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind an ephemeral port");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, maths_api::router()).await });
    format!("http://{address}")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("HTTP client")
}

async fn solve(base: &str, expression: &str) -> (StatusCode, String) {
    let response = http()
        .post(format!("{base}/solve"))
        .json(&json!({ "expression": expression }))
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.text().await.expect("body"))
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).expect("JSON body")
}

#[tokio::test]
async fn solves_expressions() {
    let base = start().await;
    assert_eq!(
        solve(&base, "2+3*(4-1)").await,
        (StatusCode::OK, r#"{"result":11}"#.to_owned())
    );
    assert_eq!(
        solve(&base, "7/2").await,
        (StatusCode::OK, r#"{"result":3.5}"#.to_owned())
    );
    assert_eq!(
        solve(&base, "-2^2").await,
        (StatusCode::OK, r#"{"result":-4}"#.to_owned())
    );
    assert_eq!(
        solve(&base, "1e20").await,
        (StatusCode::OK, r#"{"result":1e+20}"#.to_owned())
    );
}

#[tokio::test]
async fn bad_expressions_get_the_error_and_its_column() {
    let base = start().await;
    let (status, body) = solve(&base, "2+*3").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        parse(&body),
        json!({ "error": "unexpected '*' at column 3", "column": 3 })
    );

    let (status, body) = solve(&base, "1/(2-2)").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        parse(&body),
        json!({ "error": "division by zero at column 2", "column": 2 })
    );

    let (status, body) = solve(&base, "  ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        parse(&body),
        json!({ "error": "expression is empty", "column": null })
    );

    let deep = "(".repeat(4_000) + "1" + &")".repeat(4_000);
    let (status, body) = solve(&base, &deep).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(parse(&body)["column"], 256);
}

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let base = start().await;
    let url = format!("{base}/solve");
    let cases = [
        ("application/json", "{not json", StatusCode::BAD_REQUEST),
        (
            "text/plain",
            r#"{"expression":"1"}"#,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "application/json",
            r#"{"expr":"1"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "application/json",
            r#"{"expression":1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (content_type, body, expected) in cases {
        let response = http()
            .post(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), expected, "{body}");
        let body: Value = response.json().await.expect("JSON error body");
        assert!(body["error"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn large_bodies_are_rejected() {
    let base = start().await;
    let expression = "1+".repeat(maths_api::BODY_LIMIT / 2) + "1";
    let (status, body) = solve(&base, &expression).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(parse(&body)["error"].is_string());
}

#[tokio::test]
async fn health_and_unknown_routes() {
    let base = start().await;
    let response = http()
        .get(format!("{base}/health"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.expect("JSON"),
        json!({ "status": "ok" })
    );

    let response = http()
        .get(format!("{base}/nope"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.json::<Value>().await.expect("JSON"),
        json!({ "error": "not found" })
    );
}
