//! Tests of decoding: REST JSON and Bulk CSV of the same rows give identical batches.

use super::*;
use crate::model::{Column, Cursor};

fn col(name: &str, ty: SluiceType) -> Column {
    Column {
        name: crate::model::snake_case(name),
        source_name: name.into(),
        ty,
        nullable: true,
        formula: false,
        masked: false,
    }
}

fn schema() -> TableSchema {
    TableSchema {
        object: "Invoice__c".into(),
        table: "invoice__c".into(),
        columns: vec![
            col("Id", SluiceType::Id),
            col("IsDeleted", SluiceType::Boolean),
            col("Name", SluiceType::Text),
            col("Count__c", SluiceType::Int),
            col("Seq__c", SluiceType::Long),
            col("Amount__c", SluiceType::Decimal { precision: 18, scale: 2 }),
            col("Ratio__c", SluiceType::Double),
            col("On__c", SluiceType::Date),
            col("SystemModstamp", SluiceType::Timestamp),
            col("At__c", SluiceType::Time),
        ],
        cursor: Cursor::SystemModstamp,
        deleted_flag: Some("IsDeleted".into()),
    }
}

#[test]
fn decimal_table() {
    let cases = [
        ("12.34", 18, 2, Some(1234)),
        ("-12.345", 18, 2, Some(-1235)),
        ("12.344", 18, 2, Some(1234)),
        ("1.5E7", 18, 0, Some(15_000_000)),
        ("15000000.0", 18, 0, Some(15_000_000)),
        ("1e-3", 18, 4, Some(10)),
        ("0.5", 3, 0, Some(1)),
        ("0.05", 3, 0, Some(0)),
        ("999.995", 5, 2, None),
        ("123456789012345678.12", 38, 2, Some(12_345_678_901_234_567_812)),
        ("abc", 18, 2, None),
        ("", 18, 2, None),
        (".", 18, 2, None),
        ("7", 18, 4, Some(70_000)),
    ];
    for (text, p, s, want) in cases {
        assert_eq!(parse_decimal(text, p, s), want, "{text} as ({p},{s})");
    }
    assert_eq!(parse_integer("12.0"), Some(12));
    assert_eq!(parse_integer("12.5"), None);
}

#[test]
fn datetimes_from_both_formats_agree() {
    let rest = parse_datetime_ms("2024-06-11T08:30:10.123+0000").unwrap();
    let csv = parse_datetime_ms("2024-06-11T08:30:10.123Z").unwrap();
    let offset = parse_datetime_ms("2024-06-11T10:30:10.123+02:00").unwrap();
    assert_eq!((rest, csv, offset), (1_718_094_610_123, 1_718_094_610_123, 1_718_094_610_123));
    assert_eq!(parse_time_ms("13:05:30.250Z"), Some(47_130_250));
    assert_eq!(parse_date("1970-01-02"), Some(1));
}

#[test]
fn json_and_csv_pages_give_identical_batches() {
    let json = br#"{"totalSize":2,"done":true,"records":[
      {"attributes":{"type":"Invoice__c"},"Id":"a0X000000000001AAA","IsDeleted":false,"Name":"caf\u00e9 \"x\", y",
       "Count__c":3,"Seq__c":9007199254740993,"Amount__c":123456789012.35,"Ratio__c":0.1,"On__c":"2025-12-16",
       "SystemModstamp":"2024-06-11T08:30:10.000+0000","At__c":"13:05:30.000Z","BillingAddress":{"city":"x"}},
      {"attributes":{"type":"Invoice__c"},"Id":"a0X000000000002AAA","IsDeleted":true,"Name":"",
       "Count__c":null,"Seq__c":null,"Amount__c":null,"Ratio__c":null,"On__c":null,
       "SystemModstamp":"2024-06-11T08:30:11.000+0000","At__c":null,"BillingAddress":null}]}"#;
    let csv = "\"Id\",\"IsDeleted\",\"Name\",\"Count__c\",\"Seq__c\",\"Amount__c\",\"Ratio__c\",\"On__c\",\"SystemModstamp\",\"At__c\"\n\
\"a0X000000000001AAA\",\"false\",\"café \"\"x\"\", y\",\"3\",\"9007199254740993\",\"123456789012.35\",\"0.1\",\"2025-12-16\",\"2024-06-11T08:30:10.000Z\",\"13:05:30.000Z\"\n\
\"a0X000000000002AAA\",\"true\",,,,,,,\"2024-06-11T08:30:11.000Z\",\n";
    let s = schema();
    let arrow = arrow_schema(&s);
    let page = RestPage::parse(json).unwrap();
    assert_eq!(page.total_size, 2);
    let a = json_batch(&s, &arrow, &page.records, &|_| None).unwrap();
    let b = csv_batch(&s, &arrow, csv.as_bytes(), b',').unwrap();
    assert_eq!(a, b);
    let positional = JsonPage::parse(&s, json).unwrap();
    assert_eq!((positional.total_size, positional.done, positional.next_records_url.as_deref()), (2, true, None));
    assert_eq!(json_rows_batch(&s, &arrow, &positional.rows, &|_| None).unwrap(), a);
    assert_eq!(a.num_rows(), 2);
    let seq = a.column(4).as_any().downcast_ref::<arrow::array::Int64Array>().unwrap();
    assert_eq!(seq.value(0), 9_007_199_254_740_993);
    let amount = a.column(5).as_any().downcast_ref::<arrow::array::Decimal128Array>().unwrap();
    assert_eq!(amount.value(0), 12_345_678_901_235);
    assert!(a.column(2).is_null(1), "empty text is null");
}

