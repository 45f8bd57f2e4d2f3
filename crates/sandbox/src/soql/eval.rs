//! The compiled WHERE filter and ORDER BY comparison. Everything a row is compared
//! with was prepared by the binder (folded text, numbers, day/millisecond ranges, LIKE
//! matchers), so testing a row allocates nothing in the common cases.

use std::cmp::Ordering;
use std::collections::HashSet;

use crate::value::Value;

use super::catalog::RowAccess;
use super::literals::{DAY_MS, walk_escapes};
use super::text::{cmp_ci, cmp_fold, eq_ci, fold, with_folded};

/// How a compiled comparison relates the row's value to the literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rel {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Rel {
    fn holds(self, o: Ordering) -> bool {
        match self {
            Rel::Eq => o == Ordering::Equal,
            Rel::Ne => o != Ordering::Equal,
            Rel::Lt => o == Ordering::Less,
            Rel::Le => o != Ordering::Greater,
            Rel::Gt => o == Ordering::Greater,
            Rel::Ge => o != Ordering::Less,
        }
    }
}

/// A WHERE clause ready to run.
#[derive(Debug, Clone)]
pub(crate) enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Pred(Pred),
}

impl Filter {
    pub(crate) fn eval(&self, row: &dyn RowAccess) -> bool {
        match self {
            Filter::And(parts) => parts.iter().all(|p| p.eval(row)),
            Filter::Or(parts) => parts.iter().any(|p| p.eval(row)),
            Filter::Not(inner) => !inner.eval(row),
            Filter::Pred(p) => p.eval(row),
        }
    }
}

/// One field expression: the outcome for a null field is decided at bind time
/// (`!=` and `NOT IN` hold for nulls, most operators do not).
#[derive(Debug, Clone)]
pub(crate) struct Pred {
    pub field: usize,
    pub on_null: bool,
    pub test: Test,
}

impl Pred {
    fn eval(&self, row: &dyn RowAccess) -> bool {
        match row.value(self.field) {
            Value::Null => self.on_null,
            v => self.test.eval(&v),
        }
    }
}

/// Unit of the integers a date or datetime range is expressed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Days since the epoch (date fields).
    Days,
    /// Milliseconds since the epoch (datetime fields).
    Millis,
}

/// A number literal, kept exact when it is an integer so long values compare exactly.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NumLit {
    pub float: f64,
    pub int: Option<i64>,
}

impl NumLit {
    pub(crate) fn parse(text: &str) -> Self {
        Self { float: text.parse().unwrap_or(f64::NAN), int: text.parse().ok() }
    }

    fn cmp_value(&self, v: &Value<'_>) -> Option<Ordering> {
        match (v, self.int) {
            (Value::Int(x), Some(i)) => Some(x.cmp(&i)),
            (Value::Int(x), None) => (*x as f64).partial_cmp(&self.float),
            (Value::Float(x), _) => x.partial_cmp(&self.float),
            _ => None,
        }
    }
}

/// The test applied to a non-null value. Text literals are stored folded to lower case.
#[derive(Debug, Clone)]
pub(crate) enum Test {
    Const(bool),
    Text {
        rel: Rel,
        lit: Box<str>,
    },
    TextList {
        lits: Vec<Box<str>>,
        negate: bool,
    },
    TextSet {
        set: HashSet<Box<str>>,
        negate: bool,
    },
    Like(Like),
    /// Multipicklist: some group has all of its values selected.
    Includes {
        groups: Vec<Vec<Box<str>>>,
        negate: bool,
    },
    Num {
        rel: Rel,
        lit: NumLit,
    },
    NumList {
        lits: Vec<NumLit>,
        negate: bool,
    },
    Bool {
        rel: Rel,
        lit: bool,
    },
    BoolList {
        lits: Vec<bool>,
        negate: bool,
    },
    /// Half-open `[lo, hi)`: a single date or instant is `[v, v + 1)`, a date literal its
    /// whole range, so `<` means before `lo` and `>` means at or after `hi`.
    Range {
        rel: Rel,
        lo: i64,
        hi: i64,
        unit: Unit,
    },
    RangeList {
        ranges: Vec<(i64, i64)>,
        unit: Unit,
        negate: bool,
    },
}

