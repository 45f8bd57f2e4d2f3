//! Config tests: the sample parses and validates; every rule reports its problem with the
//! file, the key and what would be valid; secrets never show.

use std::collections::HashMap;

use super::*;

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
    assert_eq!(
        config.destination,
        DestinationConfig::DuckDb {
            path: "warehouse.duckdb".into(),
            schema: "salesforce".into(),
            naming: Naming::SnakeCase,
            memory_limit_mib: crate::config::DEFAULT_DUCKDB_MEMORY_MIB,
        }
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
    assert!(matches!(config.destination, DestinationConfig::DuckDb { .. }), "{:?}", config.destination);
}

#[test]
fn overrides_and_defaults() {
    let text = config(
        &format!("{CC}\napi = \"bulk\"\napi_budget_percent = 50\napi_version = \"60.0\""),
        r#"format = "jsonl"
naming = "original"
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
[[flows]]
object = "Invoice__c"
exclude = ["Blob__c"]
mask = ["Phone__c"]
api = "rest"
mode = "full"
lookback = "0s"
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
    assert_eq!((i.api, i.settings.mode, i.settings.history), (Api::Rest, Mode::Full, true));
    assert_eq!(i.settings.lookback, Duration::ZERO);
    assert_eq!(i.settings.lag, Duration::from_secs(5), "inherited from [defaults]");
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
        ("defaults.slice", "longer than 0s"),
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
            "missing; valid: \"duckdb\", \"postgres\", \"redshift\", \"files\"",
        ),
        ("[destination]\ntype = \"lake\"\n", "destination.type", "not available in this version yet"),
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
            "\"lots\" is not a memory size of at least 32 MB",
        ),
        (
            "[destination]\ntype = \"duckdb\"\npath = \"w.duckdb\"\nmemory_limit = \"8MB\"\n",
            "destination.memory_limit",
            "at least 32 MB",
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
    for (written, mib) in [("160MB", 160), ("2 GB", 2048), ("512MiB", 512), ("1g", 1024)] {
        let text = format!(
            "[source]\ntype = \"salesforce\"\nlogin_url = \"https://x\"\n{CC}\n[destination]\ntype = \"duckdb\"\npath = \
             \"w.duckdb\"\nmemory_limit = \"{written}\"\n[[flows]]\nobject = \"Account\"\n"
        );
        let config = load(&text, "t.toml", &sample_env()).unwrap_or_else(|e| panic!("{written}: {e:?}"));
        let DestinationConfig::DuckDb { memory_limit_mib, .. } = config.destination else { panic!("not duckdb") };
        assert_eq!(memory_limit_mib, mib, "{written}");
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
