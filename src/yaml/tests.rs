//! Table-driven tests of [`set_scalar`] and its refusals, and a property test that an edit
//! never touches a byte outside the target.

use proptest::prelude::*;

use super::*;

fn set(src: &str, doc: usize, path: &str, value: &str) -> Result<String, Error> {
    set_scalar(src, doc, &path.parse().unwrap(), value).map(|e| e.text)
}

#[test]
fn edits_keep_everything_but_the_value() {
    let cases: &[(&str, usize, &str, &str, &str)] = &[
        // (source, doc, path, value, expected)
        (
            "image:\n  name: app\n  tag: 1.2.3\n",
            0,
            "image.tag",
            "1.2.4",
            "image:\n  name: app\n  tag: 1.2.4\n",
        ),
        (
            "image:\n  tag: 1.2.3 # keep me\n",
            0,
            "image.tag",
            "1.10",
            "image:\n  tag: \"1.10\" # keep me\n",
        ),
        (
            "tag: \"1.2.3\"  # c\n",
            0,
            "tag",
            "2.0.0",
            "tag: \"2.0.0\"  # c\n",
        ),
        ("tag: '1.2.3'\n", 0, "tag", "2.10", "tag: '2.10'\n"),
        (
            "side: {repository: x, tag: '0.9.1'}\n",
            0,
            "side.tag",
            "0.9.2",
            "side: {repository: x, tag: '0.9.2'}\n",
        ),
        (
            "a: {tag: 1.0.0}\n",
            0,
            "a.tag",
            "x,y",
            "a: {tag: \"x,y\"}\n",
        ),
        (
            "tag: 1.2.3\r\nother: x\r\n",
            0,
            "tag",
            "1.2.4",
            "tag: 1.2.4\r\nother: x\r\n",
        ),
        ("tag: 1.2.3", 0, "tag", "true", "tag: \"true\""),
        (
            "tag:\nnext: 1\n",
            0,
            "tag",
            "1.0.0",
            "tag: 1.0.0\nnext: 1\n",
        ),
        (
            "tag:   # none yet\n",
            0,
            "tag",
            "2.10",
            "tag: \"2.10\"   # none yet\n",
        ),
        ("tag: \"\"\n", 0, "tag", "v1", "tag: \"v1\"\n"),
        ("tag: ~\n", 0, "tag", "v1", "tag: v1\n"),
        ("tag: 16\n", 0, "tag", "16", "tag: \"16\"\n"),
        ("tag: &t 1.0.0\n", 0, "tag", "1.1.0", "tag: &t 1.1.0\n"),
        ("tag: !!str 1.0\n", 0, "tag", "1.1", "tag: !!str \"1.1\"\n"),
        (
            "---\n# Source: a.yaml\n---\n# Source: b.yaml\nspec:\n  containers:\n  - name: x\n    image: \"r/app:1\"\n",
            1,
            "spec.containers[0].image",
            "r/app:2",
            "---\n# Source: a.yaml\n---\n# Source: b.yaml\nspec:\n  containers:\n  - name: x\n    image: \"r/app:2\"\n",
        ),
        ("x: [a, b, c]\n", 0, "x[1]", "B", "x: [a, B, c]\n"),
        (
            "\"odd.key\": {v: 1.0.0}\n",
            0,
            "[\"odd.key\"].v",
            "1.0.1",
            "\"odd.key\": {v: 1.0.1}\n",
        ),
        (
            "n: \"héllo\"\nt: 1\n",
            0,
            "t",
            "ünï",
            "n: \"héllo\"\nt: ünï\n",
        ),
        ("\u{feff}tag: 1\n", 0, "tag", "v2", "\u{feff}tag: v2\n"),
        ("tag: \"a\\\"b\"\n", 0, "tag", "c\"d", "tag: \"c\\\"d\"\n"),
        (
            "- image: a:1\n- image: b:1\n",
            0,
            "[1].image",
            "b:2",
            "- image: a:1\n- image: b:2\n",
        ),
    ];
    for (src, doc, path, value, want) in cases {
        let got = set(src, *doc, path, value).unwrap_or_else(|e| panic!("{src:?} {path}: {e}"));
        assert_eq!(&got, want, "{src:?} {path} = {value}");
    }
}

