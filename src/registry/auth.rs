//! Registry authentication as the distribution token spec describes it: parsing the
//! `WWW-Authenticate` challenge of a 401, the token endpoint's answer, and the cache of bearer
//! tokens per (host, scope) until they expire. No I/O; the clock is an argument.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde::Deserialize;

/// What a registry asks for in `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// Get a token from `realm` (with `service` and `scope`), then send `Authorization: Bearer`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    /// Send `Authorization: Basic` with the registry's credentials.
    Basic,
}

/// One challenge as written: its scheme (lowercased) and parameters (names lowercased).
#[derive(Debug, Clone, PartialEq, Eq)]
struct RawChallenge {
    scheme: String,
    params: Vec<(String, String)>,
}

/// The challenge promoter answers among those of the `WWW-Authenticate` header values: Bearer
/// (with a realm) before Basic. `Err` says why none fits, without quoting the header.
pub(crate) fn parse_challenge<'a>(
    headers: impl IntoIterator<Item = &'a str>,
) -> Result<Challenge, String> {
    let mut challenges = Vec::new();
    for header in headers {
        challenges.extend(parse_header(header)?);
    }
    let param = |c: &RawChallenge, name: &str| {
        c.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
        let realm = param(bearer, "realm")
            .filter(|r| !r.is_empty())
            .ok_or("the Bearer challenge has no realm")?;
        return Ok(Challenge::Bearer {
            realm,
            service: param(bearer, "service"),
            scope: param(bearer, "scope"),
        });
    }
    if challenges.iter().any(|c| c.scheme == "basic") {
        return Ok(Challenge::Basic);
    }
    match challenges.first() {
        Some(other) => Err(format!("unsupported scheme {:?}", other.scheme)),
        None => Err("no challenge in WWW-Authenticate".to_string()),
    }
}

/// Parses one header value: `challenge *( "," challenge )`, where a challenge is
/// `scheme [ 1*SP ( token68 / auth-param *( "," auth-param ) ) ]` and an auth-param is
/// `token BWS "=" BWS ( token / quoted-string )` (RFC 9110 section 11).
fn parse_header(header: &str) -> Result<Vec<RawChallenge>, String> {
    let mut scanner = Scanner {
        text: header.as_bytes(),
        at: 0,
    };
    let mut out: Vec<RawChallenge> = Vec::new();
    loop {
        scanner.skip(|b| b == b',' || is_space(b));
        if scanner.done() {
            return Ok(out);
        }
        let scheme = scanner.token();
        if scheme.is_empty() {
            return Err(format!(
                "unexpected character at byte {} of WWW-Authenticate",
                scanner.at
            ));
        }
        let mut challenge = RawChallenge {
            scheme: scheme.to_ascii_lowercase(),
            params: Vec::new(),
        };
        scanner.skip(is_space);
        if scanner.token68() {
            // `Negotiate YII...==`: no parameters, which no scheme promoter answers uses.
            out.push(challenge);
            continue;
        }
        loop {
            scanner.skip(is_space);
            let start = scanner.at;
            let name = scanner.token();
            scanner.skip(is_space);
            if name.is_empty() || scanner.peek() != Some(b'=') {
                // Not a parameter: the next challenge's scheme.
                scanner.at = start;
                break;
            }
            scanner.at += 1;
            scanner.skip(is_space);
            let value = if scanner.peek() == Some(b'"') {
                scanner.quoted()?
            } else {
                // A token; leniently anything up to the next separator (an unquoted URL).
                scanner.until(|b| b == b',' || is_space(b))
            };
            challenge.params.push((name.to_ascii_lowercase(), value));
            scanner.skip(is_space);
            match scanner.peek() {
                Some(b',') => scanner.at += 1,
                None => break,
                Some(_) => {
                    return Err(format!(
                        "expected ',' at byte {} of WWW-Authenticate",
                        scanner.at
                    ));
                }
            }
        }
        out.push(challenge);
    }
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

struct Scanner<'a> {
    text: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    fn done(&self) -> bool {
        self.at >= self.text.len()
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn skip(&mut self, accept: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&accept) {
            self.at += 1;
        }
    }

    fn token(&mut self) -> String {
        self.until(|b| !is_tchar(b))
    }

    /// The bytes up to the first that `stop` accepts (or the end).
    fn until(&mut self, stop: impl Fn(u8) -> bool) -> String {
        let start = self.at;
        self.skip(|b| !stop(b));
        String::from_utf8_lossy(&self.text[start..self.at]).into_owned()
    }

    /// Consumes a token68 (`1*( ALPHA / DIGIT / "-._~+/" ) *"="`) when one stands alone up to
    /// a `,` or the end; otherwise leaves the position alone.
    fn token68(&mut self) -> bool {
        let start = self.at;
        self.skip(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
        let body = self.at - start;
        self.skip(|b| b == b'=');
        self.skip(is_space);
        if body > 0 && matches!(self.peek(), None | Some(b',')) {
            return true;
        }
        self.at = start;
        false
    }

    /// A quoted-string starting at `"`, unescaping `\x`.
    fn quoted(&mut self) -> Result<String, String> {
        self.at += 1;
        let mut value = Vec::new();
        loop {
            match self.peek() {
                None => return Err("unterminated quoted value in WWW-Authenticate".to_string()),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(String::from_utf8_lossy(&value).into_owned());
                }
                Some(b'\\') if self.at + 1 < self.text.len() => {
                    value.push(self.text[self.at + 1]);
                    self.at += 2;
                }
                Some(b) => {
                    value.push(b);
                    self.at += 1;
                }
            }
        }
    }
}

