//! Splits SOQL text into tokens with their positions. Built on `winnow`; the parser
//! works on the resulting token list so it can name the offending token in errors.
//!
//! Datetime literals are single tokens (`2024-01-02T03:04:05.123+01:00`): once the `T`
//! is seen the rest must follow, so `…T12:00:00 00:00` (a `+` decoded as a space from a
//! URL) fails on the space with "no viable alternative at character ' '", as on
//! Salesforce.

use winnow::combinator::{alt, cut_err, opt, preceded, repeat, terminated};
use winnow::error::ErrMode;
use winnow::prelude::*;
use winnow::token::{any, literal, one_of, take_while};

use super::ast::Pos;
use super::error::{MALFORMED_QUERY, SoqlError};
use super::literals;

/// A comparison operator written with symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// What a token is; its text is kept in [`Token::text`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// A name or keyword.
    Ident,
    /// A quoted string; carries the text between the quotes, escapes unresolved.
    Str(String),
    /// `-?digits(.digits)?`
    Number,
    /// `YYYY-MM-DD`, as days since the epoch when the day exists.
    Date(Option<i32>),
    /// A datetime, as UTC milliseconds when the calendar values are valid.
    DateTime(Option<i64>),
    LParen,
    RParen,
    Comma,
    Dot,
    Colon,
    Cmp(Cmp),
    /// End of the text.
    Eof,
}

/// One token of the query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token<'s> {
    pub kind: Kind,
    /// The source text of the token (empty for [`Kind::Eof`]).
    pub text: &'s str,
    pub pos: Pos,
}

/// Converts byte offsets into rows and columns. Offsets are asked for in increasing
/// order, so walking forward from the last answer keeps lexing linear.
struct Cursor<'s> {
    src: &'s str,
    offset: usize,
    pos: Pos,
}

impl<'s> Cursor<'s> {
    fn new(src: &'s str) -> Self {
        Self { src, offset: 0, pos: Pos { row: 1, column: 1 } }
    }

    fn at(&mut self, offset: usize) -> Pos {
        if offset < self.offset {
            *self = Self::new(self.src);
        }
        let Some(skipped) = self.src.get(self.offset..offset) else {
            return self.pos;
        };
        for c in skipped.chars() {
            if c == '\n' {
                self.pos.row += 1;
                self.pos.column = 1;
            } else {
                self.pos.column += 1;
            }
        }
        self.offset = offset;
        self.pos
    }
}

/// Tokenizes `src`; the last token is always [`Kind::Eof`].
pub(crate) fn lex(src: &str) -> Result<Vec<Token<'_>>, SoqlError> {
    let mut input = src;
    let mut cursor = Cursor::new(src);
    let mut tokens = Vec::new();
    loop {
        let _ = take_while::<_, _, ErrMode<winnow::error::ContextError>>(0.., is_space).parse_next(&mut input);
        let start = src.len() - input.len();
        if input.is_empty() {
            let pos = cursor.at(start);
            tokens.push(Token { kind: Kind::Eof, text: "", pos });
            return Ok(tokens);
        }
        let before = input;
        match token.parse_next(&mut input) {
            Ok(kind) => {
                let text = &before[..before.len() - input.len()];
                let pos = cursor.at(start);
                if let Kind::Str(raw) = &kind
                    && let Err(bad) = literals::unescape(raw)
                {
                    return Err(SoqlError::new(
                        MALFORMED_QUERY,
                        pos,
                        format!(
                            "Invalid string literal '{raw}'. Illegal character sequence \
                             '{bad}' in string literal."
                        ),
                    ));
                }
                tokens.push(Token { kind, text, pos });
            }
            Err(ErrMode::Backtrack(_)) => return Err(no_viable(&mut cursor, src, start)),
            Err(_) => return Err(no_viable(&mut cursor, src, src.len() - input.len())),
        }
    }
}

fn no_viable(cursor: &mut Cursor<'_>, src: &str, offset: usize) -> SoqlError {
    let pos = cursor.at(offset);
    let what = match src.get(offset..).and_then(|rest| rest.chars().next()) {
        Some(c) => c.to_string(),
        None => "<EOF>".to_owned(),
    };
    SoqlError::new(
        MALFORMED_QUERY,
        pos,
        format!("line {}:{} no viable alternative at character '{what}'", pos.row, pos.column),
    )
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n' | '\x0c')
}

