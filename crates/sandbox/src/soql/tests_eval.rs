//! Tests of evaluation: every operator against every kind of field, null semantics,
//! date literal ranges at a fixed clock, datetime literals, and ORDER BY.

use std::borrow::Cow;

use crate::value::{Value, parse_date, parse_datetime};

use super::tests::{MapRow, NOW, TestCatalog};
use super::*;

type Row = Vec<(&'static str, Value<'static>)>;

fn s(x: &str) -> Value<'static> {
    Value::Str(Cow::Owned(x.to_owned()))
}

fn bound(soql: &str, now: i64) -> Bound {
    compile(soql, &TestCatalog, now).unwrap_or_else(|e| panic!("{}", e.message(soql)))
}

/// Indices of `rows` that `SELECT Id FROM Account WHERE {cond}` returns.
fn hits(cond: &str, rows: &[Row]) -> Vec<usize> {
    let b = bound(&format!("SELECT Id FROM Account WHERE {cond}"), NOW);
    (0..rows.len()).filter(|&i| b.matches(&MapRow { bound: &b, values: &rows[i] })).collect()
}

fn check(rows: &[Row], cases: &[(&str, &[usize])]) {
    for (cond, want) in cases {
        assert_eq!(hits(cond, rows), *want, "{cond}");
    }
}

#[test]
fn text_comparisons_ignore_case_and_treat_nulls_like_salesforce() {
    let rows: Vec<Row> = ["Acme", "acme corp", "Beta", "", "ÄRGER", "50% off", "a_b"]
        .iter()
        .map(|n| if n.is_empty() { vec![] } else { vec![("Name", s(n))] })
        .collect();
    check(
        &rows,
        &[
            ("Name = 'ACME'", &[0]),
            ("Name != 'acme'", &[1, 2, 3, 4, 5, 6]),
            ("Name <> 'acme'", &[1, 2, 3, 4, 5, 6]),
            ("Name = null", &[3]),
            ("Name != null", &[0, 1, 2, 4, 5, 6]),
            ("Name < 'b'", &[0, 1, 5, 6]),
            ("Name > 'B'", &[2, 4]),
            ("Name <= 'beta'", &[0, 1, 2, 5, 6]),
            ("Name >= 'acme corp'", &[1, 2, 4]),
            ("Name < null", &[]),
            ("Name = 'ärger'", &[4]),
            ("Name IN ('beta', 'ACME', null)", &[0, 2, 3]),
            ("Name NOT IN ('beta', 'ACME')", &[1, 3, 4, 5, 6]),
            ("Name NOT IN ('beta', null)", &[0, 1, 4, 5, 6]),
            ("Name IN ('x1','x2','x3','x4','x5','x6','x7','x8','ACME','ärger')", &[0, 4]),
            ("Name NOT IN ('x1','x2','x3','x4','x5','x6','x7','x8','ACME','ärger')", &[1, 2, 3, 5, 6]),
            ("Name LIKE 'acme%'", &[0, 1]),
            ("Name LIKE '%CORP'", &[1]),
            ("Name LIKE '%m%'", &[0, 1]),
            ("Name LIKE 'a_me'", &[0]),
            ("Name LIKE 'a%e%p'", &[1]),
            ("Name LIKE '%'", &[0, 1, 2, 4, 5, 6]),
            ("Name LIKE 'ä%'", &[4]),
            ("Name LIKE 'acme'", &[0]),
            (r"Name LIKE '50\% off'", &[5]),
            (r"Name LIKE '%\%%'", &[5]),
            (r"Name LIKE 'a\_b'", &[6]),
            ("Name LIKE 'a_b'", &[6]),
            ("NOT Name LIKE 'a%'", &[2, 3, 4, 5]),
        ],
    );
}

#[test]
fn numbers_compare_across_int_and_float_and_longs_stay_exact() {
    let rows: Vec<Row> = vec![
        vec![
            ("AnnualRevenue", Value::Float(100.5)),
            ("NumberOfEmployees", Value::Int(10)),
            ("Big__c", Value::Int(9_007_199_254_740_993)),
        ],
        vec![
            ("AnnualRevenue", Value::Float(100.0)),
            ("NumberOfEmployees", Value::Int(-3)),
            ("Big__c", Value::Int(9_007_199_254_740_992)),
        ],
        vec![],
        vec![("AnnualRevenue", Value::Float(-2.0)), ("NumberOfEmployees", Value::Int(0))],
    ];
    check(
        &rows,
        &[
            ("AnnualRevenue = 100", &[1]),
            ("AnnualRevenue > 100", &[0]),
            ("AnnualRevenue >= 100.5", &[0]),
            ("AnnualRevenue < 0", &[3]),
            ("AnnualRevenue != 100", &[0, 2, 3]),
            ("AnnualRevenue = null", &[2]),
            ("NumberOfEmployees > -3.5", &[0, 1, 3]),
            ("NumberOfEmployees <= -3", &[1]),
            ("NumberOfEmployees IN (10, 0)", &[0, 3]),
            ("NumberOfEmployees NOT IN (10)", &[1, 2, 3]),
            ("Big__c = 9007199254740993", &[0]),
            ("Big__c > 9007199254740992", &[0]),
        ],
    );
}

