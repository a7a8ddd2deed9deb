//! [`OciRegistry`]: the OCI distribution API client behind [`Registry`].
//!
//! One check is `HEAD <scheme>://<host>/v2/<path>/manifests/<reference>` with the OCI and Docker
//! manifest media types in `Accept`. A 401 is answered once per request from its
//! `WWW-Authenticate`: Basic with the host's credentials, or Bearer with a token fetched from
//! the challenge's realm (sending the host's credentials as Basic, when configured). The scheme
//! a host asked for is remembered, so later checks on that host authenticate up front, and
//! bearer tokens are reused per (host, scope) until they expire.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::OnceCell;

use super::auth::{Challenge, TokenAnswer, TokenCache, parse_challenge};
use super::{Error, ImageCheck, Registry};
use crate::config::RegistryAccess;
use crate::image::ImageRef;

/// The manifest media types promoter accepts: a multi-platform index or a single manifest, in
/// OCI and Docker v2 form.
const ACCEPTED: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// The header carrying the manifest's digest.
const DIGEST_HEADER: &str = "docker-content-digest";

/// How many times a request is sent when the answer is a 5xx or 429 or there is none.
const TRIES: u32 = 3;

/// The pause before the second try; the third waits twice as long.
const DEFAULT_BACKOFF: Duration = Duration::from_millis(200);

/// Docker Hub's name in image references, and where its API really is.
const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// An OCI distribution registry client, for every registry host images name.
///
/// Answers are cached until [`OciRegistry::begin_cycle`], so one reconcile asks about each
/// image reference at most once (errors are not cached: the next check asks again).
pub struct OciRegistry {
    client: reqwest::Client,
    /// Settings by lowercased host as images name it; other hosts get the defaults.
    access: HashMap<String, RegistryAccess>,
    default_access: RegistryAccess,
    backoff: Duration,
    auth: Mutex<AuthState>,
    answers: Mutex<HashMap<String, Arc<OnceCell<ImageCheck>>>>,
}

/// What was learned about authenticating to each host.
#[derive(Default)]
struct AuthState {
    tokens: TokenCache,
    /// The last challenge of each API host.
    challenges: HashMap<String, Challenge>,
}

/// Where one check goes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// The registry host as images name it, normalized (`docker.io`, `localhost:5000`).
    domain: String,
    /// The host the API answers on (`registry-1.docker.io` for Docker Hub).
    host: String,
    /// `http` or `https`.
    scheme: &'static str,
    /// The repository path (`library/nginx`).
    path: String,
    /// The digest when the reference has one, else its tag, else `latest`.
    reference: String,
    /// The digest asked for, if any.
    digest: Option<String>,
}

impl Target {
    fn new(image: &ImageRef, insecure: impl Fn(&str, &str) -> bool) -> Self {
        let repository = image.repository();
        let (domain, path) = repository
            .split_once('/')
            .expect("a normalized repository has a domain");
        let domain = domain.to_ascii_lowercase();
        let host = if domain == DOCKER_HUB {
            DOCKER_HUB_API.to_string()
        } else {
            domain.clone()
        };
        let reference = image
            .digest()
            .or(image.tag())
            .unwrap_or("latest")
            .to_string();
        Self {
            scheme: if insecure(&domain, &host) {
                "http"
            } else {
                "https"
            },
            domain,
            host,
            path: path.to_string(),
            reference,
            digest: image.digest().map(str::to_string),
        }
    }

    fn manifest_url(&self) -> String {
        format!(
            "{}://{}/v2/{}/manifests/{}",
            self.scheme, self.host, self.path, self.reference
        )
    }

    /// The per-cycle cache key: what is asked of which registry.
    fn key(&self) -> String {
        format!("{}/{}@{}", self.host, self.path, self.reference)
    }

    /// The scope a pull of this repository needs.
    fn pull_scope(&self) -> String {
        format!("repository:{}:pull", self.path)
    }

    fn unauthorized(&self, access: &RegistryAccess) -> Error {
        Error::Unauthorized {
            host: self.domain.clone(),
            repository: self.path.clone(),
            reason: if access.credentials.is_some() {
                "credentials refused"
            } else {
                "credentials missing (no registries.<host>.username and password)"
            },
        }
    }
}

/// What a request carries in `Authorization`.
enum Authorization {
    Basic,
    Bearer { scope: String, token: SecretString },
}

