//! Property tests of the generated SQL; the exact text is pinned by the golden files in
//! `tests/golden/merge/`.

use std::collections::HashSet;

use chrono::{TimeZone, Utc};

use super::*;
use crate::config::Deletes;
use crate::model::{Column, Cursor, SluiceType, TableSchema, Window};

fn schema() -> TableSchema {
    TableSchema {
        object: "Order".into(),
        table: "order".into(),
        columns: vec![
            Column::plain("Id", "Id", SluiceType::Id),
            Column::plain("select", "Select__c", SluiceType::Text),
            Column::plain("a\"b", "AB__c", SluiceType::Int),
            Column::plain("IsDeleted", "IsDeleted", SluiceType::Boolean),
            Column::plain("SystemModstamp", "SystemModstamp", SluiceType::Timestamp),
        ],
        cursor: Cursor::SystemModstamp,
        deleted_flag: Some("IsDeleted".into()),
    }
}

fn spec(deletes: Deletes, history: bool) -> MergeSpec {
    let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    MergeSpec::new(&schema(), "sf", deletes, history, "run'1\\", t).unwrap()
}

fn run() -> FlowRun {
    let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 0, 0).unwrap();
    FlowRun {
        flow: "Order".into(),
        object: "Order".into(),
        window: Window { start: None, end: t },
        full_refresh: true,
        schema_fingerprint: "x".into(),
        selection_fingerprint: "sel-1".into(),
        attempts: 1,
        rows_extracted: 0,
        api_calls: 0,
        bytes: 0,
        api_remaining: None,
        remove_absent: false,
        removed: 0,
    }
}

/// Every statement of every variant, for the property tests.
fn all_sql() -> Vec<(Dialect, String)> {
    let mut out = Vec::new();
    for d in Dialect::ALL {
        for deletes in [Deletes::Soft, Deletes::Hard] {
            for history in [false, true] {
                let s = spec(deletes, history);
                for first_load in [FirstLoad::Merge, FirstLoad::Direct] {
                    let fresh = consolidate(d, &s, &Existing::default(), &run(), first_load).unwrap();
                    out.extend(fresh.statements.into_iter().map(|q| (d, q)));
                }
                if let DirectCheck::Query(queries) = direct_check(d, &s, 5_000_000) {
                    out.extend(queries.into_iter().map(|q| (d, q)));
                }
                let partial = Existing {
                    target: Some(vec![ExistingColumn { name: "Id".into(), ty: SluiceType::Id }]),
                    history: Some(vec![ExistingColumn { name: "Id".into(), ty: SluiceType::Id }]),
                };
                let evolved = consolidate(d, &s, &partial, &run(), FirstLoad::Merge).unwrap();
                out.extend(evolved.statements.into_iter().map(|q| (d, q)));
                for first_load in [FirstLoad::Merge, FirstLoad::Direct] {
                    out.extend(staging_ddl(d, &s, first_load).into_iter().map(|q| (d, q)));
                }
                out.push((d, stats_query(d, &s)));
                // The end of a full read: no regress guard, rows it did not return removed.
                let mut full = s.clone();
                full.full = true;
                let last = FlowRun { full_refresh: true, remove_absent: true, removed: 2, ..run() };
                let refresh = consolidate(d, &full, &partial, &last, FirstLoad::Merge).unwrap();
                out.extend(refresh.statements.into_iter().map(|q| (d, q)));
                out.push((d, super::absent_counts(d, &full)));
                // A formula refresh of two of its columns.
                let formulas = &s.columns[1..3];
                out.extend(super::formulas_ddl(d, &s, formulas).into_iter().map(|q| (d, q)));
                out.push((d, super::formula_counts(d, &s, formulas)));
                out.extend(super::formulas_apply(d, &s, formulas).into_iter().map(|q| (d, q)));
            }
        }
        let epoch = chrono::DateTime::UNIX_EPOCH;
        let mut append = spec(Deletes::Soft, false);
        append.write = crate::config::WriteMode::Append;
        for existing in [Existing::default(), Existing { target: Some(Vec::new()), history: None }] {
            let appended = consolidate(d, &append, &existing, &run(), FirstLoad::Merge).unwrap();
            out.extend(appended.statements.into_iter().map(|q| (d, q)));
        }
        out.push((d, super::append_live_count(d, &append, Some(epoch))));
        for from in [2, 3, 5] {
            out.extend(super::migrate_added(d, from, epoch).into_iter().map(|q| (d, q)));
        }
        out.extend(control_ddl(d, epoch).into_iter().map(|q| (d, q)));
        let tables = [("Account".to_owned(), "account".to_owned())];
        out.extend(super::migrate_v1(d, "sf", &tables, epoch).into_iter().map(|q| (d, q)));
        out.push((d, super::status_query(d, "sf")));
        out.push((d, super::runs_query(d, "sf", 10)));
        out.push((d, super::flow_runs_query(d, "sf", "r1")));
        out.push((d, super::layout_query(d)));
        out.push((d, super::v1_flows_query(d)));
    }
    out
}

