//! Format-preserving scalar edits: set the scalar at a path in document N of a YAML stream by
//! splicing new bytes into the original text, so that everything else (comments, blank lines,
//! indentation, key order, other scalars' quoting, document separators, CRLF, a missing final
//! newline) stays byte for byte. This module owns YAML text; it knows nothing of images,
//! environments or files on disk.
//!
//! An edit is checked before it is returned: the result is parsed again and must differ from
//! the original in exactly one scalar, the target, which must read as the new string.
//!
//! Refused, with the line and column: block scalars (`|`, `>`), targets under an anchor that an
//! alias elsewhere uses, targets reached through an alias or a merge key (`<<`), duplicate keys,
//! non-string explicit tags, the missing value of a block `? key` with no `:` line, and input
//! over [`limits::MAX_BYTES`] or nested deeper than [`limits::MAX_DEPTH`].

pub mod limits;
mod path;
pub mod quote;
mod scan;
pub mod typed;

use std::ops::Range;

use saphyr_parser::{Event, Parser};

pub use path::{PathError, Segment, YamlPath};
pub use scan::{NodeKind, ScalarStyle, line_col};

/// A scalar found in a YAML stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar {
    /// 0-based document index.
    pub doc: usize,
    /// Its path in that document.
    pub path: YamlPath,
    /// The value as YAML reads it (quotes removed, escapes applied).
    pub value: String,
    /// How it is written.
    pub style: ScalarStyle,
    /// Bytes of its text (quotes included); empty for `key:` with no value.
    pub range: Range<usize>,
    /// 1-based line of its first character.
    pub line: usize,
    /// 1-based column (in characters) of its first character.
    pub column: usize,
}

/// The result of [`set_scalar`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The whole new text.
    pub text: String,
    /// The scalar as it was before.
    pub before: Scalar,
    /// False when the new text equals the old one.
    pub changed: bool,
}

/// Why a YAML stream could not be read or edited. Messages carry no location; use
/// [`Error::location`] for the line and column where one applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input is larger than promoter reads.
    #[error("the file is {size} bytes, over the {limit}-byte limit for YAML input")]
    TooLarge { size: usize, limit: usize },
    /// The input is not UTF-8.
    #[error("the file is not UTF-8 text (invalid byte at offset {offset}){hint}")]
    NotUtf8 { offset: usize, hint: &'static str },
    /// The input is not valid YAML.
    #[error("invalid YAML: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// `--doc` names a document past the end.
    #[error(
        "document {doc} does not exist: the file has {count} (counted from 0, empty documents included)"
    )]
    NoDocument { doc: usize, count: usize },
    /// Nothing at the path.
    #[error("`{path}` not found in document {doc}: {detail}")]
    NotFound {
        path: String,
        doc: usize,
        detail: String,
        line: usize,
        column: usize,
    },
    /// The path leads to a collection.
    #[error("`{path}` is {kind}, not a scalar: give the path of a single value")]
    NotScalar {
        path: String,
        kind: &'static str,
        line: usize,
        column: usize,
    },
    /// The target is a `|` or `>` block scalar.
    #[error(
        "`{path}` is a block scalar (`|` or `>`); promoter edits single-line plain or quoted scalars only"
    )]
    BlockScalar {
        path: String,
        line: usize,
        column: usize,
    },
    /// The target sits under an anchor that aliases use.
    #[error(
        "`{path}` is under the anchor &{anchor}, which an alias (*{anchor}) uses elsewhere: editing it would change every place that alias stands; write the value where it is used instead of through the anchor"
    )]
    Anchored {
        path: String,
        anchor: String,
        line: usize,
        column: usize,
    },
    /// The path goes through an alias.
    #[error(
        "`{path}` is reached through the alias *{alias}: its value is defined at the anchor &{alias}; edit it there (that changes every user of the anchor) or write the value in place of the alias"
    )]
    ThroughAlias {
        path: String,
        alias: String,
        line: usize,
        column: usize,
    },
    /// The path exists only through a merge key.
    #[error(
        "`{path}` comes from the merge key `<<` (an alias of an anchored mapping): its value is defined at the anchor; write the key here to override it, or edit the anchor"
    )]
    ThroughMerge {
        path: String,
        line: usize,
        column: usize,
    },
    /// The key appears twice.
    #[error(
        "`{path}` appears twice in document {doc} (lines {first_line} and {line}): remove the duplicate key"
    )]
    Duplicate {
        path: String,
        doc: usize,
        first_line: usize,
        line: usize,
        column: usize,
    },
    /// The target carries an explicit non-string tag.
    #[error("`{path}` has the explicit tag `{tag}`; promoter writes strings only")]
    Tagged {
        path: String,
        tag: String,
        line: usize,
        column: usize,
    },
    /// The target is the missing value of a block `? key` that has no `:` line.
    #[error(
        "`{path}` is an explicit key (`? key`) with no `:` line; promoter edits values, it does not add lines: write `: <value>` under the key"
    )]
    KeyWithoutValue {
        path: String,
        line: usize,
        column: usize,
    },
    /// The edited text did not re-parse as intended (a bug guard; nothing is written).
    #[error("internal check failed, nothing written: {0}")]
    Unverified(String),
}

