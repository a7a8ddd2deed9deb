//! Parsing and evaluation of arithmetic expressions.
//!
//! Supports `+ - * /`, `^` (right-associative, binding tighter than a unary
//! sign on its left: `-2^2 = -4`), parentheses, unary `-` and `+`, decimals
//! (`.5`, `1.25`) and scientific notation (`1e3`, `2.5E-2`). Whitespace is
//! ignored. Every failure is a typed [`Error`] carrying, where it applies,
//! the 1-based column of the offending character.
//!
//! ```
//! assert_eq!(maths::evaluate("2+3*(4-1)"), Ok(11.0));
//! let error = maths::evaluate("2*(3+").unwrap_err();
//! assert_eq!(error.column(), Some(6));
//! ```

mod error;
mod lexer;
mod parser;

pub use error::Error;

/// Longest accepted input, in bytes.
pub const MAX_INPUT_LEN: usize = 10_000;

/// Deepest accepted nesting of parentheses, unary signs and exponents.
pub const MAX_DEPTH: usize = 255;

/// Evaluates an arithmetic expression.
///
/// The result is always finite, and never negative zero.
///
/// # Errors
///
/// Returns an [`Error`] if the input is empty, too long, nested too deeply,
/// not a well-formed expression, divides by zero, or produces a value that
/// is infinite or not a real number.
pub fn evaluate(input: &str) -> Result<f64, Error> {
    if input.len() > MAX_INPUT_LEN {
        return Err(Error::TooLong { len: input.len() });
    }
    let (tokens, end_column) = lexer::tokenize(input)?;
    if tokens.is_empty() {
        return Err(Error::Empty);
    }
    parser::evaluate(&tokens, end_column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn ok(input: &str, expected: f64) {
        match evaluate(input) {
            Ok(value) => assert!(
                (value - expected).abs() <= 1e-12 * expected.abs().max(1.0),
                "{input}: got {value}, expected {expected}"
            ),
            Err(error) => panic!("{input}: unexpected error {error}"),
        }
    }

    #[track_caller]
    fn err(input: &str, expected: Error) {
        assert_eq!(evaluate(input), Err(expected), "{input}");
    }

    #[test]
    fn precedence() {
        ok("2+3*4", 14.0);
        ok("2*3+4", 10.0);
        ok("2+3*(4-1)", 11.0);
        ok("(2+3)*4", 20.0);
        ok("2*3^2", 18.0);
        ok("2^3*2", 16.0);
        ok("1+8/4^2", 1.5);
        ok("10-4/2", 8.0);
    }

    #[test]
    fn associativity() {
        ok("2^3^2", 512.0);
        ok("8-3-2", 3.0);
        ok("8/4/2", 1.0);
        ok("2*3/4", 1.5);
        ok("1-2+3", 2.0);
        ok("(2^3)^2", 64.0);
    }

    #[test]
    fn unary_signs() {
        ok("-3", -3.0);
        ok("+3", 3.0);
        ok("--3", 3.0);
        ok("-+-3", 3.0);
        ok("2--3", 5.0);
        ok("2*-3", -6.0);
        ok("-(2+3)", -5.0);
        ok("-2^2", -4.0);
        ok("(-2)^2", 4.0);
        ok("2^-1", 0.5);
        ok("2^-2^2", 0.0625);
        ok("-2^-2", -0.25);
    }

    #[test]
    fn negative_zero_is_normalised() {
        let value = evaluate("-0").expect("valid");
        assert!(value == 0.0 && value.is_sign_positive());
        let value = evaluate("0*-1").expect("valid");
        assert!(value.is_sign_positive());
    }

    #[test]
    fn decimals() {
        ok(".5", 0.5);
        ok("1.25", 1.25);
        ok("0.1+0.2", 0.30000000000000004);
        ok("3.", 3.0);
        ok("-.5*4", -2.0);
    }

    #[test]
    fn scientific_notation() {
        ok("1e3", 1000.0);
        ok("2.5E-2", 0.025);
        ok("1e+2", 100.0);
        ok(".5e1", 5.0);
        ok("1e3-1", 999.0);
        ok("1e-400", 0.0);
    }

    #[test]
    fn whitespace_is_ignored() {
        ok("  2 +\t3 *\n( 4 - 1 ) ", 11.0);
    }

    #[test]
    fn integral_and_fractional_results() {
        ok("7/2", 3.5);
        ok("1/3", 1.0 / 3.0);
        ok("4^0.5", 2.0);
        ok("0^0", 1.0);
    }

    #[test]
    fn empty() {
        err("", Error::Empty);
        err(" \t\n", Error::Empty);
        assert_eq!(Error::Empty.column(), None);
    }

    #[test]
    fn too_long() {
        let input = "1+".repeat(MAX_INPUT_LEN / 2) + "1";
        err(
            &input,
            Error::TooLong {
                len: MAX_INPUT_LEN + 1,
            },
        );
        assert_eq!(evaluate(&input).map_err(|e| e.column()), Err(None));
        let longest = "1+".repeat(MAX_INPUT_LEN / 2 - 1) + "11";
        assert_eq!(longest.len(), MAX_INPUT_LEN);
        ok(&longest, 5_010.0);
    }

    #[test]
    fn unknown_character() {
        err(
            "2 + x",
            Error::UnknownCharacter {
                character: 'x',
                column: 5,
            },
        );
        // Columns count characters, not bytes.
        err(
            "é+€",
            Error::UnknownCharacter {
                character: 'é',
                column: 1,
            },
        );
        err(
            "1×2",
            Error::UnknownCharacter {
                character: '×',
                column: 2,
            },
        );
        err(
            "(1)€",
            Error::UnknownCharacter {
                character: '€',
                column: 4,
            },
        );
    }

    #[test]
    fn invalid_number() {
        err(
            "1 + 2.3.4",
            Error::InvalidNumber {
                text: "2.3.4".to_owned(),
                column: 5,
            },
        );
        err(
            "3*1e",
            Error::InvalidNumber {
                text: "1e".to_owned(),
                column: 3,
            },
        );
        err(
            ".",
            Error::InvalidNumber {
                text: ".".to_owned(),
                column: 1,
            },
        );
    }

    #[test]
    fn unclosed_parenthesis() {
        err("(1+2", Error::UnclosedParenthesis { column: 1 });
        err("2*((1+2)", Error::UnclosedParenthesis { column: 3 });
        err("((1)", Error::UnclosedParenthesis { column: 1 });
    }

    #[test]
    fn unexpected_closing_parenthesis() {
        err("1+2)", Error::UnexpectedClosingParenthesis { column: 4 });
        err(")", Error::UnexpectedClosingParenthesis { column: 1 });
        err("(1))", Error::UnexpectedClosingParenthesis { column: 4 });
        err("1+)", Error::UnexpectedClosingParenthesis { column: 3 });
    }

    #[test]
    fn unexpected_end() {
        err("1+", Error::UnexpectedEnd { column: 3 });
        err("2 * ", Error::UnexpectedEnd { column: 5 });
        err("-", Error::UnexpectedEnd { column: 2 });
        err("(", Error::UnexpectedEnd { column: 2 });
        err("2^", Error::UnexpectedEnd { column: 3 });
    }

    #[test]
    fn unexpected_token() {
        let token = |token: &str, column| Error::UnexpectedToken {
            token: token.to_owned(),
            column,
        };
        err("2+*3", token("*", 3));
        err("2 3", token("3", 3));
        err("2(3)", token("(", 2));
        err("()", token(")", 2));
        err("(1+)", token(")", 4));
        err("*2", token("*", 1));
        err("(1 2)", token("2", 4));
        err("1e3 1.5", token("1.5", 5));
    }

    #[test]
    fn syntax_errors_win_over_arithmetic_errors() {
        err("1/0 +", Error::UnexpectedEnd { column: 6 });
    }

    #[test]
    fn division_by_zero() {
        err("1/0", Error::DivisionByZero { column: 2 });
        err("1 + 2 / (3 - 3)", Error::DivisionByZero { column: 7 });
        err("0/0", Error::DivisionByZero { column: 2 });
        err("0^-1", Error::DivisionByZero { column: 2 });
        // The first error wins.
        err("1/0 + 2/0", Error::DivisionByZero { column: 2 });
    }

    #[test]
    fn overflow() {
        err("1e308*10", Error::Overflow { column: 6 });
        err("10^400", Error::Overflow { column: 3 });
        err("1e308+1e308", Error::Overflow { column: 6 });
        err("-1e308-1e308", Error::Overflow { column: 7 });
        err("2 + 1e400", Error::Overflow { column: 5 });
        // An intermediate overflow fails even if the final value would fit.
        err("1e308*10/100", Error::Overflow { column: 6 });
        err("1/1e-320/1e300", Error::Overflow { column: 2 });
    }

    #[test]
    fn not_a_number() {
        err("(-8)^0.5", Error::NotANumber { column: 5 });
    }

    #[test]
    fn nesting_limit() {
        let nested = |depth: usize| "(".repeat(depth) + "1" + &")".repeat(depth);
        ok(&nested(MAX_DEPTH), 1.0);
        err(&nested(256), Error::TooDeep { column: 256 });
        err(&nested(4_000), Error::TooDeep { column: 256 });
        ok(&("-".repeat(MAX_DEPTH) + "1"), -1.0);
        err(&"-".repeat(5_000), Error::TooDeep { column: 256 });
        err(&vec!["1"; 4_000].join("^"), Error::TooDeep { column: 512 });
        // Long left-associative chains do not recurse.
        ok(&vec!["1"; 4_000].join("+"), 4_000.0);
    }

    #[test]
    fn every_error_has_a_readable_message() {
        let error = evaluate("2 + x").unwrap_err();
        assert_eq!(error.to_string(), "unknown character 'x' at column 5");
        let error = evaluate("(1").unwrap_err();
        assert_eq!(error.to_string(), "unclosed '(' at column 1");
        let error = evaluate("1/0").unwrap_err();
        assert_eq!(error.to_string(), "division by zero at column 2");
    }
}
