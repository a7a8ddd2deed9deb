//! OCI/Docker image references (`registry.gitlab.com/acme/app:1.3.0@sha256:…`): parsing,
//! printing, normalizing and re-tagging them. No I/O.
//!
//! The syntax is the distribution reference grammar
//! (<https://github.com/distribution/reference/blob/main/reference.go>):
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [ domain "/" ] path
//! domain           := host [ ":" port ]
//! host             := domain-name | "[" IPv6 address "]"
//! domain-name      := domain-component [ "." domain-component ]*
//! domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! port             := /[0-9]+/
//! path             := path-component [ "/" path-component ]*
//! path-component   := alpha-numeric [ separator alpha-numeric ]*
//! alpha-numeric    := /[a-z0-9]+/
//! separator        := /[_.]|__|[-]+/
//! tag              := /[\w][\w.-]{0,127}/
//! digest           := algorithm ":" hex          ; sha256: exactly 64 of [a-f0-9]
//! algorithm        := /[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*/
//! hex              := /[0-9a-fA-F]{32,}/
//! ```
//!
//! As docker's `splitDockerDomain` does, the part before the first `/` is the domain only when
//! it contains `.` or `:` (a port, or an IPv6 literal such as `[::1]:5000`) or is `localhost`;
//! otherwise it is the first path component, so `bitnami/redis` lives on Docker Hub. A name is at
//! most 255 characters, and a bare 64-character hexadecimal name is refused as docker refuses it
//! (that is an image ID). Unlike docker, an uppercase first component is never taken for a
//! domain: `Foo/bar` is a repository path that is not lowercase.
//!
//! An [`ImageRef`] keeps what was written: printing gives back the parsed text exactly, and
//! Docker Hub defaults (`docker.io`, `library/`) appear only in [`ImageRef::repository`].

use std::fmt;
use std::str::FromStr;

/// The registry of references that name none.
const DEFAULT_DOMAIN: &str = "docker.io";
/// The old name of [`DEFAULT_DOMAIN`], normalized to it.
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace of Docker Hub's official images (`nginx` is `library/nginx`).
const OFFICIAL_PREFIX: &str = "library/";
/// The longest name (domain and path) the grammar allows.
const NAME_MAX: usize = 255;
/// The longest tag the grammar allows.
const TAG_MAX: usize = 128;

/// An image reference as written: `[domain/]path[:tag][@digest]`.
///
/// Equality and hashing compare the text as written (`nginx` != `docker.io/library/nginx`);
/// use [`ImageRef::same_repository`] to compare what the names point at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// The registry as written (`registry.gitlab.com`, `localhost:5000`, `[::1]:5000`).
    domain: Option<String>,
    /// The repository path as written (`acme/calculator/maths-api`, `nginx`).
    path: String,
    /// The tag, without its `:`.
    tag: Option<String>,
    /// The digest (`sha256:…`), without its `@`.
    digest: Option<String>,
}

/// Why a string is not an image reference. Every message names the input and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input is empty.
    #[error("invalid image reference \"\": the reference is empty")]
    Empty,
    /// The repository path has an uppercase letter.
    #[error("invalid image reference {input:?}: repository names must be lowercase")]
    Uppercase { input: String },
    /// A character the grammar does not allow where it stands.
    #[error(
        "invalid image reference {input:?}: invalid character {found:?} at position {position}: {expected}"
    )]
    InvalidCharacter {
        input: String,
        /// 1-based character position in `input`.
        position: usize,
        found: char,
        expected: &'static str,
    },
    /// The input stops where the grammar needs more.
    #[error("invalid image reference {input:?}: unexpected end at position {position}: {expected}")]
    UnexpectedEnd {
        input: String,
        /// 1-based character position just past the end of `input`.
        position: usize,
        expected: &'static str,
    },
    /// The tag (after `:`) breaks `[\w][\w.-]{0,127}`.
    #[error("invalid image reference {input:?}: invalid tag {tag:?}: {reason}")]
    InvalidTag {
        input: String,
        tag: String,
        reason: String,
    },
    /// The digest (after `@`) is not `algorithm:hex`.
    #[error("invalid image reference {input:?}: invalid digest {digest:?}: {reason}")]
    InvalidDigest {
        input: String,
        digest: String,
        reason: String,
    },
    /// Domain and path together are longer than 255 characters.
    #[error(
        "invalid image reference {input:?}: the name is {length} characters, over the {NAME_MAX}-character limit"
    )]
    NameTooLong { input: String, length: usize },
    /// The whole input is 64 hexadecimal characters: an image ID, not a repository.
    #[error(
        "invalid image reference {input:?}: a 64-character hexadecimal name is an image ID, not a repository name"
    )]
    ImageId { input: String },
}