impl OciRegistry {
    /// A client with settings per registry host (from [`crate::config::Settings::for_registries`]).
    pub fn new(access: HashMap<String, RegistryAccess>) -> Result<Self, Error> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("promoter/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::Client)?;
        let access = access
            .into_iter()
            .map(|(host, access)| (host.to_ascii_lowercase(), access))
            .collect();
        Ok(Self {
            client,
            access,
            default_access: RegistryAccess::default(),
            backoff: DEFAULT_BACKOFF,
            auth: Mutex::default(),
            answers: Mutex::default(),
        })
    }

    /// Sets the pause between tries (tests make it short).
    pub fn with_retry_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// Starts a reconcile cycle: forgets every answer, so each reference is asked again (once).
    /// Bearer tokens are kept until they expire.
    pub fn begin_cycle(&self) {
        lock(&self.answers).clear();
    }

    /// The settings of the host an image names (by its name, or the API host's).
    fn access_for(&self, domain: &str, host: &str) -> &RegistryAccess {
        self.access
            .get(domain)
            .or_else(|| self.access.get(host))
            .unwrap_or(&self.default_access)
    }

    fn target(&self, image: &ImageRef) -> Target {
        Target::new(image, |domain, host| self.access_for(domain, host).insecure)
    }

    /// Asks the registry (no cache).
    async fn ask(&self, target: &Target) -> Result<ImageCheck, Error> {
        let access = self.access_for(&target.domain, &target.host);
        let url = target.manifest_url();
        let mut authorization = self.known_authorization(target, access).await?;
        let mut answered_challenge = false;
        loop {
            let response = self
                .send(target, || {
                    let request = self
                        .client
                        .head(&url)
                        .header(ACCEPT, ACCEPTED)
                        .timeout(access.timeout);
                    authorize(request, authorization.as_ref(), access)
                })
                .await?;
            let status = response.status();
            tracing::debug!(url, status = status.as_u16(), "manifest HEAD");
            match status {
                StatusCode::OK => {
                    let digest = response
                        .headers()
                        .get(DIGEST_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .map(|v| v.trim().to_string())
                        .filter(|v| !v.is_empty())
                        .or_else(|| target.digest.clone());
                    return Ok(ImageCheck::Present { digest });
                }
                StatusCode::NOT_FOUND => return Ok(ImageCheck::Missing),
                StatusCode::UNAUTHORIZED if !answered_challenge => {
                    answered_challenge = true;
                    if let Some(Authorization::Bearer { scope, .. }) = &authorization {
                        lock(&self.auth).tokens.remove(&target.host, scope);
                    }
                    let values = response.headers().get_all(WWW_AUTHENTICATE);
                    let challenge = parse_challenge(values.iter().filter_map(|v| v.to_str().ok()))
                        .map_err(|reason| Error::BadChallenge {
                            host: target.domain.clone(),
                            // It may quote a header a hostile registry made long.
                            reason: crate::text::excerpt::excerpt(
                                &reason,
                                crate::text::excerpt::ERROR_BODY,
                            ),
                        })?;
                    lock(&self.auth)
                        .challenges
                        .insert(target.host.clone(), challenge.clone());
                    authorization = Some(self.authorization(target, access, &challenge).await?);
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    return Err(target.unauthorized(access));
                }
                status => {
                    return Err(Error::UnexpectedStatus {
                        host: target.domain.clone(),
                        request: format!("HEAD {url}"),
                        status: status.as_u16(),
                    });
                }
            }
        }
    }

    /// The authorization a host asked for before, sent up front; none for a host not seen yet.
    async fn known_authorization(
        &self,
        target: &Target,
        access: &RegistryAccess,
    ) -> Result<Option<Authorization>, Error> {
        let known = lock(&self.auth).challenges.get(&target.host).cloned();
        match known {
            None => Ok(None),
            Some(Challenge::Basic) if access.credentials.is_none() => Ok(None),
            Some(Challenge::Basic) => Ok(Some(Authorization::Basic)),
            // The remembered scope was for another repository.
            Some(Challenge::Bearer { realm, service, .. }) => {
                let challenge = Challenge::Bearer {
                    realm,
                    service,
                    scope: None,
                };
                Ok(Some(self.authorization(target, access, &challenge).await?))
            }
        }
    }

    /// The answer to `challenge`: Basic credentials, or a bearer token (cached or fetched).
    async fn authorization(
        &self,
        target: &Target,
        access: &RegistryAccess,
        challenge: &Challenge,
    ) -> Result<Authorization, Error> {
        match challenge {
            Challenge::Basic if access.credentials.is_some() => Ok(Authorization::Basic),
            Challenge::Basic => Err(target.unauthorized(access)),
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let scope = scope.clone().unwrap_or_else(|| target.pull_scope());
                let cached = lock(&self.auth)
                    .tokens
                    .get(&target.host, &scope, Instant::now());
                let token = match cached {
                    Some(token) => token,
                    None => {
                        let (token, lifetime) = self
                            .fetch_token(target, access, realm, service.as_deref(), &scope)
                            .await?;
                        lock(&self.auth).tokens.insert(
                            &target.host,
                            &scope,
                            token.clone(),
                            Instant::now(),
                            lifetime,
                        );
                        token
                    }
                };
                Ok(Authorization::Bearer { scope, token })
            }
        }
    }