#[test]
fn booleans_multipicklists_and_ids() {
    let rows: Vec<Row> = vec![
        vec![("IsDeleted", Value::Bool(true)), ("Tags__c", s("a;b;c")), ("Id", s("0011Y00003HVMu4QAH"))],
        vec![("IsDeleted", Value::Bool(false)), ("Tags__c", s("b")), ("Id", s("0012A00001aaAaaQAE"))],
        vec![],
        vec![("Tags__c", s("A;D"))],
    ];
    check(
        &rows,
        &[
            ("IsDeleted = true", &[0]),
            ("IsDeleted != true", &[1, 2, 3]),
            ("IsDeleted IN (false)", &[1]),
            ("Tags__c INCLUDES ('a')", &[0, 3]),
            ("Tags__c INCLUDES ('a;b')", &[0]),
            ("Tags__c INCLUDES ('a;b', 'd')", &[0, 3]),
            ("Tags__c EXCLUDES ('a')", &[1, 2]),
            ("Tags__c EXCLUDES ('a;d')", &[0, 1, 2]),
            ("Tags__c = 'B'", &[1]),
            // A 15-character Id is case-sensitive and means its 18-character form.
            ("Id = '0011Y00003HVMu4'", &[0]),
            ("Id = '0011y00003hvmu4'", &[]),
            ("Id = '0011y00003hvmu4qah'", &[0]),
            ("Id IN ('0012A00001aaAaa', '0011Y00003HVMu4QAH')", &[0, 1]),
            ("Id != '0012A00001aaAaa'", &[0, 2, 3]),
        ],
    );
}

#[test]
fn id18_matches_the_published_vectors() {
    for (short, long) in [
        ("a0BA0000000L2ZC", "a0BA0000000L2ZCMA0"),
        ("0011Y00003HVMu4", "0011Y00003HVMu4QAH"),
        ("70130000001tcyI", "70130000001tcyIAAQ"),
        ("a0D30000001n7Pi", "a0D30000001n7PiEAI"),
        ("0012A00001aaAaa", "0012A00001aaAaaQAE"),
        ("0012000001A10aA", "0012000001A10aAAAR"),
        ("0012000001A1AA0", "0012000001A1AA0AAN"),
        ("0012000001AAaa1", "0012000001AAaa1AAD"),
    ] {
        assert_eq!(super::literals::id18(short).as_deref(), Some(long));
    }
    assert_eq!(super::literals::id18("too-short"), None);
}

#[test]
fn and_or_not_and_relationship_paths() {
    let rows: Vec<Row> = vec![
        vec![("Name", s("Acme")), ("Owner.Name", s("Jane"))],
        vec![("Name", s("Beta")), ("NumberOfEmployees", Value::Int(9)), ("IsDeleted", Value::Bool(false))],
        vec![
            ("Name", s("Gamma")),
            ("NumberOfEmployees", Value::Int(9)),
            ("IsDeleted", Value::Bool(true)),
            ("Owner.Name", s("jane")),
        ],
        vec![("Name", s("Delta")), ("NumberOfEmployees", Value::Int(1))],
    ];
    check(
        &rows,
        &[
            ("Name = 'acme' OR (NumberOfEmployees > 5 AND NOT IsDeleted = true)", &[0, 1]),
            ("(Name = 'acme' OR NumberOfEmployees > 5) AND IsDeleted = false", &[1]),
            ("NOT (Name = 'acme' OR Name = 'beta')", &[2, 3]),
            ("Name != 'x' AND Name != 'acme' AND Name != 'delta'", &[1, 2]),
            ("Owner.Name = 'JANE'", &[0, 2]),
            ("owner.name != 'jane'", &[1, 3]),
        ],
    );
}

