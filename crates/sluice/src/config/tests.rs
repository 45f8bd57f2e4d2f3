//! Config tests: the sample parses and validates; every rule reports its problem with the
//! file, the key and what would be valid; secrets never show; durations and sizes are
//! bounded; keys without effect and colliding tables are refused.
//!
//! One file, over 600 lines: every test goes through the same few helpers (`load`,
//! `errors`, `has`, `exactly`) and the same minimal configs, which a split would repeat.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::destination::duckdb::{DEFAULT_DUCKDB_MEMORY_MIB, DuckDbConfig};
use crate::destination::files::FilesConfig;
use crate::destination::postgres::{PgTimeouts, PostgresConfig};
use crate::destination::redshift::RedshiftConfig;
use crate::model::Naming;
use crate::pipeline::load_config as load;

/// [`super::validate`] against every destination type sluice has.
fn validate(raw: RawConfig, origin: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Vec<ConfigError>> {
    super::validate(raw, origin, env, &crate::pipeline::destination_kinds())
}

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k| map.get(k).cloned()
}

const SECRET: &str = "s3cr3t-value";

fn sample_env() -> impl Fn(&str) -> Option<String> {
    env_of(&[("SF_CLIENT_ID", "3MVG9-id"), ("SF_CLIENT_SECRET", SECRET)])
}

/// A minimal valid config with `extra` TOML appended to the `[source]` table and `flows`
/// as the flows part.
fn config(source_extra: &str, rest: &str) -> String {
    format!(
        "[source]\ntype = \"salesforce\"\nlogin_url = \"http://127.0.0.1:8080/\"\n{source_extra}\n\
         [destination]\ntype = \"files\"\npath = \"out\"\n{rest}"
    )
}

const CC: &str = "auth = \"client_credentials\"\nclient_id = \"id\"\nclient_secret = \"${SF_CLIENT_SECRET}\"";

/// A valid config with `destination` as the `[destination]` table and `rest` after it.
fn config_on(destination: &str, rest: &str) -> String {
    format!(
        "[source]\ntype = \"salesforce\"\nlogin_url = \"https://x.my.salesforce.com\"\n{CC}\n[destination]\n\
         {destination}\n{rest}"
    )
}

const DUCKDB: &str = "type = \"duckdb\"\npath = \"w.duckdb\"";
const POSTGRES: &str = "type = \"postgres\"\nurl = \"postgres://u:hunter2@h/db\"";
const REDSHIFT: &str = "type = \"redshift\"\nurl = \"postgres://u:hunter2@c:5439/dev\"\ns3_staging = \"s3://b/p\"\n\
                        iam_role = \"arn:aws:iam::1:role/r\"";
const FILES: &str = "type = \"files\"\npath = \"out\"";

/// Asserts that `text` is invalid with exactly the `want` problems, as (key, needle).
fn exactly(text: &str, want: &[(&str, &str)]) {
    let errs = errors(text);
    for (key, needle) in want {
        has(&errs, key, needle);
    }
    assert_eq!(errs.len(), want.len(), "{text}\n{errs:#?}");
}

fn errors(text: &str) -> Vec<ConfigError> {
    load(text, "sluice.toml", &sample_env()).expect_err("should be invalid")
}

/// Asserts one error with this key whose message contains `needle`.
fn has(errors: &[ConfigError], key: &str, needle: &str) {
    assert!(
        errors.iter().any(|e| e.key == key && e.message.contains(needle) && e.file == "sluice.toml"),
        "no error at {key} containing {needle:?} in {errors:#?}"
    );
}

#[test]
fn sample_parses_and_validates() {
    let config = load(SAMPLE, "sluice.toml", &sample_env()).unwrap();
    assert_eq!(config.source.login_url, "https://login.salesforce.com");
    assert_eq!(
        config.source.auth,
        Auth::ClientCredentials { client_id: "3MVG9-id".into(), client_secret: Secret::new(SECRET) }
    );
    assert_eq!(config.source.api_version, "62.0");
    assert_eq!(config.source.api, Api::Auto);
    assert_eq!(config.source.api_budget_percent, 80);
    assert_eq!(config.destination.naming(), Naming::SnakeCase);
    assert_eq!(
        config.destination.settings::<DuckDbConfig>(),
        Some(&DuckDbConfig {
            path: "warehouse.duckdb".into(),
            schema: "salesforce".into(),
            memory_limit_mib: DEFAULT_DUCKDB_MEMORY_MIB,
        })
    );
    let objects: Vec<&str> = config.flows.iter().map(|f| f.object.as_str()).collect();
    assert_eq!(objects, ["Account", "Contact"]);
    assert_eq!(config.flows[0].settings, FlowSettings::default());
    assert_eq!(config.flows[0].api, Api::Auto);
    // Secrets never print.
    let debug = format!("{config:?}");
    assert!(!debug.contains(SECRET) && debug.contains("***"), "{debug}");
}

#[test]
fn sample_without_env_names_the_missing_variables() {
    let errs = load(SAMPLE, "sluice.toml", &env_of(&[])).unwrap_err();
    has(&errs, "source.client_id", "environment variable `SF_CLIENT_ID` is not set");
    has(&errs, "source.client_secret", "environment variable `SF_CLIENT_SECRET` is not set");
    assert_eq!(errs.len(), 2, "{errs:#?}");
}

#[test]
fn design_example_loads() {
    let design = r#"
[source]
type = "salesforce"
login_url = "https://login.salesforce.com"
auth = "client_credentials"
client_id = "${SF_CLIENT_ID}"
client_secret = "${SF_CLIENT_SECRET}"
api_version = "62.0"
api = "auto"

[destination]
type = "duckdb"
path = "warehouse.duckdb"
schema = "salesforce"

[defaults]
mode = "incremental"
deletes = "soft"
history = false
lookback = "10m"
reconcile_every = "1d"

[[flows]]
object = "Account"

[[flows]]
object = "Contact"
"#;
    // DESIGN's example is valid as written now that DuckDB is in.
    let config = load(design, "sluice.toml", &sample_env()).expect("DESIGN's example loads");
    assert!(config.destination.settings::<DuckDbConfig>().is_some(), "{:?}", config.destination);
}