impl Test {
    fn eval(&self, v: &Value<'_>) -> bool {
        match self {
            Test::Const(b) => *b,
            Test::Text { rel, lit } => match v {
                Value::Str(s) => match rel {
                    Rel::Eq => eq_ci(s, lit),
                    Rel::Ne => !eq_ci(s, lit),
                    r => r.holds(cmp_ci(s, lit)),
                },
                _ => false,
            },
            Test::TextList { lits, negate } => match v {
                Value::Str(s) => lits.iter().any(|l| eq_ci(s, l)) != *negate,
                _ => false,
            },
            Test::TextSet { set, negate } => match v {
                Value::Str(s) => with_folded(s, |f| set.contains(f)) != *negate,
                _ => false,
            },
            Test::Like(m) => match v {
                Value::Str(s) => m.matches(s),
                _ => false,
            },
            Test::Includes { groups, negate } => match v {
                Value::Str(s) => {
                    let has = |want: &str| s.split(';').any(|h| eq_ci(h.trim(), want));
                    groups.iter().any(|g| g.iter().all(|w| has(w))) != *negate
                }
                _ => false,
            },
            Test::Num { rel, lit } => lit.cmp_value(v).is_some_and(|o| rel.holds(o)),
            Test::NumList { lits, negate } => match v {
                Value::Int(_) | Value::Float(_) => {
                    lits.iter().any(|l| l.cmp_value(v) == Some(Ordering::Equal)) != *negate
                }
                _ => false,
            },
            Test::Bool { rel, lit } => match v {
                Value::Bool(b) => rel.holds(b.cmp(lit)),
                _ => false,
            },
            Test::BoolList { lits, negate } => match v {
                Value::Bool(b) => lits.contains(b) != *negate,
                _ => false,
            },
            Test::Range { rel, lo, hi, unit } => instant(v, *unit).is_some_and(|x| match rel {
                Rel::Eq => *lo <= x && x < *hi,
                Rel::Ne => !(*lo <= x && x < *hi),
                Rel::Lt => x < *lo,
                Rel::Le => x < *hi,
                Rel::Gt => x >= *hi,
                Rel::Ge => x >= *lo,
            }),
            Test::RangeList { ranges, unit, negate } => {
                instant(v, *unit).is_some_and(|x| ranges.iter().any(|(lo, hi)| *lo <= x && x < *hi) != *negate)
            }
        }
    }
}

/// The row's date or datetime in the unit the range uses. A store that hands a date
/// to a datetime field (or the reverse) is compared by that day's start.
fn instant(v: &Value<'_>, unit: Unit) -> Option<i64> {
    match (v, unit) {
        (Value::Date(d), Unit::Days) => Some(i64::from(*d)),
        (Value::DateTime(ms), Unit::Millis) => Some(*ms),
        (Value::Date(d), Unit::Millis) => Some(i64::from(*d).saturating_mul(DAY_MS)),
        (Value::DateTime(ms), Unit::Days) => Some(ms.div_euclid(DAY_MS)),
        _ => None,
    }
}

/// One element of a general LIKE pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pat {
    /// A literal character, folded.
    Char(char),
    /// `_`
    One,
    /// `%`
    Many,
}

/// A compiled LIKE pattern (case-insensitive). The shapes connectors actually send get
/// their own variants so they avoid the general matcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Like {
    Exact(Box<str>),
    Prefix(Box<str>),
    Suffix(Box<str>),
    Contains(Box<str>),
    General(Vec<Pat>),
}