/// (literal, first day, first day after) at [`NOW`], 2024-06-12, a Wednesday.
const RANGES_AT_NOW: &[(&str, &str, &str)] = &[
    ("YESTERDAY", "2024-06-11", "2024-06-12"),
    ("TODAY", "2024-06-12", "2024-06-13"),
    ("TOMORROW", "2024-06-13", "2024-06-14"),
    ("LAST_WEEK", "2024-06-02", "2024-06-09"),
    ("THIS_WEEK", "2024-06-09", "2024-06-16"),
    ("NEXT_WEEK", "2024-06-16", "2024-06-23"),
    ("LAST_MONTH", "2024-05-01", "2024-06-01"),
    ("THIS_MONTH", "2024-06-01", "2024-07-01"),
    ("NEXT_MONTH", "2024-07-01", "2024-08-01"),
    ("LAST_90_DAYS", "2024-03-14", "2024-06-13"),
    ("NEXT_90_DAYS", "2024-06-13", "2024-09-11"),
    ("THIS_QUARTER", "2024-04-01", "2024-07-01"),
    ("LAST_QUARTER", "2024-01-01", "2024-04-01"),
    ("NEXT_QUARTER", "2024-07-01", "2024-10-01"),
    ("THIS_YEAR", "2024-01-01", "2025-01-01"),
    ("LAST_YEAR", "2023-01-01", "2024-01-01"),
    ("NEXT_YEAR", "2025-01-01", "2026-01-01"),
    ("LAST_N_DAYS:3", "2024-06-09", "2024-06-13"),
    ("last_n_days:0", "2024-06-12", "2024-06-13"),
    ("NEXT_N_DAYS:3", "2024-06-13", "2024-06-16"),
    ("N_DAYS_AGO:3", "2024-06-09", "2024-06-10"),
    ("LAST_N_WEEKS:2", "2024-05-26", "2024-06-09"),
    ("NEXT_N_WEEKS:2", "2024-06-16", "2024-06-30"),
    ("N_WEEKS_AGO:1", "2024-06-02", "2024-06-09"),
    ("LAST_N_MONTHS:2", "2024-04-01", "2024-06-01"),
    ("NEXT_N_MONTHS:2", "2024-07-01", "2024-09-01"),
    ("N_MONTHS_AGO:12", "2023-06-01", "2023-07-01"),
    ("LAST_N_QUARTERS:2", "2023-10-01", "2024-04-01"),
    ("NEXT_N_QUARTERS:1", "2024-07-01", "2024-10-01"),
    ("LAST_N_YEARS:2", "2022-01-01", "2024-01-01"),
    ("NEXT_N_YEARS:2", "2025-01-01", "2027-01-01"),
    ("THIS_FISCAL_YEAR", "2024-01-01", "2025-01-01"),
    ("LAST_FISCAL_QUARTER", "2024-01-01", "2024-04-01"),
];

/// Probes every operator at the edges of the range, on a date field and (by the first
/// and last millisecond of each probed day) on a datetime field.
fn check_range(now: i64, lit: &str, first: &str, after: &str) {
    let (lo, hi) = (parse_date(first).unwrap(), parse_date(after).unwrap());
    let probes: [(&str, [(i32, bool); 4]); 6] = [
        ("=", [(lo - 1, false), (lo, true), (hi - 1, true), (hi, false)]),
        ("!=", [(lo - 1, true), (lo, false), (hi - 1, false), (hi, true)]),
        ("<", [(lo - 1, true), (lo, false), (hi - 1, false), (hi, false)]),
        ("<=", [(lo - 1, true), (lo, true), (hi - 1, true), (hi, false)]),
        (">", [(lo - 1, false), (lo, false), (hi - 1, false), (hi, true)]),
        (">=", [(lo - 1, false), (lo, true), (hi - 1, true), (hi, true)]),
    ];
    for (op, cases) in probes {
        let on_date = bound(&format!("SELECT Id FROM Account WHERE LastActivityDate {op} {lit}"), now);
        let on_time = bound(&format!("SELECT Id FROM Account WHERE CreatedDate {op} {lit}"), now);
        for (day, want) in cases {
            let values = [("LastActivityDate", Value::Date(day))];
            let row = MapRow { bound: &on_date, values: &values };
            assert_eq!(on_date.matches(&row), want, "date {op} {lit} on day {day}");
            let start = i64::from(day) * 86_400_000;
            for ms in [start, start + 86_399_999] {
                let values = [("CreatedDate", Value::DateTime(ms))];
                let row = MapRow { bound: &on_time, values: &values };
                assert_eq!(on_time.matches(&row), want, "datetime {op} {lit} at {ms}");
            }
        }
    }
}

#[test]
fn date_literals_cover_their_ranges_at_a_fixed_clock() {
    assert_eq!(parse_datetime("2024-06-12T10:30:00Z"), Some(NOW));
    for (lit, first, after) in RANGES_AT_NOW {
        check_range(NOW, lit, first, after);
    }
    // Across a year boundary: 2024-01-02 is a Tuesday.
    let new_year = parse_datetime("2024-01-02T23:59:59Z").unwrap();
    for (lit, first, after) in [
        ("THIS_WEEK", "2023-12-31", "2024-01-07"),
        ("LAST_MONTH", "2023-12-01", "2024-01-01"),
        ("LAST_QUARTER", "2023-10-01", "2024-01-01"),
        ("N_DAYS_AGO:2", "2023-12-31", "2024-01-01"),
        ("LAST_N_MONTHS:13", "2022-12-01", "2024-01-01"),
    ] {
        check_range(new_year, lit, first, after);
    }
}