/// Splits SQL into quoted identifiers and the bare words outside quotes and literals.
fn tokens(d: Dialect, sql: &str) -> (Vec<String>, Vec<String>) {
    let (mut idents, mut words) = (Vec::new(), Vec::new());
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    let mut word = String::new();
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            let mut text = String::new();
            i += 1;
            loop {
                assert!(i < chars.len(), "unterminated quote in {sql}");
                if chars[i] == c {
                    if chars.get(i + 1) == Some(&c) {
                        text.push(c);
                        i += 2;
                        continue;
                    }
                    break;
                }
                // A Redshift literal's doubled backslash.
                if d == Dialect::Redshift && c == '\'' && chars[i] == '\\' {
                    i += 1;
                }
                text.push(chars[i]);
                i += 1;
            }
            if c == '"' {
                idents.push(text);
            }
        } else if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else if !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        i += 1;
    }
    if !word.is_empty() {
        words.push(word);
    }
    (idents, words)
}

#[test]
fn consolidate_every_bare_word_is_a_keyword_or_number() {
    let keywords: HashSet<&str> = "ALTER TABLE ADD COLUMN SET DATA TYPE CREATE SCHEMA IF NOT EXISTS PRIMARY KEY DROP \
         TEMP VIEW UNLOGGED DEFAULT AS SELECT FROM WHERE AND OR IS NULL LEFT JOIN ON IN ROW_NUMBER OVER PARTITION BY ORDER DESC NULLS LAST \
         COALESCE COUNT GROUP HAVING FALSE TRUE MERGE INTO USING WHEN MATCHED THEN UPDATE DELETE INSERT VALUES CAST SUM CASE ELSE END \
         VARCHAR TEXT BOOLEAN INTEGER BIGINT DECIMAL DOUBLE PRECISION DATE TIMESTAMPTZ TIME BLOB BYTEA VARBYTE ANALYZE \
         LIMIT UNION EXTRACT EPOCH MAX INDEX epoch_ms TIMESTAMP set_config current_setting pg_size_bytes hash"
        .split_whitespace()
        .collect();
    for (d, sql) in all_sql() {
        if sql.starts_with("DO $grants$") {
            // PL/pgSQL over the catalog, no names of ours: pinned by the golden files and
            // run by the PostgreSQL tests instead.
            continue;
        }
        let (_, words) = tokens(d, &sql);
        for w in words {
            assert!(
                keywords.contains(w.as_str()) || w.chars().all(|c| c.is_ascii_digit()),
                "{d:?}: bare word `{w}` (an unquoted identifier?) in\n{sql}"
            );
        }
    }
}

#[test]
fn consolidate_mentions_only_known_names() {
    let s = spec(Deletes::Soft, true);
    let mut known: HashSet<String> = s.columns.iter().map(|c| c.name.clone()).collect();
    let sluice = [
        STAGE_SEQ,
        SYNCED_AT,
        RUN_ID,
        DELETED,
        VALID_FROM,
        VALID_TO,
        CURRENT,
        merge::IS_NEW,
        merge::ADVANCED,
        merge::IS_DELETED,
        "_sluice_rn",
        "_sluice_c",
        "_sluice_st",
        "_sluice_changes_order",
        "_sluice_twice",
        "sf",
        "sf_staging",
        "order",
        "order_history",
        "s",
        "t",
        "inserted",
        "updated",
        "deleted",
        "_sluice",
        "flows",
        "runs",
        "flow_runs",
        "schedule",
        "layout",
        "probe",
        "one",
        "present",
        "x",
        "_sluice_v1_flows",
        "_sluice_v1_runs",
        "_sluice_v1_flow_runs",
        "f",
        "r",
        "rn",
        "e",
        "v",
        "deleted",
        "live",
        "absent",
        "order__formulas",
    ];
    known.extend(sluice.iter().map(|n| n.to_string()));
    let control = "flow object window_end last_full_refresh last_reconciliation last_formula_refresh \
                   schema_fingerprint \
                   selection_fingerprint write_mode updated_at \
                   run_id trigger started_at finished_at status config_fingerprint phase attempts window_start \
                   rows_extracted rows_inserted rows_updated rows_deleted api_calls bytes error target_schema \
                   target_table rows_present api_remaining version migrated_at \
                   next_due paused failures last_error last_started last_finished";
    known.extend(control.split_whitespace().map(String::from));
    for (d, sql) in all_sql() {
        let (idents, _) = tokens(d, &sql);
        for ident in idents {
            assert!(known.contains(&ident), "{d:?}: unknown name `{ident}` in\n{sql}");
        }
    }
}

