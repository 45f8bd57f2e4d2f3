//! The consolidation as a stored procedure, for teams that schedule it in the warehouse
//! (`destination.consolidation = "procedure"`, PostgreSQL and Redshift).
//!
//! A sync then stages each flow's load as usual and, instead of consolidating it, hands it
//! off: in one transaction it (re)creates `<schema>.sluice_consolidate_<table>()`, whose
//! body is this load's consolidation (the statements [`super::consolidate`] generated,
//! with the run id and the window written in), and records the flow-run row in phase
//! [`FlowPhase::HandedOff`]. The window end does not move. A `CALL` then does, in the caller's
//! transaction, what the sync would have done: the upsert, history, the control rows with
//! the new window end, and it drops the staging table.
//!
//! Exactly once still holds because the procedure refuses everything but its own load:
//! - it takes its flow's run lock (PostgreSQL: the advisory lock a sync holds on the flow,
//!   as a transaction lock; Redshift: `LOCK` on the lease table, and no live lease of the
//!   schema), so it never runs beside a sync of its flow;
//! - every sync replaces it with an idle body ([`idle`]) before it touches the flow's
//!   staging table (with `consolidation = "run"`, drops every such procedure of the schema
//!   before it stages anything: [`drop_leftovers`]), so a run that dies mid-load never
//!   leaves a procedure that would commit a half-loaded table;
//! - a load is handed off whole: the sync does not slice its window (with `mode = "full"`
//!   every sync plans from the oldest row again, so a first slice would be all it ever
//!   handed off);
//! - it runs only while its flow-run row is still `handed_off`: the consolidation rewrites
//!   that row as `consolidated`, so a second `CALL` does nothing.
//!
//! A hand-off nobody calls is superseded by the next sync, which reads from the unchanged
//! window end again: nothing is lost. Reconciliation and verification need the
//! consolidated table, so they do not run in this mode: `sluice verify [--repair]` does,
//! after the `CALL` (before it, a repair would be undone by the staged rows).
//!
//! The `CALL` runs with the caller's rights: those of sluice's own role (owner of the
//! tables, `TEMP` on the database). On Redshift the guard compares the lease's heartbeat,
//! written from the sync's clock, with the cluster's `GETDATE()`: clocks must agree within
//! a few minutes.

use super::control;
use super::spec::{FlowRun, MergeSpec};
use crate::sql::{Dialect, RunLock, TableRef};
use crate::{Error, Result};

/// Dollar-quote tag of the procedure bodies.
const TAG: &str = "$sluice$";

/// What every procedure's name starts with.
const PREFIX: &str = "sluice_consolidate_";

/// `<schema>.sluice_consolidate_<table>`.
pub fn procedure_name(spec: &MergeSpec) -> TableRef {
    TableRef::new(&spec.target.schema, format!("{PREFIX}{}", spec.target.name))
}

/// The hand-off transaction: the procedure holding `consolidation` (this load's
/// statements) and the flow-run row it waits on. Fails, producing nothing, when the
/// procedure's name would be longer than the server keeps.
pub fn hand_off(dialect: Dialect, spec: &MergeSpec, run: &FlowRun, consolidation: &[String]) -> Result<Vec<String>> {
    let d = dialect;
    check_name(d, spec, &run.flow)?;
    let name = procedure_name(spec);
    let waiting = control::handed_off_query(d, &spec.run_id, &spec.target);
    let mut body = vec![
        lock_guard(d, &spec.target),
        format!(
            "IF NOT EXISTS ({waiting}) THEN\n    RAISE INFO 'sluice: nothing to consolidate for {}: run {} is \
             consolidated or a later sync replaced it';\n    RETURN;\n  END IF;",
            message_text(&run.flow),
            message_text(&spec.run_id)
        ),
    ];
    for statement in consolidation {
        // PL/pgSQL runs a query whose rows it discards with PERFORM.
        let statement = match statement.strip_prefix("SELECT ") {
            Some(rest) => format!("PERFORM {rest}"),
            None => statement.clone(),
        };
        body.push(format!("{statement};"));
    }
    body.push(format!("{};", d.drop_table(&spec.staging)));
    body.push(format!(
        "RAISE INFO 'sluice: consolidated run {} of {}';",
        message_text(&spec.run_id),
        message_text(&run.flow)
    ));
    let mut statements =
        vec![format!("CREATE SCHEMA IF NOT EXISTS {}", d.quote_ident(&spec.target.schema)), create(d, &name, &body)?];
    statements.extend(control::flow_handed_off(d, spec, run));
    Ok(statements)
}

