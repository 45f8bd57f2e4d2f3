//! `sluice query "SELECT ..."`: a user's SQL against the configured destination, so the
//! data can be looked at without installing a client. Nothing the SQL does is kept (see
//! `Destination::read_only`). The result is printed as an aligned table of the values as
//! the destination renders them in text, or as JSON or CSV; the renderings are pure.

use std::path::Path;

use anyhow::anyhow;
use sluice::destination::QueryResult;

use crate::commands::{beside_runs, failed, load};
use crate::failure::Failure;

/// Flags of `sluice query`.
#[derive(clap::Args, Debug)]
pub struct QueryArgs {
    /// The SQL, in the destination's dialect; of several statements, the last one's rows.
    sql: String,
    /// Print `{"columns": [...], "rows": [[...], ...]}`, values as strings or null.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV with a header line; NULL is an empty field.
    #[arg(long)]
    csv: bool,
}

/// `sluice query`: exit code 2 when the SQL fails, 1 when the destination cannot be reached.
pub async fn run(path: &Path, args: &QueryArgs) -> Result<(), Failure> {
    let config = load(path)?;
    let result = beside_runs(|| sluice::pipeline::query(&config, args.sql.clone())).await.map_err(failed)?;
    let text = if args.json {
        serde_json::to_string_pretty(&result).map_err(|e| Failure::failed(anyhow!(e)))?
    } else if args.csv {
        csv_text(&result).map_err(Failure::failed)?
    } else {
        aligned(&result)
    };
    say!("{}", text.trim_end_matches('\n'));
    Ok(())
}

/// How NULL shows in the aligned table.
const NULL: &str = "NULL";

/// A value as one line of the aligned table: line breaks and tabs spelled out.
fn one_line(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\n', "\\n").replace('\r', "\\r").replace('\t', "\\t")
}

/// The aligned table: a header, a rule, one line per row (columns padded to their widest
/// value, counted in characters), and the row count.
pub(crate) fn aligned(result: &QueryResult) -> String {
    let cells: Vec<Vec<String>> = result
        .rows
        .iter()
        .map(|row| row.iter().map(|v| v.as_deref().map_or_else(|| NULL.to_owned(), one_line)).collect())
        .collect();
    let mut widths: Vec<usize> = result.columns.iter().map(|c| one_line(c).chars().count()).collect();
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |values: Vec<String>| -> String {
        let padded: Vec<String> = values.iter().zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![
        line(result.columns.iter().map(|c| one_line(c)).collect()),
        widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  "),
    ];
    out.extend(cells.into_iter().map(line));
    let n = result.rows.len();
    out.push(format!("({n} row{})", if n == 1 { "" } else { "s" }));
    out.join("\n")
}

/// The result as CSV (RFC 4180 quoting), header first.
fn csv_text(result: &QueryResult) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&result.columns)?;
    for row in &result.rows {
        w.write_record(row.iter().map(|v| v.as_deref().unwrap_or("")))?;
    }
    Ok(String::from_utf8(w.into_inner().map_err(|e| anyhow!("{e}"))?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result() -> QueryResult {
        QueryResult {
            columns: vec!["stage_name".into(), "deals".into(), "note".into()],
            rows: vec![
                vec![Some("Closed Won".into()), Some("12".into()), None],
                vec![Some("Prospecting".into()), Some("3".into()), Some("two\nlines, \"quoted\"".into())],
            ],
        }
    }

    #[test]
    fn the_table_is_aligned_with_nulls_and_line_breaks_visible() {
        let want = "\
stage_name   deals  note
-----------  -----  --------------------
Closed Won   12     NULL
Prospecting  3      two\\nlines, \"quoted\"
(2 rows)";
        assert_eq!(aligned(&result()), want);
        let empty = QueryResult { columns: vec!["n".into()], rows: vec![] };
        assert_eq!(aligned(&empty), "n\n-\n(0 rows)");
    }

    #[test]
    fn csv_quotes_what_needs_it_and_leaves_null_empty() {
        let want = "stage_name,deals,note\nClosed Won,12,\nProspecting,3,\"two\nlines, \"\"quoted\"\"\"\n";
        assert_eq!(csv_text(&result()).unwrap(), want);
    }

    #[test]
    fn json_keeps_nulls_and_strings() {
        let v = serde_json::to_value(result()).unwrap();
        assert_eq!(v["columns"][1], "deals");
        assert_eq!(v["rows"][0][2], serde_json::Value::Null);
        assert_eq!(v["rows"][1][1], "3");
    }
}
