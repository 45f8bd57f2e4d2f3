//! Tests of binding: Salesforce's semantic errors (codes, texts, blamed positions),
//! canonical names, field deduplication and the COUNT forms.

use crate::value::FieldType;

use super::tests::{NOW, TestCatalog, diagram, error_of};
use super::*;

#[test]
fn bind_errors_carry_salesforce_codes_and_texts() {
    let custom_field = "If you are attempting to use a custom field, be sure to append the '__c' \
                        after the custom field name. Please reference your WSDL or the describe \
                        call for the appropriate names.";
    let custom_rel = "If you are attempting to use a custom relationship, be sure to append the \
                      '__r' after the custom relationship name. Please reference your WSDL or the \
                      describe call for the appropriate names.";
    let not_quoted = |f: &str, t: &str| {
        format!(
            "value of filter criterion for field '{f}' must be of type {t} and should not be \
             enclosed in quotes"
        )
    };
    let quoted = |f: &str| {
        format!(
            "value of filter criterion for field '{f}' must be of type string and should be \
             enclosed in quotes"
        )
    };
    // (query, code, column, text)
    #[rustfmt::skip]
    let cases: Vec<(&str, &str, usize, String)> = vec![
        ("SELECT Foo.Name FROM Account", "INVALID_FIELD", 8, format!("Didn't understand relationship 'Foo' in field path. {custom_rel}")),
        ("SELECT Owner.Foo FROM Account", "INVALID_FIELD", 8, format!("No such column 'Foo' on entity 'User'. {custom_field}")),
        ("SELECT Id FROM Account WHERE Bar = 1", "INVALID_FIELD", 30, format!("No such column 'Bar' on entity 'Account'. {custom_field}")),
        ("SELECT Id FROM Account ORDER BY OwnerId.Name", "INVALID_FIELD", 33, format!("Didn't understand relationship 'OwnerId' in field path. {custom_rel}")),
        ("SELECT Id FROM Account WHERE Description = 'x'", "INVALID_FIELD", 30, "field 'Description' can not be filtered in a query call".into()),
        ("SELECT Id FROM Account WHERE billingaddress = null", "INVALID_FIELD", 30, "field 'BillingAddress' can not be filtered in a query call".into()),
        ("SELECT Id FROM Account ORDER BY Description", "INVALID_FIELD", 33, "field 'Description' can not be sorted in a query call".into()),
        ("SELECT Id FROM Account ORDER BY BillingAddress", "INVALID_FIELD", 33, "field 'BillingAddress' can not be sorted in a query call".into()),
        ("SELECT Id FROM Account WHERE CreatedDate > '2024-01-01T00:00:00Z'", "INVALID_FIELD", 44, not_quoted("CreatedDate", "dateTime")),
        ("SELECT Id FROM Account WHERE createddate > 2024-01-01", "INVALID_FIELD", 44, not_quoted("CreatedDate", "dateTime")),
        ("SELECT Id FROM Account WHERE LastActivityDate = 2024-01-01T00:00:00Z", "INVALID_FIELD", 49, not_quoted("LastActivityDate", "date")),
        ("SELECT Id FROM Account WHERE LastActivityDate = 2023-02-29", "INVALID_FIELD", 49, not_quoted("LastActivityDate", "date")),
        ("SELECT Id FROM Account WHERE CreatedDate = 2024-01-01T25:00:00Z", "INVALID_FIELD", 44, not_quoted("CreatedDate", "dateTime")),
        ("SELECT Id FROM Account WHERE AnnualRevenue = '5'", "INVALID_FIELD", 46, not_quoted("AnnualRevenue", "double")),
        ("SELECT Id FROM Account WHERE NumberOfEmployees IN (1, '5')", "INVALID_FIELD", 55, not_quoted("NumberOfEmployees", "integer")),
        ("SELECT Id FROM Account WHERE IsDeleted = 'true'", "INVALID_FIELD", 42, not_quoted("IsDeleted", "boolean")),
        ("SELECT Id FROM Account WHERE OpenTime__c = TODAY", "INVALID_FIELD", 44, not_quoted("OpenTime__c", "time")),
        ("SELECT Id FROM Account WHERE Name = 5", "INVALID_FIELD", 37, quoted("Name")),
        ("SELECT Id FROM Account WHERE Name = TODAY", "INVALID_FIELD", 37, quoted("Name")),
        ("SELECT Id FROM Account WHERE Name LIKE null", "INVALID_FIELD", 40, quoted("Name")),
        ("SELECT Id FROM Account WHERE AnnualRevenue LIKE '5%'", "INVALID_QUERY_FILTER_OPERATOR", 44, "invalid operator on double field".into()),
        ("SELECT Id FROM Account WHERE Tags__c LIKE 'a%'", "INVALID_QUERY_FILTER_OPERATOR", 38, "invalid operator on multipicklist field".into()),
        ("SELECT Id FROM Account WHERE Tags__c > 'a'", "INVALID_QUERY_FILTER_OPERATOR", 38, "invalid operator on multipicklist field".into()),
        ("SELECT Id FROM Account WHERE Industry INCLUDES ('a')", "INVALID_QUERY_FILTER_OPERATOR", 39, "includes or excludes operator only valid on multipicklist field".into()),
        ("SELECT Id FROM Account WHERE IsDeleted < true", "INVALID_QUERY_FILTER_OPERATOR", 40, "invalid operator on boolean field".into()),
        ("SELECT Id FROM Account OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE", 31, "Maximum SOQL offset allowed is 2000".into()),
        ("SELECT COUNT() FROM Account ORDER BY Name", "MALFORMED_QUERY", 38, "Ordered field must be grouped or aggregated: Name".into()),
        ("SELECT COUNT(Id), name FROM Account", "MALFORMED_QUERY", 19, "Field must be grouped or aggregated: Name".into()),
        ("SELECT Id, Name, id FROM Account", "INVALID_FIELD", 18, "duplicate field selected: id".into()),
        ("SELECT Parent.Parent.Parent.Parent.Parent.Parent.Name FROM Account", "MALFORMED_QUERY", 8, "SOQL statements cannot query more than 5 levels of relationships".into()),
    ];
    for (soql, code, column, text) in &cases {
        let err = error_of(soql);
        assert_eq!((err.code, err.row, err.column, err.text.as_str()), (*code, 1, *column, text.as_str()), "{soql:?}");
        assert_eq!(err.message(soql), diagram(soql, 1, *column, text), "{soql:?}");
    }
}

