//! Reading a typed YAML file (environments/, policies/) through serde, with every error turned
//! into a [`Diagnostic`] at the file's line and column, and validation errors pointed at the
//! line of the key they are about.

use serde::de::DeserializeOwned;

use crate::diagnostic::Diagnostic;
use crate::yaml::{self, YamlPath};

/// Parses `bytes` (the file `path`) as a `T`; unknown keys are errors where `T` says so.
pub fn parse<T: DeserializeOwned>(path: &str, bytes: &[u8]) -> Result<T, Diagnostic> {
    let text = yaml::decode(bytes).map_err(|e| Diagnostic::from_yaml(path, &e))?;
    // The span parser first: it bounds nesting and reports syntax errors with exact positions.
    yaml::validate(text).map_err(|e| Diagnostic::from_yaml(path, &e))?;
    serde_yaml::from_str(text).map_err(|e| {
        let message = e.to_string();
        // serde_yaml appends " at line L column C"; the diagnostic carries the position instead.
        let mut message = match message.find(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        if let Some(key) = misspelt_key(&message) {
            message.push_str(&format!(" (did you mean `{key}`?)"));
        }
        match e.location() {
            Some(at) => Diagnostic::at(path, at.line(), Some(at.column()), message),
            None => Diagnostic::file(path, message),
        }
    })
}

/// For serde's "unknown field `x`, expected one of `a`, `b`": the allowed key nearest to `x`,
/// when it is a likely typo (at most two edits away).
fn misspelt_key(message: &str) -> Option<&str> {
    let rest = &message[message.find("unknown field `")? + "unknown field `".len()..];
    let (unknown, rest) = rest.split_once('`')?;
    let allowed = rest.split_once("expected ")?.1;
    allowed
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|key| (edit_distance(unknown, key), key))
        .filter(|(d, key)| *d <= 2 && *d < key.len().min(unknown.len()))
        .min()
        .map(|(_, key)| key)
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// A diagnostic at the line of the value at `key` (a YAML path) in `bytes`, or at the file
/// when the key cannot be found.
pub fn at_key(path: &str, bytes: &[u8], key: &str, message: impl Into<String>) -> Diagnostic {
    let position = yaml::decode(bytes).ok().and_then(|text| {
        let key: YamlPath = key.parse().ok()?;
        match yaml::get_scalar(text, 0, &key) {
            Ok(s) => Some((s.line, s.column)),
            Err(e @ yaml::Error::NotScalar { .. }) => e.location(),
            Err(_) => None,
        }
    });
    match position {
        Some((line, column)) => Diagnostic::at(path, line, Some(column), message),
        None => Diagnostic::file(path, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
    }

    #[test]
    fn unknown_keys_are_reported_at_their_line() {
        let err = parse::<Sample>("environments/qa.yaml", b"name: qa\nnmae: x\n").unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(
            err.message.contains("unknown field `nmae`"),
            "{}",
            err.message
        );
        assert!(
            err.to_string().starts_with("environments/qa.yaml:2:"),
            "{err}"
        );
    }

    #[test]
    fn a_misspelt_key_gets_a_suggestion() {
        let err = parse::<Sample>("a.yaml", b"nmae: x\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "a.yaml:1:1: unknown field `nmae`, expected `name` (did you mean `name`?)"
        );
        let err = parse::<Sample>("a.yaml", b"colour: x\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "a.yaml:1:1: unknown field `colour`, expected `name`"
        );
        assert_eq!(edit_distance("soaks", "soak"), 1);
        assert_eq!(edit_distance("resaon", "reason"), 2);
    }

    #[test]
    fn syntax_errors_are_reported_at_their_line() {
        let err = parse::<Sample>("a.yaml", b"name: [qa\n").unwrap_err();
        assert_eq!(err.line, Some(2));
    }

    #[test]
    fn at_key_points_at_the_value() {
        let d = at_key(
            "a.yaml",
            b"name: qa\nschedule: bad\n",
            "schedule",
            "invalid cron",
        );
        assert_eq!((d.line, d.column), (Some(2), Some(11)));
    }
}
