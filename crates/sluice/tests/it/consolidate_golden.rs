//! Golden tests of the consolidation SQL: one file per case and dialect under
//! `tests/golden/merge/<dialect>/<case>.sql`. `UPDATE_GOLDEN=1 cargo test -p sluice consolidate`
//! rewrites them; review the diff like code, since these files are what runs in warehouses.

use std::path::PathBuf;

use chrono::{TimeZone, Utc};
use sluice::config::{Deletes, WriteMode};
use sluice::consolidate::procedure::hand_off;
use sluice::consolidate::{
    Dialect, DirectCheck, Existing, ExistingColumn, FirstLoad, FlowRun, MergeSpec, absent_counts, append_live_count,
    consolidate, control_ddl, direct_check, formula_counts, formulas_apply, formulas_ddl, staging_ddl, stats_query,
};
use sluice::model::{Column, Cursor, SluiceType, TableSchema, Window};

fn column(name: &str, source_name: &str, ty: SluiceType) -> Column {
    Column { name: name.into(), source_name: source_name.into(), ty, nullable: true, formula: false, masked: false }
}

/// Account with a handful of fields of every kind the cases need.
fn account() -> TableSchema {
    TableSchema {
        object: "Account".into(),
        table: "account".into(),
        columns: vec![
            column("id", "Id", SluiceType::Id),
            column("name", "Name", SluiceType::Text),
            column("number_of_employees", "NumberOfEmployees", SluiceType::Int),
            column("annual_revenue", "AnnualRevenue", SluiceType::Decimal { precision: 18, scale: 2 }),
            column("is_deleted", "IsDeleted", SluiceType::Boolean),
            column("system_modstamp", "SystemModstamp", SluiceType::Timestamp),
        ],
        cursor: Cursor::SystemModstamp,
        deleted_flag: Some("IsDeleted".into()),
    }
}

fn existing_of(schema: &TableSchema, deletes: Deletes) -> Vec<ExistingColumn> {
    let mut cols: Vec<ExistingColumn> =
        schema.columns.iter().map(|c| ExistingColumn { name: c.name.clone(), ty: c.ty }).collect();
    cols.push(ExistingColumn { name: "_sluice_synced_at".into(), ty: SluiceType::Timestamp });
    cols.push(ExistingColumn { name: "_sluice_run_id".into(), ty: SluiceType::Text });
    if deletes == Deletes::Soft {
        cols.push(ExistingColumn { name: "_sluice_deleted".into(), ty: SluiceType::Boolean });
    }
    cols
}

fn spec(schema: &TableSchema, deletes: Deletes, history: bool) -> MergeSpec {
    let synced = Utc.with_ymd_and_hms(2026, 11, 23, 22, 0, 0).unwrap();
    MergeSpec::new(schema, "salesforce", deletes, history, "run-2026-11-23T22:00:00Z", synced).unwrap()
}

fn flow_run() -> FlowRun {
    FlowRun {
        flow: "Account".into(),
        object: "Account".into(),
        window: Window {
            start: Some(Utc.with_ymd_and_hms(2026, 11, 23, 20, 50, 0).unwrap()),
            end: Utc.with_ymd_and_hms(2026, 11, 23, 21, 59, 30).unwrap(),
        },
        full_refresh: false,
        schema_fingerprint: "fp-1".into(),
        selection_fingerprint: "sel-1".into(),
        attempts: 1,
        rows_extracted: 42,
        api_calls: 3,
        bytes: 4096,
        api_remaining: None,
        remove_absent: false,
        removed: 0,
    }
}

/// Renders one case: warnings as comments, then the statements; or the error as a comment.
fn render(dialect: Dialect, spec: &MergeSpec, existing: &Existing) -> String {
    render_with(dialect, spec, existing, FirstLoad::Merge)
}

fn render_with(dialect: Dialect, spec: &MergeSpec, existing: &Existing, first_load: FirstLoad) -> String {
    match consolidate(dialect, spec, existing, &flow_run(), first_load) {
        Ok(c) => {
            let mut out = String::new();
            for w in &c.warnings {
                out.push_str(&format!("-- warning: {w}\n"));
            }
            for s in &c.statements {
                out.push_str(s);
                out.push_str(";\n\n");
            }
            out
        }
        Err(e) => format!("-- error: {e}\n"),
    }
}

