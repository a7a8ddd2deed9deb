//! Error type of the `maths` crate: every way parsing or evaluating an
//! expression can fail, each carrying the 1-based column it applies to.

use crate::{MAX_DEPTH, MAX_INPUT_LEN};

/// Why an expression could not be evaluated.
///
/// Columns are 1-based and count characters (not bytes) from the start of the
/// input, so they can be shown directly under the offending character.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is empty or contains only whitespace.
    #[error("expression is empty")]
    Empty,

    /// The input is longer than [`MAX_INPUT_LEN`] bytes.
    #[error("expression is too long: {len} bytes (limit is {MAX_INPUT_LEN})")]
    TooLong {
        /// Length of the rejected input in bytes.
        len: usize,
    },

    /// A character that is not part of the expression language.
    #[error("unknown character '{character}' at column {column}")]
    UnknownCharacter {
        /// The offending character.
        character: char,
        /// Its column.
        column: usize,
    },

    /// A malformed number literal, such as `.` or `1e`.
    #[error("invalid number '{text}' at column {column}")]
    InvalidNumber {
        /// The text of the literal.
        text: String,
        /// Column of its first character.
        column: usize,
    },

    /// A `(` that is never closed.
    #[error("unclosed '(' at column {column}")]
    UnclosedParenthesis {
        /// Column of the unclosed `(`.
        column: usize,
    },

    /// A `)` without a matching `(`.
    #[error("unexpected ')' at column {column}: no matching '('")]
    UnexpectedClosingParenthesis {
        /// Column of the `)`.
        column: usize,
    },

    /// The input ends where a number or `(` was expected.
    #[error("unexpected end of expression at column {column}: expected a number or '('")]
    UnexpectedEnd {
        /// Column just past the last character.
        column: usize,
    },

    /// A token that cannot appear at this position.
    #[error("unexpected '{token}' at column {column}")]
    UnexpectedToken {
        /// The text of the token.
        token: String,
        /// Column of its first character.
        column: usize,
    },

    /// Parentheses, unary signs or powers nested deeper than [`MAX_DEPTH`].
    #[error("expression is nested too deeply at column {column} (limit is {MAX_DEPTH} levels)")]
    TooDeep {
        /// Column where the limit was exceeded.
        column: usize,
    },

    /// A division by zero, or zero raised to a negative power.
    #[error("division by zero at column {column}")]
    DivisionByZero {
        /// Column of the `/` or `^` operator.
        column: usize,
    },

    /// A literal, intermediate or final value too large to represent.
    #[error("number too large at column {column}: the result overflows")]
    Overflow {
        /// Column of the literal or operator producing the value.
        column: usize,
    },

    /// A result that is not a real number, such as `(-8)^0.5`.
    #[error("result is not a real number at column {column}")]
    NotANumber {
        /// Column of the operator producing the value.
        column: usize,
    },
}

impl Error {
    /// The 1-based column the error applies to, if any.
    #[must_use]
    pub fn column(&self) -> Option<usize> {
        match self {
            Self::Empty | Self::TooLong { .. } => None,
            Self::UnknownCharacter { column, .. }
            | Self::InvalidNumber { column, .. }
            | Self::UnclosedParenthesis { column }
            | Self::UnexpectedClosingParenthesis { column }
            | Self::UnexpectedEnd { column }
            | Self::UnexpectedToken { column, .. }
            | Self::TooDeep { column }
            | Self::DivisionByZero { column }
            | Self::Overflow { column }
            | Self::NotANumber { column } => Some(*column),
        }
    }
}