#[test]
fn consolidate_quoting() {
    for d in Dialect::ALL {
        assert_eq!(d.quote_ident("select"), "\"select\"");
        assert_eq!(d.quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(d.quote_literal("it's"), "'it''s'");
    }
    assert_eq!(Dialect::Redshift.quote_literal("a\\b"), "'a\\\\b'");
    assert_eq!(Dialect::Postgres.quote_literal("a\\b"), "'a\\b'");
}

#[test]
fn consolidate_type_mapping() {
    let cases = [
        (Dialect::Redshift, SluiceType::Text, "VARCHAR(65535)"),
        (Dialect::Redshift, SluiceType::Id, "VARCHAR(18)"),
        (Dialect::Postgres, SluiceType::Text, "TEXT"),
        (Dialect::DuckDb, SluiceType::Timestamp, "TIMESTAMPTZ"),
        (Dialect::Redshift, SluiceType::Time, "TIME"),
        (Dialect::Postgres, SluiceType::Decimal { precision: 18, scale: 2 }, "DECIMAL(18,2)"),
        (Dialect::Postgres, SluiceType::Double, "DOUBLE PRECISION"),
        (Dialect::DuckDb, SluiceType::Binary, "BLOB"),
    ];
    for (d, ty, want) in cases {
        assert_eq!(d.sql_type(ty), want, "{d:?} {ty:?}");
    }
}

#[test]
fn consolidate_widening_table() {
    use SluiceType::*;
    let dec = |precision, scale| Decimal { precision, scale };
    let cases = [
        (Int, Long, true),
        (Long, Int, false),
        (Id, Text, true),
        (Text, Id, false),
        (dec(18, 2), dec(20, 2), true),
        (dec(18, 2), dec(20, 4), true),
        (dec(18, 2), dec(18, 4), false),
        (dec(18, 2), dec(18, 0), false),
        (Int, dec(12, 2), true),
        (Int, dec(10, 2), false),
        (Long, dec(21, 2), true),
        (Int, Double, false),
        (Text, Int, false),
        (Date, Timestamp, false),
    ];
    for (from, to, want) in cases {
        assert_eq!(ddl::widens(from, to), want, "{from:?} -> {to:?}");
    }
}

#[test]
fn consolidate_dedups_newest_first_and_never_regresses() {
    for d in Dialect::ALL {
        let sql = changes_table(d, &spec(Deletes::Soft, false)).join("\n");
        assert!(
            sql.contains(
                "ROW_NUMBER() OVER (PARTITION BY \"Id\" ORDER BY \"SystemModstamp\" DESC NULLS LAST, \
                 \"_sluice_stage_seq\" DESC NULLS LAST)"
            ),
            "{sql}"
        );
        assert!(sql.contains("\"s\".\"SystemModstamp\" >= \"t\".\"SystemModstamp\""), "{sql}");
        // Only the narrow ranking is windowed (with the delete flag it carries along); whole
        // rows are picked by their stage order later.
        assert!(
            sql.contains("SELECT \"Id\", \"SystemModstamp\", \"_sluice_stage_seq\", \"IsDeleted\", ROW_NUMBER()"),
            "{sql}"
        );
        assert!(sql.contains("COALESCE(\"s\".\"IsDeleted\", FALSE) AS \"_sluice_is_deleted\""), "{sql}");
        assert!(sql.contains("WHERE \"s\".\"_sluice_rn\" = 1 AND"), "{sql}");
        // PostgreSQL never analyses temp tables by itself.
        assert_eq!(sql.contains("ANALYZE \"_sluice_changes_order\""), d == Dialect::Postgres, "{sql}");
    }
}

/// What the destination holds after an earlier run: the target with all its columns.
fn loaded(s: &MergeSpec) -> Existing {
    let target = s
        .columns
        .iter()
        .map(|c| ExistingColumn { name: c.name.clone(), ty: c.ty })
        .chain(s.metadata().into_iter().map(|(n, ty)| ExistingColumn { name: n.into(), ty }))
        .collect();
    Existing { target: Some(target), history: None }
}

#[test]
fn consolidate_into_a_new_target_is_a_plain_insert() {
    for d in Dialect::ALL {
        for deletes in [Deletes::Soft, Deletes::Hard] {
            let c = consolidate(d, &spec(deletes, false), &Existing::default(), &run(), FirstLoad::Merge).unwrap();
            let all = c.statements.join("\n");
            assert!(!all.contains("MERGE") && !all.contains("DELETE FROM \"sf\".\"order\""), "{d:?}: {all}");
            let inserts = c.statements.iter().filter(|s| s.starts_with("INSERT INTO \"sf\".\"order\"")).count();
            assert_eq!(inserts, 1, "{d:?}: {all}");
            // Hard mode still leaves deleted versions out.
            assert_eq!(all.contains("WHERE NOT \"s\".\"_sluice_is_deleted\""), deletes == Deletes::Hard, "{all}");
        }
    }
}

/// The grants block is dollar-quoted; a schema from config may contain the usual tag, which
/// would end the quoted text early, so the tag is chosen to occur nowhere in the body.
#[test]
fn a_promoted_tables_grants_block_stays_quoted_whatever_the_schema_name() {
    let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    for (name, tag) in [("sf", "$grants$"), ("a$grants$b", "$grants_$"), ("$grants$$grants_$", "$grants__$")] {
        let s = MergeSpec::new(&schema(), name, Deletes::Soft, false, "r", t).unwrap();
        let c = consolidate(Dialect::Postgres, &s, &Existing::default(), &run(), FirstLoad::Direct).unwrap();
        let block = c.statements.last().unwrap();
        let inner = block.strip_prefix(&format!("DO {tag}\n")).and_then(|b| b.strip_suffix(&format!("\n{tag}")));
        let inner = inner.unwrap_or_else(|| panic!("{name}: not quoted with {tag}: {block}"));
        assert!(!inner.contains(tag) && inner.contains(name), "{name}: {block}");
    }
}

#[test]
fn a_direct_first_load_copies_staging_on_duckdb_and_promotes_it_on_postgres() {
    for d in [Dialect::DuckDb, Dialect::Postgres] {
        for deletes in [Deletes::Soft, Deletes::Hard] {
            let c = consolidate(d, &spec(deletes, true), &Existing::default(), &run(), FirstLoad::Direct).unwrap();
            let all = c.statements.join("\n");
            let at = |needle: &str| c.statements.iter().position(|s| s.starts_with(needle));
            assert!(!all.contains("ROW_NUMBER") && !all.contains(" JOIN "), "{d:?}: {all}");
            assert!(at("CREATE TEMP VIEW \"_sluice_changes_order\"").is_some(), "{all}");
            let dropped = at("DROP VIEW IF EXISTS \"_sluice_changes_order\"").unwrap();
            let history = at("INSERT INTO \"sf\".\"order_history\"").unwrap();
            if d == Dialect::DuckDb {
                assert_eq!(dropped, c.statements.len() - 1, "{all}");
                assert!(at("CREATE TABLE \"sf\".\"order\"").is_some(), "{all}");
                let hard = all.contains("WHERE NOT \"s\".\"_sluice_is_deleted\"");
                assert_eq!(hard, deletes == Deletes::Hard, "{all}");
                continue;
            }
            // PostgreSQL: staging becomes the target, keyed first (the check for an Id staged
            // twice), its stage order dropped only once the view reading it is gone.
            assert!(at("CREATE TABLE \"sf\".\"order\"").is_none() && at("INSERT INTO \"sf\".\"order\"").is_none());
            let key = at("ALTER TABLE \"sf_staging\".\"order\" ADD PRIMARY KEY (\"Id\")").unwrap();
            let view = at("CREATE TEMP VIEW").unwrap();
            let flag = match deletes {
                Deletes::Soft => "UPDATE \"sf_staging\".\"order\" AS \"s\" SET \"_sluice_deleted\" = TRUE",
                Deletes::Hard => "DELETE FROM \"sf_staging\".\"order\" AS \"s\"",
            };
            let flag = at(flag).unwrap();
            let control = at("INSERT INTO \"_sluice\".\"flow_runs\"").unwrap();
            let seq = at("ALTER TABLE \"sf_staging\".\"order\" DROP COLUMN \"_sluice_stage_seq\"").unwrap();
            let moved = at("ALTER TABLE \"sf_staging\".\"order\" SET SCHEMA \"sf\"").unwrap();
            let grants = at("DO $grants$").unwrap();
            let order = [key, view, history, flag, control, dropped, seq, moved, grants];
            assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}: {all}");
            assert_eq!(grants, c.statements.len() - 1, "{all}");
            let soft_column = all.contains("ADD COLUMN \"_sluice_deleted\" BOOLEAN DEFAULT FALSE");
            assert_eq!(soft_column, deletes == Deletes::Soft, "{all}");
        }
    }
    // Redshift merges whatever it is asked; so does an existing target.
    let s = spec(Deletes::Soft, false);
    let merged = consolidate(Dialect::Redshift, &s, &Existing::default(), &run(), FirstLoad::Merge).unwrap();
    let asked = consolidate(Dialect::Redshift, &s, &Existing::default(), &run(), FirstLoad::Direct).unwrap();
    assert_eq!(merged, asked);
    let merged = consolidate(Dialect::Postgres, &s, &loaded(&s), &run(), FirstLoad::Merge).unwrap();
    let asked = consolidate(Dialect::Postgres, &s, &loaded(&s), &run(), FirstLoad::Direct).unwrap();
    assert_eq!(merged, asked);
}