impl ImageRef {
    /// The registry: as written, or `docker.io` when the reference names none.
    pub fn domain(&self) -> &str {
        self.domain.as_deref().unwrap_or(DEFAULT_DOMAIN)
    }

    /// The repository path as written (`nginx`, `library/nginx`, `acme/calculator/maths-api`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The normalized full repository name: `docker.io/library/nginx` for `nginx`,
    /// `docker.io/bitnami/redis` for `bitnami/redis` or `index.docker.io/bitnami/redis`, and
    /// `domain/path` as written for other registries.
    pub fn repository(&self) -> String {
        let domain = match self.domain() {
            LEGACY_DEFAULT_DOMAIN => DEFAULT_DOMAIN,
            domain => domain,
        };
        if domain == DEFAULT_DOMAIN && !self.path.contains('/') {
            format!("{domain}/{OFFICIAL_PREFIX}{}", self.path)
        } else {
            format!("{domain}/{}", self.path)
        }
    }

    /// The name as written, without tag or digest: what precedes `:tag` (`localhost:5000/app`,
    /// `nginx`).
    pub fn name(&self) -> String {
        match &self.domain {
            Some(domain) => format!("{domain}/{}", self.path),
            None => self.path.clone(),
        }
    }

    /// The tag, without its `:`.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:…`), without its `@`.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// True when both name the same repository once normalized, whatever their tags and
    /// digests: `nginx`, `docker.io/library/nginx` and `index.docker.io/library/nginx` agree.
    pub fn same_repository(&self, other: &ImageRef) -> bool {
        self.repository() == other.repository()
    }

    /// This reference with its tag replaced by `tag` (the digest is kept).
    pub fn with_tag(&self, tag: &str) -> Result<ImageRef, Error> {
        if let Some(reason) = tag_problem(tag) {
            let input = self.render(Some(tag), self.digest.as_deref());
            return Err(Error::InvalidTag {
                input,
                tag: tag.to_owned(),
                reason,
            });
        }
        Ok(ImageRef {
            tag: Some(tag.to_owned()),
            ..self.clone()
        })
    }

    /// This reference with its digest replaced by `digest`, or removed when `None` (the tag is
    /// kept).
    pub fn with_digest(&self, digest: Option<&str>) -> Result<ImageRef, Error> {
        if let Some(digest) = digest
            && let Some(reason) = digest_problem(digest)
        {
            let input = self.render(self.tag.as_deref(), Some(digest));
            return Err(Error::InvalidDigest {
                input,
                digest: digest.to_owned(),
                reason,
            });
        }
        Ok(ImageRef {
            digest: digest.map(str::to_owned),
            ..self.clone()
        })
    }

    /// The reference that promotes `upstream`'s image into this one's place: this reference's
    /// domain and path as written, with `upstream`'s tag and digest. When `upstream` pins no
    /// digest the result has none (an old digest would contradict the new tag).
    pub fn promote(&self, upstream: &ImageRef) -> ImageRef {
        ImageRef {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: upstream.tag.clone(),
            digest: upstream.digest.clone(),
        }
    }

    /// The text of this name with the given tag and digest.
    fn render(&self, tag: Option<&str>, digest: Option<&str>) -> String {
        let mut out = self.name();
        if let Some(tag) = tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = digest {
            out.push('@');
            out.push_str(digest);
        }
        out
    }
}

