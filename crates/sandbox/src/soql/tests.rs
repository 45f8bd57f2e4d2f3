//! Tests of parsing: the syntax tree, and Salesforce's syntax error messages with their
//! caret diagrams. The fixtures the other test files share (a tiny catalog, map-backed
//! rows, a fixed clock) live here too.

use crate::value::{FieldType, Value};

use super::*;

/// A small org: Account (with Owner and Parent relationships), User, Contact.
pub(super) struct TestCatalog;

/// (object, field, type, filterable, sortable)
const FIELDS: &[(&str, &str, FieldType, bool, bool)] = &[
    ("Account", "Id", FieldType::Id, true, true),
    ("Account", "Name", FieldType::String, true, true),
    ("Account", "Industry", FieldType::Picklist, true, true),
    ("Account", "AnnualRevenue", FieldType::Currency, true, true),
    ("Account", "NumberOfEmployees", FieldType::Int, true, true),
    ("Account", "Big__c", FieldType::Long, true, true),
    ("Account", "IsDeleted", FieldType::Boolean, true, true),
    ("Account", "CreatedDate", FieldType::DateTime, true, true),
    ("Account", "LastActivityDate", FieldType::Date, true, true),
    ("Account", "OpenTime__c", FieldType::Time, true, true),
    ("Account", "OwnerId", FieldType::Reference, true, true),
    ("Account", "ParentId", FieldType::Reference, true, true),
    ("Account", "Description", FieldType::Textarea, false, false),
    // Real describes say filterable=false for compounds; the binder must refuse them
    // even when a catalog says otherwise.
    ("Account", "BillingAddress", FieldType::Address, true, true),
    ("Account", "Tags__c", FieldType::Multipicklist, true, false),
    ("User", "Id", FieldType::Id, true, true),
    ("User", "Name", FieldType::String, true, true),
    ("User", "Email", FieldType::Email, true, true),
    ("User", "ManagerId", FieldType::Reference, true, true),
    ("Contact", "Id", FieldType::Id, true, true),
    ("Contact", "LastName", FieldType::String, true, true),
    ("Contact", "AccountId", FieldType::Reference, true, true),
];

/// (object, relationship, target)
const RELATIONSHIPS: &[(&str, &str, &str)] = &[
    ("Account", "Owner", "User"),
    ("Account", "Parent", "Account"),
    ("User", "Manager", "User"),
    ("Contact", "Account", "Account"),
];

impl Catalog for TestCatalog {
    fn object(&self, name: &str) -> Option<String> {
        ["Account", "User", "Contact"].into_iter().find(|o| o.eq_ignore_ascii_case(name)).map(str::to_owned)
    }

    fn field(&self, object: &str, name: &str) -> Option<CatalogField> {
        FIELDS.iter().find(|(o, f, ..)| *o == object && f.eq_ignore_ascii_case(name)).map(
            |(_, f, ty, filterable, sortable)| CatalogField {
                name: (*f).to_owned(),
                ty: *ty,
                filterable: *filterable,
                sortable: *sortable,
            },
        )
    }

    fn relationship(&self, object: &str, name: &str) -> Option<(String, String)> {
        RELATIONSHIPS
            .iter()
            .find(|(o, r, _)| *o == object && r.eq_ignore_ascii_case(name))
            .map(|(_, r, t)| ((*r).to_owned(), (*t).to_owned()))
    }
}

/// A row given as (dotted path, value) pairs; paths not listed are null.
pub(super) struct MapRow<'a> {
    pub bound: &'a Bound,
    pub values: &'a [(&'a str, Value<'static>)],
}

impl RowAccess for MapRow<'_> {
    fn value(&self, field: usize) -> Value<'_> {
        let path = self.bound.fields[field].dotted();
        self.values.iter().find(|(p, _)| p.eq_ignore_ascii_case(&path)).map_or(Value::Null, |(_, v)| v.clone())
    }
}

/// 2024-06-12T10:30:00Z, a Wednesday.
pub(super) const NOW: i64 = 1_718_188_200_000;

/// The message Salesforce would send: caret under `column` of line `row`.
pub(super) fn diagram(soql: &str, row: usize, column: usize, text: &str) -> String {
    let line = soql.split('\n').nth(row - 1).unwrap();
    format!("\n{line}\n{}^\nERROR at Row:{row}:Column:{column}\n{text}", " ".repeat(column - 1))
}

pub(super) fn error_of(soql: &str) -> SoqlError {
    match compile(soql, &TestCatalog, NOW) {
        Ok(b) => panic!("{soql:?} compiled: {b:?}"),
        Err(e) => e,
    }
}