#[test]
fn consolidate_duckdb_and_redshift_use_delete_insert() {
    for d in [Dialect::DuckDb, Dialect::Redshift] {
        for deletes in [Deletes::Soft, Deletes::Hard] {
            let s = spec(deletes, true);
            let c = consolidate(d, &s, &loaded(&s), &run(), FirstLoad::Merge).unwrap();
            let all = c.statements.join("\n");
            assert!(!all.contains("ON CONFLICT") && !all.contains("MERGE"), "{all}");
            assert!(all.contains("DELETE FROM \"sf\".\"order\" USING"), "{all}");
            // Hard mode deletes and does not insert the deleted versions back.
            let hard_filter = all.contains("WHERE NOT \"s\".\"_sluice_is_deleted\"");
            assert_eq!(hard_filter, deletes == Deletes::Hard, "{d:?} {deletes:?}: {all}");
        }
    }
    let s = spec(Deletes::Hard, false);
    let c = consolidate(Dialect::Postgres, &s, &loaded(&s), &run(), FirstLoad::Merge).unwrap();
    assert!(c.statements.iter().any(|s| s.contains("WHEN MATCHED AND \"s\".\"_sluice_is_deleted\" THEN DELETE")));
}

#[test]
fn consolidate_soft_mode_writes_the_flag_both_ways() {
    let s = spec(Deletes::Soft, false);
    let c = consolidate(Dialect::Postgres, &s, &loaded(&s), &run(), FirstLoad::Merge).unwrap();
    let merge = c.statements.iter().find(|s| s.starts_with("MERGE")).unwrap();
    // Set from the staged flag, so an undelete (false again) clears it.
    assert!(merge.contains("\"_sluice_deleted\" = \"s\".\"_sluice_is_deleted\""), "{merge}");
    assert!(!merge.contains("THEN DELETE"), "{merge}");
    // DuckDB re-inserts every changed row with the staged flag, deleted or not.
    let c = consolidate(Dialect::DuckDb, &spec(Deletes::Soft, false), &Existing::default(), &run(), FirstLoad::Merge)
        .unwrap();
    let insert = c.statements.iter().find(|s| s.starts_with("INSERT INTO \"sf\".\"order\"")).unwrap();
    assert!(
        insert.contains("\"_sluice_deleted\")\nSELECT")
            && insert.contains("\"s\".\"_sluice_is_deleted\"\nFROM (")
            && insert.ends_with("JOIN \"sf_staging\".\"order\" AS \"_sluice_st\" ON \"_sluice_st\".\"_sluice_stage_seq\" = \"_sluice_c\".\"_sluice_stage_seq\"\n) AS \"s\""),
        "{insert}"
    );
}

