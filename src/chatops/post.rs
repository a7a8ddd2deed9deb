//! Late replies: POSTing JSON to the `response_url` a slash command carried (Slack allows 5
//! posts within 30 minutes). The URL is a capability, so it never appears in errors or logs.

use std::time::Duration;

use reqwest::StatusCode;
use url::Url;

/// The time limit on one try.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How many times to try.
const MAX_TRIES: u32 = 2;
/// The pause before the second try.
const BACKOFF: Duration = Duration::from_millis(500);

/// Why a reply could not be posted.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The URL is unusable (not https, except to 127.0.0.1 or localhost).
    #[error("refusing response url: {reason}")]
    Url {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The chat answered with an error status.
    #[error("response url answered {status}")]
    Status {
        /// The status.
        status: u16,
    },
    /// The request failed (connection, timeout); the URL is stripped from the source.
    #[error("posting to the response url failed")]
    Transport {
        /// The failure.
        #[source]
        source: reqwest::Error,
    },
}

/// POSTs `body` as JSON to `response_url`: 10 s per try, a second try after a transport error,
/// 408, 429 or 5xx. Refuses any URL that is not https, except http to 127.0.0.1 or localhost.
#[tracing::instrument(skip_all)]
pub async fn post_response(
    client: &reqwest::Client,
    response_url: &str,
    body: &serde_json::Value,
) -> Result<(), PostError> {
    post_with(client, response_url, body, TIMEOUT, BACKOFF).await
}

async fn post_with(
    client: &reqwest::Client,
    response_url: &str,
    body: &serde_json::Value,
    timeout: Duration,
    backoff: Duration,
) -> Result<(), PostError> {
    let url = checked(response_url)?;
    let mut tries = 0;
    loop {
        tries += 1;
        let error = match client
            .post(url.clone())
            .timeout(timeout)
            .json(body)
            .send()
            .await
        {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => {
                let status = response.status();
                let error = PostError::Status {
                    status: status.as_u16(),
                };
                if !retryable(status) {
                    return Err(error);
                }
                error
            }
            Err(e) => PostError::Transport {
                source: e.without_url(),
            },
        };
        if tries >= MAX_TRIES {
            return Err(error);
        }
        tracing::warn!(%error, "posting a reply failed; trying again");
        tokio::time::sleep(backoff).await;
    }
}

fn retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

fn checked(response_url: &str) -> Result<Url, PostError> {
    let url = Url::parse(response_url).map_err(|_| PostError::Url {
        reason: "not a URL",
    })?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(PostError::Url { reason: "no host" });
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if matches!(url.host_str(), Some("127.0.0.1" | "localhost")) => Ok(url),
        _ => Err(PostError::Url {
            reason: "not https",
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Json;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::post;

    use super::*;

    /// What the fake chat received, and the statuses it answers with in turn (then 200).
    #[derive(Clone, Default)]
    struct Chat {
        received: Arc<Mutex<Vec<serde_json::Value>>>,
        answers: Arc<Mutex<Vec<StatusCode>>>,
        delay: Duration,
    }

    async fn hook(State(chat): State<Chat>, Json(body): Json<serde_json::Value>) -> StatusCode {
        chat.received.lock().unwrap().push(body);
        tokio::time::sleep(chat.delay).await;
        let mut answers = chat.answers.lock().unwrap();
        if answers.is_empty() {
            StatusCode::OK
        } else {
            answers.remove(0)
        }
    }

    /// Serves `chat` on 127.0.0.1 and returns the hook's URL.
    async fn serve(chat: Chat) -> String {
        let app = axum::Router::new()
            .route("/hooks/commands/abc", post(hook))
            .with_state(chat);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{address}/hooks/commands/abc")
    }

    async fn post_fast(url: &str, body: &serde_json::Value) -> Result<(), PostError> {
        let client = reqwest::Client::new();
        post_with(
            &client,
            url,
            body,
            Duration::from_millis(300),
            Duration::from_millis(10),
        )
        .await
    }

    #[tokio::test]
    async fn posts_the_json_body() {
        let chat = Chat::default();
        let url = serve(chat.clone()).await;
        let body = crate::chatops::slack::in_channel("done: <!here> \"quoted\"");
        post_response(&reqwest::Client::new(), &url, &body)
            .await
            .unwrap();
        assert_eq!(*chat.received.lock().unwrap(), vec![body]);
    }

    #[tokio::test]
    async fn tries_twice_on_server_errors_and_once_on_client_errors() {
        let body = serde_json::json!({"text": "x"});

        let chat = Chat::default();
        chat.answers
            .lock()
            .unwrap()
            .push(StatusCode::INTERNAL_SERVER_ERROR);
        let url = serve(chat.clone()).await;
        post_fast(&url, &body).await.unwrap();
        assert_eq!(chat.received.lock().unwrap().len(), 2);

        let chat = Chat::default();
        chat.answers
            .lock()
            .unwrap()
            .extend([StatusCode::BAD_GATEWAY, StatusCode::TOO_MANY_REQUESTS]);
        let url = serve(chat.clone()).await;
        let error = post_fast(&url, &body).await.unwrap_err();
        assert!(
            matches!(error, PostError::Status { status: 429 }),
            "{error}"
        );
        assert_eq!(chat.received.lock().unwrap().len(), 2);

        let chat = Chat::default();
        chat.answers.lock().unwrap().push(StatusCode::NOT_FOUND);
        let url = serve(chat.clone()).await;
        let error = post_fast(&url, &body).await.unwrap_err();
        assert_eq!(error.to_string(), "response url answered 404");
        assert_eq!(chat.received.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn gives_up_after_two_timeouts_without_leaking_the_url() {
        let chat = Chat {
            delay: Duration::from_secs(5),
            ..Chat::default()
        };
        let url = serve(chat.clone()).await;
        let error = post_fast(&url, &serde_json::json!({})).await.unwrap_err();
        let PostError::Transport { source } = &error else {
            panic!("{error}");
        };
        assert!(source.is_timeout(), "{source}");
        assert!(
            !format!("{error:?}").contains("/hooks/commands/abc"),
            "{error:?}"
        );
        assert_eq!(chat.received.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn refuses_plain_http_and_odd_urls() {
        let body = serde_json::json!({});
        for (url, reason) in [
            ("http://hooks.slack.com/commands/x", "not https"),
            ("http://127.0.0.2/x", "not https"),
            ("ftp://localhost/x", "not https"),
            ("file:///etc/passwd", "no host"),
            ("hooks.slack.com/commands/x", "not a URL"),
            ("", "not a URL"),
        ] {
            let error = post_fast(url, &body).await.unwrap_err();
            assert!(
                matches!(error, PostError::Url { reason: r } if r == reason),
                "{url}: {error}"
            );
        }
        assert!(checked("https://hooks.slack.com/commands/T1/2/3").is_ok());
        assert!(checked("http://localhost:8080/hooks").is_ok());
    }
}
