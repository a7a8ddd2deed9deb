//! One pass over a YAML stream that reports every node with its document, its path and the
//! exact bytes of its text in the source, which is what a splice needs.
//!
//! Built on `saphyr-parser` events. Two of its habits are corrected here: markers count
//! characters, not bytes, and a quoted scalar's span runs on over trailing blanks and a comment.
//! A node's properties (`&anchor`, `!tag`) are not part of its text range.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use saphyr_parser::{Event, Parser, ScalarStyle as ParserStyle};

use super::limits;
use super::path::Segment;

/// How a scalar is written in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarStyle {
    /// No quotes.
    Plain,
    /// `'...'`
    Single,
    /// `"..."`
    Double,
    /// `|` block
    Literal,
    /// `>` block
    Folded,
}

impl From<ParserStyle> for ScalarStyle {
    fn from(style: ParserStyle) -> Self {
        match style {
            ParserStyle::Plain => Self::Plain,
            ParserStyle::SingleQuoted => Self::Single,
            ParserStyle::DoubleQuoted => Self::Double,
            ParserStyle::Literal => Self::Literal,
            ParserStyle::Folded => Self::Folded,
        }
    }
}

/// What kind of node a path leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A scalar value.
    Scalar,
    /// A mapping.
    Mapping,
    /// A sequence.
    Sequence,
    /// An alias (`*name`) standing for a node defined elsewhere.
    Alias,
}

impl NodeKind {
    /// The word used in messages.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Scalar => "a scalar",
            Self::Mapping => "a mapping",
            Self::Sequence => "a sequence",
            Self::Alias => "an alias",
        }
    }
}

/// A node as the walker reports it. Only nodes in value position are reported (never keys),
/// and only those whose path can be written (not under a complex key).
#[derive(Debug)]
pub struct Node<'a> {
    /// 0-based document index, counting empty documents.
    pub doc: usize,
    /// Path from the document root.
    pub path: &'a [Segment],
    /// What the node is.
    pub kind: NodeKind,
    /// For scalars, the value as YAML reads it; for aliases, the anchor name.
    pub value: &'a str,
    /// For scalars, how the value is written.
    pub style: ScalarStyle,
    /// Bytes of the node's own text: a scalar's quotes included, properties and trailing
    /// comments excluded. For an empty plain scalar (`key:`), an empty range where a value
    /// would be inserted.
    pub range: Range<usize>,
    /// True for an empty plain scalar written as nothing at all (`key:`).
    pub implicit_empty: bool,
    /// True for an implicit empty value whose key has no `:` (`{a, b}`): an edit writes one.
    pub missing_colon: bool,
    /// True inside a flow collection (`{...}` or `[...]`).
    pub in_flow: bool,
    /// Anchor ids carried by this node and by its ancestors.
    pub anchors: &'a [usize],
    /// An explicit tag on the node (`!!str`), as written.
    pub tag: Option<String>,
}

/// What the walk learned about the stream as a whole.
#[derive(Debug, Default)]
pub struct Outline {
    /// Number of documents, empty ones included.
    pub documents: usize,
    /// Anchor id -> name.
    pub anchor_names: HashMap<usize, String>,
    /// Anchor ids that some alias refers to.
    pub aliased: HashSet<usize>,
    /// Mappings that hold a merge key `<<`: document, path of the mapping, byte offset of the key.
    pub merges: Vec<(usize, Vec<Segment>, usize)>,
}

/// The message for input nested deeper than [`limits::MAX_DEPTH`].
fn depth_message() -> String {
    format!("nesting deeper than {} levels", limits::MAX_DEPTH)
}

/// A syntax error, or a stream past the nesting limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanFailure {
    /// Byte offset in the source.
    pub offset: usize,
    /// What went wrong.
    pub message: String,
}

#[derive(Debug)]
struct Frame {
    mapping: bool,
    flow: bool,
    anchor: usize,
    /// Mapping: the next node is a key.
    awaiting_key: bool,
    /// Mapping: the key of the value that comes next (`None`: a key that cannot be addressed).
    pending_key: Option<Segment>,
    /// Sequence: index of the next item.
    next_index: usize,
    /// This collection is itself a key (or inside one): its nodes are not reported.
    in_key: bool,
    /// This collection pushed a segment onto the path.
    pushed_segment: bool,
}

