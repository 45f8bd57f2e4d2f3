//! `sluice demo`, the README's first command, end to end: it must finish with every flow
//! verified, and the DuckDB file it leaves must hold what it says it did (the late commit,
//! the new field, one row per Id, two `demo` runs), readable by `status` from anywhere,
//! on a machine whose time zone is not UTC.

use sluice::destination::Destination;
use sluice::destination::duckdb::DuckDb;

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

/// The first word after `marker` in `text` (an Id the demo printed).
fn word_after<'a>(text: &'a str, marker: &str) -> &'a str {
    let at = text.find(marker).unwrap_or_else(|| panic!("{marker:?} not in the output:\n{text}")) + marker.len();
    text[at..].split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_replicates_verifies_and_leaves_a_readable_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args(["demo", "--accounts", "400", "--dir"])
        .arg(dir.path())
        .current_dir("/")
        // East of UTC: had DuckDB read a window end back in the machine's zone, the second
        // sync would start 13 hours late and miss every change the demo makes.
        .env("TZ", "Pacific/Auckland")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for object in ["Account", "Contact", "Opportunity", "Invoice__c"] {
        let verified = stdout.lines().any(|l| l.trim_start().starts_with(object) && l.trim_end().ends_with("match"));
        assert!(verified, "{object} not verified:\n{stdout}");
    }
    // Each run says where its time went, extraction, loading and consolidation included.
    let phases: Vec<&str> = stdout.lines().filter(|l| l.trim_start().starts_with("time by phase")).collect();
    assert_eq!(phases.len(), 2, "one line per sync:\n{stdout}");
    for line in phases {
        for phase in ["plan ", "extract ", "load ", "consolidate ", "verify "] {
            assert!(line.contains(phase), "{phase}missing: {line}");
        }
    }
    let late = word_after(&stdout, "a late commit: Account ");
    let tiered = word_after(&stdout, "set on ");

    let db = DuckDb::open_read_only(&dir.path().join("sluice-demo.duckdb")).unwrap();
    let one = |sql: String| {
        let db = &db;
        async move { db.query(sql).await.unwrap() }
    };
    let name = one(format!("SELECT name FROM salesforce.account WHERE id = '{late}'")).await;
    assert_eq!(name.first().and_then(|r| r[0].as_str()), Some("Late Commit Ltd"), "the late commit arrived");
    let tier = one(format!("SELECT demo_tier__c FROM salesforce.account WHERE id = '{tiered}'")).await;
    assert_eq!(tier.first().and_then(|r| r[0].as_str()), Some("Gold"), "the new field became a column");
    for table in ["account", "contact", "opportunity", "invoice__c"] {
        let dup = one(format!("SELECT COUNT(*) - COUNT(DISTINCT id) FROM salesforce.{table}")).await;
        assert_eq!(dup[0][0].as_i64(), Some(0), "{table}: one row per Id");
    }
    // It ends with a real query's answer, printed by `sluice query`'s code: one line per
    // stage, each with the deals and amount the file holds.
    let stages =
        one("SELECT stage_name, count(*), CAST(sum(amount) AS VARCHAR) FROM salesforce.opportunity WHERE NOT \
         _sluice_deleted GROUP BY stage_name ORDER BY 1"
            .into())
        .await;
    let printed = &stdout[stdout.find("query \"SELECT stage_name").expect("the demo's query")..];
    let header = printed.lines().nth(1).unwrap_or_default();
    assert_eq!(header.split_whitespace().collect::<Vec<_>>(), ["stage_name", "deals", "amount"], "{printed}");
    assert!(printed.contains(&format!("({} rows)", stages.len())), "{printed}");
    for stage in &stages {
        let (name, deals, amount) =
            (stage[0].as_str().unwrap(), stage[1].as_i64().unwrap(), stage[2].as_str().unwrap());
        let line = printed
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{name}  ")))
            .unwrap_or_else(|| panic!("no line for stage {name}:\n{printed}"));
        let words: Vec<&str> = line[line.find(name).unwrap() + name.len()..].split_whitespace().collect();
        assert_eq!(words, [deals.to_string().as_str(), amount], "{printed}");
    }
    let runs = one("SELECT status, trigger FROM _sluice.runs ORDER BY started_at".into()).await;
    let runs: Vec<(Option<&str>, Option<&str>)> = runs.iter().map(|r| (r[0].as_str(), r[1].as_str())).collect();
    assert_eq!(runs, vec![(Some("ok"), Some("demo")); 2]);
    drop(db);

    // The config it wrote names the file absolutely, so `status` works from any directory.
    let config = dir.path().join("sluice-demo.toml");
    let status = std::process::Command::new(BIN).arg("--config").arg(&config).arg("status").output().unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{text}{}", String::from_utf8_lossy(&status.stderr));
    assert_eq!(text.lines().filter(|l| l.contains(" done")).count(), 4, "{text}");
}

/// `sluice demo --destination lake`: the same story into Delta tables, verified, the last
/// query answered from the lake, and each object a Delta table another reader can open.
#[test]
fn the_demo_replicates_into_a_lake() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args(["demo", "--destination", "lake", "--accounts", "200", "--dir"])
        .arg(dir.path())
        .current_dir("/")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("1. full sync into the lake"), "{stdout}");
    for object in ["Account", "Contact", "Opportunity", "Invoice__c"] {
        let verified = stdout.lines().any(|l| l.trim_start().starts_with(object) && l.trim_end().ends_with("match"));
        assert!(verified, "{object} not verified:\n{stdout}");
        let log = dir.path().join("sluice-demo-lake/salesforce").join(object.to_lowercase()).join("_delta_log");
        assert!(log.join(format!("{:020}.json", 0)).is_file(), "{} has no first commit", log.display());
    }
    assert!(stdout.contains("(10 rows)") || stdout.contains("rows)"), "the closing query's answer:\n{stdout}");
    assert!(!dir.path().join("sluice-demo.duckdb").exists(), "nothing written beside the lake");
}
