//! Resolves a parsed [`Query`] against the org's schema: canonical object and field
//! names, relationship paths, filterability and sortability, value types, and the
//! compiled filter. All Salesforce's semantic errors are raised here.

use std::collections::HashSet;

use crate::value::FieldType;

use super::ast::{Comparison, Condition, FieldRef, Literal, LiteralKind, Operator, Pos, Query, SelectExpr};
use super::bound::{Bound, BoundField, OrderItem, SelectItem};
use super::catalog::{Catalog, CatalogField};
use super::error::{
    INVALID_FIELD, INVALID_QUERY_FILTER_OPERATOR, INVALID_TYPE, MALFORMED_QUERY, NUMBER_OUTSIDE_VALID_RANGE, SoqlError,
};
use super::eval::{Filter, Like, NumLit, Pred, Rel, Test, Unit};
use super::literals::{DAY_MS, day_range, id18};
use super::text::fold_str;

/// Most child-to-parent hops a field path may take.
const MAX_HOPS: usize = 5;
/// Largest OFFSET Salesforce accepts.
const MAX_OFFSET: u64 = 2000;
/// IN lists longer than this are looked up in a hash set instead of scanned.
const SET_THRESHOLD: usize = 8;

/// Binds a parsed query to the schema `catalog` describes. `now_ms` (UTC milliseconds)
/// anchors date literals such as `TODAY`.
pub fn bind(query: Query, catalog: &dyn Catalog, now_ms: i64) -> Result<Bound, SoqlError> {
    let object = catalog.object(&query.from.text).ok_or_else(|| {
        SoqlError::new(
            INVALID_TYPE,
            query.from.pos,
            format!(
                "sObject type '{}' is not supported. If you are attempting to use a custom \
                 object, be sure to append the '__c' after the entity name. Please reference \
                 your WSDL or the describe call for the appropriate names.",
                query.from.text
            ),
        )
    })?;
    let mut b = Binder { catalog, object, fields: Vec::new(), today: crate::value::days_from_ms(now_ms) };

    let mut select = Vec::with_capacity(query.select.len());
    let mut plain: Option<(usize, Pos)> = None;
    let mut aggregate = false;
    for item in &query.select {
        select.push(match item {
            SelectExpr::Field(f) => {
                let (idx, _) = b.resolve(f)?;
                if select.contains(&SelectItem::Field(idx)) {
                    let name = f.segments.last().map_or("", |n| n.text.as_str());
                    return Err(SoqlError::new(INVALID_FIELD, f.pos(), format!("duplicate field selected: {name}")));
                }
                plain.get_or_insert((idx, f.pos()));
                SelectItem::Field(idx)
            }
            SelectExpr::CountAll(_) => {
                aggregate = true;
                SelectItem::CountAll
            }
            SelectExpr::Count { field, alias } => {
                aggregate = true;
                SelectItem::Count { field: b.resolve(field)?.0, alias: alias.as_ref().map(|a| a.text.clone()) }
            }
        });
    }
    if let (true, Some((idx, pos))) = (aggregate, plain) {
        return Err(SoqlError::new(
            MALFORMED_QUERY,
            pos,
            format!("Field must be grouped or aggregated: {}", b.fields[idx].dotted()),
        ));
    }

    let filter = match &query.filter {
        Some(c) => Some(b.condition(c)?),
        None => None,
    };

    let mut order_by = Vec::with_capacity(query.order_by.len());
    for o in &query.order_by {
        let (idx, cf) = b.resolve(&o.field)?;
        if !cf.sortable || cf.ty.is_compound() {
            return Err(SoqlError::new(
                INVALID_FIELD,
                o.field.pos(),
                format!("field '{}' can not be sorted in a query call", cf.name),
            ));
        }
        if aggregate {
            // Without GROUP BY an aggregate query has one row: nothing to order.
            return Err(SoqlError::new(
                MALFORMED_QUERY,
                o.field.pos(),
                format!("Ordered field must be grouped or aggregated: {}", b.fields[idx].dotted()),
            ));
        }
        order_by.push(OrderItem {
            field: idx,
            descending: o.descending,
            nulls_first: o.nulls_first.unwrap_or(!o.descending),
        });
    }

    if let Some(offset) = &query.offset
        && offset.value > MAX_OFFSET
    {
        return Err(SoqlError::new(
            NUMBER_OUTSIDE_VALID_RANGE,
            offset.pos,
            format!("Maximum SOQL offset allowed is {MAX_OFFSET}"),
        ));
    }

    Ok(Bound {
        object: b.object,
        fields: b.fields,
        select,
        order_by,
        limit: query.limit.map(|l| l.value),
        offset: query.offset.map(|o| o.value),
        filter,
    })
}