#[test]
fn consolidate_errors_produce_no_sql_and_say_why() {
    let s = spec(Deletes::Soft, false);
    let existing = Existing {
        target: Some(vec![ExistingColumn { name: "select".into(), ty: SluiceType::Boolean }]),
        history: None,
    };
    for d in Dialect::ALL {
        let err = consolidate(d, &s, &existing, &run(), FirstLoad::Merge).unwrap_err();
        assert_eq!(err.kind, crate::Kind::User);
        assert!(err.message.contains("order.select") && err.message.contains("nothing was written"), "{err}");
    }
}

#[test]
fn consolidate_validates_the_spec() {
    let mut s = spec(Deletes::Soft, false);
    s.columns.push(Column::plain("_sluice_deleted", "X__c", SluiceType::Boolean));
    assert!(s.validate().is_err());
    let mut s = spec(Deletes::Soft, false);
    s.cursor = Some("nope".into());
    assert!(s.validate().is_err());
    let mut bad = schema();
    bad.columns.remove(0);
    assert!(MergeSpec::new(&bad, "sf", Deletes::Soft, false, "r", Utc::now()).is_err());
}

#[test]
fn consolidate_without_cursor_always_replaces() {
    let mut sch = schema();
    sch.cursor = Cursor::None;
    let s = MergeSpec::new(&sch, "sf", Deletes::Soft, true, "r", Utc.timestamp_opt(0, 0).unwrap()).unwrap();
    assert_eq!(s.cursor, None);
    let sql = changes_table(Dialect::Postgres, &s).join("\n");
    assert!(sql.contains("ORDER BY \"_sluice_stage_seq\" DESC NULLS LAST") && sql.contains("AND TRUE"), "{sql}");
}