impl Error {
    /// Line and column (1-based) the error points at, when it points somewhere.
    pub fn location(&self) -> Option<(usize, usize)> {
        match self {
            Self::Syntax { line, column, .. }
            | Self::NotFound { line, column, .. }
            | Self::NotScalar { line, column, .. }
            | Self::BlockScalar { line, column, .. }
            | Self::Anchored { line, column, .. }
            | Self::ThroughAlias { line, column, .. }
            | Self::ThroughMerge { line, column, .. }
            | Self::Duplicate { line, column, .. }
            | Self::Tagged { line, column, .. }
            | Self::KeyWithoutValue { line, column, .. } => Some((*line, *column)),
            Self::TooLarge { .. }
            | Self::NotUtf8 { .. }
            | Self::NoDocument { .. }
            | Self::Unverified(_) => None,
        }
    }
}

/// Checks the input bounds and decodes UTF-8.
pub fn decode(bytes: &[u8]) -> Result<&str, Error> {
    if bytes.len() > limits::MAX_BYTES {
        return Err(Error::TooLarge {
            size: bytes.len(),
            limit: limits::MAX_BYTES,
        });
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let utf16 = bytes.starts_with(&[0xff, 0xfe])
            || bytes.starts_with(&[0xfe, 0xff])
            || (bytes.len() > 1 && (bytes[0] == 0 || bytes[1] == 0));
        Error::NotUtf8 {
            offset: e.valid_up_to(),
            hint: if utf16 {
                "; it looks like UTF-16: convert it to UTF-8"
            } else {
                ""
            },
        }
    })
}

fn check_size(src: &str) -> Result<(), Error> {
    if src.len() > limits::MAX_BYTES {
        return Err(Error::TooLarge {
            size: src.len(),
            limit: limits::MAX_BYTES,
        });
    }
    Ok(())
}

fn syntax_error(src: &str, failure: scan::ScanFailure) -> Error {
    let (line, column) = line_col(src, failure.offset);
    Error::Syntax {
        line,
        column,
        message: failure.message,
    }
}

/// Every scalar in value position whose document and path satisfy `wanted`, in source order.
pub fn find_scalars(
    src: &str,
    mut wanted: impl FnMut(usize, &[Segment]) -> bool,
) -> Result<Vec<Scalar>, Error> {
    check_size(src)?;
    let mut found = Vec::new();
    scan::walk(src, |node| {
        if node.kind == NodeKind::Scalar && wanted(node.doc, node.path) {
            found.push(to_scalar(src, node));
        }
    })
    .map_err(|f| syntax_error(src, f))?;
    Ok(found)
}

/// Checks that `src` is valid YAML within the bounds; returns the number of documents.
pub fn validate(src: &str) -> Result<usize, Error> {
    check_size(src)?;
    Ok(scan::walk(src, |_| {})
        .map_err(|f| syntax_error(src, f))?
        .documents)
}

fn to_scalar(src: &str, node: &scan::Node<'_>) -> Scalar {
    let (line, column) = line_col(src, node.range.start);
    Scalar {
        doc: node.doc,
        path: YamlPath::new(node.path.to_vec()),
        value: node.value.to_string(),
        style: node.style,
        range: node.range.clone(),
        line,
        column,
    }
}

/// The editable scalar at `path` in document `doc`.
pub fn get_scalar(src: &str, doc: usize, path: &YamlPath) -> Result<Scalar, Error> {
    locate(src, doc, path).map(|target| target.scalar)
}

struct Target {
    scalar: Scalar,
    implicit_empty: bool,
    missing_colon: bool,
    in_flow: bool,
}