impl Like {
    /// Compiles the text between the quotes of a LIKE pattern; `\%` and `\_` are
    /// literal characters, bare `%` and `_` wildcards.
    pub(crate) fn compile(raw: &str) -> Self {
        let mut pats = Vec::new();
        let _ = walk_escapes(raw, |c, escaped| {
            pats.push(match (c, escaped) {
                ('%', false) => Pat::Many,
                ('_', false) => Pat::One,
                (c, _) => Pat::Char(fold(c)),
            })
        });
        pats.dedup_by(|a, b| *a == Pat::Many && *b == Pat::Many);
        if pats.contains(&Pat::One) {
            return Like::General(pats);
        }
        let lead = pats.first() == Some(&Pat::Many);
        let trail = pats.len() > usize::from(lead) && pats.last() == Some(&Pat::Many);
        let inner = &pats[usize::from(lead)..pats.len() - usize::from(trail)];
        if inner.contains(&Pat::Many) {
            return Like::General(pats);
        }
        let text: Box<str> = inner
            .iter()
            .filter_map(|p| match p {
                Pat::Char(c) => Some(*c),
                _ => None,
            })
            .collect::<String>()
            .into();
        match (lead, trail) {
            (false, false) => Like::Exact(text),
            (false, true) => Like::Prefix(text),
            (true, false) => Like::Suffix(text),
            (true, true) => Like::Contains(text),
        }
    }

    pub(crate) fn matches(&self, s: &str) -> bool {
        match self {
            Like::Exact(t) => eq_ci(s, t),
            Like::Prefix(t) => starts_with_ci(s, t),
            Like::Suffix(t) => {
                let mut rest = s.chars().rev().map(fold);
                t.chars().rev().all(|c| rest.next() == Some(c))
            }
            Like::Contains(t) => {
                if s.is_ascii() && t.is_ascii() {
                    t.is_empty() || s.as_bytes().windows(t.len()).any(|w| w.eq_ignore_ascii_case(t.as_bytes()))
                } else {
                    t.is_empty() || s.char_indices().any(|(i, _)| starts_with_ci(&s[i..], t))
                }
            }
            Like::General(pats) => general_match(pats, s),
        }
    }
}

fn starts_with_ci(s: &str, folded: &str) -> bool {
    let mut rest = s.chars().map(fold);
    folded.chars().all(|c| rest.next() == Some(c))
}

/// Wildcard matching with single-star backtracking: on a mismatch the most recent `%`
/// swallows one more character. Linear for the usual patterns, never exponential.
fn general_match(pats: &[Pat], s: &str) -> bool {
    let mut p = 0;
    let mut text = s.chars();
    let mut star: Option<(usize, std::str::Chars<'_>)> = None;
    loop {
        let mut ahead = text.clone();
        let Some(c) = ahead.next() else {
            return pats[p..].iter().all(|x| *x == Pat::Many);
        };
        match pats.get(p) {
            Some(Pat::Many) => {
                star = Some((p + 1, text.clone()));
                p += 1;
                continue;
            }
            Some(Pat::One) => {
                p += 1;
                text = ahead;
                continue;
            }
            Some(Pat::Char(want)) if *want == fold(c) => {
                p += 1;
                text = ahead;
                continue;
            }
            _ => {}
        }
        let Some((resume, from)) = &mut star else {
            return false;
        };
        from.next();
        p = *resume;
        text = from.clone();
    }
}

/// ORDER BY comparison of two non-null values; text is case-insensitive.
pub(crate) fn compare_values(a: &Value<'_>, b: &Value<'_>) -> Ordering {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => cmp_fold(x, y),
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Int(x), Value::Float(y)) => (*x as f64).total_cmp(y),
        (Value::Float(x), Value::Int(y)) => x.total_cmp(&(*y as f64)),
        (Value::Float(x), Value::Float(y)) => x.total_cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Date(x), Value::Date(y)) => x.cmp(y),
        (Value::DateTime(x), Value::DateTime(y)) => x.cmp(y),
        (Value::Time(x), Value::Time(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Orders values of different kinds, which only a misbehaving store produces.
fn rank(v: &Value<'_>) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Int(_) | Value::Float(_) => 2,
        Value::Str(_) => 3,
        Value::Date(_) => 4,
        Value::DateTime(_) => 5,
        Value::Time(_) => 6,
    }
}