#[test]
fn real_salesforce_messages_are_reproduced_byte_for_byte() {
    // Both captured from real orgs (reference §2.11).
    let soql = "SELECT Foo FROM Account";
    assert_eq!(
        error_of(soql).message(soql),
        "\nSELECT Foo FROM Account\n       ^\nERROR at Row:1:Column:8\nNo such column 'Foo' on \
         entity 'Account'. If you are attempting to use a custom field, be sure to append the \
         '__c' after the custom field name. Please reference your WSDL or the describe call for \
         the appropriate names."
    );
    let soql = "select count() from XYZZY";
    let err = error_of(soql);
    assert_eq!(err.code, "INVALID_TYPE");
    assert_eq!(
        err.message(soql),
        "\nselect count() from XYZZY\n                    ^\nERROR at Row:1:Column:21\nsObject \
         type 'XYZZY' is not supported. If you are attempting to use a custom object, be sure \
         to append the '__c' after the entity name. Please reference your WSDL or the describe \
         call for the appropriate names."
    );
}

#[test]
fn syntax_errors_point_at_the_offending_token() {
    let eof = "unexpected token: <EOF>";
    // (query, row, column, text)
    #[rustfmt::skip]
    let cases: &[(&str, usize, usize, &str)] = &[
        ("", 1, 1, eof),
        ("SELECT Id From", 1, 15, eof),
        ("SELECT Id, From Account", 1, 12, "unexpected token: 'From'"),
        ("SELECT FROM Account", 1, 8, "unexpected token: 'FROM'"),
        ("SELECT Id Account", 1, 11, "Only aggregate expressions use field aliasing"),
        ("SELECT Id FROM Account WHERE", 1, 29, eof),
        ("SELECT Id FROM Account WHERE Name = 'a' AND Industry = 'b' OR Id = 'c'", 1, 60, "unexpected token: 'OR'"),
        ("SELECT Id FROM Account WHERE Name = 'a' OR Industry = 'b' AND Id = 'c'", 1, 59, "unexpected token: 'AND'"),
        ("SELECT Id FROM Account WHERE (Name = 'a'", 1, 41, eof),
        ("SELECT Id FROM Account WHERE Name LIKE", 1, 39, eof),
        ("SELECT Id FROM Account WHERE Name NOT LIKE 'a'", 1, 35, "unexpected token: 'NOT'"),
        ("SELECT Id FROM Account WHERE Name IN ()", 1, 39, "unexpected token: ')'"),
        ("SELECT Id FROM Account WHERE Name = foo", 1, 37, "unexpected token: 'foo'"),
        ("SELECT Id FROM Account WHERE Name = :name", 1, 37, "Bind variables only allowed in Apex code"),
        ("SELECT Id FROM Account WHERE CreatedDate = LAST_N_DAYS:", 1, 56, eof),
        ("SELECT Id FROM Account WHERE CreatedDate = LAST_N_DAYS:-1", 1, 56, "unexpected token: '-1'"),
        ("SELECT Id FROM Account WHERE CreatedDate = TODAY:1", 1, 49, "unexpected token: ':'"),
        ("SELECT Id FROM Account ORDER BY Name NULLS", 1, 43, eof),
        ("SELECT Id FROM Account ORDER BY Name DESC NULLS MIDDLE", 1, 49, "unexpected token: 'MIDDLE'"),
        ("SELECT Id FROM Account LIMIT -1", 1, 30, "unexpected token: '-1'"),
        ("SELECT Id FROM Account LIMIT 1.5", 1, 30, "unexpected token: '1.5'"),
        ("SELECT Id FROM Account OFFSET 5 LIMIT 1", 1, 33, "unexpected token: 'LIMIT'"),
        ("SELECT Id FROM Account GROUP BY Name", 1, 24, "unexpected token: 'GROUP'"),
        ("SELECT COUNT(), Id FROM Account", 1, 15, "unexpected token: ','"),
        ("SELECT Id, COUNT() FROM Account", 1, 18, "unexpected token: ')'"),
        ("SELECT Owner. FROM Account", 1, 15, "unexpected token: 'FROM'"),
        ("SELECT Id\nFROM Account\nWHERE Name = 'x' LIMIT", 3, 23, eof),
        ("SELECT Id\r\nFROM Account\r\nWHERE", 3, 6, eof),
        // Lexical errors name the character where no token fits.
        ("SELECT Id FROM Account WHERE Name = \"x\"", 1, 37, "line 1:37 no viable alternative at character '\"'"),
        ("SELECT Id FROM Account;", 1, 23, "line 1:23 no viable alternative at character ';'"),
        ("SELECT Id FROM Account WHERE Name = 'abc", 1, 41, "line 1:41 no viable alternative at character '<EOF>'"),
        // The classic: `+` in a URL decodes to a space.
        ("SELECT Id FROM Account WHERE CreatedDate > 2024-01-01T00:00:00 00:00", 1, 63, "line 1:63 no viable alternative at character ' '"),
        ("SELECT Id FROM Account WHERE CreatedDate > 2024-01-01T00:00", 1, 60, "line 1:60 no viable alternative at character '<EOF>'"),
        ("SELECT Id FROM Account WHERE Name = 'a\\qb'", 1, 37, "Invalid string literal 'a\\qb'. Illegal character sequence '\\q' in string literal."),
    ];
    for &(soql, row, column, text) in cases {
        let err = match parse(soql) {
            Ok(q) => panic!("{soql:?} parsed: {q:?}"),
            Err(e) => e,
        };
        assert_eq!(
            (err.code, err.row, err.column, err.text.as_str()),
            ("MALFORMED_QUERY", row, column, text),
            "{soql:?}"
        );
        assert_eq!(err.message(soql), diagram(soql, row, column, text), "{soql:?}");
    }
}

