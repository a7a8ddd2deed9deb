use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response as AxumResponse};
use axum::routing::get;
use base64::Engine;

use super::*;
use crate::config::RegistryCredentials;

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const OTHER: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn image(text: &str) -> ImageRef {
    text.parse().unwrap()
}

#[test]
fn builds_manifest_urls() {
    let registry = OciRegistry::new(HashMap::from([(
        "localhost:5000".to_string(),
        RegistryAccess {
            insecure: true,
            ..RegistryAccess::default()
        },
    )]))
    .unwrap();
    let cases = [
        (
            "nginx:1.25",
            "https://registry-1.docker.io/v2/library/nginx/manifests/1.25",
        ),
        (
            "library/nginx",
            "https://registry-1.docker.io/v2/library/nginx/manifests/latest",
        ),
        (
            "docker.io/library/nginx:1.25",
            "https://registry-1.docker.io/v2/library/nginx/manifests/1.25",
        ),
        (
            "index.docker.io/bitnami/redis:7.2",
            "https://registry-1.docker.io/v2/bitnami/redis/manifests/7.2",
        ),
        (
            &format!("nginx@{DIGEST}"),
            &format!("https://registry-1.docker.io/v2/library/nginx/manifests/{DIGEST}"),
        ),
        (
            &format!("nginx:1.25@{DIGEST}"),
            &format!("https://registry-1.docker.io/v2/library/nginx/manifests/{DIGEST}"),
        ),
        (
            "localhost:5000/team/app:1.0",
            "http://localhost:5000/v2/team/app/manifests/1.0",
        ),
        (
            "localhost:5001/app:1.0",
            "https://localhost:5001/v2/app/manifests/1.0",
        ),
        (
            "registry.gitlab.com/acme/calculator/maths-api:1.3.0",
            "https://registry.gitlab.com/v2/acme/calculator/maths-api/manifests/1.3.0",
        ),
    ];
    for (text, want) in cases {
        let target = registry.target(&image(text));
        assert_eq!(target.manifest_url(), want, "{text}");
    }
    let hub = registry.target(&image("nginx:1.25"));
    assert_eq!(hub.domain, "docker.io");
    assert_eq!(hub.pull_scope(), "repository:library/nginx:pull");
    // The same thing asked in different words shares one cache entry.
    assert_eq!(
        registry.target(&image("nginx:1.25")).key(),
        registry
            .target(&image("index.docker.io/library/nginx:1.25"))
            .key()
    );
}

/// How the fake registry wants to be authenticated.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Open,
    Basic,
    Bearer,
    /// A 401 without a usable challenge.
    BadChallenge,
}

/// A registry front on loopback: knows `app:1.0` and `app:2.0` (and [`DIGEST`]), counts requests.
struct Fake {
    mode: Mode,
    heads: AtomicU32,
    tokens_issued: AtomicU32,
    /// Answers 503 to this many requests first.
    failures: AtomicU32,
    issued: Mutex<HashSet<String>>,
}

const USER: &str = "robot";
const PASSWORD: &str = "pa55-SECRET";

fn basic_ok(headers: &HeaderMap) -> Option<bool> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    Some(decoded == format!("{USER}:{PASSWORD}").as_bytes())
}