enum Role {
    Root,
    Key,
    Value(Option<Segment>),
}

/// Converts the parser's character indexes into byte offsets, walking forward from the last
/// conversion (events arrive in source order, so the total work is linear).
struct ByteOffsets<'a> {
    src: &'a str,
    ascii: bool,
    last_char: usize,
    last_byte: usize,
}

impl<'a> ByteOffsets<'a> {
    fn new(src: &'a str) -> Self {
        Self {
            src,
            ascii: src.is_ascii(),
            last_char: 0,
            last_byte: 0,
        }
    }

    fn byte(&mut self, char_index: usize) -> usize {
        if self.ascii {
            return char_index.min(self.src.len());
        }
        if char_index < self.last_char {
            self.last_char = 0;
            self.last_byte = 0;
        }
        let mut chars = self.src[self.last_byte..].char_indices();
        while self.last_char < char_index {
            match chars.next() {
                Some((_, c)) => {
                    self.last_byte += c.len_utf8();
                    self.last_char += 1;
                }
                None => break,
            }
        }
        self.last_byte
    }
}

/// Walks `src`, calling `visit` for every addressable node in value position.
pub fn walk(src: &str, mut visit: impl FnMut(&Node<'_>)) -> Result<Outline, ScanFailure> {
    // The parser skips a byte order mark without counting it; parse after it and shift back.
    let base = if src.starts_with('\u{feff}') {
        '\u{feff}'.len_utf8()
    } else {
        0
    };
    let text = &src[base..];
    let mut offsets = ByteOffsets::new(text);
    let mut outline = Outline::default();
    let mut frames: Vec<Frame> = Vec::new();
    let mut path: Vec<Segment> = Vec::new();
    let mut anchors: Vec<usize> = Vec::new();
    let mut doc = 0usize;
    // End of the current document's `---`, where an empty document's value is inserted.
    let mut doc_marker_end: Option<usize> = None;

    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| ScanFailure {
            offset: base + offsets.byte(e.marker().index()),
            // The scanner's own bound on `[ ]` and `{ }` (it reads ahead of the events).
            message: match e.info() {
                "recursion limit exceeded" => depth_message(),
                info => info.to_string(),
            },
        })?;
        let start = offsets.byte(span.start.index());
        let end = offsets.byte(span.end.index()).max(start);
        match event {
            Event::DocumentStart(explicit) => {
                doc = outline.documents;
                outline.documents += 1;
                doc_marker_end = explicit.then_some(end);
            }
            Event::Scalar(value, style, anchor, tag) => {
                let role = take_role(&mut frames);
                if anchor != 0 {
                    outline
                        .anchor_names
                        .insert(anchor, anchor_name(text, start));
                }
                let in_key = frames.last().is_some_and(|f| f.in_key);
                match role {
                    Role::Key => {
                        let frame = frames.last_mut().expect("a key has a mapping");
                        if !in_key && style == ParserStyle::Plain && value == "<<" {
                            outline.merges.push((doc, path.clone(), base + start));
                        }
                        frame.pending_key = Some(Segment::Key(value.into_owned()));
                    }
                    Role::Root | Role::Value(_) if in_key => {}
                    Role::Root | Role::Value(Some(_)) => {
                        if let Role::Value(Some(segment)) = role {
                            path.push(segment);
                        }
                        let style = ScalarStyle::from(style);
                        let (mut range, implicit_empty) =
                            scalar_range(text, start, end, style, &value);
                        // An empty document's null spans the next marker (`---`, `...`): its
                        // value goes right after this document's own `---`.
                        if implicit_empty
                            && frames.is_empty()
                            && let Some(marker_end) = doc_marker_end
                            && range.start >= marker_end
                            && !has_properties(text, start)
                        {
                            range = marker_end..marker_end;
                        }
                        let missing_colon = implicit_empty
                            && frames.last().is_some_and(|f| f.mapping)
                            && !text[..range.start]
                                .trim_end_matches([' ', '\t'])
                                .ends_with(':')
                            && !has_properties(text, start);
                        if anchor != 0 {
                            anchors.push(anchor);
                        }
                        visit(&Node {
                            doc,
                            path: &path,
                            kind: NodeKind::Scalar,
                            value: &value,
                            style,
                            range: base + range.start..base + range.end,
                            implicit_empty,
                            missing_colon,
                            in_flow: frames.last().is_some_and(|f| f.flow),
                            anchors: &anchors,
                            tag: tag.map(|t| format!("{}{}", t.handle, t.suffix)),
                        });
                        if anchor != 0 {
                            anchors.pop();
                        }
                        if !frames.is_empty() {
                            path.pop();
                        }
                    }
                    Role::Value(None) => {}
                }
            }
            Event::Alias(id) => {
                outline.aliased.insert(id);
                let role = take_role(&mut frames);
                let in_key = frames.last().is_some_and(|f| f.in_key);
                match role {
                    Role::Key => frames.last_mut().expect("a key has a mapping").pending_key = None,
                    Role::Value(Some(segment)) if !in_key => {
                        path.push(segment);
                        let name = text[start..end]
                            .trim_start_matches('*')
                            .trim_end()
                            .to_string();
                        visit(&Node {
                            doc,
                            path: &path,
                            kind: NodeKind::Alias,
                            value: &name,
                            style: ScalarStyle::Plain,
                            range: base + start..base + end,
                            implicit_empty: false,
                            missing_colon: false,
                            in_flow: frames.last().is_some_and(|f| f.flow),
                            anchors: &anchors,
                            tag: None,
                        });
                        path.pop();
                    }
                    _ => {}
                }
            }
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                let mapping = matches!(event, Event::MappingStart(..));
                if frames.len() >= limits::MAX_DEPTH {
                    return Err(ScanFailure {
                        offset: base + start,
                        message: depth_message(),
                    });
                }
                if anchor != 0 {
                    outline
                        .anchor_names
                        .insert(anchor, anchor_name(text, start));
                }
                let role = take_role(&mut frames);
                let parent_in_key = frames.last().is_some_and(|f| f.in_key);
                let (in_key, segment) = match role {
                    Role::Key => (true, None),
                    Role::Root => (parent_in_key, None),
                    Role::Value(Some(s)) => (parent_in_key, Some(s)),
                    // A value under a key that cannot be addressed: nothing inside is reported.
                    Role::Value(None) => (true, None),
                };
                let flow =
                    is_flow_start(&text[start..end]) || frames.last().is_some_and(|f| f.flow);
                let pushed_segment = segment.is_some();
                if let Some(segment) = segment {
                    path.push(segment);
                }
                if anchor != 0 {
                    anchors.push(anchor);
                }
                if !in_key {
                    visit(&Node {
                        doc,
                        path: &path,
                        kind: if mapping {
                            NodeKind::Mapping
                        } else {
                            NodeKind::Sequence
                        },
                        value: "",
                        style: ScalarStyle::Plain,
                        range: base + start..base + end,
                        implicit_empty: false,
                        missing_colon: false,
                        in_flow: flow,
                        anchors: &anchors,
                        tag: None,
                    });
                }
                frames.push(Frame {
                    mapping,
                    flow,
                    anchor,
                    awaiting_key: true,
                    pending_key: None,
                    next_index: 0,
                    in_key,
                    pushed_segment,
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let frame = frames.pop().expect("the parser balances collections");
                if frame.pushed_segment {
                    path.pop();
                }
                if frame.anchor != 0 {
                    anchors.pop();
                }
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
    Ok(outline)
}

/// Decides whether the next node is a key, a value (with its path segment) or a root, and
/// advances the enclosing collection.
fn take_role(frames: &mut [Frame]) -> Role {
    let Some(frame) = frames.last_mut() else {
        return Role::Root;
    };
    if frame.mapping {
        if frame.awaiting_key {
            frame.awaiting_key = false;
            frame.pending_key = None;
            Role::Key
        } else {
            frame.awaiting_key = true;
            Role::Value(frame.pending_key.take())
        }
    } else {
        let index = frame.next_index;
        frame.next_index += 1;
        Role::Value(Some(Segment::Index(index)))
    }
}

/// A collection's span covers its properties and, for flow style, the opening bracket.
fn is_flow_start(span_text: &str) -> bool {
    matches!(span_text.trim_end().chars().last(), Some('{' | '['))
}

/// The name of the anchor among the properties that start at `start` (`&name`, maybe after
/// a `!tag`).
fn anchor_name(text: &str, start: usize) -> String {
    let rest = &text[start..];
    rest.split_whitespace()
        .take(2)
        .find_map(|token| token.strip_prefix('&'))
        .unwrap_or("?")
        .to_string()
}

/// Whether a node's span starting at `start` opens with properties (`&anchor`, `!tag`).
fn has_properties(text: &str, start: usize) -> bool {
    matches!(text.as_bytes().get(start), Some(b'&' | b'!'))
}

/// Skips a node's properties (`&anchor`, `!tag`) and the blanks after them.
fn skip_properties(text: &str, mut at: usize) -> usize {
    let bytes = text.as_bytes();
    loop {
        match bytes.get(at) {
            Some(b'&' | b'!') => {
                while at < bytes.len() && !bytes[at].is_ascii_whitespace() {
                    at += 1;
                }
                while at < bytes.len() && bytes[at].is_ascii_whitespace() {
                    at += 1;
                }
            }
            _ => return at,
        }
    }
}

/// The byte range of a scalar's own text, and whether it is an implicit empty plain scalar.
fn scalar_range(
    text: &str,
    start: usize,
    end: usize,
    style: ScalarStyle,
    value: &str,
) -> (Range<usize>, bool) {
    let bytes = text.as_bytes();
    match style {
        // `key: !!str` or `key: &a` with nothing after: the span is the properties; insert
        // after them (before them, the value would come first and the properties dangle).
        ScalarStyle::Plain if value.is_empty() && has_properties(text, start) => (end..end, true),
        ScalarStyle::Plain if value.is_empty() => {
            // `key:` with nothing after it. The parser points at the colon, just after it, or
            // past the blanks after it; insert right after the colon.
            let before = text[..start].trim_end_matches([' ', '\t']).len();
            // A `:` is the value indicator only before a blank, a flow indicator or the end:
            // `:x` starts the next key (`? k` then `:x: v`), and the value is missing.
            let indicator_at_start = bytes.get(start) == Some(&b':')
                && !bytes.get(start + 1).is_some_and(|b| {
                    !matches!(
                        b,
                        b' ' | b'\t' | b'\r' | b'\n' | b',' | b'[' | b']' | b'{' | b'}'
                    )
                });
            let at = if indicator_at_start {
                start + 1
            } else if before > 0 && bytes[before - 1] == b':' {
                before
            } else {
                start
            };
            (at..at, true)
        }
        ScalarStyle::Plain => (skip_properties(text, start).min(end)..end, false),
        ScalarStyle::Single | ScalarStyle::Double => {
            let open = skip_properties(text, start);
            (open..quoted_end(bytes, open, style), false)
        }
        ScalarStyle::Literal | ScalarStyle::Folded => {
            (skip_properties(text, start).min(end)..end, false)
        }
    }
}

/// The byte after the closing quote of the quoted scalar that opens at `open`.
fn quoted_end(bytes: &[u8], open: usize, style: ScalarStyle) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        match (style, bytes[i]) {
            (ScalarStyle::Double, b'\\') => i += 2,
            (ScalarStyle::Double, b'"') => return i + 1,
            (ScalarStyle::Single, b'\'') if bytes.get(i + 1) == Some(&b'\'') => i += 2,
            (ScalarStyle::Single, b'\'') => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Seen {
        doc: usize,
        path: String,
        kind: NodeKind,
        text: String,
    }

    fn seen(src: &str) -> Vec<Seen> {
        let mut out = Vec::new();
        walk(src, |n| {
            out.push(Seen {
                doc: n.doc,
                path: super::super::path::YamlPath::new(n.path.to_vec()).to_string(),
                kind: n.kind,
                text: src[n.range.clone()].to_string(),
            })
        })
        .unwrap();
        out
    }

    fn scalar(doc: usize, path: &str, text: &str) -> Seen {
        Seen {
            doc,
            path: path.into(),
            kind: NodeKind::Scalar,
            text: text.into(),
        }
    }

    #[test]
    fn quoted_ranges_stop_at_the_closing_quote_before_a_comment() {
        let got = seen("a: \"x\\\"y\"   # note\nb: 'it''s' # c\n");
        let scalars: Vec<_> = got
            .into_iter()
            .filter(|s| s.kind == NodeKind::Scalar)
            .collect();
        assert_eq!(
            scalars,
            vec![scalar(0, "a", "\"x\\\"y\""), scalar(0, "b", "'it''s'")]
        );
    }

    #[test]
    fn properties_are_not_part_of_the_text() {
        let got = seen("a: &x 1\nb: !!str 2\nc: &y \"3\"\n");
        let texts: Vec<_> = got
            .iter()
            .filter(|s| s.kind == NodeKind::Scalar)
            .map(|s| s.text.as_str())
            .collect();
        assert_eq!(texts, ["1", "2", "\"3\""]);
    }

    #[test]
    fn empty_plain_value_is_an_insertion_point_after_the_colon() {
        let src = "a:\nb:   # c\n";
        let mut points = Vec::new();
        walk(src, |n| {
            if n.kind == NodeKind::Scalar {
                points.push((n.range.clone(), n.implicit_empty));
            }
        })
        .unwrap();
        assert_eq!(points, vec![(2..2, true), (5..5, true)]);
    }

    #[test]
    fn byte_ranges_are_right_after_multibyte_text() {
        let got = seen("\u{feff}name: \"héllo wörld\"\ntag: 1.2.3 # ünïcode\n");
        let scalars: Vec<_> = got
            .into_iter()
            .filter(|s| s.kind == NodeKind::Scalar)
            .collect();
        assert_eq!(
            scalars,
            vec![
                scalar(0, "name", "\"héllo wörld\""),
                scalar(0, "tag", "1.2.3")
            ]
        );
    }

    #[test]
    fn documents_are_counted_including_empty_ones() {
        let got = seen("---\n# only a comment\n---\na: 1\n---\nb: [x, {c: d}]\n");
        let scalars: Vec<_> = got
            .into_iter()
            .filter(|s| s.kind == NodeKind::Scalar && !s.text.is_empty())
            .collect();
        assert_eq!(
            scalars,
            vec![
                scalar(1, "a", "1"),
                scalar(2, "b[0]", "x"),
                scalar(2, "b[1].c", "d")
            ]
        );
    }

    #[test]
    fn complex_keys_and_their_values_are_not_reported() {
        let got = seen("? [a, b]\n: c\nd: e\n");
        let scalars: Vec<_> = got
            .into_iter()
            .filter(|s| s.kind == NodeKind::Scalar)
            .collect();
        assert_eq!(scalars, vec![scalar(0, "d", "e")]);
    }

    #[test]
    fn anchors_aliases_and_merges_are_recorded() {
        let src = "base: &img\n  tag: 1.0\nother:\n  <<: *img\nthird: *img\n";
        let mut tag_anchors = Vec::new();
        let outline = walk(src, |n| {
            if n.path.last() == Some(&Segment::Key("tag".into())) {
                tag_anchors = n.anchors.to_vec();
            }
        })
        .unwrap();
        assert_eq!(tag_anchors.len(), 1);
        assert_eq!(outline.anchor_names[&tag_anchors[0]], "img");
        assert!(outline.aliased.contains(&tag_anchors[0]));
        assert_eq!(outline.merges.len(), 1);
        assert_eq!(outline.merges[0].1, vec![Segment::Key("other".into())]);
    }

    #[test]
    fn flow_context_is_known() {
        let mut flows = Vec::new();
        walk("a: {b: c}\nd:\n  e: f\ng: [h]\n", |n| {
            if n.kind == NodeKind::Scalar {
                flows.push(n.in_flow);
            }
        })
        .unwrap();
        assert_eq!(flows, [true, false, true]);
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "[".repeat(limits::MAX_DEPTH + 5);
        let err = walk(&deep, |_| {}).unwrap_err();
        assert!(
            err.message == "nesting deeper than 255 levels",
            "{}",
            err.message
        );
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncé\nx", 7), (3, 1));
        assert_eq!(line_col("ab\ncéd", 6), (2, 3));
    }
}