/// A node on the way to the target, remembered for error messages.
struct Seen {
    depth: usize,
    kind: NodeKind,
    offset: usize,
    value: String,
}

fn locate(src: &str, doc: usize, path: &YamlPath) -> Result<Target, Error> {
    check_size(src)?;
    let want = path.segments();
    let mut matches: Vec<(Target, NodeKind, Vec<usize>, Option<String>)> = Vec::new();
    let mut deepest: Option<Seen> = None;
    let mut alias_on_way: Option<Seen> = None;
    let outline = scan::walk(src, |node| {
        if node.doc != doc || !want.starts_with(node.path) {
            return;
        }
        if node.path.len() == want.len() {
            let target = Target {
                scalar: to_scalar(src, node),
                implicit_empty: node.implicit_empty,
                missing_colon: node.missing_colon,
                in_flow: node.in_flow,
            };
            matches.push((target, node.kind, node.anchors.to_vec(), node.tag.clone()));
        }
        let seen = Seen {
            depth: node.path.len(),
            kind: node.kind,
            offset: node.range.start,
            value: node.value.to_string(),
        };
        if node.kind == NodeKind::Alias && alias_on_way.is_none() {
            alias_on_way = Some(Seen {
                value: node.value.to_string(),
                ..seen
            });
        } else if deepest.as_ref().is_none_or(|d| seen.depth > d.depth) {
            deepest = Some(seen);
        }
    })
    .map_err(|f| syntax_error(src, f))?;

    if doc >= outline.documents {
        return Err(Error::NoDocument {
            doc,
            count: outline.documents,
        });
    }
    let shown = path.to_string();
    let at = |offset: usize| line_col(src, offset);
    if matches.len() > 1 {
        let (line, column) = (matches[1].0.scalar.line, matches[1].0.scalar.column);
        let first_line = at(matches[0].0.scalar.range.start).0;
        return Err(Error::Duplicate {
            path: shown,
            doc,
            first_line,
            line,
            column,
        });
    }
    if let Some((target, kind, anchors, tag)) = matches.pop() {
        let (line, column) = (target.scalar.line, target.scalar.column);
        return match kind {
            NodeKind::Scalar => {
                if matches!(
                    target.scalar.style,
                    ScalarStyle::Literal | ScalarStyle::Folded
                ) {
                    return Err(Error::BlockScalar {
                        path: shown,
                        line,
                        column,
                    });
                }
                if let Some(id) = anchors.iter().find(|id| outline.aliased.contains(id)) {
                    let anchor = outline.anchor_names.get(id).cloned().unwrap_or_default();
                    return Err(Error::Anchored {
                        path: shown,
                        anchor,
                        line,
                        column,
                    });
                }
                if target.missing_colon && !target.in_flow {
                    return Err(Error::KeyWithoutValue {
                        path: shown,
                        line,
                        column,
                    });
                }
                if let Some(tag) = tag.filter(|t| t != "tag:yaml.org,2002:str" && t != "!") {
                    return Err(Error::Tagged {
                        path: shown,
                        tag,
                        line,
                        column,
                    });
                }
                Ok(target)
            }
            NodeKind::Alias => Err(Error::ThroughAlias {
                path: shown,
                alias: target.scalar.value,
                line,
                column,
            }),
            NodeKind::Mapping | NodeKind::Sequence => Err(Error::NotScalar {
                path: shown,
                kind: kind.noun(),
                line,
                column,
            }),
        };
    }
    if let Some(alias) = alias_on_way {
        let (line, column) = at(alias.offset);
        return Err(Error::ThroughAlias {
            path: shown,
            alias: alias.value,
            line,
            column,
        });
    }
    let deepest = deepest.unwrap_or(Seen {
        depth: 0,
        kind: NodeKind::Scalar,
        offset: 0,
        value: String::new(),
    });
    let parent = &want[..deepest.depth];
    if let Some((_, _, key_offset)) = outline
        .merges
        .iter()
        .find(|(d, p, _)| *d == doc && p == parent)
    {
        let (line, column) = at(*key_offset);
        return Err(Error::ThroughMerge {
            path: shown,
            line,
            column,
        });
    }
    let (line, column) = at(deepest.offset);
    let missing = &want[deepest.depth];
    let parent_shown = YamlPath::new(parent.to_vec()).to_string();
    let container = if parent.is_empty() {
        "the document root".to_string()
    } else {
        format!("`{parent_shown}`")
    };
    let detail = match (deepest.kind, missing) {
        (NodeKind::Mapping, Segment::Key(k)) => format!("{container} has no key `{k}`"),
        (NodeKind::Mapping, Segment::Index(i)) => {
            format!("{container} is a mapping, not a sequence, so it has no item [{i}]")
        }
        (NodeKind::Sequence, Segment::Index(i)) => format!("{container} has no item [{i}]"),
        (NodeKind::Sequence, Segment::Key(k)) => {
            format!(
                "{container} is a sequence: address its items by index, e.g. `{parent_shown}[0].{k}`"
            )
        }
        (NodeKind::Scalar, _) if parent.is_empty() && deepest.value.is_empty() => {
            "the document is empty".to_string()
        }
        (NodeKind::Scalar | NodeKind::Alias, _) => {
            format!("{container} is a scalar, it has nothing inside")
        }
    };
    Err(Error::NotFound {
        path: shown,
        doc,
        detail,
        line,
        column,
    })
}

