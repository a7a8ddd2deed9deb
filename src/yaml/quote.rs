//! Writing a new scalar value in the style the old one had, so that it reads back as the same
//! string under YAML 1.1 (PyYAML, Helm's go-yaml v2 era) and YAML 1.2 (core schema) alike.
//!
//! A plain value stays plain unless some resolver would read it as something other than a string
//! (`2.10` is a float, `on` a bool, `2024-01-01` a timestamp) or the plain syntax cannot hold it;
//! then it is double-quoted. Quoted values keep their quote character.

use std::sync::LazyLock;

use regex::Regex;

/// The quoting of a written scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// No quotes.
    Plain,
    /// `'...'`
    Single,
    /// `"..."`
    Double,
}

/// Every implicit resolver of YAML 1.1 as PyYAML implements it, and of the YAML 1.2 core and
/// JSON schemas: a plain scalar matching any of these is not read as a string by someone.
static NON_STRING: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        // bool, YAML 1.1 (including the single letters of the 1.1 spec) and 1.2
        r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$",
        // null
        r"^(?:~|null|Null|NULL|)$",
        // int, YAML 1.1: binary, octal, decimal, hex, sexagesimal
        r"^[-+]?0b[0-1_]+$",
        r"^[-+]?0[0-7_]+$",
        r"^[-+]?(?:0|[1-9][0-9_]*)$",
        r"^[-+]?0x[0-9a-fA-F_]+$",
        r"^[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+$",
        // int, YAML 1.2 core: decimal with leading zeros, 0o octal
        r"^[-+]?[0-9]+$",
        r"^0o[0-7]+$",
        // float, YAML 1.1
        r"^[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?$",
        r"^\.[0-9_]+(?:[eE][-+][0-9]+)?$",
        r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*$",
        r"^[-+]?\.(?:inf|Inf|INF)$",
        r"^\.(?:nan|NaN|NAN)$",
        // float, YAML 1.2 core (exponent without a dot: `1e3`)
        r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$",
        // timestamp, YAML 1.1
        r"^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]$",
        r"^[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?$",
        // merge key and the 1.1 value key
        r"^(?:<<|=)$",
    ]
    .iter()
    .map(|re| Regex::new(re).expect("resolver patterns are valid"))
    .collect()
});

/// True when a plain scalar with this text would be read as something other than a string.
pub fn resolves_to_non_string(value: &str) -> bool {
    NON_STRING.iter().any(|re| re.is_match(value))
}

/// True when `value` can be written as a plain scalar that reads back as this same string.
/// Deliberately stricter than the YAML grammar: when in doubt, quote.
pub fn plain_is_safe(value: &str, in_flow: bool) -> bool {
    let Some(first) = value.chars().next() else {
        return false;
    };
    let indicator = matches!(
        first,
        '-' | '?'
            | ':'
            | ','
            | '['
            | ']'
            | '{'
            | '}'
            | '#'
            | '&'
            | '*'
            | '!'
            | '|'
            | '>'
            | '\''
            | '"'
            | '%'
            | '@'
            | '`'
    );
    let unsafe_char = value.chars().any(|c| {
        c.is_whitespace()
            || c.is_control()
            || c == '\u{feff}'
            || (in_flow && matches!(c, ',' | '[' | ']' | '{' | '}'))
    });
    // `---` or `...` at the start of a line ends the document (a root scalar, a flow item on its
    // own line): found by the yaml_edit fuzz property.
    let marker = value.starts_with("---") || value.starts_with("...");
    !indicator && !unsafe_char && !marker && !value.ends_with(':') && !resolves_to_non_string(value)
}

/// Renders `value` for a scalar that was written in `style`: the text to splice in, and the
/// style it ends up in.
pub fn render(value: &str, style: Style, in_flow: bool) -> (String, Style) {
    match style {
        Style::Plain if plain_is_safe(value, in_flow) => (value.to_string(), Style::Plain),
        Style::Single if !value.chars().any(must_escape) => {
            (format!("'{}'", value.replace('\'', "''")), Style::Single)
        }
        _ => (double_quoted(value), Style::Double),
    }
}

/// Characters written only as escapes: controls, the byte order mark, and the line and
/// paragraph separators, which YAML 1.1 readers (libyaml, PyYAML, go-yaml) take for line breaks
/// and fold into a space inside quotes (found by the yaml_edit fuzz property).
fn must_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}')
}

/// `value` as a double-quoted scalar, escaping `\`, `"`, every control character and the line
/// and paragraph separators.
pub fn double_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => push_char(&mut out, c),
        }
    }
    out.push('"');
    out
}

/// `text` for the inside of a `# comment`: every character a YAML reader could take for a line
/// break (LF, CR, NEL, U+2028, U+2029) or that [`double_quoted`] never writes raw (controls, the
/// byte order mark) is written as the escape a quoted value would use, so the comment stays on
/// its line and no text after it becomes a key.
pub fn comment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_char(&mut out, c);
    }
    out
}