    /// `GET <realm>?service=..&scope=..`, with the host's credentials as Basic when configured.
    async fn fetch_token(
        &self,
        target: &Target,
        access: &RegistryAccess,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<(SecretString, Duration), Error> {
        let bad = |reason: &str| Error::BadChallenge {
            host: target.domain.clone(),
            reason: reason.to_string(),
        };
        let realm_url = url::Url::parse(realm).map_err(|_| bad("the token realm is not a URL"))?;
        match realm_url.scheme() {
            "https" => {}
            "http" if access.insecure || access.credentials.is_none() => {}
            "http" => {
                return Err(bad(
                    "the token realm is plain http: credentials are only sent over it to a \
                     registry with registries.<host>.insecure",
                ));
            }
            _ => return Err(bad("the token realm is not an http(s) URL")),
        }
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(service) = service {
            query.push(("service", service));
        }
        query.extend(scope.split_whitespace().map(|s| ("scope", s)));
        let response = self
            .send(target, || {
                let request = self
                    .client
                    .get(realm_url.clone())
                    .query(&query)
                    .timeout(access.timeout);
                match &access.credentials {
                    Some(c) => request.basic_auth(&c.username, Some(c.password.expose_secret())),
                    None => request,
                }
            })
            .await?;
        let status = response.status();
        tracing::debug!(realm, status = status.as_u16(), "token request");
        match status {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(target.unauthorized(access));
            }
            status => {
                return Err(Error::UnexpectedStatus {
                    host: target.domain.clone(),
                    request: format!("GET {realm}"),
                    status: status.as_u16(),
                });
            }
        }
        let answer: TokenAnswer = response.json().await.map_err(|e| {
            if e.is_decode() {
                bad("the token service answered with invalid JSON")
            } else {
                Error::Unreachable {
                    host: target.domain.clone(),
                    source: e,
                }
            }
        })?;
        answer
            .into_token()
            .ok_or_else(|| bad("the token service answered without a token"))
    }

    /// Sends the request `build` makes, up to [`TRIES`] times while there is no answer or it is
    /// a 5xx or 429, pausing `backoff`, then twice that. The last answer is returned whatever it
    /// is.
    async fn send(
        &self,
        target: &Target,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, Error> {
        let mut attempt = 1;
        loop {
            match build().send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
                    if !retry || attempt >= TRIES {
                        return Ok(response);
                    }
                    tracing::debug!(
                        host = target.domain,
                        status = status.as_u16(),
                        attempt,
                        "retrying"
                    );
                }
                Err(source) if attempt >= TRIES || source.is_builder() => {
                    return Err(Error::Unreachable {
                        host: target.domain.clone(),
                        source,
                    });
                }
                Err(source) => {
                    tracing::debug!(host = target.domain, error = %source, attempt, "retrying");
                }
            }
            tokio::time::sleep(self.backoff * attempt).await;
            attempt += 1;
        }
    }
}

/// `request` with the `Authorization` header (marked sensitive by reqwest).
fn authorize(
    request: RequestBuilder,
    authorization: Option<&Authorization>,
    access: &RegistryAccess,
) -> RequestBuilder {
    match (authorization, &access.credentials) {
        (Some(Authorization::Basic), Some(c)) => {
            request.basic_auth(&c.username, Some(c.password.expose_secret()))
        }
        (Some(Authorization::Bearer { token, .. }), _) => {
            request.bearer_auth(token.expose_secret())
        }
        _ => request,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Registry for OciRegistry {
    #[tracing::instrument(skip_all, fields(image = %image))]
    async fn check(&self, image: &ImageRef) -> Result<ImageCheck, Error> {
        let target = self.target(image);
        let cell = lock(&self.answers).entry(target.key()).or_default().clone();
        let answer = cell.get_or_try_init(|| self.ask(&target)).await?;
        tracing::debug!(?answer, "registry check");
        Ok(answer.clone())
    }
}

#[cfg(test)]
mod tests;
