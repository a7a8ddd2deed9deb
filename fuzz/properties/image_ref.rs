//! Property of the image reference parser, `promoter::image::ImageRef`, shared by the
//! `image_ref` fuzz target and `tests/it/fuzz_regressions.rs`.
//!
//! Input: the text to parse (invalid UTF-8 is read lossily). The parser must agree with the
//! distribution grammar, written here independently as one regular expression plus docker's
//! rules that a regular expression cannot say (which first component is a registry, the name
//! length, image IDs, sha256's exact length); an accepted reference must print back exactly as
//! written, with the parts the grammar assigns, and survive re-tagging; a refused one must say
//! so in a message that names the input.

use std::sync::LazyLock;

use promoter::image::{ImageRef, is_valid_tag};
use regex::Regex;

/// `path-component`: lowercase letters and digits joined by `.`, `_`, `__` or dashes.
const COMPONENT: &str = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";

/// `reference := name [":" tag] ["@" digest]`, with the three as groups 1 to 3.
static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    let component = COMPONENT;
    let tag = r"[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}";
    let digest = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
    Regex::new(&format!(
        r"^((?:{DOMAIN}/)?{component}(?:/{component})*)(?::({tag}))?(?:@({digest}))?$"
    ))
    .expect("the reference pattern is valid")
});

/// `domain := host [":" port]`, host a DNS name or a bracketed IPv6 literal.
const DOMAIN: &str = r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?";

static WHOLE_PATH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!("^{COMPONENT}(?:/{COMPONENT})*$")).expect("the path pattern is valid")
});

static WHOLE_DOMAIN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("^{DOMAIN}$")).expect("the domain pattern is valid"));

/// A reference's parts as written: domain, path, tag, digest.
pub type Parts<'t> = (Option<&'t str>, &'t str, Option<&'t str>, Option<&'t str>);

/// What the grammar makes of `text`, or `None` when it refuses it.
pub fn grammar(text: &str) -> Option<Parts<'_>> {
    let captures = REFERENCE.captures(text)?;
    let name = captures.get(1)?.as_str();
    let is_image_id =
        text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if name.len() > 255 || is_image_id {
        return None;
    }
    // docker's splitDockerDomain: the first component is a registry when it has `.` or `:` or
    // is `localhost` (and, unlike docker, never merely because it has an uppercase letter).
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (Some(first), rest)
        }
        _ => (None, name),
    };
    // The regular expression may have read a registry where docker reads a path (`[1]/a`).
    if !domain.is_none_or(|d| WHOLE_DOMAIN.is_match(d)) || !WHOLE_PATH.is_match(path) {
        return None;
    }
    let digest = captures.get(3).map(|m| m.as_str());
    if let Some(hex) = digest.and_then(|d| d.strip_prefix("sha256:"))
        && !(hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    {
        return None;
    }
    Some((domain, path, captures.get(2).map(|m| m.as_str()), digest))
}

/// Panics when the parser disagrees with the grammar on `data`, or an accepted reference does
/// not behave.
pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    let parsed = text.parse::<ImageRef>();
    let expected = grammar(text);
    let image = match (parsed, expected) {
        (Err(error), None) => {
            let message = error.to_string();
            assert!(
                message.starts_with("invalid image reference ")
                    && (text.is_empty() || message.contains(&format!("{text:?}"))),
                "the error for {text:?} does not name it: {message}"
            );
            return;
        }
        (Ok(image), None) => panic!("{text:?} is not a reference, yet it parses as {image:?}"),
        (Err(error), Some(_)) => panic!("{text:?} is a reference, yet it fails: {error}"),
        (Ok(image), Some(parts)) => {
            let domain = image
                .name()
                .strip_suffix(image.path())
                .map(|d| d.trim_end_matches('/').to_string());
            let domain = domain.filter(|d| !d.is_empty());
            assert_eq!(
                (domain.as_deref(), image.path(), image.tag(), image.digest()),
                parts,
                "{text:?} parses into the wrong parts"
            );
            image
        }
    };
    assert_eq!(
        image.to_string(),
        text,
        "the reference does not print back as written"
    );
    // A name of 64 hex characters is valid with a tag or digest, yet alone it is an image ID
    // (docker's rule, which applies to the whole input only).
    match image.name().parse::<ImageRef>() {
        Ok(name) => {
            assert_eq!((name.tag(), name.digest()), (None, None));
            assert!(name.same_repository(&image) && image.same_repository(&image));
        }
        Err(error) => assert!(
            matches!(error, promoter::image::Error::ImageId { .. }),
            "a reference's name does not parse alone: {error}"
        ),
    }
    if let Ok(repository) = image.repository().parse::<ImageRef>() {
        assert!(
            repository.same_repository(&image),
            "repository() names another repository"
        );
    }
    if let Some(tag) = image.tag() {
        assert!(is_valid_tag(tag));
    }
    let retagged = image
        .with_tag("1.0.0_rc-1")
        .expect("a valid tag is accepted");
    assert_eq!(
        retagged.to_string().parse::<ImageRef>().as_ref(),
        Ok(&retagged)
    );
    assert_eq!(retagged.digest(), image.digest());
    assert_eq!(image.promote(&image), image);
    let unpinned = image
        .with_digest(None)
        .expect("dropping the digest always works");
    assert_eq!(
        unpinned.to_string().parse::<ImageRef>().as_ref(),
        Ok(&unpinned)
    );
}
