//! Lexer: turns the input text into tokens, each tagged with its 1-based
//! column, and rejects unknown characters and malformed number literals.

use crate::Error;

/// The kind of a token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Number(f64),
    Plus,
    Minus,
    Star,
    Slash,
    Caret,
    LeftParen,
    RightParen,
}

/// A token with its source text and the column of its first character.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token<'a> {
    pub(crate) kind: Kind,
    pub(crate) text: &'a str,
    pub(crate) column: usize,
}

/// The tokens of `input` and the column just past its last character.
pub(crate) fn tokenize(input: &str) -> Result<(Vec<Token<'_>>, usize), Error> {
    let mut tokens = Vec::new();
    let mut chars = input.char_indices().peekable();
    let mut column = 0;
    while let Some((start, c)) = chars.next() {
        column += 1;
        let kind = match c {
            c if c.is_whitespace() => continue,
            '+' => Kind::Plus,
            '-' => Kind::Minus,
            '*' => Kind::Star,
            '/' => Kind::Slash,
            '^' => Kind::Caret,
            '(' => Kind::LeftParen,
            ')' => Kind::RightParen,
            '0'..='9' | '.' => {
                // Every character of a number literal is ASCII, so byte
                // offsets and columns advance together.
                let mut end = start + 1;
                while let Some(&(i, c)) = chars.peek() {
                    if !(c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E')) {
                        break;
                    }
                    // A sign belongs to the literal only right after its exponent marker.
                    chars.next();
                    end = i + 1;
                    if matches!(c, 'e' | 'E')
                        && let Some(&(i, '+' | '-')) = chars.peek()
                    {
                        chars.next();
                        end = i + 1;
                    }
                }
                let text = &input[start..end];
                let value = parse_number(text, column)?;
                tokens.push(Token {
                    kind: Kind::Number(value),
                    text,
                    column,
                });
                column += end - start - 1;
                continue;
            }
            character => return Err(Error::UnknownCharacter { character, column }),
        };
        tokens.push(Token {
            kind,
            text: &input[start..start + c.len_utf8()],
            column,
        });
    }
    Ok((tokens, column + 1))
}

/// Parses a number literal: `digits [. digits] [(e|E) [+|-] digits]`, where
/// the mantissa needs at least one digit on either side of the point.
fn parse_number(text: &str, column: usize) -> Result<f64, Error> {
    let invalid = || Error::InvalidNumber {
        text: text.to_owned(),
        column,
    };
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !all_digits(int) || !all_digits(frac) {
        return Err(invalid());
    }
    if let Some(exponent) = exponent {
        let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        if digits.is_empty() || !all_digits(digits) {
            return Err(invalid());
        }
    }
    let value: f64 = text.parse().map_err(|_| invalid())?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::Overflow { column })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<Kind> {
        tokenize(input)
            .expect("valid input")
            .0
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    #[test]
    fn numbers() {
        assert_eq!(kinds("1.25"), [Kind::Number(1.25)]);
        assert_eq!(kinds(".5"), [Kind::Number(0.5)]);
        assert_eq!(kinds("5."), [Kind::Number(5.0)]);
        assert_eq!(kinds("1e3"), [Kind::Number(1000.0)]);
        assert_eq!(kinds("2.5E-2"), [Kind::Number(0.025)]);
        assert_eq!(kinds("1e+2"), [Kind::Number(100.0)]);
    }

    #[test]
    fn columns_count_characters() {
        let (tokens, end) = tokenize(" 12 +\t(3)").expect("valid input");
        let columns: Vec<usize> = tokens.iter().map(|t| t.column).collect();
        assert_eq!(columns, [2, 5, 7, 8, 9]);
        assert_eq!(end, 10);
        let (tokens, _) = tokenize("\u{a0}\u{3000}(1)").expect("valid input");
        assert_eq!(tokens[0].column, 3);
        assert_eq!(tokens[1].column, 4);
    }

    #[test]
    fn exponent_sign_only_after_marker() {
        assert_eq!(
            kinds("1-2"),
            [Kind::Number(1.0), Kind::Minus, Kind::Number(2.0)]
        );
        assert_eq!(
            kinds("1e2-3"),
            [Kind::Number(100.0), Kind::Minus, Kind::Number(3.0)]
        );
    }

    #[test]
    fn letters_after_numbers_are_unknown() {
        assert_eq!(
            tokenize("2x"),
            Err(Error::UnknownCharacter {
                character: 'x',
                column: 2
            })
        );
    }

    #[test]
    fn invalid_numbers() {
        for (input, text) in [
            (".", "."),
            ("1e", "1e"),
            ("1e+", "1e+"),
            ("1.2.3", "1.2.3"),
            ("1ee", "1ee"),
            ("1e3e4", "1e3e4"),
        ] {
            assert_eq!(
                tokenize(input),
                Err(Error::InvalidNumber {
                    text: text.to_owned(),
                    column: 1
                }),
                "{input}"
            );
        }
    }
}
