//! Bounded excerpts of text nobody promised to keep short: an error body from GitLab, a proxy
//! in front of it or a registry is cut to a few hundred bytes, on a character boundary, and
//! says how much was left out; a merge request's title, description or note is cut to GitLab's
//! limits in characters ([`truncate`]).

/// How much of an error body an error message keeps, in bytes.
pub const ERROR_BODY: usize = 300;

/// `text` cut to at most `max` bytes (on a character boundary), followed by `… N more bytes`
/// when something was cut; whole when it fits.
pub fn excerpt(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… {} more bytes", &text[..end], text.len() - end)
}

/// `text` cut to at most `max` characters. A cut one-line text ends with `…`; a longer text
/// ends with `… N more characters` on a line of its own, so a reader knows what is missing.
pub fn truncate(text: &str, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text.to_string();
    }
    if !text.contains('\n') {
        let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        return out;
    }
    // The marker's own length depends on N; the widest N is `total`.
    let widest = format!("\n\n… {total} more characters").chars().count();
    let keep = max.saturating_sub(widest);
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(&format!("\n\n… {} more characters", total - keep));
    out
}

/// An error body as an error message shows it: lossy UTF-8, trimmed, cut to [`ERROR_BODY`]
/// bytes.
pub fn error_body(body: &[u8]) -> String {
    excerpt(String::from_utf8_lossy(body).trim(), ERROR_BODY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_say_how_much_is_missing() {
        let text = format!("head\n{}", "x".repeat(500));
        let cut = truncate(&text, 100);
        assert!(cut.chars().count() <= 100, "{cut}");
        assert!(cut.ends_with("\n\n… 428 more characters"), "{cut}");
        assert_eq!(truncate("short\ntext", 100), "short\ntext");
    }

    #[test]
    fn short_text_is_whole() {
        assert_eq!(excerpt("not found", 300), "not found");
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary_and_counted() {
        let text = "é".repeat(200); // 400 bytes
        let cut = excerpt(&text, 301);
        assert_eq!(cut, format!("{}… 100 more bytes", "é".repeat(150)));
    }

    #[test]
    fn a_megabyte_body_becomes_a_few_hundred_bytes() {
        let body = vec![b'x'; 1 << 20];
        let text = error_body(&body);
        assert!(text.len() < ERROR_BODY + 40, "{}", text.len());
        assert!(
            text.ends_with(&format!("… {} more bytes", (1 << 20) - ERROR_BODY)),
            "{}",
            &text[ERROR_BODY..]
        );
        assert_eq!(
            error_body(b"  {\"message\":\"401 Unauthorized\"}\n"),
            "{\"message\":\"401 Unauthorized\"}"
        );
    }
}
