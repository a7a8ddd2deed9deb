//! Secrets kept out of every log line and error message, whatever produced the text (GitLab
//! quoting a request back, a proxy's error page, a library's error printing a URL).
//!
//! A process-wide set of secret values is filled when settings load ([`register`]: tokens,
//! webhook and signing secrets, webhook URLs, passwords, the userinfo of configured URLs) and
//! whenever a secret file is read, so a secret added later (a new `*_file` key) is covered by
//! registering it where it is read. The log writer ([`Stderr`], text and JSON) and the CLI,
//! where it prints an error chain or an outcome, pass their text through [`redact`]: each
//! occurrence becomes [`MASK`]. Values shorter than [`MIN_LEN`] characters are not registered
//! (masking them would garble every line, and they are no secret worth the name).

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::{PoisonError, RwLock};

/// What a secret is replaced with.
pub const MASK: &str = "[REDACTED]";

/// The shortest value that is masked.
pub const MIN_LEN: usize = 4;

/// A set of secret values and the forms they take in text (as typed, JSON-escaped,
/// percent-encoded).
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    /// Longest first, so a secret containing another is masked whole.
    secrets: Vec<String>,
}

impl Redactor {
    /// Adds `secret` (trimmed) and the forms it takes in JSON and URLs.
    pub fn add(&mut self, secret: &str) {
        let secret = secret.trim();
        if secret.chars().count() < MIN_LEN {
            return;
        }
        let json = serde_json::to_string(secret).unwrap_or_default();
        let json = json.trim_matches('"').to_string();
        let encoded: String =
            url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>();
        let percent = encoded.replace('+', "%20");
        for form in [secret.to_string(), json, encoded, percent] {
            if form.chars().count() >= MIN_LEN && !self.secrets.contains(&form) {
                self.secrets.push(form);
            }
        }
        self.secrets
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }

    /// Adds the userinfo of `url` (`user:password` before the host) and its password, when it
    /// has one; works on text that does not parse as a URL too.
    pub fn add_userinfo(&mut self, url: &str) {
        let Some(userinfo) = userinfo(url) else {
            return;
        };
        self.add(userinfo);
        if let Some((_, password)) = userinfo.split_once(':') {
            self.add(password);
            let decoded = url::form_urlencoded::parse(format!("p={password}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned());
            if let Some(decoded) = decoded {
                self.add(&decoded);
            }
        }
    }

    /// `text` with every secret replaced by [`MASK`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), MASK));
            }
        }
        out
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

/// The userinfo of `url`: what stands between `://` and the last `@` before the host ends.
fn userinfo(url: &str) -> Option<&str> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let at = authority.rfind('@')?;
    Some(&authority[..at]).filter(|u| !u.is_empty())
}

/// `url` with its userinfo replaced by [`MASK`], for messages that must name a URL.
pub fn without_userinfo(url: &str) -> String {
    match userinfo(url) {
        Some(info) => {
            let start = url.find("://").map_or(0, |i| i + 3);
            format!("{}{MASK}{}", &url[..start], &url[start + info.len()..])
        }
        None => url.to_string(),
    }
}

static GLOBAL: RwLock<Redactor> = RwLock::new(Redactor {
    secrets: Vec::new(),
});

/// Registers a secret value for the whole process.
pub fn register(secret: &str) {
    GLOBAL
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .add(secret);
}

/// Registers the content of a secret file: the whole of it and, since a multi-line secret (a
/// key) may be quoted a line at a time, each line of 16 characters or more.
pub fn register_file_content(secret: &str) {
    register(secret);
    for line in secret.lines().filter(|l| l.trim().len() >= 16) {
        register(line);
    }
}

/// Registers the userinfo of a configured URL for the whole process.
pub fn register_userinfo(url: &str) {
    GLOBAL
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .add_userinfo(url);
}

/// `text` with every registered secret replaced by [`MASK`].
pub fn redact(text: &str) -> String {
    GLOBAL
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .redact(text)
        .into_owned()
}

/// The log writer: each event is collected whole, redacted, then written to stderr in one go.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = Line;

    fn make_writer(&'a self) -> Self::Writer {
        Line(Vec::new())
    }
}

/// One log event on its way to stderr.
#[derive(Debug)]
pub struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let text = redact(&String::from_utf8_lossy(&self.0));
        self.0.clear();
        let mut stderr = io::stderr().lock();
        stderr.write_all(text.as_bytes())?;
        stderr.flush()
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_secret_is_masked() {
        let mut r = Redactor::default();
        r.add("glpat-s3cr\"et/+x\n");
        assert_eq!(
            r.redact("PRIVATE-TOKEN: glpat-s3cr\"et/+x"),
            "PRIVATE-TOKEN: [REDACTED]"
        );
        assert_eq!(
            r.redact(r#"{"fields":{"header":"glpat-s3cr\"et/+x"}}"#),
            r#"{"fields":{"header":"[REDACTED]"}}"#
        );
        assert_eq!(
            r.redact("GET /api?private_token=glpat-s3cr%22et%2F%2Bx"),
            "GET /api?private_token=[REDACTED]"
        );
        assert_eq!(r.redact("nothing here"), "nothing here");
    }

    #[test]
    fn short_values_are_not_secrets() {
        let mut r = Redactor::default();
        r.add("abc");
        r.add("   ");
        assert!(r.is_empty());
    }

    #[test]
    fn a_secret_containing_another_is_masked_whole() {
        let mut r = Redactor::default();
        r.add("pass");
        r.add("user:password");
        assert_eq!(
            r.redact("x user:password y pass"),
            "x [REDACTED] y [REDACTED]"
        );
    }

    #[test]
    fn userinfo_of_urls_valid_or_not() {
        let mut r = Redactor::default();
        r.add_userinfo("https://deploy:t%40ken-9@gitlab.example.com/api");
        assert_eq!(
            r.redact("https://deploy:t%40ken-9@gitlab.example.com and t@ken-9"),
            "https://[REDACTED]@gitlab.example.com and [REDACTED]"
        );
        let mut r = Redactor::default();
        r.add_userinfo("https://bob:pa ss word@gitlab example.com");
        assert_eq!(r.redact("pa ss word"), "[REDACTED]");
        assert_eq!(
            without_userinfo("https://bob:pa ss word@gitlab example.com/x@y"),
            "https://[REDACTED]@gitlab example.com/x@y"
        );
        assert_eq!(
            without_userinfo("https://gitlab.example.com/a@b"),
            "https://gitlab.example.com/a@b"
        );
        assert_eq!(without_userinfo("not a url"), "not a url");
    }
}
