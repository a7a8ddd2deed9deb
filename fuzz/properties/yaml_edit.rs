//! Property of the YAML edit primitive, `promoter::yaml::set_scalar`, shared by the `yaml_edit`
//! fuzz target and `tests/it/fuzz_regressions.rs`.
//!
//! Input: the first line is the new value (taken literally, or decoded as a JSON string when it
//! starts with `"`, so that a value can hold a newline or a control character); the rest is the
//! YAML text. Every value-position scalar of the text (the first [`MAX_EDITS`]) is set to the new
//! value. An edit may be refused with a located error, but an accepted edit must:
//! - keep every byte before and after the old scalar, and put a single line in its place;
//! - read back (promoter's own parser) as the new value, with every other scalar unchanged;
//! - read, with an independent parser (`yaml_serde`, a port of libyaml), as the original data
//!   with at most one string changed, the target, which now equals the new value, whenever that
//!   parser reads the original at all and no line starts with a tab.
//!
//! An [`yaml::Error::Unverified`] (the edit failed promoter's own re-parse check) counts as a
//! failure too: the check is a guard against bugs, so reaching it is one.

use promoter::yaml::{self, Error, Scalar, Segment};
use serde_yaml::Value;

/// Edits tried per input, so that a large input costs no more than a few re-parses.
pub const MAX_EDITS: usize = 8;

/// Panics when an edit of `data` breaks the property.
pub fn check(data: &[u8]) {
    let (value_line, text) = match data.iter().position(|&b| b == b'\n') {
        Some(newline) => (&data[..newline], &data[newline + 1..]),
        None => (data, &[][..]),
    };
    let Some(value) = new_value(value_line) else {
        return;
    };
    let Ok(src) = yaml::decode(text) else {
        return;
    };
    let Ok(scalars) = yaml::find_scalars(src, |_, _| true) else {
        return;
    };
    // A line that starts with a tab is where YAML readers part ways (PyYAML refuses it, libyaml
    // accepts it after a plain scalar but not after a quoted one): there the independent
    // reading would measure the readers, not the edit.
    let tab_at_line_start = src.starts_with('\t') || src.contains("\n\t");
    let original = documents(src).filter(|_| !tab_at_line_start);
    for (index, target) in scalars.iter().enumerate().take(MAX_EDITS) {
        match yaml::set_scalar(src, target.doc, &target.path, &value) {
            Ok(edit) if !edit.changed => {
                assert_eq!(edit.text, src, "an unchanged edit must return the input");
                assert_eq!(edit.before.value, value, "unchanged, yet the value differs");
            }
            Ok(edit) => {
                assert_eq!(&edit.before, target, "set_scalar edited another scalar");
                check_bytes(src, &edit.text, target);
                check_scalars(&scalars, index, &edit.text, &value);
                if let Some(original) = &original {
                    check_data(original, &edit.text, target, &value);
                }
            }
            Err(Error::Unverified(why)) => panic!(
                "setting `{}` (doc {}) to {value:?} failed promoter's own check: {why}",
                target.path, target.doc
            ),
            Err(_) => {}
        }
    }
}

/// The new value from the first line: JSON-decoded when it starts with `"`.
fn new_value(line: &[u8]) -> Option<String> {
    let line = std::str::from_utf8(line).ok()?;
    if line.starts_with('"') {
        serde_json::from_str(line).ok()
    } else {
        Some(line.to_string())
    }
}

/// Every byte outside the old scalar is where it was; the new scalar is one line.
fn check_bytes(src: &str, edited: &str, target: &Scalar) {
    let (start, end) = (target.range.start, target.range.end);
    let tail = &src[end..];
    assert!(
        edited.len() >= start + tail.len()
            && edited.as_bytes()[..start] == src.as_bytes()[..start]
            && edited.as_bytes().ends_with(tail.as_bytes()),
        "bytes outside `{}` changed:\n--- before\n{src}\n--- after\n{edited}",
        target.path
    );
    let inserted = &edited[start..edited.len() - tail.len()];
    assert!(
        !inserted.contains(['\n', '\r']),
        "the new scalar spans lines: {inserted:?}"
    );
}