struct Binder<'c> {
    catalog: &'c dyn Catalog,
    object: String,
    fields: Vec<BoundField>,
    today: i32,
}

/// How values of a field type are compared.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Text { id: bool },
    Multi,
    Number,
    Boolean,
    Date,
    DateTime,
    Time,
}

fn class_of(ty: FieldType) -> Class {
    match ty {
        FieldType::Id | FieldType::Reference => Class::Text { id: true },
        FieldType::Multipicklist => Class::Multi,
        FieldType::Boolean => Class::Boolean,
        FieldType::Date => Class::Date,
        FieldType::DateTime => Class::DateTime,
        FieldType::Time => Class::Time,
        t if t.is_numeric() => Class::Number,
        _ => Class::Text { id: false },
    }
}

/// The type word Salesforce uses in filter error messages.
fn type_word(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Boolean => "boolean",
        FieldType::Int => "integer",
        FieldType::Long => "long",
        FieldType::Double | FieldType::Currency | FieldType::Percent => "double",
        FieldType::Date => "date",
        FieldType::DateTime => "dateTime",
        FieldType::Time => "time",
        FieldType::Multipicklist => "multipicklist",
        _ => "string",
    }
}

impl Binder<'_> {
    /// Resolves a field path to its index in `fields` (adding it on first use).
    fn resolve(&mut self, f: &FieldRef) -> Result<(usize, CatalogField), SoqlError> {
        let Some((last, mut hops)) = f.segments.split_last() else {
            return Err(SoqlError::new(MALFORMED_QUERY, f.pos(), "unexpected token: <EOF>"));
        };
        // `Account.Name` on Account names the queried object itself.
        if let Some((first, rest)) = hops.split_first()
            && first.text.eq_ignore_ascii_case(&self.object)
            && self.catalog.relationship(&self.object, &first.text).is_none()
        {
            hops = rest;
        }
        if hops.len() > MAX_HOPS {
            return Err(SoqlError::new(
                MALFORMED_QUERY,
                f.pos(),
                format!("SOQL statements cannot query more than {MAX_HOPS} levels of relationships"),
            ));
        }
        let mut object = self.object.clone();
        let mut path = Vec::with_capacity(hops.len() + 1);
        for hop in hops {
            let (name, target) = self.catalog.relationship(&object, &hop.text).ok_or_else(|| {
                SoqlError::new(
                    INVALID_FIELD,
                    f.pos(),
                    format!(
                        "Didn't understand relationship '{}' in field path. If you are \
                             attempting to use a custom relationship, be sure to append the \
                             '__r' after the custom relationship name. Please reference your \
                             WSDL or the describe call for the appropriate names.",
                        hop.text
                    ),
                )
            })?;
            path.push(name);
            object = target;
        }
        let field = self.catalog.field(&object, &last.text).ok_or_else(|| {
            SoqlError::new(
                INVALID_FIELD,
                f.pos(),
                format!(
                    "No such column '{}' on entity '{object}'. If you are attempting to use a \
                     custom field, be sure to append the '__c' after the custom field name. \
                     Please reference your WSDL or the describe call for the appropriate names.",
                    last.text
                ),
            )
        })?;
        path.push(field.name.clone());
        let idx = match self.fields.iter().position(|b| b.path == path) {
            Some(i) => i,
            None => {
                self.fields.push(BoundField { path, ty: field.ty });
                self.fields.len() - 1
            }
        };
        Ok((idx, field))
    }

    fn condition(&mut self, c: &Condition) -> Result<Filter, SoqlError> {
        Ok(match c {
            Condition::And(parts) => Filter::And(self.conditions(parts)?),
            Condition::Or(parts) => Filter::Or(self.conditions(parts)?),
            Condition::Not(inner) => Filter::Not(Box::new(self.condition(inner)?)),
            Condition::Compare(cmp) => Filter::Pred(self.comparison(cmp)?),
        })
    }

    fn conditions(&mut self, parts: &[Condition]) -> Result<Vec<Filter>, SoqlError> {
        parts.iter().map(|p| self.condition(p)).collect()
    }

    fn comparison(&mut self, c: &Comparison) -> Result<Pred, SoqlError> {
        let (field, cf) = self.resolve(&c.field)?;
        if !cf.filterable || cf.ty.is_compound() {
            return Err(SoqlError::new(
                INVALID_FIELD,
                c.field.pos(),
                format!("field '{}' can not be filtered in a query call", cf.name),
            ));
        }
        let class = class_of(cf.ty);
        self.check_operator(c, class, cf.ty)?;
        for v in &c.values {
            self.check_value(v, c.op, class, &cf)?;
        }
        let (on_null, test) = self.test(c, class);
        Ok(Pred { field, on_null, test })
    }

    fn check_operator(&self, c: &Comparison, class: Class, ty: FieldType) -> Result<(), SoqlError> {
        let bad = |text: String| Err(SoqlError::new(INVALID_QUERY_FILTER_OPERATOR, c.op_pos, text));
        match (c.op, class) {
            (Operator::Includes | Operator::Excludes, Class::Multi) => Ok(()),
            (Operator::Includes | Operator::Excludes, _) => {
                bad("includes or excludes operator only valid on multipicklist field".into())
            }
            (Operator::Like, Class::Text { .. }) => Ok(()),
            (Operator::Like, _) => bad(format!("invalid operator on {} field", type_word(ty))),
            (Operator::Lt | Operator::Le | Operator::Gt | Operator::Ge, Class::Multi | Class::Boolean) => {
                bad(format!("invalid operator on {} field", type_word(ty)))
            }
            _ => Ok(()),
        }
    }

    fn check_value(&self, v: &Literal, op: Operator, class: Class, cf: &CatalogField) -> Result<(), SoqlError> {
        let null_ok = !matches!(op, Operator::Like | Operator::Includes | Operator::Excludes);
        let ok = match (&v.kind, class) {
            (LiteralKind::Null, _) => null_ok,
            (LiteralKind::String { .. }, Class::Text { .. } | Class::Multi) => true,
            (LiteralKind::Number(_), Class::Number) => true,
            (LiteralKind::Boolean(_), Class::Boolean) => true,
            (LiteralKind::Date(Some(_)), Class::Date) => true,
            (LiteralKind::DateTime(Some(_)), Class::DateTime) => true,
            (LiteralKind::Relative(_), Class::Date | Class::DateTime) => true,
            _ => false,
        };
        if ok {
            return Ok(());
        }
        let text = match class {
            Class::Text { .. } | Class::Multi => format!(
                "value of filter criterion for field '{}' must be of type string and should \
                 be enclosed in quotes",
                cf.name
            ),
            _ => format!(
                "value of filter criterion for field '{}' must be of type {} and should not \
                 be enclosed in quotes",
                cf.name,
                type_word(cf.ty)
            ),
        };
        Err(SoqlError::new(INVALID_FIELD, v.pos, text))
    }

    /// Compiles a type-checked comparison: the outcome for a null field, and the test
    /// for other values.
    fn test(&self, c: &Comparison, class: Class) -> (bool, Test) {
        let rel = match c.op {
            Operator::Eq => Rel::Eq,
            Operator::Ne => Rel::Ne,
            Operator::Lt => Rel::Lt,
            Operator::Le => Rel::Le,
            Operator::Gt => Rel::Gt,
            Operator::Ge => Rel::Ge,
            Operator::Like => {
                let raw = match c.values.first().map(|v| &v.kind) {
                    Some(LiteralKind::String { raw, .. }) => raw.as_str(),
                    _ => "",
                };
                return (false, Test::Like(Like::compile(raw)));
            }
            Operator::Includes | Operator::Excludes => {
                let groups = c
                    .values
                    .iter()
                    .filter_map(|v| match &v.kind {
                        LiteralKind::String { value, .. } => {
                            Some(value.split(';').map(|part| fold_str(part.trim()).into_boxed_str()).collect())
                        }
                        _ => None,
                    })
                    .collect();
                let negate = c.op == Operator::Excludes;
                return (negate, Test::Includes { groups, negate });
            }
            Operator::In | Operator::NotIn => return self.list_test(c, class),
        };
        let Some(v) = c.values.first().filter(|v| v.kind != LiteralKind::Null) else {
            // `= null` and `!= null` test for nulls; ordering against null never holds.
            return match rel {
                Rel::Eq => (true, Test::Const(false)),
                Rel::Ne => (false, Test::Const(true)),
                _ => (false, Test::Const(false)),
            };
        };
        let on_null = rel == Rel::Ne;
        let test = match (class, &v.kind) {
            (Class::Text { id }, LiteralKind::String { value, .. }) => {
                Test::Text { rel, lit: self.text_lit(value, id && matches!(rel, Rel::Eq | Rel::Ne)) }
            }
            (Class::Multi, LiteralKind::String { value, .. }) => Test::Text { rel, lit: fold_str(value).into() },
            (Class::Number, LiteralKind::Number(n)) => Test::Num { rel, lit: NumLit::parse(n) },
            (Class::Boolean, LiteralKind::Boolean(b)) => Test::Bool { rel, lit: *b },
            (Class::Date | Class::DateTime, kind) => {
                let unit = unit_of(class);
                match self.range(kind, unit) {
                    Some((lo, hi)) => Test::Range { rel, lo, hi, unit },
                    None => Test::Const(false),
                }
            }
            _ => Test::Const(false),
        };
        (on_null, test)
    }

    fn list_test(&self, c: &Comparison, class: Class) -> (bool, Test) {
        let negate = c.op == Operator::NotIn;
        let has_null = c.values.iter().any(|v| v.kind == LiteralKind::Null);
        let values = c.values.iter().map(|v| &v.kind).filter(|k| **k != LiteralKind::Null);
        let test = match class {
            Class::Text { id } => {
                let lits: Vec<Box<str>> = values
                    .filter_map(|k| match k {
                        LiteralKind::String { value, .. } => Some(self.text_lit(value, id)),
                        _ => None,
                    })
                    .collect();
                if lits.len() > SET_THRESHOLD {
                    Test::TextSet { set: lits.into_iter().collect::<HashSet<_>>(), negate }
                } else {
                    Test::TextList { lits, negate }
                }
            }
            Class::Multi => Test::TextList {
                lits: values
                    .filter_map(|k| match k {
                        LiteralKind::String { value, .. } => Some(fold_str(value).into()),
                        _ => None,
                    })
                    .collect(),
                negate,
            },
            Class::Number => Test::NumList {
                lits: values
                    .filter_map(|k| match k {
                        LiteralKind::Number(n) => Some(NumLit::parse(n)),
                        _ => None,
                    })
                    .collect(),
                negate,
            },
            Class::Boolean => Test::BoolList {
                lits: values
                    .filter_map(|k| match k {
                        LiteralKind::Boolean(b) => Some(*b),
                        _ => None,
                    })
                    .collect(),
                negate,
            },
            Class::Date | Class::DateTime => {
                let unit = unit_of(class);
                Test::RangeList { ranges: values.filter_map(|k| self.range(k, unit)).collect(), unit, negate }
            }
            Class::Time => Test::Const(negate),
        };
        (has_null != negate, test)
    }

    /// A text literal folded for comparison; a 15-character Id compared with an Id or
    /// reference field matches its 18-character form, as Salesforce accepts both.
    fn text_lit(&self, value: &str, id: bool) -> Box<str> {
        match id.then(|| id18(value)).flatten() {
            Some(long) => fold_str(&long).into(),
            None => fold_str(value).into(),
        }
    }

    /// The `[lo, hi)` range a date or datetime value covers, in `unit`.
    fn range(&self, kind: &LiteralKind, unit: Unit) -> Option<(i64, i64)> {
        match (kind, unit) {
            (LiteralKind::Date(Some(d)), Unit::Days) => Some((i64::from(*d), i64::from(*d) + 1)),
            (LiteralKind::DateTime(Some(ms)), Unit::Millis) => Some((*ms, ms.saturating_add(1))),
            (LiteralKind::Relative(r), _) => {
                let (lo, hi) = day_range(*r, self.today);
                Some(match unit {
                    Unit::Days => (lo, hi),
                    Unit::Millis => (lo.saturating_mul(DAY_MS), hi.saturating_mul(DAY_MS)),
                })
            }
            _ => None,
        }
    }
}

fn unit_of(class: Class) -> Unit {
    if class == Class::Date { Unit::Days } else { Unit::Millis }
}