/// True when `tag` is a valid tag: `[\w][\w.-]{0,127}` (ASCII word characters).
pub fn is_valid_tag(tag: &str) -> bool {
    tag_problem(tag).is_none()
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(domain) = &self.domain {
            write!(f, "{domain}/")?;
        }
        f.write_str(&self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl serde::Serialize for ImageRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl FromStr for ImageRef {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        if input.is_empty() {
            return Err(Error::Empty);
        }
        if input.len() == 64 && input.bytes().all(is_lower_hex) {
            return Err(Error::ImageId {
                input: input.to_owned(),
            });
        }
        let domain_end = match input.find('/') {
            Some(slash) if is_domain_like(&input[..slash]) => {
                scan_domain(input, slash)?;
                Some(slash)
            }
            _ => None,
        };
        let path_start = domain_end.map_or(0, |slash| slash + 1);
        let name_end = scan_path(input, path_start)?;
        if name_end > NAME_MAX {
            return Err(Error::NameTooLong {
                input: input.to_owned(),
                length: name_end,
            });
        }
        // The path stops only at `:`, `@` or the end.
        let rest = &input[name_end..];
        let (tag, digest) = if let Some(after) = rest.strip_prefix(':') {
            match after.split_once('@') {
                Some((tag, digest)) => (Some(tag), Some(digest)),
                None => (Some(after), None),
            }
        } else {
            (None, rest.strip_prefix('@'))
        };
        if let Some(tag) = tag
            && let Some(reason) = tag_problem(tag)
        {
            return Err(Error::InvalidTag {
                input: input.to_owned(),
                tag: tag.to_owned(),
                reason,
            });
        }
        if let Some(digest) = digest
            && let Some(reason) = digest_problem(digest)
        {
            return Err(Error::InvalidDigest {
                input: input.to_owned(),
                digest: digest.to_owned(),
                reason,
            });
        }
        Ok(ImageRef {
            domain: domain_end.map(|slash| input[..slash].to_owned()),
            path: input[path_start..name_end].to_owned(),
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
        })
    }
}

/// docker's `splitDockerDomain` test for the text before the first `/` (minus its uppercase
/// clause): a registry has a `.` or a `:` (port, IPv6 literal) or is `localhost`.
fn is_domain_like(first: &str) -> bool {
    first.contains(['.', ':']) || first == "localhost"
}

/// The error for the character at byte `offset` of `input` (or its end).
fn unexpected(input: &str, offset: usize, expected: &'static str) -> Error {
    let position = input[..offset].chars().count() + 1;
    match input[offset..].chars().next() {
        Some(found) => Error::InvalidCharacter {
            input: input.to_owned(),
            position,
            found,
            expected,
        },
        None => Error::UnexpectedEnd {
            input: input.to_owned(),
            position,
            expected,
        },
    }
}

fn is_lower_hex(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'a'..=b'f')
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// The number of bytes from `from` that satisfy `accept`, stopping at `end`.
fn run(bytes: &[u8], from: usize, end: usize, accept: impl Fn(u8) -> bool) -> usize {
    bytes[from..end].iter().take_while(|&&b| accept(b)).count()
}

/// Checks that `input[..end]` is `host[:port]`.
fn scan_domain(input: &str, end: usize) -> Result<(), Error> {
    let bytes = input.as_bytes();
    let mut i = 0;
    if bytes[0] == b'[' {
        i = 1;
        let n = run(bytes, i, end, |b| b.is_ascii_hexdigit() || b == b':');
        if n == 0 {
            return Err(unexpected(
                input,
                i,
                "expected an IPv6 address (hex digits and ':') after '['",
            ));
        }
        i += n;
        if bytes[i] != b']' {
            return Err(unexpected(
                input,
                i,
                "expected ']' to close the IPv6 address",
            ));
        }
        i += 1;
    } else {
        loop {
            if !bytes[i].is_ascii_alphanumeric() {
                return Err(unexpected(
                    input,
                    i,
                    "expected a letter or digit to start a domain component",
                ));
            }
            i += run(bytes, i, end, |b| b.is_ascii_alphanumeric() || b == b'-');
            if bytes[i - 1] == b'-' {
                return Err(unexpected(
                    input,
                    i - 1,
                    "a domain component cannot end with '-'",
                ));
            }
            if bytes[i] != b'.' {
                break;
            }
            i += 1;
        }
    }
    if bytes[i] == b':' {
        i += 1;
        let n = run(bytes, i, end, |b| b.is_ascii_digit());
        if n == 0 {
            return Err(unexpected(input, i, "expected a port number after ':'"));
        }
        i += n;
        if i < end {
            return Err(unexpected(input, i, "expected '/' after the port number"));
        }
    }
    if i < end {
        return Err(unexpected(
            input,
            i,
            "expected a letter, digit, '-', '.', ':' or '/' in the domain",
        ));
    }
    Ok(())
}

/// Scans path components from `start`; returns where the path ends (at `:`, `@` or the end).
fn scan_path(input: &str, start: usize) -> Result<usize, Error> {
    let mut i = start;
    loop {
        i = scan_component(input, i)?;
        if input.as_bytes().get(i) != Some(&b'/') {
            return Ok(i);
        }
        i += 1;
    }
}

/// Scans `alpha-numeric [separator alpha-numeric]*` from `i`; returns where it ends.
fn scan_component(input: &str, mut i: usize) -> Result<usize, Error> {
    let bytes = input.as_bytes();
    i = scan_alnum(
        input,
        i,
        "expected a lowercase letter or digit to start a path component",
    )?;
    loop {
        match bytes.get(i) {
            Some(b'.') => i += 1,
            Some(b'_') => {
                i += if bytes.get(i + 1) == Some(&b'_') {
                    2
                } else {
                    1
                }
            }
            Some(b'-') => i += run(bytes, i, bytes.len(), |b| b == b'-'),
            Some(b'/' | b':' | b'@') | None => return Ok(i),
            Some(b) if b.is_ascii_uppercase() => {
                return Err(Error::Uppercase {
                    input: input.to_owned(),
                });
            }
            Some(_) => {
                return Err(unexpected(
                    input,
                    i,
                    "expected a lowercase letter, digit, separator ('.', '_', '__', '-'), '/', ':' or '@'",
                ));
            }
        }
        i = scan_alnum(
            input,
            i,
            "expected a lowercase letter or digit after the separator",
        )?;
    }
}

/// Scans `[a-z0-9]+` from `i`; returns where it ends.
fn scan_alnum(input: &str, i: usize, expected: &'static str) -> Result<usize, Error> {
    let bytes = input.as_bytes();
    let n = run(bytes, i, bytes.len(), is_lower_alnum);
    if n > 0 {
        Ok(i + n)
    } else if bytes.get(i).is_some_and(u8::is_ascii_uppercase) {
        Err(Error::Uppercase {
            input: input.to_owned(),
        })
    } else {
        Err(unexpected(input, i, expected))
    }
}

fn is_tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// What is wrong with `tag`, if anything.
fn tag_problem(tag: &str) -> Option<String> {
    let Some(first) = tag.chars().next() else {
        return Some("the tag is empty".to_owned());
    };
    if let Some(c) = tag.chars().find(|&c| !is_tag_char(c)) {
        return Some(format!(
            "{c:?} is not allowed in a tag (only letters, digits, '_', '.' and '-')"
        ));
    }
    if !(first.is_ascii_alphanumeric() || first == '_') {
        return Some(format!(
            "a tag must start with a letter, digit or '_', not {first:?}"
        ));
    }
    if tag.len() > TAG_MAX {
        return Some(format!(
            "the tag is {} characters, over the {TAG_MAX}-character limit",
            tag.len()
        ));
    }
    None
}

/// What is wrong with `digest`, if anything.
fn digest_problem(digest: &str) -> Option<String> {
    if digest.is_empty() {
        return Some("the digest is empty".to_owned());
    }
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Some("a digest is algorithm:hex, as in sha256:<64 hex characters>".to_owned());
    };
    if !is_valid_algorithm(algorithm) {
        return Some(format!(
            "invalid algorithm {algorithm:?}: expected letters and digits starting with a letter, joined by '-', '_', '+' or '.'"
        ));
    }
    if algorithm == "sha256" {
        let count = hex.chars().count();
        if count != 64 {
            return Some(format!(
                "a sha256 digest has exactly 64 lowercase hex characters, not {count}"
            ));
        }
        if !hex.bytes().all(is_lower_hex) {
            return Some("a sha256 digest has only lowercase hex characters (0-9, a-f)".to_owned());
        }
    } else if hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(
            "the encoded part needs at least 32 hex characters (0-9, a-f, A-F) and nothing else"
                .to_owned(),
        );
    }
    None
}