/// promoter reads the edited text as the same scalars in the same places, only the target's
/// value being new.
fn check_scalars(before: &[Scalar], target: usize, edited: &str, value: &str) {
    let after = yaml::find_scalars(edited, |_, _| true)
        .unwrap_or_else(|e| panic!("the edited text does not parse: {e}\n{edited}"));
    assert_eq!(after.len(), before.len(), "the number of scalars changed");
    for (n, (old, new)) in before.iter().zip(&after).enumerate() {
        assert_eq!((old.doc, &old.path), (new.doc, &new.path), "a path moved");
        let want = if n == target { value } else { &old.value };
        assert_eq!(new.value, want, "`{}` reads wrong after the edit", new.path);
    }
    let read = yaml::get_scalar(edited, before[target].doc, &before[target].path)
        .unwrap_or_else(|e| panic!("the edited scalar cannot be read back: {e}"));
    assert_eq!(read.value, value);
}

/// The documents as `yaml_serde` reads them, or `None` when it refuses the text.
pub fn documents(src: &str) -> Option<Vec<Value>> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(src)
        .map(Value::deserialize)
        .collect::<Result<_, _>>()
        .ok()
}

/// The independent parser reads the edit as the intended data: the original with the target
/// set to the new string.
fn check_data(original: &[Value], edited: &str, target: &Scalar, value: &str) {
    let after = documents(edited).unwrap_or_else(|| {
        panic!("yaml_serde reads the original but not the edited text:\n{edited}")
    });
    assert_eq!(
        after.len(),
        original.len(),
        "the number of documents changed"
    );
    let mut changes = Vec::new();
    for (old, new) in original.iter().zip(&after) {
        differences(old, new, &mut changes);
    }
    let wanted = Value::String(value.to_string());
    assert!(
        changes.len() <= 1 && changes.iter().all(|(_, new)| untagged(new) == &wanted),
        "the data changed in more than the target `{}`: {changes:?}\n{edited}",
        target.path
    );
    let old_target = find(&original[target.doc], target.path.segments()).map(untagged);
    let new_target = find(&after[target.doc], target.path.segments()).map(untagged);
    if let Some(new_target) = new_target {
        assert_eq!(
            new_target, &wanted,
            "`{}` does not hold the new value",
            target.path
        );
    }
    if old_target == Some(&wanted) {
        assert!(changes.is_empty(), "the target already held the value");
    }
}

/// The value under a tag. promoter edits only scalars tagged `!` or `!!str`, both strings, but
/// yaml_serde keeps `!` as a tag.
fn untagged(value: &Value) -> &Value {
    match value {
        Value::Tagged(tagged) => &tagged.value,
        other => other,
    }
}

/// The pairs of nodes where `new` differs from `old` in a scalar, or in shape.
fn differences<'v>(old: &'v Value, new: &'v Value, out: &mut Vec<(&'v Value, &'v Value)>) {
    match (old, new) {
        (Value::Mapping(a), Value::Mapping(b))
            if a.len() == b.len() && a.keys().zip(b.keys()).all(|(x, y)| x == y) =>
        {
            for (x, y) in a.values().zip(b.values()) {
                differences(x, y, out);
            }
        }
        (Value::Sequence(a), Value::Sequence(b)) if a.len() == b.len() => {
            for (x, y) in a.iter().zip(b) {
                differences(x, y, out);
            }
        }
        (Value::Tagged(a), Value::Tagged(b)) if a.tag == b.tag => {
            differences(&a.value, &b.value, out)
        }
        _ if old == new => {}
        _ => out.push((old, new)),
    }
}

/// The node at `path`, matching a key by its text; `None` where a key is not a plain string
/// (`0x10`, `true`: the text cannot be told from the value) or the path is absent.
fn find<'v>(mut node: &'v Value, path: &[Segment]) -> Option<&'v Value> {
    for segment in path {
        node = match (node, segment) {
            (Value::Mapping(map), Segment::Key(key)) => map
                .iter()
                .find(|(k, _)| matches!(k, Value::String(s) if s == key))
                .map(|(_, v)| v)?,
            (Value::Sequence(items), Segment::Index(i)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(node)
}