/// Replaces the procedure with one that consolidates nothing: run before a sync touches
/// the flow's staging table, so a scheduled `CALL` in between neither fails nor reads a
/// half-loaded table.
pub fn idle(dialect: Dialect, spec: &MergeSpec, flow: &str) -> Result<Vec<String>> {
    let body = [format!(
        "RAISE INFO 'sluice: nothing to consolidate for {}: a sync is loading it, or its last load failed';",
        message_text(flow)
    )];
    Ok(vec![
        format!("CREATE SCHEMA IF NOT EXISTS {}", dialect.quote_ident(&spec.target.schema)),
        create(dialect, &procedure_name(spec), &body)?,
    ])
}

/// The statements that drop the procedures an earlier `consolidation = "procedure"` left
/// in `schema`, given the rows of [`leftovers_query`]: a sync in the default mode runs them
/// before it stages anything (see the module docs).
pub fn drop_leftovers(dialect: Dialect, schema: &str, rows: &[Vec<crate::destination::Value>]) -> Vec<String> {
    rows.iter()
        .filter_map(|row| row.first().and_then(|v| v.as_str()))
        .filter(|name| name.starts_with(PREFIX))
        .map(|name| format!("DROP PROCEDURE {}()", dialect.table(&TableRef::new(schema, name))))
        .collect()
}

/// The names of `schema`'s procedures without arguments, for [`drop_leftovers`]. Redshift's
/// `DROP PROCEDURE` has no `IF EXISTS`, so they are looked up first.
pub fn leftovers_query(dialect: Dialect, schema: &str) -> String {
    format!(
        "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = {} AND \
         p.pronargs = 0",
        dialect.quote_literal(schema)
    )
}

/// The user error for a procedure name longer than the server keeps (PostgreSQL would
/// silently cut it, and the cut name could be another table's), checked when a flow is
/// planned, before anything is read.
pub fn check_name(dialect: Dialect, spec: &MergeSpec, flow: &str) -> Result<()> {
    let name = procedure_name(spec);
    let max = dialect.max_identifier_bytes();
    if name.name.len() > max {
        return Err(Error::user(format!(
            "{flow}: its procedure name {} would pass the server's {max}-byte limit; use consolidation = \"run\" \
             or a shorter table name",
            name.name
        )));
    }
    Ok(())
}

/// `CREATE OR REPLACE PROCEDURE name() AS $sluice$ BEGIN ... END; $sluice$ LANGUAGE plpgsql`:
/// the order both PostgreSQL and Redshift accept.
fn create(dialect: Dialect, name: &TableRef, body: &[String]) -> Result<String> {
    let body = body.join("\n  ");
    if body.contains(TAG) {
        return Err(Error::internal(format!("a procedure body holds its own quote tag {TAG}")));
    }
    Ok(format!(
        "CREATE OR REPLACE PROCEDURE {}()\nAS {TAG}\nBEGIN\n  {body}\nEND;\n{TAG} LANGUAGE plpgsql",
        dialect.table(name)
    ))
}

/// The run lock of the flow writing `target`, taken by the procedure for its transaction,
/// or an error naming what holds it: PostgreSQL's advisory lock on the flow (a sync holds it
/// while it writes the flow), Redshift's lease on the schema.
fn lock_guard(dialect: Dialect, target: &TableRef) -> String {
    let d = dialect;
    let schema = &target.schema;
    match d.caps().run_lock {
        RunLock::Lease => format!(
            "LOCK {locks};\n  IF EXISTS (SELECT 1 FROM {locks} WHERE {} = {} AND {} >= GETDATE() - INTERVAL '{} \
             seconds') THEN\n    {}\n  END IF;",
            d.quote_ident("schema_name"),
            d.quote_literal(schema),
            d.quote_ident("heartbeat"),
            control::LEASE.as_secs(),
            refuse(&format!("schema {schema}")),
            locks = d.table(&control::locks_table()),
        ),
        RunLock::Advisory | RunLock::File => format!(
            "IF NOT pg_try_advisory_xact_lock({}, {}) THEN\n    {}\n  END IF;",
            control::LOCK_CLASS,
            control::flow_lock_key(target),
            refuse(&format!("table {}", d.table(target))),
        ),
    }
}

/// The error a procedure raises when a sync holds `what`.
fn refuse(what: &str) -> String {
    format!(
        "RAISE EXCEPTION 'sluice: a sync (or another sluice procedure) holds {}; call this again when it ends';",
        message_text(what)
    )
}

/// `text` inside a RAISE format string: quotes doubled, `%` (a placeholder there) doubled,
/// backslashes dropped (Redshift reads them as escapes).
fn message_text(text: &str) -> String {
    text.replace('\'', "''").replace('%', "%%").replace('\\', "")
}
