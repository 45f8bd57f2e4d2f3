//! The syntax tree [`parse`](super::parse) produces: names as written, literals already
//! decoded, and the position of every token the binder may have to complain about.

/// Where a token starts in the query text: 1-based row (line) and column (character).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Pos {
    /// Line, counted from 1.
    pub row: usize,
    /// Character within the line, counted from 1.
    pub column: usize,
}

/// A value together with the position of the token it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where its token starts.
    pub pos: Pos,
}

/// A name exactly as the query spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// The text of the name.
    pub text: String,
    /// Where it starts.
    pub pos: Pos,
}

/// A dotted field path such as `Owner.Name`: relationship names, then a field name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRef {
    /// The segments in order; never empty.
    pub segments: Vec<Name>,
}

impl FieldRef {
    /// Position of the first segment, where Salesforce points for errors about the path.
    pub fn pos(&self) -> Pos {
        self.segments.first().map(|s| s.pos).unwrap_or_default()
    }
}

/// One item of the SELECT list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectExpr {
    /// A field path.
    Field(FieldRef),
    /// `COUNT()`, which is then the only item.
    CountAll(Pos),
    /// `COUNT(field) [alias]`.
    Count {
        /// The counted field.
        field: FieldRef,
        /// The alias, if one was written.
        alias: Option<Name>,
    },
}

/// A whole `SELECT` statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The SELECT list, in order.
    pub select: Vec<SelectExpr>,
    /// The object after FROM.
    pub from: Name,
    /// The WHERE condition.
    pub filter: Option<Condition>,
    /// The ORDER BY items, in order.
    pub order_by: Vec<OrderExpr>,
    /// The LIMIT value.
    pub limit: Option<Spanned<u64>>,
    /// The OFFSET value.
    pub offset: Option<Spanned<u64>>,
}

/// One ORDER BY item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderExpr {
    /// The sort key.
    pub field: FieldRef,
    /// `DESC` was written.
    pub descending: bool,
    /// `NULLS FIRST` (`Some(true)`), `NULLS LAST` (`Some(false)`), or neither.
    pub nulls_first: Option<bool>,
}

/// A WHERE condition. One level never mixes AND with OR: the parser rejects that.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// All of the parts hold.
    And(Vec<Condition>),
    /// Any of the parts holds.
    Or(Vec<Condition>),
    /// `NOT` applied to the part.
    Not(Box<Condition>),
    /// A single field expression.
    Compare(Comparison),
}

/// `field op value` or `field op (value, ...)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The field on the left.
    pub field: FieldRef,
    /// The operator.
    pub op: Operator,
    /// Where the operator starts.
    pub op_pos: Pos,
    /// The value; operators taking a list (`IN`, `NOT IN`, `INCLUDES`, `EXCLUDES`) have
    /// one or more, the others exactly one.
    pub values: Vec<Literal>,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `=`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `LIKE`
    Like,
    /// `IN (...)`
    In,
    /// `NOT IN (...)`
    NotIn,
    /// `INCLUDES (...)`
    Includes,
    /// `EXCLUDES (...)`
    Excludes,
}

impl Operator {
    /// Whether the operator takes a parenthesised list.
    pub fn takes_list(self) -> bool {
        matches!(self, Self::In | Self::NotIn | Self::Includes | Self::Excludes)
    }
}

/// A value in a condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Literal {
    /// What the value is.
    pub kind: LiteralKind,
    /// Where its token starts.
    pub pos: Pos,
}

/// The kinds of values SOQL has.
#[derive(Debug, Clone, PartialEq)]
pub enum LiteralKind {
    /// A quoted string.
    String {
        /// The text with escapes resolved (`\%` and `\_` become `%` and `_`).
        value: String,
        /// The text between the quotes as written; `LIKE` needs it to tell an escaped
        /// `%` from a wildcard.
        raw: String,
    },
    /// A number as written, e.g. `-12.50`.
    Number(String),
    /// `true` or `false`.
    Boolean(bool),
    /// `null`.
    Null,
    /// `YYYY-MM-DD` as days since the epoch; `None` when no such day exists (2023-02-30).
    Date(Option<i32>),
    /// `YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm)` as UTC milliseconds; `None` when the
    /// calendar values are out of range.
    DateTime(Option<i64>),
    /// A date literal such as `TODAY` or `LAST_N_DAYS:7`.
    Relative(RelativeDate),
}

/// Calendar unit of a date literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateUnit {
    /// A day.
    Day,
    /// A week, starting on Sunday.
    Week,
    /// A calendar month.
    Month,
    /// A calendar quarter (the org's fiscal year is the calendar year).
    Quarter,
    /// A calendar year.
    Year,
}

/// A date literal as a range of whole units relative to the current one: it covers
/// `[start of current unit + start units, start of current unit + end units)`.
/// `THIS_WEEK` is `(Week, 0, 1)`, `LAST_N_DAYS:7` is `(Day, -7, 1)` (today included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelativeDate {
    /// The unit counted.
    pub unit: DateUnit,
    /// First unit of the range, relative to the current one.
    pub start: i64,
    /// First unit after the range, relative to the current one.
    pub end: i64,
}
