//! Turning a client's JSON record body into typed field values, with the checks and
//! error codes Salesforce applies to REST writes. Every problem of one body is
//! reported at once, as Salesforce does.

use serde_json::{Map, Value as Json};

use crate::ids;
use crate::schema::FieldDef;
use crate::store::{Org, Table};
use crate::value::{FieldType, Value, parse_date, parse_datetime, parse_time};

/// One error of a write, as it appears in the REST error array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteError {
    /// `errorCode`.
    pub code: &'static str,
    /// `message`.
    pub message: String,
    /// `fields`.
    pub fields: Vec<String>,
}

impl WriteError {
    fn new(code: &'static str, message: String, field: &str) -> Self {
        WriteError { code, message, fields: vec![field.to_string()] }
    }
}

fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "VALUE_NULL",
        Json::Bool(_) => "VALUE_TRUE",
        Json::Number(_) => "VALUE_NUMBER",
        Json::String(_) => "VALUE_STRING",
        Json::Array(_) => "START_ARRAY",
        Json::Object(_) => "START_OBJECT",
    }
}

/// Converts one JSON value to a stored value of field `fd`.
pub fn coerce(fd: &FieldDef, v: &Json) -> Result<Value<'static>, WriteError> {
    let parser_error = || {
        WriteError::new(
            "JSON_PARSER_ERROR",
            format!(
                "Cannot deserialize instance of {} from {} value {} or request may be missing a required field",
                fd.ty.soap_type().trim_start_matches("xsd:").trim_start_matches("tns:"),
                kind(v),
                v
            ),
            &fd.name,
        )
    };
    if v.is_null() {
        return Ok(Value::Null);
    }
    let text = || v.as_str().ok_or_else(parser_error);
    let ty = fd.ty;
    Ok(match ty {
        FieldType::Boolean => match v {
            Json::Bool(b) => Value::Bool(*b),
            Json::String(s) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
            Json::String(s) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
            _ => return Err(parser_error()),
        },
        FieldType::Int | FieldType::Long => {
            let n = match v {
                Json::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
                Json::String(s) => s.trim().parse().ok(),
                _ => None,
            }
            .ok_or_else(parser_error)?;
            let max = if ty == FieldType::Int { i64::from(i32::MAX) } else { i64::MAX };
            if n.abs() > max {
                return Err(WriteError::new(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    format!("{}: value outside of valid range on numeric field: {n}", fd.label),
                    &fd.name,
                ));
            }
            Value::Int(n)
        }
        FieldType::Double | FieldType::Currency | FieldType::Percent => {
            let f = match v {
                Json::Number(n) => n.as_f64(),
                Json::String(s) => s.trim().parse().ok(),
                _ => None,
            }
            .filter(|f: &f64| f.is_finite())
            .ok_or_else(parser_error)?;
            let integer_digits = fd.precision.saturating_sub(fd.scale);
            if integer_digits > 0 && f.abs() >= 10f64.powi(integer_digits as i32) {
                return Err(WriteError::new(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    format!("{}: value outside of valid range on numeric field: {f}", fd.label),
                    &fd.name,
                ));
            }
            let scale = 10f64.powi(fd.scale as i32);
            Value::Float((f * scale).round() / scale)
        }
        FieldType::Date => Value::Date(parse_date(text()?).ok_or_else(parser_error)?),
        FieldType::DateTime => Value::DateTime(parse_datetime(text()?).ok_or_else(parser_error)?),
        FieldType::Time => Value::Time(parse_time(text()?).ok_or_else(parser_error)?),
        FieldType::Base64 => {
            use base64::Engine;
            let s = text()?;
            base64::engine::general_purpose::STANDARD.decode(s).map_err(|_| {
                WriteError::new("INVALID_FIELD", format!("{}: invalid base64 data", fd.label), &fd.name)
            })?;
            Value::Str(s.to_string().into())
        }
        FieldType::Address | FieldType::Location => return Err(parser_error()),
        _ => {
            let s = match v {
                Json::String(s) => s.clone(),
                Json::Number(n) => n.to_string(),
                Json::Bool(b) => b.to_string(),
                _ => return Err(parser_error()),
            };
            if fd.length > 0 && s.chars().count() > fd.length as usize {
                return Err(WriteError::new(
                    "STRING_TOO_LONG",
                    format!("{}: data value too large: {} (max length={})", fd.label, truncate(&s, 60), fd.length),
                    &fd.name,
                ));
            }
            if ty == FieldType::Email && !s.is_empty() && !valid_email(&s) {
                return Err(WriteError::new(
                    "INVALID_EMAIL_ADDRESS",
                    format!("{}: invalid email address: {s}", fd.label),
                    &fd.name,
                ));
            }
            if s.is_empty() {
                // Salesforce stores no empty strings: "" clears the field.
                Value::Null
            } else {
                Value::Str(s.into())
            }
        }
    })
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { format!("{}...", s.chars().take(n).collect::<String>()) }
}

fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.contains(char::is_whitespace)
}