/// `c`, or its escape when it must not appear raw.
fn push_char(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        '\0' => out.push_str("\\0"),
        c if must_escape(c) => {
            let code = c as u32;
            if code <= 0xff {
                out.push_str(&format!("\\x{code:02x}"));
            } else {
                out.push_str(&format!("\\u{code:04x}"));
            }
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn comments_stay_on_their_line() {
        let text = "town\u{2028}requesters: [x]\u{2029}a\u{85}b\rc\nd\u{feff}";
        let comment = comment(text);
        assert_eq!(
            comment,
            "town\\u2028requesters: [x]\\u2029a\\x85b\\rc\\nd\\ufeff"
        );
        let yaml = format!("# {comment}\nkey: 1\n");
        let value: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(value.as_mapping().unwrap().len(), 1, "{yaml}");
        assert_eq!(
            super::comment("plain text, 'quotes' \"too\""),
            "plain text, 'quotes' \"too\""
        );
    }

    #[test]
    fn values_that_would_change_type_are_not_plain() {
        for v in [
            "1.10",
            "2.0",
            "2.10",
            "1e3",
            "1E-3",
            ".5",
            "0x1F",
            "0o17",
            "017",
            "09",
            "1_000",
            "1:20",
            "true",
            "on",
            "Off",
            "y",
            "N",
            "null",
            "~",
            "",
            "2024-01-15",
            "2001-12-14t21:59:43.10-05:00",
            ".inf",
            "-.Inf",
            ".NaN",
            "<<",
            "=",
            "16",
            "-3",
        ] {
            assert!(!plain_is_safe(v, false), "{v:?} must be quoted");
        }
    }

    #[test]
    fn ordinary_tags_stay_plain() {
        for v in [
            "1.2.3",
            "v1.2.3",
            "9.8.7-promoted",
            "1.0.0-rc.1+build.5",
            "latest",
            "sha-3f2a9c1",
            "registry.example.com:5000/team/app:1.2.3",
            "app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "1.2.3_beta",
            "2024.01.15",
            "nginx:1.25",
        ] {
            assert!(plain_is_safe(v, false), "{v:?} can stay plain");
        }
    }

    #[test]
    fn plain_syntax_limits_force_quotes() {
        for v in [
            "-rc", ":x", "#1", "a b", "a:", "*x", "&a", "!t", "a\tb", "'a", "\"a",
        ] {
            assert!(!plain_is_safe(v, false), "{v:?}");
        }
        assert!(plain_is_safe("a,b", false));
        assert!(!plain_is_safe("a,b", true));
        assert!(!plain_is_safe("a]", true));
    }

    #[test]
    fn render_keeps_quote_style() {
        assert_eq!(
            render("1.2.4", Style::Plain, false),
            ("1.2.4".into(), Style::Plain)
        );
        assert_eq!(
            render("2.10", Style::Plain, false),
            ("\"2.10\"".into(), Style::Double)
        );
        assert_eq!(
            render("2.10", Style::Single, false),
            ("'2.10'".into(), Style::Single)
        );
        assert_eq!(
            render("it's", Style::Single, false),
            ("'it''s'".into(), Style::Single)
        );
        assert_eq!(
            render("a\"b\\c", Style::Double, false),
            ("\"a\\\"b\\\\c\"".into(), Style::Double)
        );
        assert_eq!(
            render("a\nb", Style::Single, false),
            ("\"a\\nb\"".into(), Style::Double)
        );
        assert_eq!(
            render("\u{7f}", Style::Double, false),
            ("\"\\x7f\"".into(), Style::Double)
        );
    }

    proptest! {
        /// Whatever the value, the rendered scalar parses back to exactly that string, and a
        /// plain rendering never matches a non-string resolver.
        #[test]
        fn rendered_scalars_read_back_as_the_same_string(
            value in any::<String>(),
            style in prop_oneof![Just(Style::Plain), Just(Style::Single), Just(Style::Double)],
            in_flow in any::<bool>(),
        ) {
            let (text, written) = render(&value, style, in_flow);
            let doc = if in_flow { format!("{{k: {text}}}\n") } else { format!("k: {text}\n") };
            let mut scalars = Vec::new();
            for event in saphyr_parser::Parser::new_from_str(&doc) {
                let (event, _) = event.map_err(|e| TestCaseError::fail(format!("{doc:?}: {e}")))?;
                if let saphyr_parser::Event::Scalar(v, _, _, _) = event {
                    scalars.push(v.into_owned());
                }
            }
            prop_assert_eq!(scalars, vec!["k".to_string(), value.clone()], "{:?}", doc);
            if written == Style::Plain {
                prop_assert!(!resolves_to_non_string(&value));
            }
        }
    }
}