#[test]
fn consolidate_removed_field_is_a_warning() {
    let s = spec(Deletes::Soft, false);
    let mut cols: Vec<ExistingColumn> =
        s.columns.iter().map(|c| ExistingColumn { name: c.name.clone(), ty: c.ty }).collect();
    cols.push(ExistingColumn { name: "Gone__c".into(), ty: SluiceType::Text });
    let c = consolidate(Dialect::DuckDb, &s, &Existing { target: Some(cols), history: None }, &run(), FirstLoad::Merge)
        .unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("Gone__c"));
    assert!(!c.statements.iter().any(|s| s.contains("Gone__c")));
    // The metadata columns it lacked are added.
    assert!(c.statements.iter().any(|s| s.contains("ADD COLUMN \"_sluice_synced_at\"")));
}

#[test]
fn consolidate_seeds_history_only_when_turned_on_later() {
    let s = spec(Deletes::Soft, true);
    let target: Vec<ExistingColumn> = s
        .columns
        .iter()
        .map(|c| ExistingColumn { name: c.name.clone(), ty: c.ty })
        .chain(
            [(SYNCED_AT, SluiceType::Timestamp), (RUN_ID, SluiceType::Text), (DELETED, SluiceType::Boolean)]
                .map(|(n, ty)| ExistingColumn { name: n.into(), ty }),
        )
        .collect();
    let seeded = |existing: &Existing| {
        let c = consolidate(Dialect::Postgres, &s, existing, &run(), FirstLoad::Merge).unwrap();
        c.statements
            .iter()
            .any(|q| q.starts_with("INSERT INTO \"sf\".\"order_history\"") && q.contains("FROM \"sf\".\"order\""))
    };
    assert!(seeded(&Existing { target: Some(target.clone()), history: None }));
    assert!(!seeded(&Existing::default()));
    let mut history = target.clone();
    history.extend([VALID_FROM, VALID_TO].map(|n| ExistingColumn { name: n.into(), ty: SluiceType::Timestamp }));
    history.push(ExistingColumn { name: CURRENT.into(), ty: SluiceType::Boolean });
    assert!(!seeded(&Existing { target: Some(target), history: Some(history) }));
}

#[test]
fn consolidate_narrower_source_type_keeps_the_column() {
    let s = spec(Deletes::Soft, false);
    let existing =
        Existing { target: Some(vec![ExistingColumn { name: "a\"b".into(), ty: SluiceType::Long }]), history: None };
    for d in Dialect::ALL {
        let c = consolidate(d, &s, &existing, &run(), FirstLoad::Merge).unwrap();
        assert!(!c.statements.iter().any(|q| q.contains("SET DATA TYPE")), "{d:?}");
    }
}