#[test]
fn caret_diagram_shows_only_the_blamed_line() {
    let soql = "SELECT Id\nFROM Account\nWHERE Name = 'x' LIMIT";
    assert_eq!(
        parse(soql).unwrap_err().message(soql),
        "\nWHERE Name = 'x' LIMIT\n                      ^\nERROR at Row:3:Column:23\nunexpected token: <EOF>"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let soql = format!("SELECT Id FROM Account WHERE {}Name = 'x'", "(".repeat(5000));
    assert_eq!(parse(&soql).unwrap_err().code, "MALFORMED_QUERY");
    let soql = format!("SELECT Id FROM Account WHERE {}Name = 'x'", "NOT ".repeat(5000));
    assert_eq!(parse(&soql).unwrap_err().code, "MALFORMED_QUERY");
    let ok = format!("SELECT Id FROM Account WHERE {}Name = 'x'{}", "(".repeat(50), ")".repeat(50));
    assert!(compile(&ok, &TestCatalog, NOW).is_ok());
}

#[test]
fn parse_builds_the_tree_with_positions() {
    let q = parse(
        "select Owner.Name, COUNT(Id) n from Account where not (Name like 'a%' or Id in ('x', null)) \
         and AnnualRevenue >= -1.5 order by Name desc nulls first, Id limit 10 offset 20",
    )
    .unwrap();
    let name = |text: &str, column| Name { text: text.to_owned(), pos: Pos { row: 1, column } };
    assert_eq!(
        q.select,
        vec![
            SelectExpr::Field(FieldRef { segments: vec![name("Owner", 8), name("Name", 14)] }),
            SelectExpr::Count { field: FieldRef { segments: vec![name("Id", 26)] }, alias: Some(name("n", 30)) },
        ]
    );
    assert_eq!(q.from, name("Account", 37));
    assert_eq!(q.limit.as_ref().map(|l| l.value), Some(10));
    assert_eq!(q.offset.as_ref().map(|o| o.value), Some(20));
    assert_eq!(q.order_by.len(), 2);
    assert!(q.order_by[0].descending && q.order_by[0].nulls_first == Some(true));
    assert!(!q.order_by[1].descending && q.order_by[1].nulls_first.is_none());
    let Some(Condition::And(parts)) = &q.filter else { panic!("{:?}", q.filter) };
    let Condition::Not(inner) = &parts[0] else { panic!("{parts:?}") };
    let Condition::Or(ors) = inner.as_ref() else { panic!("{inner:?}") };
    let Condition::Compare(like) = &ors[0] else { panic!() };
    assert_eq!(like.op, Operator::Like);
    assert_eq!(like.op_pos, Pos { row: 1, column: 61 });
    let Condition::Compare(inlist) = &ors[1] else { panic!() };
    assert_eq!(inlist.op, Operator::In);
    assert_eq!(inlist.values[1].kind, LiteralKind::Null);
    let Condition::Compare(num) = &parts[1] else { panic!() };
    assert_eq!(num.op, Operator::Ge);
    assert_eq!(num.values[0].kind, LiteralKind::Number("-1.5".into()));
}

#[test]
fn strings_resolve_escapes_and_keep_the_raw_text() {
    let q = parse(r"SELECT Id FROM Account WHERE Name = 'O\'Brien \\ \n\t 50\% a\_b'").unwrap();
    let Some(Condition::Compare(c)) = q.filter else { panic!() };
    assert_eq!(
        c.values[0].kind,
        LiteralKind::String { value: "O'Brien \\ \n\t 50% a_b".into(), raw: r"O\'Brien \\ \n\t 50\% a\_b".into() }
    );
}