async fn token(
    State(fake): State<Arc<Fake>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> AxumResponse {
    let query = query.unwrap_or_default();
    assert!(query.contains("service=fake"), "{query}");
    let n = fake.tokens_issued.fetch_add(1, Ordering::SeqCst);
    match basic_ok(&headers) {
        Some(false) => (StatusCode::UNAUTHORIZED, "bad credentials").into_response(),
        // Anonymous: a token that grants nothing, as Docker Hub gives for private repositories.
        None => axum::Json(serde_json::json!({"token": "anonymous"})).into_response(),
        Some(true) => {
            let token = format!("tok-{n}");
            lock(&fake.issued).insert(token.clone());
            axum::Json(serde_json::json!({"access_token": token, "expires_in": 300}))
                .into_response()
        }
    }
}

async fn api(
    State(fake): State<Arc<Fake>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> AxumResponse {
    let base = format!("http://{}", headers["host"].to_str().unwrap());
    if method == Method::HEAD {
        fake.heads.fetch_add(1, Ordering::SeqCst);
    }
    if fake
        .failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let authorized = match fake.mode {
        Mode::Open => true,
        Mode::Basic => basic_ok(&headers) == Some(true),
        Mode::Bearer => headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| lock(&fake.issued).contains(t)),
        Mode::BadChallenge => false,
    };
    if !authorized {
        let challenge = match fake.mode {
            Mode::Basic => r#"Basic realm="fake-realm""#.to_string(),
            Mode::Bearer => {
                format!(r#"Bearer realm="{base}/token",service="fake",scope="repository:app:pull""#)
            }
            _ => r#"Bearer service="fake""#.to_string(),
        };
        return (StatusCode::UNAUTHORIZED, [("www-authenticate", challenge)]).into_response();
    }
    let accept = headers.get("accept").unwrap().to_str().unwrap();
    assert!(
        accept.contains("application/vnd.oci.image.index.v1+json")
            && accept.contains("application/vnd.docker.distribution.manifest.v2+json"),
        "{accept}"
    );
    match uri.path() {
        "/v2/app/manifests/1.0" => {
            (StatusCode::OK, [("docker-content-digest", DIGEST)]).into_response()
        }
        "/v2/app/manifests/2.0" => {
            (StatusCode::OK, [("docker-content-digest", OTHER)]).into_response()
        }
        path if path == format!("/v2/app/manifests/{DIGEST}") => StatusCode::OK.into_response(),
        "/v2/teapot/manifests/1.0" => StatusCode::IM_A_TEAPOT.into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Starts a fake; returns it, its `127.0.0.1:port`.
async fn start_fake(mode: Mode, failures: u32) -> (Arc<Fake>, String) {
    let fake = Arc::new(Fake {
        mode,
        heads: AtomicU32::new(0),
        tokens_issued: AtomicU32::new(0),
        failures: AtomicU32::new(failures),
        issued: Mutex::default(),
    });
    let app = axum::Router::new()
        .route("/token", get(token))
        .fallback(api)
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, addr.to_string())
}

fn client(host: &str, credentials: Option<(&str, &str)>) -> OciRegistry {
    let access = RegistryAccess {
        credentials: credentials.map(|(username, password)| RegistryCredentials {
            username: username.to_string(),
            password: SecretString::from(password),
        }),
        insecure: true,
        timeout: Duration::from_secs(5),
    };
    OciRegistry::new(HashMap::from([(host.to_string(), access)]))
        .unwrap()
        .with_retry_backoff(Duration::from_millis(1))
}

fn present(digest: &str) -> ImageCheck {
    ImageCheck::Present {
        digest: Some(digest.to_string()),
    }
}

#[tokio::test]
async fn answers_are_cached_until_the_next_cycle() {
    let (fake, host) = start_fake(Mode::Open, 0).await;
    let registry = client(&host, None);
    let heads = || fake.heads.load(Ordering::SeqCst);

    let one = image(&format!("{host}/app:1.0"));
    let missing = image(&format!("{host}/app:9.9"));
    assert_eq!(registry.check(&one).await.unwrap(), present(DIGEST));
    assert_eq!(registry.check(&one).await.unwrap(), present(DIGEST));
    assert_eq!(heads(), 1);
    assert_eq!(registry.check(&missing).await.unwrap(), ImageCheck::Missing);
    assert_eq!(registry.check(&missing).await.unwrap(), ImageCheck::Missing);
    assert_eq!(heads(), 2);
    // Concurrent checks of one reference share one request.
    let two = image(&format!("{host}/app:2.0"));
    let (a, b) = tokio::join!(registry.check(&two), registry.check(&two));
    assert_eq!((a.unwrap(), b.unwrap()), (present(OTHER), present(OTHER)));
    assert_eq!(heads(), 3);

    registry.begin_cycle();
    assert_eq!(registry.check(&one).await.unwrap(), present(DIGEST));
    assert_eq!(registry.check(&missing).await.unwrap(), ImageCheck::Missing);
    assert_eq!(heads(), 5);

    // By digest; a digest with no header echoes the digest asked for.
    let pinned = image(&format!("{host}/app:nope@{DIGEST}"));
    assert_eq!(registry.check(&pinned).await.unwrap(), present(DIGEST));
}

#[tokio::test]
async fn retries_server_errors_three_times() {
    let (fake, host) = start_fake(Mode::Open, 2).await;
    let registry = client(&host, None);
    let one = image(&format!("{host}/app:1.0"));
    assert_eq!(registry.check(&one).await.unwrap(), present(DIGEST));
    assert_eq!(fake.heads.load(Ordering::SeqCst), 3);

    let (fake, host) = start_fake(Mode::Open, 5).await;
    let registry = client(&host, None);
    let err = registry
        .check(&image(&format!("{host}/app:1.0")))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("registry {host} answered 503 to HEAD http://{host}/v2/app/manifests/1.0")
    );
    assert_eq!(fake.heads.load(Ordering::SeqCst), 3);
    // Errors are not cached.
    assert_eq!(
        registry
            .check(&image(&format!("{host}/app:1.0")))
            .await
            .unwrap(),
        present(DIGEST)
    );

    let err = registry
        .check(&image(&format!("{host}/teapot:1.0")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UnexpectedStatus { status: 418, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn unreachable_registries_are_named() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    drop(listener);
    let registry = client(&host, None);
    let err = registry
        .check(&image(&format!("{host}/app:1.0")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert_eq!(err.to_string(), format!("registry {host} is unreachable"));
}

#[tokio::test]
async fn basic_auth_is_sent_up_front_once_the_host_asked() {
    let (fake, host) = start_fake(Mode::Basic, 0).await;
    let registry = client(&host, Some((USER, PASSWORD)));
    let heads = || fake.heads.load(Ordering::SeqCst);
    assert_eq!(
        registry
            .check(&image(&format!("{host}/app:1.0")))
            .await
            .unwrap(),
        present(DIGEST)
    );
    assert_eq!(heads(), 2, "401, then with credentials");
    assert_eq!(
        registry
            .check(&image(&format!("{host}/app:2.0")))
            .await
            .unwrap(),
        present(OTHER)
    );
    assert_eq!(heads(), 3, "credentials up front");

    for (credentials, reason) in [
        (None, "credentials missing"),
        (Some((USER, "wrong-SECRET")), "credentials refused"),
    ] {
        let registry = client(&host, credentials);
        let err = registry
            .check(&image(&format!("{host}/app:1.0")))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("registry {host} refused access to app: {reason}")),
            "{text}"
        );
        assert!(!format!("{err:?}").contains("SECRET"), "{err:?}");
    }
}

#[tokio::test]
async fn bearer_tokens_are_fetched_once_per_scope() {
    let (fake, host) = start_fake(Mode::Bearer, 0).await;
    let registry = client(&host, Some((USER, PASSWORD)));
    let heads = || fake.heads.load(Ordering::SeqCst);
    let tokens = || fake.tokens_issued.load(Ordering::SeqCst);
    let one = image(&format!("{host}/app:1.0"));
    assert_eq!(registry.check(&one).await.unwrap(), present(DIGEST));
    assert_eq!((heads(), tokens()), (2, 1));
    let two = image(&format!("{host}/app:2.0"));
    assert_eq!(registry.check(&two).await.unwrap(), present(OTHER));
    assert_eq!((heads(), tokens()), (3, 1), "the token is reused up front");
    registry.begin_cycle();
    assert_eq!(registry.check(&one).await.unwrap(), present(DIGEST));
    assert_eq!((heads(), tokens()), (4, 1), "tokens outlive a cycle");
    // A token the registry no longer takes is fetched again once.
    lock(&fake.issued).clear();
    assert_eq!(registry.check(&two).await.unwrap(), present(OTHER));
    assert_eq!((heads(), tokens()), (6, 2));

    for (credentials, reason) in [
        (None, "credentials missing"),
        (Some((USER, "wrong-SECRET")), "credentials refused"),
    ] {
        let registry = client(&host, credentials);
        let err = registry.check(&one).await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("registry {host} refused access to app: {reason}")),
            "{err}"
        );
        assert!(!format!("{err:?}").contains("SECRET"), "{err:?}");
    }
}

#[tokio::test]
async fn unusable_challenges_are_errors() {
    let (_fake, host) = start_fake(Mode::BadChallenge, 0).await;
    let registry = client(&host, None);
    let err = registry
        .check(&image(&format!("{host}/app:1.0")))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("registry {host}: cannot authenticate: the Bearer challenge has no realm")
    );
}