/// The token endpoint's JSON answer: `token`, or OAuth2's `access_token`, and its lifetime.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// How long a token lives when the endpoint does not say (the token spec's default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// A token this close to its expiry is fetched again rather than sent.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);

impl TokenAnswer {
    /// The token (`token` wins over `access_token`, as the spec says) and how long it lives.
    pub(crate) fn into_token(self) -> Option<(SecretString, Duration)> {
        let token = self
            .token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))?;
        let lifetime = self
            .expires_in
            .filter(|&s| s > 0)
            .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
        Some((SecretString::from(token), lifetime))
    }
}

/// Bearer tokens by (registry host, scope), each until its `expires_in`.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    tokens: HashMap<(String, String), (SecretString, Instant)>,
}

impl TokenCache {
    /// The token for `(host, scope)` when it is still good at `now`.
    pub(crate) fn get(&self, host: &str, scope: &str, now: Instant) -> Option<SecretString> {
        let (token, expires) = self.tokens.get(&(host.to_string(), scope.to_string()))?;
        (now + EXPIRY_MARGIN < *expires).then(|| token.clone())
    }

    /// Keeps `token` for `(host, scope)` for `lifetime` from `now`.
    pub(crate) fn insert(
        &mut self,
        host: &str,
        scope: &str,
        token: SecretString,
        now: Instant,
        lifetime: Duration,
    ) {
        self.tokens.insert(
            (host.to_string(), scope.to_string()),
            (token, now + lifetime),
        );
    }

