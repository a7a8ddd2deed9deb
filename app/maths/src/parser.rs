//! Recursive-descent parser that evaluates the expression while parsing it.
//!
//! Grammar, from loosest to tightest binding:
//!
//! ```text
//! expression = term (("+" | "-") term)*
//! term       = unary (("*" | "/") unary)*
//! unary      = ("+" | "-") unary | power
//! power      = primary ("^" unary)?
//! primary    = NUMBER | "(" expression ")"
//! ```
//!
//! `^` is right-associative and binds tighter than a unary sign on its left
//! (`-2^2 = -4`), while its exponent may carry its own sign (`2^-1 = 0.5`).
//!
//! Arithmetic errors (division by zero, overflow, not a number) are recorded
//! and reported only once the whole input has parsed, so a syntax error
//! anywhere takes precedence over them. Left-associative chains are loops, so
//! only parentheses, signs and exponents recurse, and [`MAX_DEPTH`] bounds
//! that recursion.

use crate::lexer::{Kind, Token};
use crate::{Error, MAX_DEPTH};

/// Parses and evaluates `tokens`; `end_column` is the column just past the input.
pub(crate) fn evaluate(tokens: &[Token<'_>], end_column: usize) -> Result<f64, Error> {
    let mut parser = Parser {
        tokens,
        pos: 0,
        end_column,
        depth: 0,
        open_parens: 0,
        arithmetic_error: None,
    };
    let value = parser.expression()?;
    if let Some(token) = parser.tokens.get(parser.pos) {
        return Err(parser.unexpected(token));
    }
    match parser.arithmetic_error {
        Some(error) => Err(error),
        // Adding zero turns a negative zero into a positive one.
        None => Ok(value + 0.0),
    }
}

struct Parser<'t, 'a> {
    tokens: &'t [Token<'a>],
    pos: usize,
    end_column: usize,
    depth: usize,
    open_parens: usize,
    arithmetic_error: Option<Error>,
}

impl<'t, 'a> Parser<'t, 'a> {
    fn peek_kind(&self) -> Option<Kind> {
        self.tokens.get(self.pos).map(|t| t.kind)
    }

    fn advance(&mut self) -> Option<&'t Token<'a>> {
        let token = self.tokens.get(self.pos)?;
        self.pos += 1;
        Some(token)
    }

    /// The error for a token that cannot appear where it is.
    fn unexpected(&self, token: &Token<'_>) -> Error {
        if token.kind == Kind::RightParen && self.open_parens == 0 {
            Error::UnexpectedClosingParenthesis {
                column: token.column,
            }
        } else {
            Error::UnexpectedToken {
                token: token.text.to_owned(),
                column: token.column,
            }
        }
    }

    /// Runs `f` one nesting level deeper, failing past [`MAX_DEPTH`].
    fn nested(
        &mut self,
        column: usize,
        f: impl FnOnce(&mut Self) -> Result<f64, Error>,
    ) -> Result<f64, Error> {
        if self.depth >= MAX_DEPTH {
            return Err(Error::TooDeep { column });
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    /// Keeps the first arithmetic error; later values are meaningless then.
    fn record(&mut self, error: Error) {
        self.arithmetic_error.get_or_insert(error);
    }

    /// Checks the result of the operator at `column`.
    fn checked(&mut self, value: f64, column: usize) -> f64 {
        if value.is_nan() {
            self.record(Error::NotANumber { column });
        } else if value.is_infinite() {
            self.record(Error::Overflow { column });
        }
        value
    }

    fn expression(&mut self) -> Result<f64, Error> {
        let mut value = self.term()?;
        while let Some(Kind::Plus | Kind::Minus) = self.peek_kind() {
            let Some(op) = self.advance() else { break };
            let rhs = self.term()?;
            value = if op.kind == Kind::Plus {
                value + rhs
            } else {
                value - rhs
            };
            value = self.checked(value, op.column);
        }
        Ok(value)
    }

    fn term(&mut self) -> Result<f64, Error> {
        let mut value = self.unary()?;
        while let Some(Kind::Star | Kind::Slash) = self.peek_kind() {
            let Some(op) = self.advance() else { break };
            let rhs = self.unary()?;
            if op.kind == Kind::Star {
                value *= rhs;
            } else {
                if rhs == 0.0 {
                    self.record(Error::DivisionByZero { column: op.column });
                }
                value /= rhs;
            }
            value = self.checked(value, op.column);
        }
        Ok(value)
    }

    fn unary(&mut self) -> Result<f64, Error> {
        match self.tokens.get(self.pos) {
            Some(sign) if matches!(sign.kind, Kind::Plus | Kind::Minus) => {
                self.pos += 1;
                let value = self.nested(sign.column, Self::unary)?;
                Ok(if sign.kind == Kind::Minus {
                    -value
                } else {
                    value
                })
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<f64, Error> {
        let base = self.primary()?;
        if self.peek_kind() != Some(Kind::Caret) {
            return Ok(base);
        }
        let Some(op) = self.advance() else {
            return Ok(base);
        };
        let exponent = self.nested(op.column, Self::unary)?;
        if base == 0.0 && exponent < 0.0 {
            self.record(Error::DivisionByZero { column: op.column });
        }
        Ok(self.checked(base.powf(exponent), op.column))
    }

    fn primary(&mut self) -> Result<f64, Error> {
        let Some(token) = self.advance() else {
            return Err(Error::UnexpectedEnd {
                column: self.end_column,
            });
        };
        match token.kind {
            Kind::Number(value) => Ok(value),
            Kind::LeftParen => self.nested(token.column, |parser| {
                parser.open_parens += 1;
                let value = parser.expression()?;
                parser.open_parens -= 1;
                match parser.advance() {
                    Some(close) if close.kind == Kind::RightParen => Ok(value),
                    Some(other) => Err(parser.unexpected(other)),
                    None => Err(Error::UnclosedParenthesis {
                        column: token.column,
                    }),
                }
            }),
            _ => Err(self.unexpected(token)),
        }
    }
}