/// Sets the scalar at `path` in document `doc` of `src` to the string `value`, keeping every
/// other byte. The new value is quoted as the old one was, or double-quoted when a plain
/// scalar would not read back as this string.
pub fn set_scalar(src: &str, doc: usize, path: &YamlPath, value: &str) -> Result<Edit, Error> {
    let target = locate(src, doc, path)?;
    let before = target.scalar;
    // Already this string, only written another way (`"a\x62"`, a plain scalar folded over two
    // lines): keep the bytes. A plain `2.10` or `on` is not a string yet, so it is rewritten.
    let already_string = match before.style {
        ScalarStyle::Plain => !target.implicit_empty && !quote::resolves_to_non_string(value),
        _ => true,
    };
    if before.value == value && already_string {
        return Ok(Edit {
            text: src.to_string(),
            before,
            changed: false,
        });
    }
    let original_style = match before.style {
        ScalarStyle::Single => quote::Style::Single,
        ScalarStyle::Double => quote::Style::Double,
        _ => quote::Style::Plain,
    };
    let (rendered, _) = quote::render(value, original_style, target.in_flow);
    let insertion = if target.missing_colon {
        format!(": {rendered}")
    } else if target.implicit_empty {
        format!(" {rendered}")
    } else {
        rendered
    };
    if src[before.range.clone()] == *insertion {
        return Ok(Edit {
            text: src.to_string(),
            before,
            changed: false,
        });
    }
    let mut text = String::with_capacity(src.len() + insertion.len());
    text.push_str(&src[..before.range.start]);
    text.push_str(&insertion);
    text.push_str(&src[before.range.end..]);
    verify(src, &text, doc, path, value)?;
    Ok(Edit {
        text,
        before,
        changed: true,
    })
}

fn events(src: &str) -> Result<Vec<Event<'_>>, String> {
    Parser::new_from_str(src.strip_prefix('\u{feff}').unwrap_or(src))
        .map(|e| e.map(|(event, _)| event).map_err(|e| e.to_string()))
        .collect()
}

/// The edited text must parse to the same events as the original except for one scalar, the
/// target, which must now hold `value`.
fn verify(
    original: &str,
    edited: &str,
    doc: usize,
    path: &YamlPath,
    value: &str,
) -> Result<(), Error> {
    let old = events(original).map_err(Error::Unverified)?;
    let new = events(edited)
        .map_err(|e| Error::Unverified(format!("the edited text does not parse: {e}")))?;
    if old.len() != new.len() {
        return Err(Error::Unverified(format!(
            "the edit changed the structure ({} -> {} events)",
            old.len(),
            new.len()
        )));
    }
    let mut differing = old.iter().zip(&new).filter(|(a, b)| a != b);
    match (differing.next(), differing.next()) {
        (Some((Event::Scalar(..), Event::Scalar(v, ..))), None) if v == value => {}
        (None, None) => return Err(Error::Unverified("the edit changed nothing".into())),
        _ => {
            return Err(Error::Unverified(
                "the edit changed more than the target scalar".into(),
            ));
        }
    }
    let after = locate(edited, doc, path).map_err(|e| Error::Unverified(e.to_string()))?;
    if after.scalar.style == ScalarStyle::Plain && quote::resolves_to_non_string(value) {
        return Err(Error::Unverified(format!(
            "`{value}` would not read back as a string"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