/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*`
fn is_valid_algorithm(algorithm: &str) -> bool {
    algorithm.split(['-', '_', '+', '.']).all(|part| {
        let mut bytes = part.bytes();
        bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
            && bytes.all(|b| b.is_ascii_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use regex::Regex;
    use std::sync::LazyLock;

    const SHA: &str = "sha256:594ceea76b01c592858f803f9ff4d2cb40542cae2060410b2c95f75907d659e1";
    const SHA_B: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    fn parse(s: &str) -> ImageRef {
        s.parse()
            .unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    /// (input, domain(), path(), repository(), tag, digest)
    type ValidCase<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
    );

    #[test]
    fn parses_valid_references() {
        let k8s = format!("registry.k8s.io/ingress-nginx/controller:v1.15.1@{SHA}");
        let pinned = format!("app@{SHA}");
        let cases: &[ValidCase] = &[
            (
                "nginx",
                "docker.io",
                "nginx",
                "docker.io/library/nginx",
                None,
                None,
            ),
            (
                "nginx:1.25",
                "docker.io",
                "nginx",
                "docker.io/library/nginx",
                Some("1.25"),
                None,
            ),
            (
                "library/nginx:latest",
                "docker.io",
                "library/nginx",
                "docker.io/library/nginx",
                Some("latest"),
                None,
            ),
            (
                "docker.io/library/nginx",
                "docker.io",
                "library/nginx",
                "docker.io/library/nginx",
                None,
                None,
            ),
            (
                "docker.io/nginx",
                "docker.io",
                "nginx",
                "docker.io/library/nginx",
                None,
                None,
            ),
            (
                "index.docker.io/nginx",
                "index.docker.io",
                "nginx",
                "docker.io/library/nginx",
                None,
                None,
            ),
            (
                "bitnami/redis",
                "docker.io",
                "bitnami/redis",
                "docker.io/bitnami/redis",
                None,
                None,
            ),
            (
                "localhost:5000/app:1.0",
                "localhost:5000",
                "app",
                "localhost:5000/app",
                Some("1.0"),
                None,
            ),
            (
                "localhost/app",
                "localhost",
                "app",
                "localhost/app",
                None,
                None,
            ),
            (
                "localhost:5000",
                "docker.io",
                "localhost",
                "docker.io/library/localhost",
                Some("5000"),
                None,
            ),
            (
                "registry.gitlab.com/acme/calculator/maths-api:1.3.0",
                "registry.gitlab.com",
                "acme/calculator/maths-api",
                "registry.gitlab.com/acme/calculator/maths-api",
                Some("1.3.0"),
                None,
            ),
            (
                "[::1]:5000/app:v1",
                "[::1]:5000",
                "app",
                "[::1]:5000/app",
                Some("v1"),
                None,
            ),
            (
                "[fe80::1]/app",
                "[fe80::1]",
                "app",
                "[fe80::1]/app",
                None,
                None,
            ),
            (
                "quay.io/prometheus/prometheus:v2.37.0",
                "quay.io",
                "prometheus/prometheus",
                "quay.io/prometheus/prometheus",
                Some("v2.37.0"),
                None,
            ),
            (
                &k8s,
                "registry.k8s.io",
                "ingress-nginx/controller",
                "registry.k8s.io/ingress-nginx/controller",
                Some("v1.15.1"),
                Some(SHA),
            ),
            (
                &pinned,
                "docker.io",
                "app",
                "docker.io/library/app",
                None,
                Some(SHA),
            ),
            (
                "a__b/c--d/e.f_g:tag",
                "docker.io",
                "a__b/c--d/e.f_g",
                "docker.io/a__b/c--d/e.f_g",
                Some("tag"),
                None,
            ),
            (
                "Registry.Example.COM:443/team/app:_X",
                "Registry.Example.COM:443",
                "team/app",
                "Registry.Example.COM:443/team/app",
                Some("_X"),
                None,
            ),
            (
                "10.0.0.1:5000/a-b---c",
                "10.0.0.1:5000",
                "a-b---c",
                "10.0.0.1:5000/a-b---c",
                None,
                None,
            ),
            (
                "app@sha512+b64.x:0123456789abcdefABCDEF0123456789ab",
                "docker.io",
                "app",
                "docker.io/library/app",
                None,
                Some("sha512+b64.x:0123456789abcdefABCDEF0123456789ab"),
            ),
        ];
        for &(input, domain, path, repository, tag, digest) in cases {
            let image = parse(input);
            assert_eq!(image.domain(), domain, "domain of {input}");
            assert_eq!(image.path(), path, "path of {input}");
            assert_eq!(image.repository(), repository, "repository of {input}");
            assert_eq!(image.tag(), tag, "tag of {input}");
            assert_eq!(image.digest(), digest, "digest of {input}");
            assert_eq!(image.to_string(), input, "display of {input}");
            let name = input.split_once('@').map_or(input, |(name, _)| name);
            let name = match tag {
                Some(tag) => name.strip_suffix(&format!(":{tag}")).unwrap(),
                None => name,
            };
            assert_eq!(image.name(), name, "name of {input}");
        }
    }

    #[test]
    fn rejects_invalid_references() {
        let long = "a".repeat(256);
        let long_with_domain = format!("example.com/{}", "b".repeat(244));
        let fits = format!("example.com/{}:tag", "b".repeat(243));
        assert!(
            fits.parse::<ImageRef>().is_ok(),
            "255 characters is the limit, not over it"
        );
        let long_tag = format!("nginx:{}", "t".repeat(129));
        let upper_sha = format!("nginx@sha256:{}", "A".repeat(64));
        let hex_id = "f".repeat(64);
        let cases: &[(&str, &str)] = &[
            ("", "invalid image reference \"\": the reference is empty"),
            (
                "Nginx",
                "invalid image reference \"Nginx\": repository names must be lowercase",
            ),
            (
                "Foo/bar",
                "invalid image reference \"Foo/bar\": repository names must be lowercase",
            ),
            ("localhost:5000/App", "repository names must be lowercase"),
            ("nginX:1.0", "repository names must be lowercase"),
            ("nginx:", "invalid tag \"\": the tag is empty"),
            (
                "nginx:-bad",
                "invalid tag \"-bad\": a tag must start with a letter, digit or '_', not '-'",
            ),
            ("nginx:.bad", "invalid tag \".bad\""),
            (
                "nginx:a b",
                "invalid tag \"a b\": ' ' is not allowed in a tag",
            ),
            // A `/` makes `nginx:a` a registry with a bad port, as in docker.
            (
                "nginx:a/b",
                "invalid character 'a' at position 7: expected a port number after ':'",
            ),
            (&long_tag, "over the 128-character limit"),
            (
                "nginx@sha256:abc",
                "invalid digest \"sha256:abc\": a sha256 digest has exactly 64 lowercase hex characters, not 3",
            ),
            (
                &upper_sha,
                "a sha256 digest has only lowercase hex characters",
            ),
            ("nginx:tag@", "invalid digest \"\": the digest is empty"),
            ("nginx@sha256", "a digest is algorithm:hex"),
            (
                "nginx@:0123456789abcdef0123456789abcdef",
                "invalid algorithm \"\"",
            ),
            ("nginx@md5:0123456789abcdef", "at least 32 hex characters"),
            (
                "nginx@sha1-:0123456789abcdef0123456789abcdef",
                "invalid algorithm \"sha1-\"",
            ),
            (
                "a//b",
                "invalid image reference \"a//b\": invalid character '/' at position 3: expected a lowercase letter or digit",
            ),
            ("-a", "invalid character '-' at position 1"),
            (
                &long,
                "the name is 256 characters, over the 255-character limit",
            ),
            (&long_with_domain, "the name is 256 characters"),
            (":tag", "invalid character ':' at position 1"),
            ("@sha256:abc", "invalid character '@' at position 1"),
            ("nginx latest", "invalid character ' ' at position 6"),
            (" nginx", "invalid character ' ' at position 1"),
            ("nginx ", "invalid character ' ' at position 6"),
            ("nginx/", "unexpected end at position 7"),
            (
                "a-",
                "unexpected end at position 3: expected a lowercase letter or digit after the separator",
            ),
            ("a___b", "invalid character '_' at position 4"),
            ("a_.b", "invalid character '.' at position 3"),
            ("a.-b", "invalid character '-' at position 3"),
            ("ngïnx:1", "invalid character 'ï' at position 3"),
            ("a_/b", "invalid character '/' at position 3"),
            ("exämple.com/app", "invalid character 'ä' at position 3"),
            (
                "localhost:/app",
                "invalid character '/' at position 11: expected a port number after ':'",
            ),
            (
                "localhost:50x/app",
                "invalid character 'x' at position 13: expected '/' after the port number",
            ),
            (
                "foo-.com/app",
                "invalid character '-' at position 4: a domain component cannot end with '-'",
            ),
            ("foo..com/app", "invalid character '.' at position 5"),
            ("foo_bar.com/app", "invalid character '_' at position 4"),
            (
                "[::1/app",
                "invalid character '/' at position 5: expected ']'",
            ),
            ("[]:5000/app", "invalid character ']' at position 2"),
            ("[::1]x:5/app", "invalid character 'x' at position 6"),
            ("[ab]/app", "invalid character '[' at position 1"),
            ("docker.io/", "unexpected end at position 11"),
            ("nginx:1.0/app", "invalid character '.' at position 8"),
            (&hex_id, "is an image ID"),
        ];
        for &(input, expected) in cases {
            match input.parse::<ImageRef>() {
                Ok(image) => panic!("{input:?} parsed as {image:?}"),
                Err(e) => {
                    let message = e.to_string();
                    assert!(
                        message.contains(expected),
                        "{input:?}: {message:?} lacks {expected:?}"
                    );
                    assert!(message.starts_with("invalid image reference "), "{message}");
                }
            }
        }
    }

    #[test]
    fn compares_normalized_repositories() {
        let cases = [
            ("nginx", "docker.io/library/nginx", true),
            ("nginx", "index.docker.io/library/nginx", true),
            ("nginx:1.0", "docker.io/nginx:2.0", true),
            ("library/nginx", &format!("nginx@{SHA}"), true),
            ("bitnami/redis", "docker.io/bitnami/redis", true),
            ("bitnami/redis", "index.docker.io/bitnami/redis:7", true),
            ("nginx", "quay.io/nginx", false),
            ("nginx", "quay.io/library/nginx", false),
            ("localhost/app", "localhost:5000/app", false),
            ("library/nginx", "nginx/library", false),
            (
                "registry.gitlab.com/acme/app:1",
                "registry.gitlab.com/acme/app:2",
                true,
            ),
            (
                "registry.gitlab.com/acme/app",
                "registry.gitlab.com/acme/app-x",
                false,
            ),
        ];
        for (a, b, same) in cases {
            assert_eq!(parse(a).same_repository(&parse(b)), same, "{a} vs {b}");
            assert_eq!(parse(b).same_repository(&parse(a)), same, "{b} vs {a}");
        }
    }

    #[test]
    fn promotes_tag_and_digest_from_upstream() {
        let cases = [
            (
                "registry.gitlab.com/acme/app:1.0",
                "registry.gitlab.com/acme/app:1.1",
                "registry.gitlab.com/acme/app:1.1",
            ),
            (
                &format!("localhost:5000/app:1.0@{SHA_B}"),
                &format!("quay.io/x/app:2.0@{SHA}"),
                &format!("localhost:5000/app:2.0@{SHA}"),
            ),
            (&format!("app:1.0@{SHA_B}"), "app:2.0", "app:2.0"),
            (
                "nginx",
                &format!("docker.io/library/nginx@{SHA}"),
                &format!("nginx@{SHA}"),
            ),
            ("nginx:1.0", "nginx", "nginx"),
        ];
        for (own, upstream, expected) in cases {
            assert_eq!(
                parse(own).promote(&parse(upstream)).to_string(),
                expected,
                "{own} <- {upstream}"
            );
        }
    }

    #[test]
    fn replaces_tag_and_digest() {
        let pinned = parse(&format!("localhost:5000/app:1.0@{SHA}"));
        assert_eq!(
            pinned.with_tag("2.0").unwrap().to_string(),
            format!("localhost:5000/app:2.0@{SHA}")
        );
        assert_eq!(
            pinned.with_digest(None).unwrap().to_string(),
            "localhost:5000/app:1.0"
        );
        assert_eq!(
            pinned.with_digest(Some(SHA_B)).unwrap().to_string(),
            format!("localhost:5000/app:1.0@{SHA_B}")
        );
        assert_eq!(parse("app").with_tag("v1").unwrap(), parse("app:v1"));

        let err = pinned.with_tag("-x").unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "invalid image reference \"localhost:5000/app:-x@{SHA}\": invalid tag \"-x\": a tag must start with a letter, digit or '_', not '-'"
            )
        );
        let err = pinned
            .with_digest(Some("sha256:abc"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "invalid image reference \"localhost:5000/app:1.0@sha256:abc\": invalid digest"
            ),
            "{err}"
        );
    }

    #[test]
    fn checks_tags() {
        for tag in [
            "latest",
            "1.25",
            "_",
            "v1.15.1",
            "A-b_c.d",
            &"t".repeat(128),
        ] {
            assert!(is_valid_tag(tag), "{tag}");
        }
        for tag in ["", "-x", ".x", "a b", "a:b", "a@b", "ä", &"t".repeat(129)] {
            assert!(!is_valid_tag(tag), "{tag}");
        }
    }

    #[test]
    fn serializes_as_the_string_form() {
        let image = parse("localhost:5000/app:1.0");
        assert_eq!(
            serde_json::to_string(&image).unwrap(),
            "\"localhost:5000/app:1.0\""
        );
    }

    /// The distribution grammar as one regular expression (reference.go's `ReferenceRegexp`).
    static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
        let tag = r"[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}";
        let digest = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
        Regex::new(&format!(
            r"^((?:{}/)?{})(?::({tag}))?(?:@({digest}))?$",
            domain_pattern(),
            path_pattern()
        ))
        .unwrap()
    });
    static DOMAIN: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(&format!("^{}$", domain_pattern())).unwrap());
    static TAG: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}$").unwrap());

    fn domain_pattern() -> String {
        let component = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
        format!(r"(?:{component}(?:\.{component})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
    }

    fn path_pattern() -> String {
        let component = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
        format!("{component}(?:/{component})*")
    }

    /// Whether docker (`ParseNormalizedNamed`, less its uppercase-domain quirk) accepts `s`.
    fn oracle_accepts(s: &str) -> bool {
        let Some(captures) = REFERENCE.captures(s) else {
            return false;
        };
        let name = &captures[1];
        if name.len() > NAME_MAX || (s.len() == 64 && s.bytes().all(is_lower_hex)) {
            return false;
        }
        if let Some((first, _)) = name.split_once('/') {
            let ok = if is_domain_like(first) {
                DOMAIN.is_match(first)
            } else {
                !first.bytes().any(|b| b.is_ascii_uppercase())
            };
            if !ok {
                return false;
            }
        }
        match captures
            .get(3)
            .and_then(|d| d.as_str().strip_prefix("sha256:"))
        {
            Some(hex) => hex.len() == 64 && hex.bytes().all(is_lower_hex),
            None => true,
        }
    }

    fn domain_strategy() -> impl Strategy<Value = String> {
        let component = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,5}[a-zA-Z0-9])?";
        let host = prop_oneof![
            Just("localhost".to_owned()),
            component,
            prop::collection::vec(component, 2..=3).prop_map(|c| c.join(".")),
            "\\[[0-9a-fA-F:]{1,16}\\]",
        ];
        (host, prop::option::of("[0-9]{1,5}")).prop_filter_map(
            "a domain has '.', ':' or is localhost",
            |(host, port)| {
                let domain = match port {
                    Some(port) => format!("{host}:{port}"),
                    None => host,
                };
                is_domain_like(&domain).then_some(domain)
            },
        )
    }

    fn digest_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            "sha256:[a-f0-9]{64}",
            "[A-Za-z][A-Za-z0-9]{0,4}([-_+.][A-Za-z][A-Za-z0-9]{0,3}){0,2}:[0-9a-fA-F]{32,72}"
                .prop_filter("sha256 has its own rule", |d| !d.starts_with("sha256:")),
        ]
    }

    /// A valid reference built from the grammar's pieces, and its text.
    fn reference_strategy() -> impl Strategy<Value = (ImageRef, String)> {
        let component = "[a-z0-9]{1,5}((\\.|_|__|-{1,3})[a-z0-9]{1,5}){0,2}";
        (
            prop::option::of(domain_strategy()),
            prop::collection::vec(component, 1..=3),
            prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"),
            prop::option::of(digest_strategy()),
        )
            // Without a registry, a first component with a `.` (or `localhost`) would be one.
            .prop_filter(
                "the first component reads as a registry",
                |(domain, components, _, _)| {
                    domain.is_some() || components.len() == 1 || !is_domain_like(&components[0])
                },
            )
            .prop_map(|(domain, components, tag, digest)| {
                let path = components.join("/");
                let mut text = domain.as_ref().map_or(String::new(), |d| format!("{d}/"));
                text.push_str(&path);
                if let Some(tag) = &tag {
                    text.push_str(&format!(":{tag}"));
                }
                if let Some(digest) = &digest {
                    text.push_str(&format!("@{digest}"));
                }
                (
                    ImageRef {
                        domain,
                        path,
                        tag,
                        digest,
                    },
                    text,
                )
            })
    }

    /// Asserts that the parser and the grammar agree on `s`, and that accepted text round trips.
    fn agrees_with_grammar(s: &str) -> Result<(), TestCaseError> {
        let parsed = s.parse::<ImageRef>();
        prop_assert_eq!(parsed.is_ok(), oracle_accepts(s), "{:?}: {:?}", s, parsed);
        if let Ok(image) = parsed {
            prop_assert_eq!(image.to_string(), s);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn valid_references_round_trip((image, text) in reference_strategy()) {
            prop_assert_eq!(image.to_string(), text.clone());
            prop_assert_eq!(text.parse::<ImageRef>(), Ok(image.clone()));
            prop_assert_eq!(parse(&text).to_string(), text.clone());
            prop_assert!(oracle_accepts(&text), "{}", text);
            let tagged = image.with_tag("x").unwrap();
            prop_assert!(tagged.same_repository(&image));
            prop_assert_eq!(tagged.to_string().parse::<ImageRef>(), Ok(tagged));
        }

        #[test]
        fn near_valid_references_agree_with_grammar(
            (_, text) in reference_strategy(),
            at in any::<prop::sample::Index>(),
            edit in 0..3u8,
            c in prop::sample::select(vec!['a', 'Z', '0', ':', '/', '@', '.', '_', '-', '[', ']', ' ', 'é']),
        ) {
            let mut chars: Vec<char> = text.chars().collect();
            let i = at.index(chars.len() + 1);
            match edit {
                0 => chars.insert(i, c),
                1 if i < chars.len() => { chars.remove(i); }
                _ if i < chars.len() => chars[i] = c,
                _ => chars.push(c),
            }
            agrees_with_grammar(&chars.into_iter().collect::<String>())?;
        }

        #[test]
        fn random_text_agrees_with_grammar(s in "[a-cA-C0-9:/@._\\-\\[\\] ]{0,24}") {
            agrees_with_grammar(&s)?;
        }

        #[test]
        fn any_text_parses_or_fails_without_panicking(s in any::<String>()) {
            agrees_with_grammar(&s)?;
        }

        #[test]
        fn is_valid_tag_matches_the_grammar(tag in "[a-zA-Z0-9_.\\- :@]{0,130}") {
            prop_assert_eq!(is_valid_tag(&tag), TAG.is_match(&tag));
        }
    }
}
