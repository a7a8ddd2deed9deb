//! YAML paths as promoter's users write them: `a.b[0].c`, with `["key"]` for a key that holds
//! `.`, `[`, `]`, `"` or white space (`metadata.annotations["app.kubernetes.io/name"]`).
//!
//! Parsing and printing are inverse: `path.to_string().parse() == path` for every path.

use std::fmt;
use std::str::FromStr;

/// One step of a [`YamlPath`]: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A key of a mapping, compared with the key's scalar value.
    Key(String),
    /// A 0-based item of a sequence.
    Index(usize),
}

/// A path from a document's root to one node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct YamlPath(Vec<Segment>);

/// Why a path string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid YAML path `{path}` at character {position}: {reason}")]
pub struct PathError {
    /// The path as given.
    pub path: String,
    /// 1-based character where parsing stopped.
    pub position: usize,
    /// What was expected there.
    pub reason: &'static str,
}

impl YamlPath {
    /// A path from its segments.
    pub fn new(segments: Vec<Segment>) -> Self {
        Self(segments)
    }

    /// The segments, root first.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// True when `self` is a prefix of `other` (or equal to it).
    pub fn is_prefix_of(&self, other: &YamlPath) -> bool {
        other.0.starts_with(&self.0)
    }

    /// The last segment's key, when it is a key.
    pub fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Segment::Key(k)) => Some(k),
            _ => None,
        }
    }
}

impl From<Vec<Segment>> for YamlPath {
    fn from(segments: Vec<Segment>) -> Self {
        Self(segments)
    }
}

impl FromStr for YamlPath {
    type Err = PathError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let chars: Vec<char> = text.chars().collect();
        let fail = |position: usize, reason| PathError {
            path: text.to_string(),
            position: position + 1,
            reason,
        };
        if chars.is_empty() {
            return Err(fail(0, "the path is empty"));
        }
        let mut segments = Vec::new();
        let mut i = 0;
        // True where a plain key may start: the beginning, or right after a `.`.
        let mut at_key_start = true;
        while i < chars.len() {
            match chars[i] {
                '[' if chars.get(i + 1) == Some(&'"') => {
                    let (key, next) = parse_quoted_key(&chars, i + 2).ok_or_else(|| {
                        fail(i, "a quoted key `[\"...\"]` is not closed with `\"]`")
                    })?;
                    segments.push(Segment::Key(key));
                    i = next;
                }
                '[' => {
                    let start = i + 1;
                    let mut end = start;
                    while end < chars.len() && chars[end].is_ascii_digit() {
                        end += 1;
                    }
                    if end == start || chars.get(end) != Some(&']') {
                        return Err(fail(i, "expected a sequence index such as `[0]`"));
                    }
                    let digits: String = chars[start..end].iter().collect();
                    let index = digits
                        .parse()
                        .map_err(|_| fail(start, "the sequence index is too large"))?;
                    segments.push(Segment::Index(index));
                    i = end + 1;
                }
                '.' => {
                    if at_key_start {
                        return Err(fail(i, "expected a key before `.`"));
                    }
                    i += 1;
                    at_key_start = true;
                    if i == chars.len() {
                        return Err(fail(i - 1, "the path ends with `.`"));
                    }
                    if chars[i] == '[' && chars.get(i + 1) != Some(&'"') {
                        return Err(fail(i, "an index follows its key directly: `a[0]`"));
                    }
                    continue;
                }
                ']' | '"' => {
                    return Err(fail(i, "unexpected character; quote the key as [\"...\"]"));
                }
                c if c.is_whitespace() => {
                    return Err(fail(i, "white space in a key; quote the key as [\"...\"]"));
                }
                _ => {
                    if !at_key_start {
                        return Err(fail(i, "expected `.` or `[` between segments"));
                    }
                    let start = i;
                    while i < chars.len()
                        && !matches!(chars[i], '.' | '[' | ']' | '"')
                        && !chars[i].is_whitespace()
                    {
                        i += 1;
                    }
                    segments.push(Segment::Key(chars[start..i].iter().collect()));
                }
            }
            at_key_start = false;
        }
        Ok(Self(segments))
    }
}