#[test]
fn date_and_datetime_values_compare_exactly() {
    let at = |t: &str| Value::DateTime(parse_datetime(t).unwrap());
    let rows: Vec<Row> = vec![
        vec![("CreatedDate", at("2024-01-02T03:04:05.123Z"))],
        vec![("CreatedDate", at("2024-01-02T03:04:05.124Z"))],
        vec![("CreatedDate", at("2024-01-02T03:04:05Z"))],
        vec![("CreatedDate", at("2024-01-02T03:04:05.500Z"))],
        vec![("LastActivityDate", Value::Date(parse_date("2024-01-02").unwrap()))],
    ];
    check(
        &rows,
        &[
            ("CreatedDate = 2024-01-02T03:04:05.123Z", &[0]),
            ("CreatedDate = 2024-01-02T04:04:05.123+01:00", &[0]),
            ("CreatedDate = 2024-01-01T19:04:05.123-08:00", &[0]),
            ("CreatedDate = 2024-01-02T03:04:05.123456Z", &[0]),
            ("CreatedDate = 2024-01-02T03:04:05.5Z", &[3]),
            ("CreatedDate > 2024-01-02T03:04:05Z", &[0, 1, 3]),
            ("CreatedDate <= 2024-01-02T03:04:05Z", &[2]),
            ("CreatedDate >= 2024-01-02T03:04:05.124Z AND CreatedDate < 2024-01-02T03:04:06Z", &[1, 3]),
            ("CreatedDate IN (2024-01-02T03:04:05Z, 2024-01-02T03:04:05.124Z)", &[1, 2]),
            ("CreatedDate = null", &[4]),
            ("LastActivityDate = 2024-01-02", &[4]),
            ("LastActivityDate > 2024-01-01", &[4]),
            ("LastActivityDate < 2024-01-02", &[]),
            ("LastActivityDate IN (2024-01-02, YESTERDAY)", &[4]),
        ],
    );
}

/// Sorts row indices with a stable sort, as the caller does.
fn order(clause: &str, rows: &[Row]) -> Vec<usize> {
    let b = bound(&format!("SELECT Id FROM Account ORDER BY {clause}"), NOW);
    let mut idx: Vec<usize> = (0..rows.len()).collect();
    idx.sort_by(|&x, &y| b.compare(&MapRow { bound: &b, values: &rows[x] }, &MapRow { bound: &b, values: &rows[y] }));
    idx
}

#[test]
fn order_by_places_nulls_and_ignores_case() {
    let rows: Vec<Row> = ["beta", "", "Alpha", "alpha", "Gamma", ""]
        .iter()
        .map(|n| if n.is_empty() { vec![] } else { vec![("Name", s(n))] })
        .collect();
    assert_eq!(order("Name", &rows), [1, 5, 2, 3, 0, 4]);
    assert_eq!(order("Name ASC", &rows), [1, 5, 2, 3, 0, 4]);
    assert_eq!(order("Name DESC", &rows), [4, 0, 2, 3, 1, 5]);
    assert_eq!(order("Name ASC NULLS LAST", &rows), [2, 3, 0, 4, 1, 5]);
    assert_eq!(order("Name DESC NULLS FIRST", &rows), [1, 5, 4, 0, 2, 3]);
}

#[test]
fn order_by_several_keys_and_types() {
    let rows: Vec<Row> = vec![
        vec![("Industry", s("Tech")), ("AnnualRevenue", Value::Float(5.0)), ("CreatedDate", Value::DateTime(3))],
        vec![("Industry", s("tech")), ("AnnualRevenue", Value::Float(7.5)), ("CreatedDate", Value::DateTime(1))],
        vec![("Industry", s("Energy")), ("CreatedDate", Value::DateTime(2))],
        vec![("Industry", s("Energy")), ("AnnualRevenue", Value::Float(-1.0))],
    ];
    assert_eq!(order("Industry, AnnualRevenue DESC", &rows), [3, 2, 1, 0]);
    assert_eq!(order("industry desc, annualrevenue", &rows), [0, 1, 2, 3]);
    assert_eq!(order("CreatedDate DESC", &rows), [0, 2, 1, 3]);
    assert_eq!(order("AnnualRevenue", &rows), [2, 3, 0, 1]);
}

#[test]
fn no_where_clause_matches_everything() {
    let b = bound("SELECT Id FROM Account LIMIT 5", NOW);
    assert!(b.matches(&MapRow { bound: &b, values: &[] }));
    assert_eq!(b.limit, Some(5));
}
