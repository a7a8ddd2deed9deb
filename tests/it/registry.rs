//! `OciRegistry` against the real CNCF distribution registry (Debian's `docker-registry`), with
//! images pushed by skopeo: tags, digests, the per-cycle cache, htpasswd (Basic) and token
//! (Bearer) authentication.

use std::collections::HashMap;
use std::time::Duration;

use promoter::config::{RegistryAccess, RegistryCredentials};
use promoter::image::ImageRef;
use promoter::registry::{Error, ImageCheck, OciRegistry, Registry};
use secrecy::SecretString;

use crate::support::registry::{Auth, REGISTRY_BIN, RegistryServer, TokenServer, tools};

const USER: &str = "promoter";
const PASSWORD: &str = "s3cret-PASSWORD";
const UNKNOWN_DIGEST: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

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
        .with_retry_backoff(Duration::from_millis(10))
}

async fn check(registry: &OciRegistry, reference: &str) -> Result<ImageCheck, Error> {
    let image: ImageRef = reference.parse().unwrap();
    registry.check(&image).await
}

fn present(digest: &str) -> ImageCheck {
    ImageCheck::Present {
        digest: Some(digest.to_string()),
    }
}

#[tokio::test]
async fn tags_and_digests_on_an_open_registry() {
    if !tools(&[REGISTRY_BIN, "skopeo", "tar", "gzip"]) {
        return;
    }
    let server = RegistryServer::start(&Auth::Open);
    let host = &server.host;
    let one = server.push("team/app", "1.0", None).await;
    let two = server.push("team/app", "2.0", None).await;
    assert_ne!(one, two);
    let registry = client(host, None);

    let cases = [
        (format!("{host}/team/app:1.0"), present(&one)),
        (format!("{host}/team/app:2.0"), present(&two)),
        (format!("{host}/team/app:9.9"), ImageCheck::Missing),
        (format!("{host}/team/other:1.0"), ImageCheck::Missing),
        (format!("{host}/team/app@{one}"), present(&one)),
        // With both, the digest is what is checked.
        (format!("{host}/team/app:9.9@{two}"), present(&two)),
        (
            format!("{host}/team/app:1.0@{UNKNOWN_DIGEST}"),
            ImageCheck::Missing,
        ),
    ];
    for (reference, want) in cases {
        assert_eq!(
            check(&registry, &reference).await.unwrap(),
            want,
            "{reference}"
        );
    }
}

#[tokio::test]
async fn one_head_per_reference_per_cycle() {
    if !tools(&[REGISTRY_BIN, "skopeo", "tar", "gzip"]) {
        return;
    }
    let server = RegistryServer::start(&Auth::Open);
    let host = &server.host;
    let registry = client(host, None);
    let reference = format!("{host}/app:3.0");
    let path = "/v2/app/manifests/3.0";

    assert_eq!(
        check(&registry, &reference).await.unwrap(),
        ImageCheck::Missing
    );
    let digest = server.push("app", "3.0", None).await;
    // Same cycle: the answer is the cached one, and the registry was asked once.
    assert_eq!(
        check(&registry, &reference).await.unwrap(),
        ImageCheck::Missing
    );
    assert_eq!(server.heads(path), 1, "{}", server.log());

    registry.begin_cycle();
    assert_eq!(
        check(&registry, &reference).await.unwrap(),
        present(&digest)
    );
    assert_eq!(
        check(&registry, &reference).await.unwrap(),
        present(&digest)
    );
    assert_eq!(server.heads(path), 2, "{}", server.log());
}

#[tokio::test]
async fn htpasswd_registry_needs_its_credentials() {
    if !tools(&[REGISTRY_BIN, "skopeo", "htpasswd", "tar", "gzip"]) {
        return;
    }
    let server = RegistryServer::start(&Auth::Htpasswd {
        user: USER.to_string(),
        password: PASSWORD.to_string(),
    });
    let host = &server.host;
    let digest = server.push("team/app", "1.0", Some((USER, PASSWORD))).await;
    let reference = format!("{host}/team/app:1.0");

    let registry = client(host, Some((USER, PASSWORD)));
    assert_eq!(
        check(&registry, &reference).await.unwrap(),
        present(&digest)
    );
    assert_eq!(
        check(&registry, &format!("{host}/team/app:9.9"))
            .await
            .unwrap(),
        ImageCheck::Missing
    );

    for (credentials, reason) in [
        (None, "credentials missing"),
        (Some((USER, "wrong-PASSWORD")), "credentials refused"),
    ] {
        let err = check(&client(host, credentials), &reference)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "registry {host} refused access to team/app: {reason}"
            )),
            "{text}"
        );
        assert!(!format!("{text} {err:?}").contains("PASSWORD"), "{err:?}");
    }
}

#[tokio::test]
async fn token_registry_takes_bearer_tokens_from_its_token_server() {
    if !tools(&[REGISTRY_BIN, "skopeo", "openssl", "tar", "gzip"]) {
        return;
    }
    let tokens = TokenServer::start(USER, PASSWORD).await;
    let server = RegistryServer::start(&Auth::Token(tokens.settings.clone()));
    let host = &server.host;
    let one = server.push("team/app", "1.0", Some((USER, PASSWORD))).await;
    let two = server.push("team/app", "2.0", Some((USER, PASSWORD))).await;
    let pushed = tokens.requests();

    let registry = client(host, Some((USER, PASSWORD)));
    assert_eq!(
        check(&registry, &format!("{host}/team/app:1.0"))
            .await
            .unwrap(),
        present(&one)
    );
    assert_eq!(
        check(&registry, &format!("{host}/team/app:2.0"))
            .await
            .unwrap(),
        present(&two)
    );
    assert_eq!(
        check(&registry, &format!("{host}/team/app:9.9"))
            .await
            .unwrap(),
        ImageCheck::Missing
    );
    assert_eq!(
        tokens.requests() - pushed,
        1,
        "one token for repository:team/app:pull"
    );
    assert_eq!(
        server.heads("/v2/team/app/manifests/1.0"),
        2,
        "401, then with the token"
    );
    assert_eq!(
        server.heads("/v2/team/app/manifests/2.0"),
        1,
        "token sent up front"
    );

    for (credentials, reason) in [
        (None, "credentials missing"),
        (Some((USER, "wrong-PASSWORD")), "credentials refused"),
    ] {
        let err = check(&client(host, credentials), &format!("{host}/team/app:1.0"))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "registry {host} refused access to team/app: {reason}"
            )),
            "{text}"
        );
        assert!(!format!("{text} {err:?}").contains("PASSWORD"), "{err:?}");
    }
}