/// Reads a `["..."]` key body starting after the opening quote; returns the key and the index
/// after the closing `]`. Inside, `\"` and `\\` are escapes.
fn parse_quoted_key(chars: &[char], mut i: usize) -> Option<(String, usize)> {
    let mut key = String::new();
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                key.push(*chars.get(i + 1)?);
                i += 2;
            }
            '"' => {
                return (chars.get(i + 1) == Some(&']')).then_some((key, i + 2));
            }
            c => {
                key.push(c);
                i += 1;
            }
        }
    }
    None
}

fn needs_brackets(key: &str) -> bool {
    key.is_empty()
        || key
            .chars()
            .any(|c| matches!(c, '.' | '[' | ']' | '"' | '\\') || c.is_whitespace())
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Index(i) => write!(f, "[{i}]")?,
                Segment::Key(k) if needs_brackets(k) => {
                    f.write_str("[\"")?;
                    for c in k.chars() {
                        if matches!(c, '"' | '\\') {
                            f.write_str("\\")?;
                        }
                        write!(f, "{c}")?;
                    }
                    f.write_str("\"]")?;
                }
                Segment::Key(k) => {
                    if n > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(k: &str) -> Segment {
        Segment::Key(k.to_string())
    }

    #[test]
    fn parses_dotted_keys_indexes_and_quoted_keys() {
        let cases: &[(&str, Vec<Segment>)] = &[
            ("image.tag", vec![key("image"), key("tag")]),
            (
                "spec.template.spec.containers[0].image",
                vec![
                    key("spec"),
                    key("template"),
                    key("spec"),
                    key("containers"),
                    Segment::Index(0),
                    key("image"),
                ],
            ),
            ("[2]", vec![Segment::Index(2)]),
            (
                "a[1][2]",
                vec![key("a"), Segment::Index(1), Segment::Index(2)],
            ),
            (
                "metadata.annotations[\"app.kubernetes.io/name\"]",
                vec![
                    key("metadata"),
                    key("annotations"),
                    key("app.kubernetes.io/name"),
                ],
            ),
            ("[\"a \\\"b\\\"\"].c", vec![key("a \"b\""), key("c")]),
            ("a.[\"b\"]", vec![key("a"), key("b")]),
            ("x-y/z:1", vec![key("x-y/z:1")]),
        ];
        for (text, want) in cases {
            assert_eq!(
                text.parse::<YamlPath>().unwrap().segments(),
                want.as_slice(),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_malformed_paths_with_position() {
        let cases = [
            ("", 1),
            (".a", 1),
            ("a.", 2),
            ("a..b", 3),
            ("a[x]", 2),
            ("a[0", 2),
            ("a[\"b", 2),
            ("a b", 2),
            ("a]", 2),
            ("a.[0]", 3),
        ];
        for (text, position) in cases {
            let err = text.parse::<YamlPath>().unwrap_err();
            assert_eq!(err.position, position, "{text}: {err}");
        }
    }

    #[test]
    fn prints_keys_that_need_it_in_brackets() {
        let path = YamlPath::new(vec![key("a"), key("b.c"), Segment::Index(3), key("d")]);
        assert_eq!(path.to_string(), "a[\"b.c\"][3].d");
        assert_eq!(YamlPath::new(vec![key("")]).to_string(), "[\"\"]");
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(segments in proptest::collection::vec(
            prop_oneof![
                any::<String>().prop_map(Segment::Key),
                (0usize..10_000).prop_map(Segment::Index),
            ],
            1..6,
        )) {
            let path = YamlPath::new(segments);
            let text = path.to_string();
            prop_assert_eq!(text.parse::<YamlPath>().unwrap(), path);
        }
    }
}