#[test]
fn binder_errors_on_later_lines_point_there() {
    let soql = "SELECT Id\nFROM Account\nWHERE Name = 'x'\n  AND CreatedDate > 2024-01-01";
    let err = error_of(soql);
    assert_eq!((err.code, err.row, err.column), ("INVALID_FIELD", 4, 21));
    assert!(err.message(soql).starts_with("\n  AND CreatedDate > 2024-01-01\n                    ^\n"));
}

#[test]
fn offset_2000_and_five_hops_are_allowed() {
    let b =
        compile("SELECT Parent.Parent.Parent.Parent.Parent.Name FROM Account OFFSET 2000", &TestCatalog, NOW).unwrap();
    assert_eq!(b.offset, Some(2000));
    assert_eq!(b.fields[0].dotted(), "Parent.Parent.Parent.Parent.Parent.Name");
}

#[test]
fn names_come_back_in_canonical_casing_and_fields_are_deduplicated() {
    let b = compile(
        "select owner.NAME, name, ACCOUNT.annualrevenue, count(ID) Total from ACCOUNT \
         where INDUSTRY = 'x' and Name != null and Owner.name like 'J%' order by createddate desc",
        &TestCatalog,
        NOW,
    );
    // COUNT(Id) next to plain fields needs GROUP BY; check names on the plain query.
    assert!(b.is_err());
    let b = compile(
        "select owner.NAME, name, ACCOUNT.annualrevenue from ACCOUNT \
         where INDUSTRY = 'x' and Name != null and Owner.name like 'J%' order by createddate desc",
        &TestCatalog,
        NOW,
    )
    .unwrap();
    assert_eq!(b.object, "Account");
    let paths: Vec<String> = b.fields.iter().map(BoundField::dotted).collect();
    assert_eq!(paths, ["Owner.Name", "Name", "AnnualRevenue", "Industry", "CreatedDate"]);
    assert_eq!(b.fields[0].path, ["Owner", "Name"]);
    assert_eq!(b.fields[4].ty, FieldType::DateTime);
    assert_eq!(b.select, [SelectItem::Field(0), SelectItem::Field(1), SelectItem::Field(2)]);
    assert_eq!(b.order_by, [OrderItem { field: 4, descending: true, nulls_first: false }]);
    assert!(!b.is_count());
    assert_eq!((b.limit, b.offset), (None, None));
}

#[test]
fn count_forms_bind() {
    let b = compile("SELECT COUNT() FROM Contact WHERE Account.Name = 'x'", &TestCatalog, NOW).unwrap();
    assert!(b.is_count());
    assert_eq!(b.select, [SelectItem::CountAll]);
    assert_eq!(b.fields[0].path, ["Account", "Name"]);
    let b = compile("SELECT COUNT(Id), count(LastName) n FROM contact", &TestCatalog, NOW).unwrap();
    assert!(!b.is_count());
    assert_eq!(
        b.select,
        [SelectItem::Count { field: 0, alias: None }, SelectItem::Count { field: 1, alias: Some("n".into()) }]
    );
    assert_eq!(b.fields[1].path, ["LastName"]);
}

#[test]
fn display_names_code_position_and_text() {
    let err = error_of("SELECT Foo FROM Account");
    assert!(err.to_string().starts_with("INVALID_FIELD: ERROR at Row:1:Column:8: No such column 'Foo'"));
}

#[test]
fn bound_queries_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Bound>();
    assert_send_sync::<Query>();
    assert_send_sync::<SoqlError>();
}
