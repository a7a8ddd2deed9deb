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
        let message = match message.find(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        match e.location() {
            Some(at) => Diagnostic::at(path, at.line(), Some(at.column()), message),
            None => Diagnostic::file(path, message),
        }
    })
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