#[test]
fn empty_and_header_only_csv_pages_are_empty_batches() {
    let s = schema();
    let arrow = arrow_schema(&s);
    assert_eq!(csv_batch(&s, &arrow, b"", b',').unwrap().num_rows(), 0);
    let header = "Id,IsDeleted,Name,Count__c,Seq__c,Amount__c,Ratio__c,On__c,SystemModstamp,At__c\n";
    assert_eq!(csv_batch(&s, &arrow, header.as_bytes(), b',').unwrap().num_rows(), 0);
    let err = csv_batch(&s, &arrow, b"Id,Name\n", b',').unwrap_err();
    assert!(err.message.contains("lacks"), "{}", err.message);
}

#[test]
fn bad_values_name_the_field() {
    let s = schema();
    let arrow = arrow_schema(&s);
    let json = br#"{"totalSize":1,"done":true,"records":[{"Id":"x","IsDeleted":false,"Name":null,"Count__c":"many",
      "Seq__c":null,"Amount__c":null,"Ratio__c":null,"On__c":null,"SystemModstamp":null,"At__c":null}]}"#;
    let page = RestPage::parse(json).unwrap();
    let err = json_batch(&s, &arrow, &page.records, &|_| None).unwrap_err();
    assert!(err.message.contains("Invoice__c.Count__c of record x: `many`"), "{}", err.message);
    assert_eq!(err.retry, crate::Retry::Never, "a malformed value stays malformed");
}

/// Untrusted text is never sliced by byte offset: a multibyte character where a parser
/// expects ASCII is a clear error naming the object, the field and the record, never a
/// panic (one ended an extraction task early, and the flow took it for the end of data).
#[test]
fn multibyte_values_are_errors_naming_object_field_and_id() {
    let bad = [
        "2024-06-11T08:30:10.12\u{e9}+0000",
        "2024-06-11T08:30:10.123\u{e9}000",
        "2024-06-11T08:30:1\u{1f600}.123Z",
        "\u{e9}024-06-11T08:30:10.123Z",
        "2024-06-11T08:30:10.123+00\u{e9}",
    ];
    for text in bad {
        assert_eq!(parse_datetime_ms(text), None, "{text}");
    }
    for text in ["\u{e9}", "-\u{e9}", "1\u{e9}5", "1e\u{e9}", "\u{e9}e1"] {
        assert_eq!(parse_decimal(text, 18, 2), None, "{text}");
        assert_eq!(parse_integer(text), None, "{text}");
    }
    assert_eq!(parse_time_ms("13:05:3\u{e9}.250Z"), None);
    assert_eq!(parse_date("2024-06-1\u{e9}"), None);

    let s = schema();
    let arrow = arrow_schema(&s);
    let json = format!(
        r#"{{"totalSize":1,"done":true,"records":[{{"Id":"a0X000000000009AAA","IsDeleted":false,"Name":null,
          "Count__c":null,"Seq__c":null,"Amount__c":null,"Ratio__c":null,"On__c":null,
          "SystemModstamp":"{}","At__c":null}}]}}"#,
        bad[0]
    );
    let page = JsonPage::parse(&s, json.as_bytes()).unwrap();
    let err = json_rows_batch(&s, &arrow, &page.rows, &|_| None).unwrap_err();
    let want = "Invoice__c.SystemModstamp of record a0X000000000009AAA: `2024-06-11T08:30:10.12\u{e9}+0000` is not a \
                valid datetime";
    assert_eq!(err.message, want);
    let page = RestPage::parse(json.as_bytes()).unwrap();
    assert_eq!(json_batch(&s, &arrow, &page.records, &|_| None).unwrap_err().message, want);
    let csv = format!(
        "Id,IsDeleted,Name,Count__c,Seq__c,Amount__c,Ratio__c,On__c,SystemModstamp,At__c\n\
         a0X000000000009AAA,false,,,,,,,{},\n",
        bad[0]
    );
    assert_eq!(csv_batch(&s, &arrow, csv.as_bytes(), b',').unwrap_err().message, want);
}

#[test]
fn positional_pages_match_keys_case_insensitively_and_report_missing_fields() {
    let s = schema();
    let arrow = arrow_schema(&s);
    let json = br#"{"totalSize":9,"done":false,"nextRecordsUrl":"/services/data/v62.0/query/01g-2","records":[
      {"ID":"x","isdeleted":false,"N\u0061me":"n","Count__c":1,"Seq__c":2,"Amount__c":3,"Ratio__c":4.5,
       "On__c":null,"SystemModstamp":null,"At__c":null}]}"#;
    let page = JsonPage::parse(&s, json).unwrap();
    assert_eq!(page.next_records_url.as_deref(), Some("/services/data/v62.0/query/01g-2"));
    assert!(!page.done);
    let batch = json_rows_batch(&s, &arrow, &page.rows, &|_| None).unwrap();
    assert_eq!(batch.num_rows(), 1);
    let short = br#"{"totalSize":1,"done":true,"records":[{"Id":"x"}]}"#;
    let page = JsonPage::parse(&s, short).unwrap();
    let err = json_rows_batch(&s, &arrow, &page.rows, &|_| None).unwrap_err();
    assert!(err.message.contains("Invoice__c.IsDeleted of record x: the field is missing"), "{}", err.message);
    assert!(JsonPage::parse(&s, b"{\"records\": 5}").is_err());
}
