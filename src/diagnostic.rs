//! A problem found in a file, printed as `path:line:col: message` (or `path: message` when it
//! has no position) so that editors and CI logs link straight to it.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// The file, relative to the repository root where there is one.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong and, where it helps, what to do.
    pub message: String,
}

impl Diagnostic {
    /// A problem with a whole file.
    pub fn file(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    /// A problem at a line (and maybe a column).
    pub fn at(
        path: impl AsRef<Path>,
        line: usize,
        column: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            line: Some(line),
            column,
            message: message.into(),
        }
    }

    /// A YAML error in `path`, positioned where the error points.
    pub fn from_yaml(path: impl AsRef<Path>, error: &crate::yaml::Error) -> Self {
        match error.location() {
            Some((line, column)) => Self::at(path, line, Some(column), error.to_string()),
            None => Self::file(path, error.to_string()),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A file name may hold a newline: escaped, one problem stays one line.
        let path = self.path.to_string_lossy();
        if path.chars().any(char::is_control) {
            write!(f, "{}", path.escape_debug())?;
        } else {
            f.write_str(&path)?;
        }
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for Diagnostic {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_path_line_column_message() {
        assert_eq!(
            Diagnostic::at("a/b.yaml", 3, Some(7), "bad").to_string(),
            "a/b.yaml:3:7: bad"
        );
        assert_eq!(
            Diagnostic::at("a.yaml", 3, None, "bad").to_string(),
            "a.yaml:3: bad"
        );
        assert_eq!(Diagnostic::file("a.yaml", "bad").to_string(), "a.yaml: bad");
        assert_eq!(
            Diagnostic::file("a\nb.yaml", "bad").to_string(),
            "a\\nb.yaml: bad"
        );
    }
}