#[test]
fn unchanged_value_is_no_edit() {
    let edit = set_scalar("tag: 1.2.3 # c\n", 0, &"tag".parse().unwrap(), "1.2.3").unwrap();
    assert!(!edit.changed);
    assert_eq!(edit.text, "tag: 1.2.3 # c\n");
    assert_eq!(edit.before.value, "1.2.3");
    assert_eq!((edit.before.line, edit.before.column), (1, 6));
}

fn err(src: &str, doc: usize, path: &str) -> (String, Option<(usize, usize)>) {
    let e = set(src, doc, path, "1.0.0").unwrap_err();
    (e.to_string(), e.location())
}

/// (source, doc, path, part of the message, line and column)
type Refusal = (
    &'static str,
    usize,
    &'static str,
    &'static str,
    Option<(usize, usize)>,
);

#[test]
fn refusals_say_what_and_where() {
    let cases: &[Refusal] = &[
        (
            "image:\n  name: x\n",
            0,
            "image.tag",
            "`image` has no key `tag`",
            Some((2, 3)),
        ),
        (
            "a: 1\n",
            0,
            "b",
            "the document root has no key `b`",
            Some((1, 1)),
        ),
        (
            "image: x:1\n",
            0,
            "image.tag",
            "`image` is a scalar",
            Some((1, 8)),
        ),
        ("c:\n- a\n", 0, "c[3]", "`c` has no item [3]", Some((2, 3))),
        (
            "c:\n- a\n",
            0,
            "c.name",
            "address its items by index, e.g. `c[0].name`",
            Some((2, 3)),
        ),
        (
            "image:\n  tag: 1\n",
            0,
            "image",
            "is a mapping, not a scalar",
            Some((2, 3)),
        ),
        (
            "a: 1\n",
            1,
            "a",
            "document 1 does not exist: the file has 1",
            None,
        ),
        ("tag: |\n  1.0\n", 0, "tag", "block scalar", Some((2, 3))),
        ("tag: >-\n  1.0\n", 0, "tag", "block scalar", Some((2, 3))),
        (
            "base: &img\n  tag: 1\nuse: *img\n",
            0,
            "base.tag",
            "anchor &img",
            Some((2, 8)),
        ),
        ("t: &t 1\nu: *t\n", 0, "t", "anchor &t", Some((1, 7))),
        (
            "base: &img\n  tag: 1\nuse: *img\n",
            0,
            "use.tag",
            "alias *img",
            Some((3, 6)),
        ),
        (
            "base: &img\n  tag: 1\nuse:\n  <<: *img\n",
            0,
            "use.tag",
            "merge key `<<`",
            Some((4, 3)),
        ),
        (
            "a:\n  t: 1\na:\n  t: 2\n",
            0,
            "a.t",
            "appears twice in document 0 (lines 2 and 4)",
            Some((4, 6)),
        ),
        (
            "tag: !!int 3\n",
            0,
            "tag",
            "explicit tag `tag:yaml.org,2002:int`",
            Some((1, 12)),
        ),
        ("a: [1\n", 0, "a", "invalid YAML", Some((2, 1))),
    ];
    for (src, doc, path, needle, location) in cases {
        let (message, got_location) = err(src, *doc, path);
        assert!(message.contains(needle), "{src:?} {path}: {message}");
        assert_eq!(&got_location, location, "{src:?} {path}: {message}");
    }
}

