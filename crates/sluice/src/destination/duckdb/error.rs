//! What DuckDB's errors mean for the user: the file in use, not writable, or a statement
//! that failed (out of memory, disk full, a conflict, or sluice's own mistake).

use std::path::Path;

use crate::Error;

/// Maps an error opening the file to what the user must do.
pub(super) fn open_error(path: &Path, e: &duckdb::Error) -> Error {
    let text = e.to_string();
    let shown = path.display();
    let lower = text.to_ascii_lowercase();
    if lower.contains("could not set lock") || lower.contains("conflicting lock") {
        Error::busy(format!(
            "destination.path: {shown} is in use by another process ({}); one run at a time writes a DuckDB file, \
             so wait for it to finish or stop it",
            text.lines().next().unwrap_or_default().trim()
        ))
    } else if lower.contains("permission denied") || lower.contains("read-only") || lower.contains("cannot open file") {
        Error::user(format!(
            "destination.path: cannot write {shown} ({}); choose a writable path",
            text.lines().next().unwrap_or_default().trim()
        ))
    } else {
        Error::external_fatal(format!("destination.path: cannot open the DuckDB file {shown}: {text}"))
    }
}

/// A failed statement: DuckDB's message, which names the table or column, plus the
/// statement's first line so the user can find it in the SQL sluice generated.
pub(crate) fn sql_error(e: duckdb::Error, sql: &str) -> Error {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    let first = sql.lines().next().unwrap_or_default();
    let message = format!("DuckDB: {text} (in `{first}`)");
    if lower.contains("out of memory") {
        // DuckDB's own advice (`SET memory_limit`) is not something a sluice user can do.
        let what = text.lines().next().unwrap_or_default();
        return Error::user(format!(
            "destination.memory_limit: DuckDB needs more memory than the limit allows (in `{first}`: {what}); \
             raise it, e.g. memory_limit = \"1GB\""
        ));
    }
    if lower.contains("no space left") || lower.contains("could not write") || lower.contains("disk") {
        Error::external_fatal(message)
    } else if lower.contains("conflict") {
        Error::external(message)
    } else {
        Error::internal(message)
    }
}