/// Validates a create (`insert = true`) or update body against `table` and returns the
/// field values to write, or every error found.
pub fn prepare(
    org: &Org,
    table: &Table,
    body: &Map<String, Json>,
    insert: bool,
) -> Result<Vec<(usize, Value<'static>)>, Vec<WriteError>> {
    let def = &table.def;
    let mut values = Vec::new();
    let mut errors = Vec::new();
    let mut not_writable = Vec::new();
    for (key, raw) in body {
        if key == "attributes" {
            continue;
        }
        let Some((col, fd)) = def.field_ci(key) else {
            errors.push(WriteError::new(
                "INVALID_FIELD",
                format!("No such column '{key}' on sobject of type {}", def.name),
                key,
            ));
            continue;
        };
        if (insert && !fd.createable) || (!insert && !fd.updateable) {
            not_writable.push(fd.name.clone());
            continue;
        }
        match coerce(fd, raw) {
            Ok(v) => {
                if let (FieldType::Reference, Value::Str(id)) = (fd.ty, &v)
                    && let Err(e) = check_reference(org, fd, id)
                {
                    errors.push(e);
                    continue;
                }
                if v.is_null() && !fd.nillable && fd.ty != FieldType::Boolean {
                    errors.push(WriteError::new(
                        "REQUIRED_FIELD_MISSING",
                        format!("Required fields are missing: [{}]", fd.name),
                        &fd.name,
                    ));
                    continue;
                }
                let v = match (fd.ty, v) {
                    (FieldType::Reference, Value::Str(id)) => {
                        Value::Str(ids::to18(&id).unwrap_or(id.into_owned()).into())
                    }
                    (_, v) => v,
                };
                values.push((col, v));
            }
            Err(e) => errors.push(e),
        }
    }
    if !not_writable.is_empty() {
        let verb = if insert { "create" } else { "update" };
        errors.push(WriteError {
            code: "INVALID_FIELD_FOR_INSERT_UPDATE",
            message: format!(
                "Unable to {verb} fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                not_writable.join(", ")
            ),
            fields: not_writable,
        });
    }
    if insert {
        let missing: Vec<String> = def
            .fields
            .iter()
            .enumerate()
            .filter(|(i, f)| {
                !f.nillable
                    && f.createable
                    && !f.defaulted_on_create
                    && f.ty != FieldType::Boolean
                    && f.name != "OwnerId"
                    && !values.iter().any(|(c, _)| c == i)
            })
            .map(|(_, f)| f.name.clone())
            .collect();
        if !missing.is_empty() && errors.iter().all(|e| e.code != "REQUIRED_FIELD_MISSING") {
            errors.push(WriteError {
                code: "REQUIRED_FIELD_MISSING",
                message: format!("Required fields are missing: [{}]", missing.join(", ")),
                fields: missing,
            });
        }
    }
    if errors.is_empty() { Ok(values) } else { Err(errors) }
}

fn check_reference(org: &Org, fd: &FieldDef, id: &str) -> Result<(), WriteError> {
    let malformed =
        || WriteError::new("MALFORMED_ID", format!("{}: id value of incorrect type: {id}", fd.label), &fd.name);
    let (prefix, _) = ids::parse(id).ok_or_else(malformed)?;
    let target_ok =
        fd.reference_to.iter().any(|t| org.table(t).is_some_and(|t| *t.def.key_prefix.as_bytes() == prefix[..]));
    if !target_ok {
        return Err(malformed());
    }
    match org.locate(id) {
        Some((t, r)) if !org.tables[t].is_deleted(r) => Ok(()),
        _ => Err(WriteError::new("INVALID_CROSS_REFERENCE_KEY", format!("invalid cross reference id: {id}"), &fd.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::objects;
    use serde_json::json;

    fn org() -> Org {
        let mut org = Org::new(objects::all(), 1);
        crate::generate::populate(
            &mut org,
            &vec![("Account".into(), 3), ("User".into(), 2)],
            1,
            1_750_000_000_000,
            "a@b.c",
        );
        org
    }

    fn body(v: Json) -> Map<String, Json> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn valid_create_is_typed() {
        let org = org();
        let t = org.table("Contact").unwrap();
        let acct = ids::make("001", 2);
        let v = prepare(&org, t, &body(json!({"LastName": "Ng", "Birthdate": "1990-02-03", "AccountId": &acct[..15], "HasOptedOutOfEmail": true})), true).unwrap();
        let get = |n: &str| v.iter().find(|(c, _)| *c == t.def.field_index(n).unwrap()).map(|(_, v)| v.clone());
        assert_eq!(get("AccountId"), Some(Value::Str(acct.into())));
        assert_eq!(get("HasOptedOutOfEmail"), Some(Value::Bool(true)));
        assert!(matches!(get("Birthdate"), Some(Value::Date(_))));
    }

    #[test]
    fn every_problem_is_reported_with_salesforce_codes() {
        let org = org();
        let t = org.table("Contact").unwrap();
        let errs = prepare(
            &org,
            t,
            &body(json!({"Foo__c": 1, "Name": "x", "Email": "nope", "AccountId": "001Dn000000009ZAAA", "Birthdate": 5, "Title": "t".repeat(200)})),
            true,
        )
        .unwrap_err();
        let codes: Vec<_> = errs.iter().map(|e| e.code).collect();
        for code in [
            "INVALID_FIELD",
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            "INVALID_EMAIL_ADDRESS",
            "MALFORMED_ID",
            "JSON_PARSER_ERROR",
            "STRING_TOO_LONG",
            "REQUIRED_FIELD_MISSING",
        ] {
            assert!(codes.contains(&code), "{code} missing from {codes:?}");
        }
        let missing = errs.iter().find(|e| e.code == "REQUIRED_FIELD_MISSING").unwrap();
        assert_eq!(missing.message, "Required fields are missing: [LastName]");
    }

    #[test]
    fn references_must_exist() {
        let org = org();
        let t = org.table("Contact").unwrap();
        let errs =
            prepare(&org, t, &body(json!({"LastName": "x", "AccountId": ids::make("001", 99)})), true).unwrap_err();
        assert_eq!(errs[0].code, "INVALID_CROSS_REFERENCE_KEY");
    }
}