#[test]
fn anchors_nobody_uses_do_not_block_an_edit() {
    let src = "base: &img\n  tag: 1.0.0\n";
    assert_eq!(
        set(src, 0, "base.tag", "1.0.1").unwrap(),
        "base: &img\n  tag: 1.0.1\n"
    );
}

#[test]
fn a_billion_laughs_is_not_expanded() {
    let mut src = String::from(
        "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..10 {
        let p = i - 1;
        src.push_str(&format!(
            "a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"
        ));
    }
    src.push_str("image:\n  tag: 1.0.0\n");
    let got = set(&src, 0, "image.tag", "1.0.1").unwrap();
    assert!(got.ends_with("image:\n  tag: 1.0.1\n"));
}

#[test]
fn oversized_and_non_utf8_input_is_refused() {
    let big = vec![b'#'; limits::MAX_BYTES + 1];
    assert!(matches!(decode(&big), Err(Error::TooLarge { .. })));
    let utf16 = [0xff, 0xfe, b't', 0, b':', 0];
    let e = decode(&utf16).unwrap_err();
    assert!(e.to_string().contains("UTF-16"), "{e}");
}

#[test]
fn find_scalars_reports_paths_and_positions() {
    let src =
        "---\nspec:\n  containers:\n  - image: \"r/a:1\"\n  initContainers:\n  - image: r/b:2\n";
    let found = find_scalars(src, |_, p| p.last() == Some(&Segment::Key("image".into()))).unwrap();
    let got: Vec<_> = found
        .iter()
        .map(|s| (s.path.to_string(), s.value.as_str(), s.line, s.column))
        .collect();
    assert_eq!(
        got,
        vec![
            ("spec.containers[0].image".to_string(), "r/a:1", 4, 12),
            ("spec.initContainers[0].image".to_string(), "r/b:2", 6, 12)
        ]
    );
}

/// A small generator of block-style YAML documents with comments, quoting and flow maps.
fn document() -> impl Strategy<Value = (String, Vec<String>)> {
    let key = "[a-z][a-z0-9_-]{0,6}";
    let scalar = prop_oneof![
        "[a-z0-9][a-z0-9./-]{0,4}(:[a-z0-9]{1,4})?",
        "[a-z0-9. #:'-]{0,10}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
        "[a-z0-9. #:\"-]{0,10}".prop_map(|s| format!("\"{}\"", s.replace('"', "\\\""))),
    ];
    let comment = prop_oneof![
        Just(String::new()),
        "[ a-z]{0,8}".prop_map(|c| format!("  # {c}"))
    ];
    let eol = prop_oneof![Just("\n"), Just("\r\n")];
    proptest::collection::vec((key, scalar, comment), 1..8)
        .prop_flat_map(move |entries| (Just(entries), eol.clone()))
        .prop_map(|(entries, eol)| {
            let mut seen = std::collections::HashSet::new();
            let mut text = format!("# generated{eol}");
            let mut keys = Vec::new();
            for (k, v, c) in entries {
                if seen.insert(k.clone()) {
                    text.push_str(&format!("{k}: {v}{c}{eol}"));
                    keys.push(k);
                }
            }
            (text, keys)
        })
}

proptest! {
    /// For any document and any new value: the edit succeeds, only bytes inside the target's
    /// old range change, and reading the target back gives the new value.
    #[test]
    fn edits_touch_only_the_target((src, keys) in document(), pick in any::<prop::sample::Index>(), value in any::<String>()) {
        let key = pick.get(&keys);
        let path: YamlPath = vec![Segment::Key(key.clone())].into();
        let before = get_scalar(&src, 0, &path).unwrap();
        let edit = set_scalar(&src, 0, &path, &value).unwrap();
        prop_assert_eq!(&edit.text[..before.range.start], &src[..before.range.start]);
        let tail = &src[before.range.end..];
        prop_assert!(edit.text.ends_with(tail));
        prop_assert_eq!(get_scalar(&edit.text, 0, &path).unwrap().value, value);
    }
}