fn token(input: &mut &str) -> ModalResult<Kind> {
    alt((
        string.map(|raw: &str| Kind::Str(raw.to_owned())),
        date_or_datetime,
        number.value(Kind::Number),
        ident.value(Kind::Ident),
        punct,
    ))
    .parse_next(input)
}

/// A quoted string; returns the text between the quotes. Only escapes are
/// recognised here, their validity is checked afterwards so the error can quote them.
fn string<'s>(input: &mut &'s str) -> ModalResult<&'s str> {
    let body = repeat::<_, _, (), _, _>(
        0..,
        alt((take_while(1.., |c: char| c != '\'' && c != '\\').void(), ('\\', any).void())),
    )
    .take();
    preceded('\'', cut_err(terminated(body, '\''))).parse_next(input)
}

fn digits<'s>(n: usize) -> impl Parser<&'s str, &'s str, ErrMode<winnow::error::ContextError>> {
    take_while(n, |c: char| c.is_ascii_digit())
}

fn date_or_datetime(input: &mut &str) -> ModalResult<Kind> {
    let (y, _, m, _, d) = (digits(4), '-', digits(2), '-', digits(2)).parse_next(input)?;
    let date = literals::civil_days(num(y), num(m), num(d));
    match opt(preceded('T', cut_err(time_tail))).parse_next(input)? {
        None => Ok(Kind::Date(date.and_then(|d| i32::try_from(d).ok()))),
        Some((h, mi, s, ms, offset_min)) => {
            let valid = h < 24 && mi < 60 && s < 60;
            let millis = date
                .filter(|_| valid)
                .map(|days| days * 86_400_000 + i64::from(((h * 60 + mi) * 60 + s) * 1000 + ms) - offset_min * 60_000);
            Ok(Kind::DateTime(millis))
        }
    }
}

/// `hh:mm:ss[.fff](Z|±hh:mm)` after the `T`: hours, minutes, seconds, milliseconds
/// and the zone offset in minutes.
fn time_tail(input: &mut &str) -> ModalResult<(u32, u32, u32, u32, i64)> {
    let (h, _, mi, _, s) = (digits(2), ':', digits(2), ':', digits(2)).parse_next(input)?;
    let frac = opt(preceded('.', take_while(1.., |c: char| c.is_ascii_digit()))).parse_next(input)?;
    // Only the first three fraction digits matter at millisecond precision.
    let ms = frac.map_or(0, |f: &str| {
        f.bytes().chain(std::iter::repeat(b'0')).take(3).fold(0, |acc, b| acc * 10 + u32::from(b - b'0'))
    });
    let offset = alt((
        'Z'.value(0i64),
        (one_of(['+', '-']), digits(2), ':', digits(2)).map(|(sign, oh, _, om)| {
            let minutes = i64::from(num(oh)) * 60 + i64::from(num(om));
            if sign == '-' { -minutes } else { minutes }
        }),
    ))
    .parse_next(input)?;
    Ok((num(h), num(mi), num(s), ms, offset))
}

/// Value of a short run of ASCII digits.
fn num(digits: &str) -> u32 {
    digits.bytes().fold(0, |acc, b| acc * 10 + u32::from(b - b'0'))
}

fn number<'s>(input: &mut &'s str) -> ModalResult<&'s str> {
    let digits1 = || take_while(1.., |c: char| c.is_ascii_digit());
    (opt('-'), digits1(), opt(('.', digits1()))).take().parse_next(input)
}

fn ident<'s>(input: &mut &'s str) -> ModalResult<&'s str> {
    (
        one_of(|c: char| c.is_ascii_alphabetic() || c == '_'),
        take_while(0.., |c: char| c.is_ascii_alphanumeric() || c == '_'),
    )
        .take()
        .parse_next(input)
}

fn punct(input: &mut &str) -> ModalResult<Kind> {
    alt((
        literal("!=").value(Kind::Cmp(Cmp::Ne)),
        literal("<>").value(Kind::Cmp(Cmp::Ne)),
        literal("<=").value(Kind::Cmp(Cmp::Le)),
        literal(">=").value(Kind::Cmp(Cmp::Ge)),
        '<'.value(Kind::Cmp(Cmp::Lt)),
        '>'.value(Kind::Cmp(Cmp::Gt)),
        '='.value(Kind::Cmp(Cmp::Eq)),
        '('.value(Kind::LParen),
        ')'.value(Kind::RParen),
        ','.value(Kind::Comma),
        '.'.value(Kind::Dot),
        ':'.value(Kind::Colon),
    ))
    .parse_next(input)
}
