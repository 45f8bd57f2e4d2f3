//! Recursive-descent parser from tokens to the [`Query`] tree. It checks syntax only;
//! names and types are the binder's business.

use super::ast::{
    Comparison, Condition, FieldRef, Literal, LiteralKind, Name, Operator, OrderExpr, Query, SelectExpr, Spanned,
};
use super::error::{MALFORMED_QUERY, SoqlError};
use super::lex::{Cmp, Kind, Token, lex};
use super::literals::{self, DateLiteralName};

/// SOQL's reserved words: they can never name a field or an object. `ORDER`, `OFFSET`
/// and `COUNT` are not among them (`Order` is an object), so they are recognised only
/// where the grammar expects them.
const RESERVED: &[&str] = &[
    "AND", "ASC", "DESC", "EXCLUDES", "FIRST", "FROM", "GROUP", "HAVING", "IN", "INCLUDES", "LAST", "LIKE", "LIMIT",
    "NOT", "NULL", "NULLS", "OR", "SELECT", "WHERE", "WITH",
];

/// Deepest nesting of parentheses and NOTs accepted; keeps recursion (here, in the
/// binder and in evaluation) far from the stack limit.
const MAX_DEPTH: usize = 100;

/// Parses SOQL text into a [`Query`], checking syntax only.
pub fn parse(soql: &str) -> Result<Query> {
    let tokens = lex(soql)?;
    let mut p = Parser { tokens, at: 0 };
    p.query()
}

struct Parser<'s> {
    tokens: Vec<Token<'s>>,
    at: usize,
}

type Result<T> = std::result::Result<T, SoqlError>;

