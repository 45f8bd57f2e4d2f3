//! Fields the server maintains: auto-numbers, full names, and the values derived from
//! an Opportunity's stage or a Case's status, as real orgs keep them.

use crate::schema::ObjectDef;
use crate::value::Value;

pub(super) fn auto_number(object: &str, n: u64) -> String {
    match object {
        "Case" => format!("{n:08}"),
        _ => format!("INV-{n:06}"),
    }
}

/// Server-maintained fields derived from others, as real orgs keep them.
pub(super) fn derive(def: &ObjectDef, row: &mut [Value<'_>]) {
    let idx = |n: &str| def.field_index(n);
    let text = |row: &[Value<'_>], n: &str| match idx(n).map(|i| &row[i]) {
        Some(Value::Str(s)) => Some(s.to_string()),
        _ => None,
    };
    if matches!(def.name.as_str(), "Contact" | "Lead" | "User")
        && let Some(name) = idx("Name")
    {
        let full = match (text(row, "FirstName"), text(row, "LastName")) {
            (Some(f), Some(l)) => format!("{f} {l}"),
            (None, Some(l)) => l,
            (Some(f), None) => f,
            (None, None) => String::new(),
        };
        row[name] = if full.is_empty() { Value::Null } else { Value::Str(full.into()) };
    }
    if def.name == "Opportunity" {
        let stage = text(row, "StageName").unwrap_or_default();
        let closed = stage.starts_with("Closed");
        let won = stage == "Closed Won";
        if let Some(i) = idx("IsClosed") {
            row[i] = Value::Bool(closed);
        }
        if let Some(i) = idx("IsWon") {
            row[i] = Value::Bool(won);
        }
        if let Some(i) = idx("ForecastCategory") {
            let cat = if won {
                "Closed"
            } else if closed {
                "Omitted"
            } else {
                "Pipeline"
            };
            row[i] = Value::Str(cat.into());
        }
        if let (Some(i), Some(Value::Date(d))) = (idx("FiscalYear"), idx("CloseDate").map(|c| row[c].clone())) {
            let date = crate::value::date_from_days(d);
            row[i] = Value::Int(i64::from(chrono::Datelike::year(&date)));
            if let Some(q) = idx("FiscalQuarter") {
                row[q] = Value::Int(i64::from(chrono::Datelike::month0(&date) / 3 + 1));
            }
        }
    }
    if def.name == "Case"
        && let Some(i) = idx("IsClosed")
    {
        row[i] = Value::Bool(text(row, "Status").as_deref() == Some("Closed"));
    }
}
