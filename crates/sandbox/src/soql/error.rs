//! The error every stage of the SOQL engine returns, and the caret diagram Salesforce
//! puts in the `message` of a rejected query.

use super::ast::Pos;

/// `errorCode` for syntax errors and structurally invalid queries.
pub(crate) const MALFORMED_QUERY: &str = "MALFORMED_QUERY";
/// `errorCode` for unknown or unusable fields and for values of the wrong type.
pub(crate) const INVALID_FIELD: &str = "INVALID_FIELD";
/// `errorCode` for an unknown object.
pub(crate) const INVALID_TYPE: &str = "INVALID_TYPE";
/// `errorCode` for an operator the field's type does not support.
pub(crate) const INVALID_QUERY_FILTER_OPERATOR: &str = "INVALID_QUERY_FILTER_OPERATOR";
/// `errorCode` for OFFSET above 2000.
pub(crate) const NUMBER_OUTSIDE_VALID_RANGE: &str = "NUMBER_OUTSIDE_VALID_RANGE";

/// A rejected query, as Salesforce reports it: an `errorCode`, the position it blames
/// and the text after the caret diagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoqlError {
    /// `MALFORMED_QUERY`, `INVALID_FIELD`, `INVALID_TYPE`,
    /// `INVALID_QUERY_FILTER_OPERATOR` or `NUMBER_OUTSIDE_VALID_RANGE`.
    pub code: &'static str,
    /// Line of the blamed token, from 1.
    pub row: usize,
    /// Character of the blamed token within its line, from 1.
    pub column: usize,
    /// The explanation, e.g. `unexpected token: 'From'`.
    pub text: String,
}

impl SoqlError {
    pub(crate) fn new(code: &'static str, pos: Pos, text: impl Into<String>) -> Self {
        Self { code, row: pos.row, column: pos.column, text: text.into() }
    }

    /// The REST `message` for this error about `soql`: the blamed line, a caret under
    /// the blamed column, the position and the text.
    pub fn message(&self, soql: &str) -> String {
        let line = soql.split('\n').nth(self.row.saturating_sub(1)).unwrap_or("");
        let line = line.strip_suffix('\r').unwrap_or(line);
        format!(
            "\n{line}\n{}^\nERROR at Row:{}:Column:{}\n{}",
            " ".repeat(self.column.saturating_sub(1)),
            self.row,
            self.column,
            self.text
        )
    }
}

impl std::fmt::Display for SoqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ERROR at Row:{}:Column:{}: {}", self.code, self.row, self.column, self.text)
    }
}

impl std::error::Error for SoqlError {}
