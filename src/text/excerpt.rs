//! Bounded excerpts of text nobody promised to keep short: an error body from GitLab, a proxy
//! in front of it or a registry is cut to a few hundred bytes, on a character boundary, and
//! says how much was left out.

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

/// An error body as an error message shows it: lossy UTF-8, trimmed, cut to [`ERROR_BODY`]
/// bytes.
pub fn error_body(body: &[u8]) -> String {
    excerpt(String::from_utf8_lossy(body).trim(), ERROR_BODY)
}

#[cfg(test)]
mod tests {
    use super::*;

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