#[test]
fn overrides_and_defaults() {
    let text = format!(
        "[source]\ntype = \"salesforce\"\nlogin_url = \"http://127.0.0.1:8080/\"\n{CC}\napi = \"bulk\"\n\
         api_budget_percent = 50\napi_version = \"60.0\"\n[destination]\n{DUCKDB}\n{}",
        r#"naming = "original"
mask_salt = "pepper"
[defaults]
lookback = "1h30m"
lag = "5s"
deletes = "hard"
slice = "1d"
reconcile_every = "never"
[[flows]]
object = "Account"
fields = ["Id", "Name"]
where = "Name LIKE 'A(%' AND (Type = 'x' OR Type = 'y')"
formula_refresh_every = "2h"
[[flows]]
object = "Invoice__c"
exclude = ["Blob__c"]
mask = ["Phone__c"]
api = "rest"
mode = "full"
lag = "0s"
history = true
max_delete_ratio = 0.9
"#,
    );
    let c = load(&text, "x.toml", &sample_env()).unwrap();
    assert_eq!(c.source.login_url, "http://127.0.0.1:8080");
    assert_eq!((c.source.api, c.source.api_budget_percent, c.source.api_version.as_str()), (Api::Bulk, 50, "60.0"));
    assert_eq!(c.destination.naming(), Naming::Original);
    let (a, i) = (&c.flows[0], &c.flows[1]);
    assert_eq!(a.fields.as_deref(), Some(&["Id".to_string(), "Name".to_string()][..]));
    assert_eq!(a.api, Api::Bulk);
    assert_eq!(a.settings.lookback, Duration::from_secs(5400));
    assert_eq!(a.settings.lag, Duration::from_secs(5));
    assert_eq!(a.settings.deletes, Deletes::Hard);
    assert_eq!(a.settings.slice, Some(Duration::from_secs(86_400)));
    assert_eq!(a.settings.reconcile_every, None);
    assert_eq!(a.settings.formula_refresh_every, Some(Duration::from_secs(2 * 3600)));
    assert_eq!(i.settings.formula_refresh_every, Some(Duration::from_secs(86_400)), "a day unless set");
    assert_eq!((i.api, i.settings.mode, i.settings.history), (Api::Rest, Mode::Full, true));
    assert_eq!(i.settings.lookback, Duration::from_secs(5400), "inherited from [defaults]");
    assert_eq!(i.settings.lag, Duration::ZERO);
    assert_eq!(i.settings.max_delete_ratio, 0.9);
    assert_eq!(
        (i.exclude.as_slice(), i.mask.as_slice()),
        (&["Blob__c".to_string()][..], &["Phone__c".to_string()][..])
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"
[source]
type = "salesforse"
login_url = "login.salesforce.com"
auth = "passwrd"
api = "fast"
api_version = "v62"
api_budget_percent = 0

[destination]
type = "s3"

[defaults]
mode = "sometimes"
lookback = "10 minutes"
reconcile_every = "0s"
slice = "0s"
max_delete_ratio = 1.5

[[flows]]
object = "Account"
lag = "5x"

[[flows]]
object = "account"
fields = []
exclude = ["Id", "Bad Name", "Name", "name"]
where = "Name = 'x') OR (Name = 'y'"
mask = ["Id"]

[[flows]]
object = "Acc-ount"
where = "Name = 'unterminated"

[[flows]]
fields = ["Id"]
"#;
    let errs = errors(text);
    let rows = [
        ("source.type", "\"salesforse\" is not valid; expected one of \"salesforce\""),
        ("source.login_url", "not an http:// or https:// URL"),
        ("source.auth", "expected one of \"password\", \"client_credentials\", \"refresh_token\", \"jwt\""),
        ("source.api", "\"fast\" is not valid; expected one of \"rest\", \"bulk\", \"auto\""),
        ("source.api_version", "expected like \"62.0\""),
        ("source.api_budget_percent", "expected 1 to 100"),
        (
            "destination.type",
            "\"s3\" is not a destination type; valid: \"duckdb\", \"postgres\", \"redshift\", \"files\"",
        ),
        ("defaults.mode", "expected one of \"incremental\", \"full\""),
        ("defaults.lookback", "expected a duration like"),
        ("defaults.reconcile_every", "\"never\""),
        ("defaults.slice", "\"0s\" is out of range; expected 1m to 3650d (leave it out to not slice windows)"),
        ("defaults.max_delete_ratio", "at most 1"),
        ("flows[0].lag", "\"5x\""),
        ("flows[1].object", "already has a flow (flows[0])"),
        ("flows[1].fields", "empty list"),
        ("flows[1].exclude", "either `fields` or `exclude`"),
        ("flows[1].exclude", "cannot include Id"),
        ("flows[1].exclude[1]", "not a Salesforce API name"),
        ("flows[1].exclude[3]", "listed twice"),
        ("flows[1].mask", "cannot include Id"),
        ("destination.mask_salt", "is required because flows[1] masks fields"),
        ("flows[1].where", "never opened"),
        ("flows[2].object", "\"Acc-ount\" is not a Salesforce API name"),
        ("flows[2].where", "string literal is not closed"),
        ("flows[3].object", "missing"),
    ];
    for (key, needle) in rows {
        has(&errs, key, needle);
    }
    assert_eq!(errs.len(), rows.len(), "{errs:#?}");
}

#[test]
fn credentials_per_auth() {
    // (auth and credentials, expected problems as (key, needle))
    let rows: [(&str, &[(&str, &str)]); 6] = [
        (
            "auth = \"password\"\nclient_id = \"i\"",
            &[
                ("source.client_secret", "missing; auth = \"password\" needs it"),
                ("source.username", "missing"),
                ("source.password", "missing"),
            ],
        ),
        (
            "auth = \"client_credentials\"\nclient_id = \"i\"\nclient_secret = \"\"",
            &[("source.client_secret", "is empty")],
        ),
        ("auth = \"refresh_token\"\nclient_id = \"i\"", &[("source.refresh_token", "missing")]),
        (
            "auth = \"jwt\"\nclient_id = \"i\"\nusername = \"u\"\npassword = \"p\"",
            &[
                ("source.private_key_file", "missing"),
                ("source.password", "is not used by auth = \"jwt\" (it needs client_id, username, private_key_file)"),
            ],
        ),
        (
            "auth = \"client_credentials\"\nclient_id = \"i\"\nclient_secret = \"${NOPE}\"",
            &[("source.client_secret", "environment variable `NOPE` is not set")],
        ),
        ("client_id = \"i\"", &[("source.auth", "missing; expected one of")]),
    ];
    for (creds, want) in rows {
        let text = config(creds, "[[flows]]\nobject = \"Account\"\n");
        let errs = errors(&text);
        for (key, needle) in want {
            has(&errs, key, needle);
        }
        assert_eq!(errs.len(), want.len(), "{creds}: {errs:#?}");
    }
    type Check = fn(&Auth) -> bool;
    let ok: [(&str, Check); 4] = [
        (
            "auth = \"password\"\nclient_id = \"i\"\nclient_secret = \"s\"\nusername = \"u\"\npassword = \"p\"",
            |a| matches!(a, Auth::Password { password, .. } if password.expose() == "p"),
        ),
        ("auth = \"refresh_token\"\nclient_id = \"i\"\nrefresh_token = \"r\"", |a| {
            matches!(a, Auth::RefreshToken { client_secret: None, .. })
        }),
        ("auth = \"refresh_token\"\nclient_id = \"i\"\nrefresh_token = \"r\"\nclient_secret = \"s\"", |a| {
            matches!(a, Auth::RefreshToken { client_secret: Some(_), .. })
        }),
        (
            "auth = \"jwt\"\nclient_id = \"i\"\nusername = \"u\"\nprivate_key_file = \"k.pem\"",
            |a| matches!(a, Auth::Jwt { private_key_file, .. } if private_key_file == &PathBuf::from("k.pem")),
        ),
    ];
    for (creds, check) in ok {
        let c = load(&config(creds, "[[flows]]\nobject = \"Account\"\n"), "x", &env_of(&[])).unwrap();
        assert!(check(&c.source.auth), "{creds}: {:?}", c.source.auth);
    }
}

#[test]
fn secrets_never_appear_in_errors() {
    // A wrong secret-bearing config: values are only named, never echoed.
    let text = config(
        &format!(
            "auth = \"jwt\"\nclient_id = \"i\"\nusername = \"u\"\nprivate_key_file = \"k\"\npassword = \"{SECRET}\"\nclient_secret = \"{SECRET}\""
        ),
        "[[flows]]\nobject = \"Account\"\n",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 2);
    for e in &errs {
        assert!(!e.to_string().contains(SECRET), "{e}");
    }
    assert_eq!(format!("{}", Secret::new(SECRET)), "***");
    assert_eq!(format!("{:?}", Some(Secret::new(SECRET))), "Some(***)");
}

#[test]
fn destination_rules() {
    let rows = [
        ("[destination]\ntype = \"files\"\n", "destination.path", "missing"),
        (
            "[destination]\ntype = \"files\"\npath = \"o\"\nformat = \"xlsx\"\n",
            "destination.format",
            "\"parquet\", \"csv\", \"jsonl\"",
        ),
        (
            "[destination]\ntype = \"files\"\npath = \"o\"\nurl = \"postgres://\"\n",
            "destination.url",
            "not used by type = \"files\"",
        ),
        (
            "[destination]\npath = \"o\"\n",
            "destination.type",
            "missing; valid: \"duckdb\", \"postgres\", \"redshift\", \"files\", \"lake\"",
        ),
        ("[destination]\ntype = \"lake\"\n", "destination.path", "missing; the lake's directory"),
        ("[destination]\ntype = \"lakehouse\"\n", "destination.type", "\"lakehouse\" is not a destination type"),
        (
            "[destination]\ntype = \"lake\"\npath = \"s3://b/p\"\n",
            "destination.work_dir",
            "is required with an S3 lake",
        ),
        (
            "[destination]\ntype = \"lake\"\npath = \"lake\"\ns3_endpoint = \"http://127.0.0.1:9\"\n",
            "destination.s3_endpoint",
            "is used only with an S3 lake",
        ),
        (
            "[destination]\ntype = \"lake\"\npath = \"s3://u:p@b/p\"\nwork_dir = \"w\"\n",
            "destination.path",
            "holds credentials",
        ),
        (
            "[destination]\ntype = \"lake\"\npath = \"lake\"\nretention = \"11y\"\n",
            "destination.retention",
            "expected 0s to",
        ),
        (
            "[destination]\ntype = \"lake\"\npath = \"lake\"\n[defaults]\nhistory = true\n",
            "defaults.history",
            "does not keep history tables",
        ),
        (
            "[destination]\ntype = \"lake\"\npath = \"lake\"\nraw = \"yes\"\n",
            "destination.raw",
            "must be true or false (got a string)",
        ),
        (
            "[destination]\ntype = \"lake\"\npath = \"lake\"\n[[flows]]\nobject = \"Raw\"\n",
            "flows[0].object",
            "Raw would be written to the table \"raw\", which destination type = \"lake\" keeps for itself",
        ),
        (
            "[destination]\ntype = \"redshift\"\nurl = \"postgres://u:hunter2@c:5439/dev\"\niam_role = \"arn:aws:iam::1:role/r\"\n",
            "destination.s3_staging",
            "missing; where loads are staged",
        ),
        (
            "[destination]\ntype = \"redshift\"\nurl = \"postgres://u:hunter2@c:5439/dev\"\ns3_staging = \"s3://b/p\"\niam_role = \"role\"\n",
            "destination.iam_role",
            "not an IAM role ARN",
        ),
        (
            "[destination]\ntype = \"redshift\"\nurl = \"postgres://u:hunter2@c:5439/dev\"\ns3_staging = \"b/p\"\niam_role = \"arn:aws:iam::1:role/r\"\n",
            "destination.s3_staging",
            "expected \"s3://bucket/prefix\"",
        ),
        ("[destination]\ntype = \"postgres\"\n", "destination.url", "missing; the database, e.g. \"postgres://"),
        (
            "[destination]\ntype = \"postgres\"\nurl = \"postgres://u:hunter2@h/db?sslmode=maybe\"\n",
            "destination.url",
            "sslmode=maybe is not a TLS mode",
        ),
        (
            "[destination]\ntype = \"postgres\"\nurl = \"postgres://u@h/db\"\npath = \"w.duckdb\"\n",
            "destination.path",
            "not used by type = \"postgres\"",
        ),
        (
            "[destination]\ntype = \"files\"\npath = \"o\"\nnaming = \"camel\"\n",
            "destination.naming",
            "\"snake_case\", \"original\"",
        ),
        ("", "destination", "missing [destination]"),
        (
            "[destination]\ntype = \"duckdb\"\npath = \"w.duckdb\"\nmemory_limit = \"lots\"\n",
            "destination.memory_limit",
            "\"lots\" is not a memory size; write e.g. \"160MB\" or \"2GB\" (32MB to 1TB)",
        ),
        (
            "[destination]\ntype = \"duckdb\"\npath = \"w.duckdb\"\nmemory_limit = \"8MB\"\n",
            "destination.memory_limit",
            "\"8MB\" is out of range; expected 32MB to 1TB",
        ),
        (
            "[destination]\ntype = \"files\"\npath = \"o\"\nmemory_limit = \"1GB\"\n",
            "destination.memory_limit",
            "not used by type = \"files\"",
        ),
        (
            "[destination]\ntype = \"postgres\"\nurl = \"postgres://u:hunter2@h/db\"\nschema = \"pg_sales\"\n",
            "destination.schema",
            "PostgreSQL reserves names starting with `pg_`",
        ),
        (
            "[destination]\ntype = \"redshift\"\nurl = \"postgres://u:hunter2@c:5439/dev\"\ns3_staging = \"s3://b/p\"\n\
             iam_role = \"arn:aws:iam::1:role/r\"\nschema = \"pg_sales\"\n",
            "destination.schema",
            "Redshift reserves names starting with `pg_`",
        ),
        (
            "[destination]\ntype = \"redshift\"\nurl = \"postgres://u:hunter2@c:5439/dev\"\ns3_staging = \"s3://b/p\"\n\
             iam_role = \"arn:aws:iam::1:role/r\"\nschema = \"Sales\"\n",
            "destination.schema",
            "Redshift folds names to lower case; write it as \"sales\"",
        ),
        (
            "[destination]\ntype = \"redshift\"\nurl = \"postgres://u:hunter2@c:5439/dev\"\ns3_staging = \"s3://b/p\"\n\
             iam_role = \"arn:aws:iam::1:role/r\"\nnaming = \"original\"\n",
            "destination.naming",
            "use \"snake_case\" (the default)",
        ),
        (
            "[destination]\ntype = \"postgres\"\nurl = \"postgres://u@h/db\"\nconsolidation = \"later\"\n",
            "destination.consolidation",
            "\"run\", \"procedure\"",
        ),
        (
            "[destination]\ntype = \"duckdb\"\npath = \"w.duckdb\"\nconsolidation = \"procedure\"\n",
            "destination.consolidation",
            "not used by type = \"duckdb\"",
        ),
        (
            // 56 bytes: 64 with `_staging`.
            "[destination]\ntype = \"postgres\"\nurl = \"postgres://u@h/db\"\n\
             schema = \"s2345678901234567890123456789012345678901234567890123456\"\n",
            "destination.schema",
            "exceed PostgreSQL's 63-byte names; use at most 55 bytes",
        ),
    ];
    for (dest, key, needle) in rows {
        let text = format!(
            "[source]\ntype = \"salesforce\"\nlogin_url = \"https://x\"\n{CC}\n{dest}[[flows]]\nobject = \"Account\"\n"
        );
        let errs = errors(&text);
        has(&errs, key, needle);
        assert_eq!(errs.len(), 1, "{dest}: {errs:#?}");
        assert!(errs.iter().all(|e| !e.to_string().contains("hunter2")), "a URL's password is never echoed: {errs:#?}");
    }
}

#[test]
fn duckdb_memory_limit_sizes() {
    for (written, mib) in
        [("160MB", 160), ("2 GB", 2048), ("512MiB", 512), ("1g", 1024), ("32MB", 32), ("1TB", 1 << 20)]
    {
        let text = format!(
            "[source]\ntype = \"salesforce\"\nlogin_url = \"https://x\"\n{CC}\n[destination]\ntype = \"duckdb\"\npath = \
             \"w.duckdb\"\nmemory_limit = \"{written}\"\n[[flows]]\nobject = \"Account\"\n"
        );
        let config = load(&text, "t.toml", &sample_env()).unwrap_or_else(|e| panic!("{written}: {e:?}"));
        let duckdb = config.destination.settings::<DuckDbConfig>().expect("duckdb");
        assert_eq!(duckdb.memory_limit_mib, mib, "{written}");
    }
}

#[test]
fn empty_file_lists_the_missing_tables() {
    let errs = errors("");
    has(&errs, "source", "missing [source]");
    has(&errs, "destination", "missing [destination]");
    has(&errs, "flows", "no [[flows]]");
}

#[test]
fn parse_errors_name_the_place() {
    let rows = [
        ("[source]\ntype = \"salesforce\"\nlogin_uri = \"x\"\n", "line 3, column 1", "unknown field `login_uri`"),
        ("[[flows]]\nobject = \"A\"\nlookback = 10\n", "line 3, column 12", "invalid type"),
        ("[source\n", "line 1, column 8", ""),
        ("[warehouse]\n", "line 1, column 2", "unknown field `warehouse`"),
    ];
    for (text, key, needle) in rows {
        let e = parse(text, "f.toml").unwrap_err();
        assert_eq!((e.file.as_str(), e.key.as_str()), ("f.toml", key), "{e}");
        assert!(e.message.contains(needle), "{e}");
    }
}

#[test]
fn interpolation_table() {
    let env = env_of(&[("A", "1"), ("B_2", "two"), ("EMPTY", "")]);
    let rows: [(&str, Result<&str, &str>); 10] = [
        ("plain", Ok("plain")),
        ("${A}", Ok("1")),
        ("x${A}y${B_2}z", Ok("x1ytwoz")),
        ("${EMPTY}", Ok("")),
        ("$5 and $", Ok("$5 and $")),
        ("$${A}", Ok("${A}")),
        ("${MISSING}", Err("environment variable `MISSING` is not set")),
        ("${A", Err("unterminated")),
        ("${}", Err("not a variable name")),
        ("${A-B}", Err("not a variable name")),
    ];
    for (input, want) in rows {
        match (interpolate(input, &env), want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{input}"),
            (Err(got), Err(needle)) => assert!(got.contains(needle), "{input}: {got}"),
            (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn duration_table() {
    let rows: [(&str, Option<u64>); 13] = [
        ("30s", Some(30)),
        ("10m", Some(600)),
        ("2h", Some(7200)),
        ("1d", Some(86_400)),
        ("1w", Some(604_800)),
        ("1h30m", Some(5400)),
        (" 0s ", Some(0)),
        ("", None),
        ("10", None),
        ("m", None),
        ("1.5h", None),
        ("10 m", None),
        ("99999999999999999999d", None),
    ];
    for (input, want) in rows {
        assert_eq!(parse_duration(input).ok().map(|d| d.as_secs()), want, "{input:?}");
    }
}

#[test]
fn where_balance_table() {
    let rows = [
        ("A = 1", true),
        ("(A = 1 OR B = 2) AND C = 3", true),
        ("Name = ')'", true),
        ("Name = 'it\\'s (x'", true),
        ("Name = 'a\\\\' AND (B = 1)", true),
        ("A = 1) OR (B = 2", false),
        ("(A = 1", false),
        ("Name = 'x", false),
        ("Name = 'x\\'", false),
    ];
    for (input, ok) in rows {
        assert_eq!(check_where(input).is_ok(), ok, "{input}");
    }
}

#[test]
fn into_error_joins_lines() {
    let errs = errors("");
    let e = into_error(&errs);
    assert_eq!(e.kind, crate::error::Kind::User);
    assert_eq!(e.message.lines().count(), errs.len());
    assert!(e.message.starts_with("sluice.toml: source: missing [source]"), "{}", e.message);
}

#[test]
fn secret_keys_take_any_value_and_show_only_its_type() {
    // (the value as TOML, its type as named)
    let values = [
        ("12345", "an integer"),
        ("-98765", "an integer"),
        ("1.2345e3", "a float"),
        ("true", "a boolean"),
        ("[\"hunter2\", 4242]", "an array"),
        ("{ value = \"hunter2\" }", "a table"),
        ("1979-05-27T07:32:00Z", "a date-time"),
    ];
    for (value, ty) in values {
        let rows = [
            (
                "source.password",
                format!(
                    "auth = \"password\"\nclient_id = \"i\"\nclient_secret = \"s\"\nusername = \"u\"\npassword = {value}"
                ),
                DUCKDB.to_owned(),
            ),
            (
                "source.client_secret",
                format!("auth = \"client_credentials\"\nclient_id = \"i\"\nclient_secret = {value}"),
                DUCKDB.to_owned(),
            ),
            (
                "source.refresh_token",
                format!("auth = \"refresh_token\"\nclient_id = \"i\"\nrefresh_token = {value}"),
                DUCKDB.to_owned(),
            ),
            ("destination.url", CC.to_string(), format!("type = \"postgres\"\nurl = {value}")),
            ("destination.mask_salt", CC.to_string(), format!("{DUCKDB}\nmask_salt = {value}")),
        ];
        for (key, source, destination) in rows {
            let flows = if key == "destination.mask_salt" { "mask = [\"Phone\"]\n" } else { "" };
            let text = format!(
                "[source]\ntype = \"salesforce\"\nlogin_url = \"https://x\"\n{source}\n[destination]\n{destination}\n\
                 [[flows]]\nobject = \"Account\"\n{flows}"
            );
            let raw = parse(&text, "sluice.toml").unwrap_or_else(|e| panic!("{key} = {value}: {e}"));
            let debug = format!("{raw:?}");
            assert!(!debug.contains("hunter2") && !debug.contains("2345") && !debug.contains("1979"), "{debug}");
            let errs = validate(raw, "sluice.toml", &sample_env()).expect_err("a secret must be a string");
            has(&errs, key, &format!("must be a string (got {ty})"));
            has(&errs, key, "its value is not shown because it is secret");
            assert_eq!(errs.len(), 1, "{key} = {value}: {errs:#?}");
            for e in &errs {
                let shown = e.to_string();
                for part in ["hunter2", "2345", "9876", "4242", "1979", "true"] {
                    assert!(!shown.contains(part), "{key} = {value}: {shown}");
                }
            }
        }
    }
}

#[test]
fn syntax_errors_on_a_secret_line_do_not_quote_it() {
    let lines = [
        "password = hunter2",
        "password = \"hunter2",
        "password = 'hunter2",
        "password = \"\"\"hunter2",
        "password = hunter2\"",
        "password = \"hun\\qter2\"",
        "password = \"hunter2\" extra",
        "password = \"hunter2\"\npassword = \"hunter2\"",
        "pasword = \"hunter2\"",
    ];
    for line in lines {
        let text = format!("[source]\ntype = \"salesforce\"\n{line}\n");
        let e = parse(&text, "f.toml").expect_err(line);
        assert!(!e.to_string().contains("hunter2") && !e.to_string().contains("qter"), "{line}: {e}");
        assert!(e.key.starts_with("line "), "{line}: the place is named: {e}");
    }
}

#[test]
fn interpolation_errors_of_secret_keys_quote_nothing_of_the_value() {
    let rows = [
        ("password = \"pa${ss-hunter2}\"", "does not hold a variable name"),
        ("password = \"hunter2${\"", "unterminated"),
        ("password = \"${MISSING_PW}\"", "environment variable `MISSING_PW` is not set"),
    ];
    for (line, needle) in rows {
        let text = config(
            &format!("auth = \"password\"\nclient_id = \"i\"\nclient_secret = \"s\"\nusername = \"u\"\n{line}"),
            "[[flows]]\nobject = \"Account\"\n",
        );
        let errs = errors(&text);
        has(&errs, "source.password", needle);
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(!errs[0].to_string().contains("hunter2"), "{}", errs[0]);
    }
    // Other keys still quote the invalid name: it is no secret there.
    let text = config(CC, "[[flows]]\nobject = \"${not-a-name}\"\n");
    has(&errors(&text), "flows[0].object", "`${not-a-name}` is not a variable name");
}

#[test]
fn a_secret_value_is_scrubbed_from_every_message() {
    // The client secret is written again where it does not belong: that message quotes
    // the flow's object, which is the secret's text.
    let text = config(
        "auth = \"client_credentials\"\nclient_id = \"i\"\nclient_secret = \"Acc-ount!\"",
        "[[flows]]\nobject = \"Acc-ount!\"\n",
    );
    let errs = errors(&text);
    has(&errs, "flows[0].object", "\"***\" is not a Salesforce API name");
    // Its interpolated value too.
    let text = config(CC, &format!("[[flows]]\nobject = \"{SECRET}\"\n"));
    let errs = errors(&text);
    assert!(errs.iter().all(|e| !e.to_string().contains(SECRET)), "{errs:#?}");
}

#[test]
fn credentials_in_urls_are_refused_and_redacted() {
    let rows = [
        (
            "login_url = \"https://admin:hunter2@login.salesforce.com\"",
            DUCKDB.to_owned(),
            "source.login_url",
            "\"https://***@login.salesforce.com\" holds credentials (before the `@`); remove them: they belong in \
             source.username and source.password",
        ),
        (
            "login_url = \"https://hunter2@login.salesforce.com/\"",
            DUCKDB.to_owned(),
            "source.login_url",
            "\"https://***@login.salesforce.com\" holds credentials",
        ),
        (
            "login_url = \"ftp://u:hunter2@x\"",
            DUCKDB.to_owned(),
            "source.login_url",
            "\"ftp://***@x\" is not an http:// or https:// URL with a host",
        ),
        (
            "login_url = \"https://x\"",
            REDSHIFT.replace("s3://b/p", "s3://AKIA:hunter2@b/p"),
            "destination.s3_staging",
            "\"s3://***@b/p\" holds credentials (before the `@`); remove them: S3 credentials come from the AWS \
             environment",
        ),
        (
            "login_url = \"https://x\"",
            format!("{REDSHIFT}\ns3_endpoint = \"http://minio:hunter2@127.0.0.1:9000\""),
            "destination.s3_endpoint",
            "\"http://***@127.0.0.1:9000\" holds credentials",
        ),
        (
            "login_url = \"https://x\"",
            format!("{REDSHIFT}\ns3_endpoint = \"minio:hunter2@127.0.0.1:9000\""),
            "destination.s3_endpoint",
            "is not an http:// or https:// URL",
        ),
    ];
    for (login, destination, key, needle) in rows {
        let text = format!(
            "[source]\ntype = \"salesforce\"\n{login}\n{CC}\n[destination]\n{destination}\n[[flows]]\nobject = \
             \"Account\"\n"
        );
        exactly(&text, &[(key, needle)]);
        assert!(errors(&text).iter().all(|e| !e.to_string().contains("hunter2")), "{:#?}", errors(&text));
    }
}

#[test]
fn durations_are_bounded() {
    // (where, key, value, expected problem or None)
    let rows: &[(&str, &str, &str, Option<&str>)] = &[
        ("defaults", "lag", "1d", None),
        ("defaults", "lag", "25h", Some("\"25h\" is out of range; expected 0s to 1d")),
        ("defaults", "lag", "100y", Some("\"100y\": expected a duration like")),
        ("defaults", "lag", "100y", Some("(units s, m, h, d, w); expected 0s to 1d")),
        ("defaults", "lag", "5200w", Some("\"5200w\": longer than any setting allows (3650d); expected 0s to 1d")),
        ("defaults", "lag", "99999999999999999999s", Some("longer than any setting allows")),
        ("flows[0]", "lookback", "7d", None),
        ("flows[0]", "lookback", "0s", None),
        ("flows[0]", "lookback", "1w1s", Some("\"1w1s\" is out of range; expected 0s to 7d")),
        ("defaults", "reconcile_every", "1m", None),
        ("defaults", "reconcile_every", "365d", None),
        ("defaults", "reconcile_every", "never", None),
        (
            "defaults",
            "reconcile_every",
            "59s",
            Some("\"59s\" is out of range; expected 1m to 365d, or \"never\" to turn reconciliation off"),
        ),
        ("defaults", "reconcile_every", "366d", Some("expected 1m to 365d")),
        ("defaults", "reconcile_every", "nevermore", Some("\"nevermore\": expected a duration like")),
        ("defaults", "formula_refresh_every", "1s", None),
        ("flows[0]", "formula_refresh_every", "never", None),
        (
            "defaults",
            "formula_refresh_every",
            "0s",
            Some("\"0s\" is out of range; expected 1s to 365d, or \"never\" to turn formula refresh off"),
        ),
        ("flows[0]", "slice", "1m", None),
        ("flows[0]", "slice", "3650d", None),
        ("flows[0]", "slice", "30s", Some("\"30s\" is out of range; expected 1m to 3650d")),
        ("flows[0]", "slice", "3651d", Some("longer than any setting allows (3650d); expected 1m to 3650d")),
        ("source", "connect_timeout", "5m", None),
        ("source", "connect_timeout", "0s", Some("\"0s\" is out of range; expected 1s to 5m")),
        ("source", "connect_timeout", "301s", Some("expected 1s to 5m")),
        ("source", "read_timeout", "1h", None),
        ("source", "read_timeout", "61m", Some("\"61m\" is out of range; expected 1s to 1h")),
        ("source", "bulk_timeout", "24h", None),
        ("source", "bulk_timeout", "59s", Some("\"59s\" is out of range; expected 1m to 1d")),
        ("source", "bulk_timeout", "2d", Some("expected 1m to 1d")),
    ];
    for (place, key, value, want) in rows {
        let line = format!("{key} = \"{value}\"\n");
        let (source, defaults, flow) = match *place {
            "source" => (line, String::new(), String::new()),
            "defaults" => (String::new(), line, String::new()),
            _ => (String::new(), String::new(), line),
        };
        let text = format!(
            "[source]\ntype = \"salesforce\"\nlogin_url = \"https://x\"\n{CC}\n{source}[destination]\n{DUCKDB}\n\
             [defaults]\n{defaults}[[flows]]\nobject = \"Account\"\n{flow}"
        );
        match want {
            None => {
                load(&text, "sluice.toml", &sample_env()).unwrap_or_else(|e| panic!("{key} = {value}: {e:#?}"));
            }
            Some(needle) => exactly(&text, &[(&format!("{place}.{key}"), needle)]),
        }
    }
}

#[test]
fn duration_limits_and_formatting() {
    assert_eq!(parse_duration("3650d"), Ok(MAX_DURATION));
    for absurd in ["3651d", "5200w", "100y", "999999999999999999999999w", "1h99999999999999999999s"] {
        assert!(parse_duration(absurd).is_err(), "{absurd}");
    }
    let rows =
        [(0, "0s"), (1, "1s"), (59, "59s"), (60, "1m"), (90, "90s"), (3600, "1h"), (5400, "90m"), (86_400, "1d")];
    for (secs, want) in rows {
        let d = Duration::from_secs(secs);
        assert_eq!(format_duration(d), want);
        assert_eq!(parse_duration(want), Ok(d), "round trip of {want}");
    }
}

#[test]
fn source_and_warehouse_timeouts() {
    let text = config_on(DUCKDB, "[[flows]]\nobject = \"Account\"\n");
    let c = load(&text, "t.toml", &sample_env()).unwrap();
    assert_eq!(
        (c.source.connect_timeout, c.source.read_timeout, c.source.bulk_timeout),
        (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT, DEFAULT_BULK_TIMEOUT)
    );
    assert_eq!(
        (DEFAULT_CONNECT_TIMEOUT.as_secs(), DEFAULT_READ_TIMEOUT.as_secs(), DEFAULT_BULK_TIMEOUT.as_secs()),
        (10, 60, 1800)
    );
    let text = format!(
        "[source]\ntype = \"salesforce\"\nlogin_url = \"https://x\"\n{CC}\nconnect_timeout = \"3s\"\nread_timeout = \
         \"2m\"\nbulk_timeout = \"1h\"\n[destination]\n{DUCKDB}\n[[flows]]\nobject = \"Account\"\n"
    );
    let c = load(&text, "t.toml", &sample_env()).unwrap();
    assert_eq!(
        (c.source.connect_timeout, c.source.read_timeout, c.source.bulk_timeout),
        (Duration::from_secs(3), Duration::from_secs(120), Duration::from_secs(3600))
    );
    assert_eq!(
        PgTimeouts::default(),
        PgTimeouts { statement: Duration::from_secs(300), lock: Duration::from_secs(60) }
    );
    for destination in [POSTGRES, REDSHIFT] {
        let c = load(&config_on(destination, "[[flows]]\nobject = \"Account\"\n"), "t.toml", &sample_env()).unwrap();
        let timeouts = timeouts_of(&c.destination);
        assert_eq!(timeouts, PgTimeouts::default());
        let set = format!("{destination}\nstatement_timeout = \"30s\"\nlock_timeout = \"5s\"");
        let c = load(&config_on(&set, "[[flows]]\nobject = \"Account\"\n"), "t.toml", &sample_env()).unwrap();
        let timeouts = timeouts_of(&c.destination);
        assert_eq!(timeouts, PgTimeouts { statement: Duration::from_secs(30), lock: Duration::from_secs(5) });
    }
    let rows = [
        (
            format!("{POSTGRES}\nstatement_timeout = \"25h\""),
            "destination.statement_timeout",
            "\"25h\" is out of range; expected 1s to 1d (every statement but the load and the consolidation \
             transaction)",
        ),
        (format!("{REDSHIFT}\nlock_timeout = \"0s\""), "destination.lock_timeout", "expected 1s to 1h"),
        (
            format!("{DUCKDB}\nstatement_timeout = \"1m\""),
            "destination.statement_timeout",
            "is not used by type = \"duckdb\"",
        ),
        (format!("{FILES}\nlock_timeout = \"1m\""), "destination.lock_timeout", "is not used by type = \"files\""),
    ];
    for (destination, key, needle) in rows {
        exactly(&config_on(&destination, "[[flows]]\nobject = \"Account\"\n"), &[(key, needle)]);
    }
}

/// A config case: the destination, the rest of the file, the (key, message part) problems
/// expected.
type Case = (&'static str, &'static str, &'static [(&'static str, &'static str)]);

#[test]
fn keys_without_effect_are_refused() {
    const FILES_MSG: &str = "has no effect with destination type = \"files\", which is append-only: it keeps every \
                             version read, so there are no deletes, no history table, no reconciliation and no \
                             formula refresh";
    const FULL_MSG: &str = "has no effect with mode = \"full\": every run reads the whole object";
    // (destination, the rest of the file, expected problems)
    let rows: &[Case] = &[
        (
            FILES,
            "[defaults]\ndeletes = \"hard\"\n[[flows]]\nobject = \"Account\"\n",
            &[("defaults.deletes", FILES_MSG)],
        ),
        (FILES, "[defaults]\nhistory = false\n[[flows]]\nobject = \"Account\"\n", &[("defaults.history", FILES_MSG)]),
        (
            FILES,
            "[defaults]\nreconcile_every = \"never\"\n[[flows]]\nobject = \"Account\"\n",
            &[("defaults.reconcile_every", FILES_MSG)],
        ),
        (
            FILES,
            "[[flows]]\nobject = \"Account\"\nmax_delete_ratio = 0.2\nhistory = true\n[[flows]]\nobject = \
             \"Contact\"\ndeletes = \"soft\"\n",
            &[
                ("flows[0].max_delete_ratio", FILES_MSG),
                ("flows[0].history", FILES_MSG),
                ("flows[1].deletes", FILES_MSG),
            ],
        ),
        (
            DUCKDB,
            "[[flows]]\nobject = \"Account\"\nmode = \"full\"\nlookback = \"1h\"\nreconcile_every = \"1d\"\n",
            &[("flows[0].lookback", FULL_MSG), ("flows[0].reconcile_every", FULL_MSG)],
        ),
        (
            DUCKDB,
            "[[flows]]\nobject = \"Invoice__c\"\nmode = \"full\"\nformula_refresh_every = \"1h\"\n",
            &[("flows[0].formula_refresh_every", FULL_MSG)],
        ),
        (
            FILES,
            "[defaults]\nformula_refresh_every = \"1d\"\n[[flows]]\nobject = \"Invoice__c\"\n",
            &[("defaults.formula_refresh_every", FILES_MSG)],
        ),
        (
            DUCKDB,
            "[defaults]\nmode = \"full\"\n[[flows]]\nobject = \"Account\"\nreconcile_every = \"never\"\n",
            &[("flows[0].reconcile_every", "has no effect with mode = \"full\" (from [defaults])")],
        ),
        (
            DUCKDB,
            "[defaults]\nlookback = \"1h\"\n[[flows]]\nobject = \"Account\"\nmode = \"full\"\n[[flows]]\nobject = \
             \"Contact\"\nmode = \"full\"\n",
            &[(
                "defaults.lookback",
                "has no effect on any flow: flows[0] and flows[1] have mode = \"full\"; remove it",
            )],
        ),
        (
            DUCKDB,
            "[defaults]\nreconcile_every = \"1d\"\n[[flows]]\nobject = \"Account\"\nmode = \"full\"\n[[flows]]\n\
             object = \"Contact\"\nreconcile_every = \"2d\"\n",
            &[(
                "defaults.reconcile_every",
                "has no effect on any flow: flows[0] has mode = \"full\", and flows[1] sets its own; remove it",
            )],
        ),
        (
            DUCKDB,
            "[defaults]\nlag = \"1m\"\n[[flows]]\nobject = \"Account\"\nlag = \"0s\"\n",
            &[("defaults.lag", "has no effect on any flow: flows[0] sets its own; remove it")],
        ),
        (
            "type = \"duckdb\"\npath = \"w.duckdb\"\nmask_salt = \"pepper\"",
            "[[flows]]\nobject = \"Account\"\n",
            &[("destination.mask_salt", "has no effect: no flow masks a field; remove it")],
        ),
    ];
    for (destination, rest, want) in rows {
        exactly(&config_on(destination, rest), want);
    }
    // Fine: a [defaults] key one flow inherits; settings a files flow uses; full-mode keys
    // that still matter (lag, slice, deletes, history).
    let ok = [
        (
            DUCKDB,
            "[defaults]\nlookback = \"1h\"\nreconcile_every = \"never\"\n[[flows]]\nobject = \"Account\"\nmode = \
             \"full\"\n[[flows]]\nobject = \"Contact\"\n",
        ),
        (
            FILES,
            "[defaults]\nlookback = \"1h\"\nlag = \"1m\"\nslice = \"30d\"\nmode = \"incremental\"\n[[flows]]\nobject = \"Account\"\n",
        ),
        (
            POSTGRES,
            "[[flows]]\nobject = \"Account\"\nmode = \"full\"\nlag = \"1m\"\nslice = \"30d\"\ndeletes = \"hard\"\n\
             history = true\n",
        ),
    ];
    for (destination, rest) in ok {
        let text = config_on(destination, rest);
        load(&text, "t.toml", &sample_env()).unwrap_or_else(|e| panic!("{text}\n{e:#?}"));
    }
}

#[test]
fn colliding_tables_are_refused() {
    let rows: &[Case] = &[
        (
            DUCKDB,
            "[[flows]]\nobject = \"Account\"\nhistory = true\n[[flows]]\nobject = \"AccountHistory\"\n",
            &[(
                "flows[1].object",
                "\"AccountHistory\" would write table \"account_history\", which flows[0] (\"Account\") writes too, as \
                 its history table; set destination.naming = \"original\", or set history = false on flows[0], or \
                 drop one of the two flows",
            )],
        ),
        (
            POSTGRES,
            "[[flows]]\nobject = \"AccountHistory\"\n[[flows]]\nobject = \"Account\"\nhistory = true\n",
            &[(
                "flows[1].history",
                "\"Account\" would write its history table \"account_history\", which flows[0] (\"AccountHistory\") \
                 writes too; set destination.naming = \"original\", or set history = false on flows[1], or drop one \
                 of the two flows",
            )],
        ),
        (
            FILES,
            "[[flows]]\nobject = \"MyObj__c\"\n[[flows]]\nobject = \"My_Obj__c\"\n[[flows]]\nobject = \"Other__c\"\n\
             [[flows]]\nobject = \"MY_OBJ__c\"\n",
            &[
                (
                    "flows[1].object",
                    "\"My_Obj__c\" would write table \"my_obj__c\", which flows[0] (\"MyObj__c\") writes too; set destination.naming = \"original\", or drop one of the two flows",
                ),
                // MY_OBJ__c and My_Obj__c are one object to Salesforce (reported as such).
                ("flows[3].object", "already has a flow (flows[1])"),
            ],
        ),
        (
            REDSHIFT,
            "[[flows]]\nobject = \"MyObj__c\"\n[[flows]]\nobject = \"My_Obj__c\"\n",
            &[("flows[1].object", "which flows[0] (\"MyObj__c\") writes too; drop one of the two flows")],
        ),
        (
            // Names that differ only in case: one name to DuckDB, two to PostgreSQL.
            "type = \"duckdb\"\npath = \"w.duckdb\"\nnaming = \"original\"",
            "[[flows]]\nobject = \"Foo__c\"\nhistory = true\n[[flows]]\nobject = \"foo__c_History\"\n",
            &[(
                "flows[1].object",
                "\"foo__c_History\" would write table \"foo__c_History\", which flows[0] (\"Foo__c\") writes too, as \
                 its history table (as \"Foo__c_history\": one name to DuckDB); set history = false on flows[0], or \
                 drop one of the two flows",
            )],
        ),
        (
            DUCKDB,
            "[[flows]]\nobject = \"A__c\"\n[[flows]]\nobject = \"A_c\"\n[[flows]]\nobject = \"ABc__c\"\n\
             [[flows]]\nobject = \"A_Bc__c\"\n[[flows]]\nobject = \"aBc__c\"\n",
            &[
                (
                    "flows[3].object",
                    "\"A_Bc__c\" would write table \"a_bc__c\", which flows[2] (\"ABc__c\") writes too",
                ),
                ("flows[4].object", "already has a flow (flows[2])"),
            ],
        ),
    ];
    for (destination, rest, want) in rows {
        exactly(&config_on(destination, rest), want);
    }
    let pg_original = "type = \"postgres\"\nurl = \"postgres://u@h/db\"\nnaming = \"original\"";
    let text = config_on(
        pg_original,
        "[[flows]]\nobject = \"Foo__c\"\nhistory = true\n[[flows]]\nobject = \"foo__c_History\"\n",
    );
    load(&text, "t.toml", &sample_env()).expect("PostgreSQL compares quoted names exactly");
}

#[test]
fn rename_maps_fields_to_column_names() {
    let ok = config_on(
        DUCKDB,
        "[[flows]]\nobject = \"Account\"\nrename = { Name = \"account_name\", Industry = \"sector\" }\n",
    );
    let config = load(&ok, "sluice.toml", &sample_env()).expect("valid");
    assert_eq!(
        config.flows[0].rename,
        [("Industry".to_owned(), "sector".to_owned()), ("Name".to_owned(), "account_name".to_owned())]
    );
    let long = "c".repeat(64);
    let bad = config_on(
        DUCKDB,
        &format!(
            "[[flows]]\nobject = \"Account\"\nrename = {{ Id = \"key\", \"Bad Name\" = \"x\", Name = \"\", Phone = \
             \"_sluice_phone\", Fax = \"{long}\", Industry = \"sector\", Type = \"SECTOR\" }}\n"
        ),
    );
    exactly(
        &bad,
        &[
            ("flows[0].rename.Id", "cannot rename Id"),
            ("flows[0].rename.Bad Name", "not a Salesforce API name"),
            ("flows[0].rename.Name", "is empty"),
            ("flows[0].rename.Phone", "starts with `_sluice`"),
            ("flows[0].rename.Fax", "is 64 bytes; a column name has at most 63"),
            ("flows[0].rename.Type", "is also the column of `Industry`"),
        ],
    );
}

/// `write`: merge (the default) or append; on an append flow the merge-only keys have no
/// effect and are errors, as `write = "merge"` is on the append-only files destination and
/// an append under a consolidation procedure.
#[test]
fn write_mode_and_what_it_rules_out() {
    let ok =
        config_on(DUCKDB, "[[flows]]\nobject = \"Account\"\nwrite = \"append\"\n\n[[flows]]\nobject = \"Contact\"\n");
    let c = load(&ok, "sluice.toml", &sample_env()).unwrap();
    assert_eq!(c.flows[0].settings.write, WriteMode::Append);
    assert_eq!(c.flows[1].settings.write, WriteMode::Merge, "merge unless asked");
    let by_default = config_on(DUCKDB, "[defaults]\nwrite = \"append\"\n[[flows]]\nobject = \"Account\"\n");
    assert_eq!(load(&by_default, "sluice.toml", &sample_env()).unwrap().flows[0].settings.write, WriteMode::Append);

    exactly(
        &config_on(DUCKDB, "[[flows]]\nobject = \"Account\"\nwrite = \"upsert\"\n"),
        &[("flows[0].write", "\"merge\", \"append\"")],
    );
    let merge_keys = "[[flows]]\nobject = \"Account\"\nwrite = \"append\"\ndeletes = \"hard\"\nhistory = true\n\
                      reconcile_every = \"1d\"\nformula_refresh_every = \"1d\"\nmax_delete_ratio = 0.2\n";
    let keys = ["deletes", "history", "reconcile_every", "formula_refresh_every", "max_delete_ratio"];
    let want: Vec<(String, &str)> =
        keys.iter().map(|k| (format!("flows[0].{k}"), "has no effect with write = \"append\":")).collect();
    let want: Vec<(&str, &str)> = want.iter().map(|(k, m)| (k.as_str(), *m)).collect();
    exactly(&config_on(POSTGRES, merge_keys), &want);
    // From [defaults]: said so; and a [defaults] key no flow inherits is reported there.
    exactly(
        &config_on(DUCKDB, "[defaults]\nwrite = \"append\"\ndeletes = \"hard\"\n[[flows]]\nobject = \"Account\"\n"),
        &[("defaults.deletes", "flows[0] has write = \"append\"")],
    );
    exactly(
        &config_on(DUCKDB, "[defaults]\nwrite = \"append\"\n[[flows]]\nobject = \"Account\"\nhistory = true\n"),
        &[("flows[0].history", "write = \"append\" (from [defaults])")],
    );
    exactly(
        &config_on(FILES, "[defaults]\nwrite = \"merge\"\n[[flows]]\nobject = \"Account\"\nwrite = \"merge\"\n"),
        &[("defaults.write", "append-only"), ("flows[0].write", "append-only")],
    );
    assert!(load(&config_on(FILES, "[[flows]]\nobject = \"A\"\nwrite = \"append\"\n"), "s", &sample_env()).is_ok());
    exactly(
        &config_on(
            &format!("{POSTGRES}\nconsolidation = \"procedure\""),
            "[defaults]\nwrite = \"append\"\n[[flows]]\nobject = \"Account\"\n[[flows]]\nobject = \"Contact\"\n",
        ),
        &[("defaults.write", "consolidation = \"procedure\"")],
    );
}

/// `type = "files"` on S3: `path = "s3://bucket/prefix"` with `s3_region` / `s3_endpoint`;
/// those keys on a local root, a path naming no bucket, or credentials in the URL are
/// errors.
#[test]
fn files_on_s3() {
    use crate::destination::files::config::{FilesRoot, S3Root};
    let text = config_on(
        "type = \"files\"\npath = \"s3://lake/raw/sf/\"\ns3_region = \"eu-west-1\"\ns3_endpoint = \"http://127.0.0.1:9000\"",
        "[[flows]]\nobject = \"Account\"\n",
    );
    let c = load(&text, "sluice.toml", &sample_env()).unwrap();
    let root = &c.destination.settings::<FilesConfig>().expect("files").root;
    let want = S3Root {
        bucket: "lake".into(),
        prefix: "raw/sf".into(),
        region: Some("eu-west-1".into()),
        endpoint: Some("http://127.0.0.1:9000".into()),
    };
    assert_eq!(root, &FilesRoot::S3(want));
    assert_eq!(root.shown(), "s3://lake/raw/sf");
    exactly(
        &config_on("type = \"files\"\npath = \"out\"\ns3_region = \"eu-west-1\"", "[[flows]]\nobject = \"A\"\n"),
        &[("destination.s3_region", "only with an S3 root")],
    );
    exactly(
        &config_on("type = \"files\"\npath = \"s3:///x\"", "[[flows]]\nobject = \"A\"\n"),
        &[("destination.path", "names no bucket")],
    );
    let errs =
        errors(&config_on("type = \"files\"\npath = \"s3://AKIA:hunter2@lake/x\"", "[[flows]]\nobject = \"A\"\n"));
    has(&errs, "destination.path", "holds credentials");
    assert!(!format!("{errs:?}").contains("hunter2"), "{errs:?}");
    exactly(
        &config_on(
            "type = \"files\"\npath = \"s3://lake/x\"\ns3_endpoint = \"ftp://x\"",
            "[[flows]]\nobject = \"A\"\n",
        ),
        &[("destination.s3_endpoint", "not an http:// or https:// URL")],
    );
}

/// The time bounds of a PostgreSQL or Redshift destination.
fn timeouts_of(destination: &DestinationConfig) -> PgTimeouts {
    match (destination.settings::<PostgresConfig>(), destination.settings::<RedshiftConfig>()) {
        (Some(pg), _) => pg.timeouts,
        (_, Some(rs)) => rs.timeouts,
        _ => panic!("{destination:?}"),
    }
}

#[test]
fn destination_keys_are_checked_by_the_type_named() {
    let flows = "[[flows]]\nobject = \"Account\"\n";
    // A key no type takes, and one another type takes.
    exactly(
        &config_on(&format!("{DUCKDB}\ncolour = \"blue\"\nformat = \"csv\""), flows),
        &[
            ("destination.colour", "is not a [destination] key; type = \"duckdb\" takes path, schema, memory_limit"),
            ("destination.format", "is not used by type = \"duckdb\" (it uses path and schema)"),
        ],
    );
    // A value of the wrong TOML type, secret or not: named by its type only.
    exactly(
        &config_on("type = \"duckdb\"\npath = 5", flows),
        &[("destination.path", "must be a string (got an integer)")],
    );
    let errs = errors(&config_on("type = \"postgres\"\nurl = 12345", flows));
    has(&errs, "destination.url", "must be a string (got an integer)");
    assert!(errs.iter().all(|e| !e.to_string().contains("12345")), "{errs:#?}");
}

/// A destination type the registry does not hold yet: its keys reach it without any
/// change to the parser, which is what makes a new destination one folder.
#[test]
fn a_new_destination_type_needs_no_change_to_the_parser() {
    #[derive(Debug, PartialEq)]
    struct Acme {
        bucket: String,
        token: String,
    }
    impl DestinationSettings for Acme {
        fn names(&self) -> NameRules {
            NameRules { case_insensitive: false, server: "Acme", folds_case: false }
        }
    }
    struct AcmeKind;
    impl DestinationKind for AcmeKind {
        fn name(&self) -> &'static str {
            "acme"
        }
        fn keys(&self) -> &'static [&'static str] {
            &["bucket", "token"]
        }
        fn uses(&self) -> &'static str {
            "bucket and token"
        }
        fn settings(&self, keys: &mut DestinationKeys<'_, '_>) -> Option<Box<dyn DestinationSettings>> {
            let bucket = keys.required("bucket", "where it goes");
            let token = keys.required_secret("token", "its secret");
            Some(Box::new(Acme { bucket, token }))
        }
    }
    let kinds: [&dyn DestinationKind; 2] = [&crate::destination::duckdb::DuckDbKind, &AcmeKind];
    let env = env_of(&[("SF_CLIENT_SECRET", SECRET), ("ACME_TOKEN", "t0ken-value")]);
    let flows = "[[flows]]\nobject = \"Account\"\n";
    let text = config_on("type = \"acme\"\nbucket = \"b\"\ntoken = \"${ACME_TOKEN}\"", flows);
    let c = super::load(&text, "sluice.toml", &env, &kinds).unwrap();
    assert_eq!(c.destination.settings::<Acme>(), Some(&Acme { bucket: "b".into(), token: "t0ken-value".into() }));
    let text = config_on("type = \"acme\"\nbucket = \"b\"\ntoken = \"t0ken-value\"\npath = \"x\"", flows);
    let errs = super::load(&text, "sluice.toml", &env, &kinds).unwrap_err();
    has(&errs, "destination.path", "is not used by type = \"acme\" (it uses bucket and token)");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let text = config_on("type = \"files\"\npath = \"x\"", flows);
    let errs = super::load(&text, "sluice.toml", &env, &kinds).unwrap_err();
    has(&errs, "destination.type", "\"files\" is not a destination type; valid: \"duckdb\", \"acme\"");
}
