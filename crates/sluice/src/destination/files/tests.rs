//! Tests of the files destination: every format round-trips, the manifest is written
//! last, crashed runs stay invisible and are cleaned up, errors name the path.

use std::fs::{self, File};
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use chrono::TimeZone;

use super::*;
use crate::model::{Column, Cursor, SluiceType};

fn table() -> TableSchema {
    TableSchema {
        object: "Account".into(),
        table: "account".into(),
        columns: vec![
            Column::plain("id", "Id", SluiceType::Id),
            Column::plain("name", "Name", SluiceType::Text),
            Column::plain("is_deleted", "IsDeleted", SluiceType::Boolean),
            Column::plain("employees", "NumberOfEmployees", SluiceType::Long),
            Column::plain("system_modstamp", "SystemModstamp", SluiceType::Timestamp),
        ],
        cursor: Cursor::SystemModstamp,
        deleted_flag: Some("IsDeleted".into()),
    }
}

fn batch(first: i64, n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("is_deleted", DataType::Boolean, false),
        Field::new("employees", DataType::Int64, true),
        Field::new("system_modstamp", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
    ]));
    let ids: Vec<String> = (first..first + n).map(|i| format!("001Dn00000{i:05}AAA")).collect();
    let names: Vec<Option<String>> =
        (first..first + n).map(|i| (i % 3 != 0).then(|| format!("Acme \"{i}\", Inc.\nLine 2"))).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(ids)),
        Arc::new(StringArray::from(names)),
        Arc::new(BooleanArray::from((first..first + n).map(|i| i % 7 == 0).collect::<Vec<_>>())),
        Arc::new(Int64Array::from((first..first + n).map(|i| (i % 5 != 0).then_some(i * 10)).collect::<Vec<_>>())),
        Arc::new(
            TimestampMillisecondArray::from(
                (first..first + n).map(|i| 1_700_000_000_000 + i * 1000).collect::<Vec<_>>(),
            )
            .with_timezone("UTC"),
        ),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

fn window() -> Window {
    Window { start: None, end: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap() }
}

#[tokio::test]
async fn parquet_round_trips_and_manifest_describes_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let dest = FilesDestination::new(dir.path(), FileFormat::Parquet);
    dest.check().await.unwrap();
    let mut run = dest.begin(&table(), "r1", window()).await.unwrap();
    run.write(&batch(0, 100)).await.unwrap();
    run.write(&batch(100, 50)).await.unwrap();
    let manifest = run.finish().await.unwrap();
    assert_eq!(manifest.rows, 150);
    assert_eq!(manifest.parts.len(), 1);
    assert_eq!(manifest.columns[3].source_name, "NumberOfEmployees");
    let file = File::open(dir.path().join("account/run=r1/part-00000.parquet")).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let read = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let expected = arrow::compute::concat_batches(&batch(0, 1).schema(), &[batch(0, 100), batch(100, 50)]).unwrap();
    assert_eq!(read, expected);
    assert_eq!(dest.runs("account").await.unwrap(), vec![manifest]);
}

#[tokio::test]
async fn csv_and_jsonl_hold_every_value() {
    for (format, ext) in [(FileFormat::Csv, "csv"), (FileFormat::Jsonl, "jsonl")] {
        let dir = tempfile::tempdir().unwrap();
        let dest = FilesDestination::new(dir.path(), format);
        let mut run = dest.begin(&table(), "r1", window()).await.unwrap();
        run.write(&batch(0, 10)).await.unwrap();
        run.finish().await.unwrap();
        let text = fs::read_to_string(dir.path().join(format!("account/run=r1/part-00000.{ext}"))).unwrap();
        for i in 0..10 {
            assert!(text.contains(&format!("001Dn00000{i:05}AAA")), "{ext}: id {i}");
        }
        match format {
            FileFormat::Csv => {
                assert!(text.starts_with("id,name,is_deleted,employees,system_modstamp\n"), "{text}");
                assert!(text.contains("\"Acme \"\"1\"\", Inc.\nLine 2\""), "{text}");
            }
            _ => {
                let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
                assert_eq!(lines.len(), 10);
                assert_eq!(lines[1]["name"], "Acme \"1\", Inc.\nLine 2");
                assert_eq!(lines[1]["employees"], 10);
                assert!(lines[0].get("name").is_none_or(|v| v.is_null()), "null name");
            }
        }
    }
}

#[tokio::test]
async fn a_crashed_run_is_invisible_and_cleaned_up_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let dest = FilesDestination::new(dir.path(), FileFormat::Parquet);
    let mut crashed = dest.begin(&table(), "crashed", window()).await.unwrap();
    crashed.write(&batch(0, 10)).await.unwrap();
    let crashed_dir = crashed.dir().expect("a local run");
    drop(crashed); // the process dies here: no manifest
    assert!(crashed_dir.exists());
    assert!(dest.runs("account").await.unwrap().is_empty());
    let mut next = dest.begin(&table(), "next", window()).await.unwrap();
    assert!(!crashed_dir.exists(), "begin removes runs without a manifest");
    next.write(&batch(0, 10)).await.unwrap();
    next.finish().await.unwrap();
    assert_eq!(dest.runs("account").await.unwrap().iter().map(|m| m.run_id.as_str()).collect::<Vec<_>>(), ["next"]);
}

#[tokio::test]
async fn abort_leaves_nothing_and_state_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let dest = FilesDestination::new(dir.path(), FileFormat::Jsonl);
    let mut run = dest.begin(&table(), "r1", window()).await.unwrap();
    run.write(&batch(0, 3)).await.unwrap();
    let run_dir = run.dir().expect("a local run");
    run.abort().await.unwrap();
    assert!(!run_dir.exists());
    assert!(dest.state().await.unwrap().is_empty());
    let state = FlowState { window_end: window().end, run_id: "r2".into(), selection: None };
    dest.save_state("Account", state.clone()).await.unwrap();
    dest.save_state(
        "Contact",
        FlowState { window_end: window().end, run_id: "r3".into(), selection: Some("s".into()) },
    )
    .await
    .unwrap();
    assert_eq!(dest.state().await.unwrap()["Account"], state);
    assert_eq!(dest.state().await.unwrap().len(), 2);
    fs::write(dir.path().join(STATE), "{not json").unwrap();
    let err = dest.state().await.unwrap_err().to_string();
    assert!(err.contains("_sluice_state.json") && err.contains("damaged"), "{err}");
}

#[tokio::test]
async fn an_unwritable_root_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    fs::write(&file, "x").unwrap();
    let dest = FilesDestination::new(file.join("sub"), FileFormat::Csv);
    let err = dest.check().await.unwrap_err().to_string();
    assert!(err.contains("cannot create") && err.contains("not-a-dir"), "{err}");
}