fn cases(dialect: Dialect) -> Vec<(&'static str, String)> {
    let acc = account();
    let mut out = Vec::new();

    // A first run: everything is created, and the rows are inserted, not merged.
    let soft = spec(&acc, Deletes::Soft, false);
    out.push(("soft_deletes", render(dialect, &soft, &Existing::default())));
    // A later run: merged into the existing rows.
    let existing = Existing { target: Some(existing_of(&acc, Deletes::Soft)), history: None };
    out.push(("soft_deletes_existing", render(dialect, &soft, &existing)));
    // The same load handed to the warehouse as a stored procedure.
    if dialect != Dialect::DuckDb {
        let statements = consolidate(dialect, &soft, &existing, &flow_run(), FirstLoad::Merge).unwrap().statements;
        let handed = hand_off(dialect, &soft, &flow_run(), &statements).unwrap();
        out.push(("procedure", handed.join(";\n\n") + ";\n"));
    }

    // A first load straight from staging, with history, and in hard-delete mode (Redshift
    // always merges, so it has no such case).
    if dialect != Dialect::Redshift {
        let direct = |s: &MergeSpec| render_with(dialect, s, &Existing::default(), FirstLoad::Direct);
        out.push(("first_load_direct", direct(&spec(&acc, Deletes::Soft, true))));
        out.push(("first_load_direct_hard", direct(&spec(&acc, Deletes::Hard, false))));
        // Two shares: the check of 3 M staged rows, which DuckDB groups a share at a time.
        if let DirectCheck::Query(queries) = direct_check(dialect, &soft, 3_000_000) {
            out.push(("direct_check", queries.join(";\n") + ";\n"));
        }
    }

    let hard = spec(&acc, Deletes::Hard, false);
    let existing = Existing { target: Some(existing_of(&acc, Deletes::Hard)), history: None };
    out.push(("hard_deletes", render(dialect, &hard, &existing)));

    let hist = spec(&acc, Deletes::Soft, true);
    let existing = Existing { target: Some(existing_of(&acc, Deletes::Soft)), history: None };
    out.push(("history", render(dialect, &hist, &existing)));

    // The last slice of a full read, with history: no regress guard, and the rows it did
    // not return closed in history and removed (hard) or flagged (soft); then the guard's
    // count, read before the transaction.
    for (name, deletes) in [("full_refresh_hard", Deletes::Hard), ("full_refresh_soft", Deletes::Soft)] {
        let mut full = spec(&acc, deletes, true);
        full.full = true;
        let existing = Existing { target: Some(existing_of(&acc, deletes)), history: Some(existing_of(&acc, deletes)) };
        let run = FlowRun {
            window: Window { start: None, ..flow_run().window },
            full_refresh: true,
            remove_absent: true,
            removed: 7,
            ..flow_run()
        };
        let rendered = match consolidate(dialect, &full, &existing, &run, FirstLoad::Merge) {
            Ok(c) => c.statements.join(";\n\n") + ";\n",
            Err(e) => format!("-- error: {e}\n"),
        };
        out.push((
            name,
            format!("{rendered}\n-- the max_delete_ratio guard's count\n{};\n", absent_counts(dialect, &full)),
        ));
    }

    // The source grew a field and lost one (`fax` stays, with a warning).
    let mut grown = acc.clone();
    grown.columns.insert(2, column("rating__c", "Rating__c", SluiceType::Text));
    let mut had = existing_of(&acc, Deletes::Soft);
    had.push(ExistingColumn { name: "fax".into(), ty: SluiceType::Text });
    let existing = Existing { target: Some(had), history: None };
    out.push(("new_column", render(dialect, &spec(&grown, Deletes::Soft, false), &existing)));

    // Names that are keywords or hold quotes, with `naming = "original"`.
    let mut odd = acc.clone();
    odd.table = "Order".into();
    odd.columns.push(column("select", "Select__c", SluiceType::Text));
    odd.columns.push(column("My \"Quoted\" Field", "Quoted__c", SluiceType::Date));
    odd.columns.push(column("it's", "Its__c", SluiceType::Time));
    // An existing target, so the MERGE or DELETE with these names is pinned too.
    let existing = Existing { target: Some(existing_of(&odd, Deletes::Hard)), history: None };
    out.push(("keyword_names", render(dialect, &spec(&odd, Deletes::Hard, true), &existing)));

    // Int → Long and a wider decimal: fine on DuckDB and PostgreSQL, an error on Redshift.
    let mut wider = acc.clone();
    wider.columns[2].ty = SluiceType::Long;
    wider.columns[3].ty = SluiceType::Decimal { precision: 20, scale: 4 };
    let existing = Existing { target: Some(existing_of(&acc, Deletes::Soft)), history: None };
    out.push(("safe_widening", render(dialect, &spec(&wider, Deletes::Soft, false), &existing)));

    // Text → Int can lose data: always an error, never SQL.
    let mut changed = acc.clone();
    changed.columns[1].ty = SluiceType::Int;
    out.push(("unsafe_type_change", render(dialect, &spec(&changed, Deletes::Soft, false), &existing)));

    // `write = "append"`: a first run creates a keyless table (PostgreSQL indexes the version
    // key); a later one appends only versions the table does not hold, looking no further
    // back than the window's start.
    let mut append = spec(&acc, Deletes::Soft, false);
    append.write = WriteMode::Append;
    out.push(("append_first", render(dialect, &append, &Existing::default())));
    let existing = Existing { target: Some(existing_of(&acc, Deletes::Hard)), history: None };
    out.push((
        "append_existing",
        format!(
            "{}\n-- verify: Ids whose newest version before the window end is live\n{};\n",
            render(dialect, &append, &existing),
            append_live_count(dialect, &append, Some(flow_run().window.end))
        ),
    ));

    // A formula refresh, with history: the formula table, the count of rows that change,
    // then the transaction rewriting only those values (target and current versions).
    let mut with_formulas = acc.clone();
    for (name, source, ty) in [
        ("parent_name__c", "Parent_Name__c", SluiceType::Text),
        ("days_open__c", "Days_Open__c", SluiceType::Decimal { precision: 18, scale: 0 }),
    ] {
        with_formulas.columns.push(Column { formula: true, ..column(name, source, ty) });
    }
    let formulas: Vec<Column> = with_formulas.columns.iter().filter(|c| c.formula).cloned().collect();
    let refresh = spec(&with_formulas, Deletes::Soft, true);
    out.push((
        "formulas",
        format!(
            "{};\n\n-- rows whose formula values change\n{};\n\n-- one transaction\n{};\n",
            formulas_ddl(dialect, &refresh, &formulas).join(";\n\n"),
            formula_counts(dialect, &refresh, &formulas),
            formulas_apply(dialect, &refresh, &formulas).join(";\n\n")
        ),
    ));

    out.push(("staging", staging_ddl(dialect, &soft, FirstLoad::Merge).join(";\n\n") + ";\n"));
    if dialect == Dialect::Postgres {
        out.push(("staging_first_load", staging_ddl(dialect, &soft, FirstLoad::Direct).join(";\n\n") + ";\n"));
    }
    out.push(("control", control_ddl(dialect, chrono::DateTime::UNIX_EPOCH).join(";\n\n") + ";\n"));
    out.push(("stats", stats_query(dialect, &soft) + ";\n"));
    out
}

#[test]
fn consolidate_golden_files() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/merge");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for dialect in Dialect::ALL {
        let dir = root.join(dialect.name());
        for (case, sql) in cases(dialect) {
            let path = dir.join(format!("{case}.sql"));
            if update {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &sql).unwrap();
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(want) if want == sql => {}
                Ok(_) => mismatches.push(format!("{} differs", path.display())),
                Err(e) => mismatches.push(format!("{}: {e}", path.display())),
            }
        }
    }
    assert!(mismatches.is_empty(), "golden SQL out of date (UPDATE_GOLDEN=1 to rewrite):\n{}", mismatches.join("\n"));
}

#[test]
fn consolidate_golden_error_cases_are_errors() {
    for dialect in Dialect::ALL {
        let cases = cases(dialect);
        let get = |name: &str| &cases.iter().find(|(c, _)| *c == name).unwrap().1;
        assert!(get("unsafe_type_change").starts_with("-- error:"), "{dialect:?}");
        assert_eq!(get("safe_widening").starts_with("-- error:"), dialect == Dialect::Redshift, "{dialect:?}");
        assert!(get("new_column").contains("-- warning:"), "{dialect:?}");
    }
}