impl<'s> Parser<'s> {
    fn peek(&self) -> &Token<'s> {
        // The list always ends with Eof, and `bump` never moves past it.
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, ahead: usize) -> &Token<'s> {
        &self.tokens[(self.at + ahead).min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> Token<'s> {
        let t = self.peek().clone();
        if t.kind != Kind::Eof {
            self.at += 1;
        }
        t
    }

    fn unexpected(&self) -> SoqlError {
        unexpected(self.peek())
    }

    fn is_kw(&self, kw: &str) -> bool {
        is_kw(self.peek(), kw)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let hit = self.is_kw(kw);
        if hit {
            self.bump();
        }
        hit
    }

    fn expect_kw(&mut self, kw: &str) -> Result<()> {
        if self.eat_kw(kw) { Ok(()) } else { Err(self.unexpected()) }
    }

    fn expect(&mut self, kind: &Kind) -> Result<Token<'s>> {
        if &self.peek().kind == kind { Ok(self.bump()) } else { Err(self.unexpected()) }
    }

    /// A name that may be a field, relationship or object: an identifier that is not
    /// a reserved word.
    fn name(&mut self) -> Result<Name> {
        let t = self.peek();
        if t.kind == Kind::Ident && !is_reserved(t.text) {
            let t = self.bump();
            Ok(Name { text: t.text.to_owned(), pos: t.pos })
        } else {
            Err(self.unexpected())
        }
    }

    fn field(&mut self) -> Result<FieldRef> {
        let mut segments = vec![self.name()?];
        while self.peek().kind == Kind::Dot {
            self.bump();
            segments.push(self.name()?);
        }
        Ok(FieldRef { segments })
    }

    fn query(&mut self) -> Result<Query> {
        self.expect_kw("SELECT")?;
        let select = self.select_list()?;
        self.expect_kw("FROM")?;
        let from = self.name()?;
        let filter = if self.eat_kw("WHERE") { Some(self.condition(0)?) } else { None };
        let mut order_by = Vec::new();
        if self.is_kw("ORDER") && is_kw(self.peek_at(1), "BY") {
            self.bump();
            self.bump();
            loop {
                order_by.push(self.order_item()?);
                if self.peek().kind != Kind::Comma {
                    break;
                }
                self.bump();
            }
        }
        let limit = if self.eat_kw("LIMIT") { Some(self.unsigned()?) } else { None };
        let offset = if self.eat_kw("OFFSET") { Some(self.unsigned()?) } else { None };
        if self.peek().kind != Kind::Eof {
            return Err(self.unexpected());
        }
        Ok(Query { select, from, filter, order_by, limit, offset })
    }

    fn select_list(&mut self) -> Result<Vec<SelectExpr>> {
        let mut items = Vec::new();
        loop {
            let item = if self.is_kw("COUNT") && self.peek_at(1).kind == Kind::LParen {
                let count = self.bump();
                self.bump();
                if self.peek().kind == Kind::RParen {
                    // COUNT() is a query form of its own, never one item among others.
                    if !items.is_empty() {
                        return Err(self.unexpected());
                    }
                    self.bump();
                    if !self.is_kw("FROM") {
                        return Err(self.unexpected());
                    }
                    return Ok(vec![SelectExpr::CountAll(count.pos)]);
                }
                let field = self.field()?;
                self.expect(&Kind::RParen)?;
                let alias = if self.alias_follows() { Some(self.name()?) } else { None };
                SelectExpr::Count { field, alias }
            } else {
                let field = self.field()?;
                if self.alias_follows() {
                    return Err(SoqlError::new(
                        MALFORMED_QUERY,
                        self.peek().pos,
                        "Only aggregate expressions use field aliasing",
                    ));
                }
                SelectExpr::Field(field)
            };
            items.push(item);
            if self.peek().kind != Kind::Comma {
                return Ok(items);
            }
            self.bump();
        }
    }

    fn alias_follows(&self) -> bool {
        let t = self.peek();
        t.kind == Kind::Ident && !is_reserved(t.text)
    }

    fn order_item(&mut self) -> Result<OrderExpr> {
        let field = self.field()?;
        let descending = if self.eat_kw("DESC") {
            true
        } else {
            self.eat_kw("ASC");
            false
        };
        let nulls_first = if self.eat_kw("NULLS") {
            if self.eat_kw("FIRST") {
                Some(true)
            } else {
                self.expect_kw("LAST")?;
                Some(false)
            }
        } else {
            None
        };
        Ok(OrderExpr { field, descending, nulls_first })
    }

    /// A LIMIT or OFFSET count.
    fn unsigned(&mut self) -> Result<Spanned<u64>> {
        let t = self.peek();
        match (&t.kind, t.text.parse::<u64>()) {
            (Kind::Number, Ok(value)) => {
                let pos = t.pos;
                self.bump();
                Ok(Spanned { value, pos })
            }
            _ => Err(self.unexpected()),
        }
    }

    /// `unary (AND unary)*` or `unary (OR unary)*`; the other connective at the same
    /// level is the unexpected token, as on Salesforce.
    fn condition(&mut self, depth: usize) -> Result<Condition> {
        let first = self.unary(depth)?;
        let connective = if self.is_kw("AND") {
            "AND"
        } else if self.is_kw("OR") {
            "OR"
        } else {
            return Ok(first);
        };
        let mut parts = vec![first];
        while self.eat_kw(connective) {
            parts.push(self.unary(depth)?);
        }
        if self.is_kw("AND") || self.is_kw("OR") {
            return Err(self.unexpected());
        }
        Ok(if connective == "AND" { Condition::And(parts) } else { Condition::Or(parts) })
    }

    fn unary(&mut self, depth: usize) -> Result<Condition> {
        if depth >= MAX_DEPTH {
            return Err(self.unexpected());
        }
        if self.eat_kw("NOT") {
            return Ok(Condition::Not(Box::new(self.unary(depth + 1)?)));
        }
        if self.peek().kind == Kind::LParen {
            self.bump();
            let inner = self.condition(depth + 1)?;
            self.expect(&Kind::RParen)?;
            return Ok(inner);
        }
        self.comparison().map(Condition::Compare)
    }

    fn comparison(&mut self) -> Result<Comparison> {
        let field = self.field()?;
        let op_token = self.peek().clone();
        let op = match &op_token.kind {
            Kind::Cmp(c) => match c {
                Cmp::Eq => Operator::Eq,
                Cmp::Ne => Operator::Ne,
                Cmp::Lt => Operator::Lt,
                Cmp::Le => Operator::Le,
                Cmp::Gt => Operator::Gt,
                Cmp::Ge => Operator::Ge,
            },
            Kind::Ident if is_kw(&op_token, "LIKE") => Operator::Like,
            Kind::Ident if is_kw(&op_token, "IN") => Operator::In,
            Kind::Ident if is_kw(&op_token, "INCLUDES") => Operator::Includes,
            Kind::Ident if is_kw(&op_token, "EXCLUDES") => Operator::Excludes,
            Kind::Ident if is_kw(&op_token, "NOT") && is_kw(self.peek_at(1), "IN") => {
                self.bump();
                Operator::NotIn
            }
            _ => return Err(self.unexpected()),
        };
        self.bump();
        let values = if op.takes_list() {
            self.expect(&Kind::LParen)?;
            let mut values = vec![self.value()?];
            while self.peek().kind == Kind::Comma {
                self.bump();
                values.push(self.value()?);
            }
            self.expect(&Kind::RParen)?;
            values
        } else {
            vec![self.value()?]
        };
        Ok(Comparison { field, op, op_pos: op_token.pos, values })
    }

    fn value(&mut self) -> Result<Literal> {
        let t = self.peek().clone();
        let kind = match &t.kind {
            Kind::Str(raw) => LiteralKind::String {
                // The lexer already rejected bad escapes.
                value: literals::unescape(raw).unwrap_or_default(),
                raw: raw.clone(),
            },
            Kind::Number => LiteralKind::Number(t.text.to_owned()),
            Kind::Date(d) => LiteralKind::Date(*d),
            Kind::DateTime(ms) => LiteralKind::DateTime(*ms),
            Kind::Colon => {
                return Err(SoqlError::new(MALFORMED_QUERY, t.pos, "Bind variables only allowed in Apex code"));
            }
            Kind::Ident if is_kw(&t, "TRUE") => LiteralKind::Boolean(true),
            Kind::Ident if is_kw(&t, "FALSE") => LiteralKind::Boolean(false),
            Kind::Ident if is_kw(&t, "NULL") => LiteralKind::Null,
            Kind::Ident => match literals::date_literal(t.text) {
                Some(DateLiteralName::Fixed(range)) => LiteralKind::Relative(range),
                Some(DateLiteralName::WithN(span, unit)) => {
                    self.bump();
                    self.expect(&Kind::Colon)?;
                    let n = self.peek();
                    let Ok(n_value) = n.text.parse::<u32>() else {
                        return Err(self.unexpected());
                    };
                    if n.kind != Kind::Number {
                        return Err(self.unexpected());
                    }
                    self.bump();
                    return Ok(Literal {
                        kind: LiteralKind::Relative(span.range(unit, i64::from(n_value))),
                        pos: t.pos,
                    });
                }
                None => return Err(self.unexpected()),
            },
            _ => return Err(self.unexpected()),
        };
        self.bump();
        Ok(Literal { kind, pos: t.pos })
    }
}

fn is_kw(t: &Token<'_>, kw: &str) -> bool {
    t.kind == Kind::Ident && t.text.eq_ignore_ascii_case(kw)
}

fn is_reserved(word: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

fn unexpected(t: &Token<'_>) -> SoqlError {
    let text = if t.kind == Kind::Eof {
        "unexpected token: <EOF>".to_owned()
    } else {
        format!("unexpected token: '{}'", t.text)
    };
    SoqlError::new(MALFORMED_QUERY, t.pos, text)
}
