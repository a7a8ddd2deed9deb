//! The container-registry edge: does an image reference exist, and under which digest?
//!
//! [`Registry`] is the seam the reconcile asks; [`OciRegistry`] answers it over the OCI
//! distribution API with one `HEAD /v2/<path>/manifests/<tag or digest>` per candidate (never
//! listing tags), Basic or Bearer-token authentication, per-request timeouts, a bounded retry,
//! and a per-cycle cache of answers. It must not decide anything about promotions, and no
//! password or token ever appears in a log line or an error.

mod auth;
mod oci;

use std::future::Future;

use crate::image::ImageRef;

pub use oci::OciRegistry;

/// What the registry says about one image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageCheck {
    /// The manifest exists; `digest` is the registry's `Docker-Content-Digest`, when it sent one
    /// (or the digest asked for).
    Present { digest: Option<String> },
    /// The registry does not know the tag, digest or repository.
    Missing,
}

/// A container registry that can tell whether an image exists.
pub trait Registry {
    /// Whether `image` exists: its digest when the reference has one, else its tag (`latest`
    /// when it has neither).
    fn check(&self, image: &ImageRef) -> impl Future<Output = Result<ImageCheck, Error>> + Send;
}

/// Why a registry could not answer. Messages name the registry host (and repository), never a
/// credential.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No answer: connection refused, TLS or DNS failure, timeout, after the retries.
    #[error("registry {host} is unreachable")]
    Unreachable {
        host: String,
        #[source]
        source: reqwest::Error,
    },
    /// The registry (or its token service) wants credentials that are not configured, or
    /// refused the configured ones.
    #[error("registry {host} refused access to {repository}: {reason}")]
    Unauthorized {
        host: String,
        repository: String,
        reason: &'static str,
    },
    /// An answer the API does not document for this request (after retries for 5xx).
    #[error("registry {host} answered {status} to {request}")]
    UnexpectedStatus {
        host: String,
        /// The method and URL (which never hold a credential).
        request: String,
        status: u16,
    },
    /// A 401 whose `WWW-Authenticate` promoter cannot follow, or a token service answer
    /// without a token.
    #[error("registry {host}: cannot authenticate: {reason}")]
    BadChallenge { host: String, reason: String },
    /// The HTTP client could not be set up.
    #[error("cannot set up the registry HTTP client")]
    Client(#[source] reqwest::Error),
}