    /// Forgets the token for `(host, scope)` (the registry refused it).
    pub(crate) fn remove(&mut self, host: &str, scope: &str) {
        self.tokens.remove(&(host.to_string(), scope.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn bearer(realm: &str, service: Option<&str>, scope: Option<&str>) -> Challenge {
        Challenge::Bearer {
            realm: realm.to_string(),
            service: service.map(str::to_string),
            scope: scope.map(str::to_string),
        }
    }

    #[test]
    fn parses_challenges() {
        let cases: &[(&[&str], Result<Challenge, &str>)] = &[
            (
                &[
                    r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#,
                ],
                Ok(bearer(
                    "https://auth.docker.io/token",
                    Some("registry.docker.io"),
                    Some("repository:library/nginx:pull"),
                )),
            ),
            // Commas inside quotes, several actions, spaces around separators, case.
            (
                &[
                    r#"bearer Realm = "http://127.0.0.1:9/token" , scope="repository:a/b:pull,push repository:c:pull", service=reg,error="insufficient_scope""#,
                ],
                Ok(bearer(
                    "http://127.0.0.1:9/token",
                    Some("reg"),
                    Some("repository:a/b:pull,push repository:c:pull"),
                )),
            ),
            // Escapes in a quoted value; no service or scope.
            (
                &[r#"Bearer realm="https://h/t?x=\"y\"""#],
                Ok(bearer(r#"https://h/t?x="y""#, None, None)),
            ),
            (&[r#"Basic realm="Registry Realm""#], Ok(Challenge::Basic)),
            (&["Basic"], Ok(Challenge::Basic)),
            // Two challenges in one value, and across values: Bearer wins.
            (
                &[r#"Basic realm="basic-realm", Bearer realm="https://a/t",service="s""#],
                Ok(bearer("https://a/t", Some("s"), None)),
            ),
            (
                &[r#"Negotiate YIIBeg==, Basic realm="x""#],
                Ok(Challenge::Basic),
            ),
            (
                &[r#"Basic realm="x""#, r#"Bearer realm="https://a/t""#],
                Ok(bearer("https://a/t", None, None)),
            ),
            (
                &[r#"Bearer service="s""#],
                Err("the Bearer challenge has no realm"),
            ),
            (
                &[r#"Bearer realm="https://a"#],
                Err("unterminated quoted value in WWW-Authenticate"),
            ),
            (
                &[r#"Digest realm="x", nonce="y""#],
                Err(r#"unsupported scheme "digest""#),
            ),
            (&[""], Err("no challenge in WWW-Authenticate")),
            (&[], Err("no challenge in WWW-Authenticate")),
        ];
        for (headers, want) in cases {
            let got = parse_challenge(headers.iter().copied());
            assert_eq!(got, want.clone().map_err(str::to_string), "{headers:?}");
        }
    }

    #[test]
    fn token_answers() {
        let parse = |json: &str| {
            serde_json::from_str::<TokenAnswer>(json)
                .unwrap()
                .into_token()
                .map(|(t, life)| (t.expose_secret().to_string(), life.as_secs()))
        };
        assert_eq!(
            parse(r#"{"token":"t1","expires_in":300,"issued_at":"2026-01-01T00:00:00Z"}"#),
            Some(("t1".to_string(), 300))
        );
        assert_eq!(
            parse(r#"{"access_token":"a1"}"#),
            Some(("a1".to_string(), 60))
        );
        assert_eq!(
            parse(r#"{"token":"t","access_token":"a"}"#),
            Some(("t".to_string(), 60))
        );
        assert_eq!(parse(r#"{"token":""}"#), None);
        assert_eq!(parse("{}"), None);
    }

    #[test]
    fn tokens_are_kept_per_host_and_scope_until_they_expire() {
        let now = Instant::now();
        let mut cache = TokenCache::default();
        let scope = "repository:app:pull";
        cache.insert(
            "reg:5000",
            scope,
            SecretString::from("t"),
            now,
            Duration::from_secs(60),
        );
        let get = |cache: &TokenCache, host, scope, at| {
            cache
                .get(host, scope, at)
                .map(|t: SecretString| t.expose_secret().to_string())
        };
        assert_eq!(get(&cache, "reg:5000", scope, now), Some("t".to_string()));
        let later = now + Duration::from_secs(50);
        assert_eq!(get(&cache, "reg:5000", scope, later), Some("t".to_string()));
        assert_eq!(get(&cache, "reg:5000", "repository:other:pull", now), None);
        assert_eq!(get(&cache, "other:5000", scope, now), None);
        let expiring = now + Duration::from_secs(56);
        assert_eq!(get(&cache, "reg:5000", scope, expiring), None);
        cache.remove("reg:5000", scope);
        assert_eq!(get(&cache, "reg:5000", scope, now), None);
    }
}
