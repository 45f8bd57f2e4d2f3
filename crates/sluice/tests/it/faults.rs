//! The randomized fault suite: for each warehouse, many rounds of random sandbox faults
//! (5xx and 429 answers, latency, expiring tokens and query locators, bodies cut short,
//! failing Bulk jobs, late commits, churn during the run, purges, the clock jumping), each
//! followed by a clean run and a row-by-row, value-by-value comparison with the sandbox's
//! ground truth.
//!
//! A round:
//! 1. changes the org through the admin API (churn, hard deletes, recycle-bin purges, late
//!    writes), sets random knobs and moves the clock;
//! 2. syncs under those faults while a side task jumps the clock and expires sessions. The
//!    run may succeed, partly fail or fail; what must hold even then is checked: no Id
//!    twice in a table, no row newer than the source's (`SystemModstamp`), no committed
//!    window end moving backwards;
//! 3. clears every knob, lets pending late commits land, syncs again (every flow must be
//!    `ok`) and compares each table with the truth.
//!
//! Everything random comes from one seed: `SLUICE_FAULT_SEED` if set, else a fresh one, printed
//! at the start and named in every failure ("replay with SLUICE_FAULT_SEED=..."). The plan is
//! a function of the seed; which request a fault hits also depends on timing (flows run in
//! parallel, churn runs on the clock), so a replay reproduces the plan, not every interleaving.
//! `SLUICE_FAULT_ROUNDS` sets the number of rounds.
//!
//! Late writes are made only where no other write touches their row before they commit: the
//! sandbox commits a late write over a newer one with its older stamp (a real org's row lock
//! would have ordered them), which no replicator could follow. So a round with late commits
//! churns inserts only in the background, and its late updates and deletes go to rows nothing
//! else writes until they have landed.

use crate::{common, target, warehouse};

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sandbox::knobs::{BulkKnobs, Churn, Knobs, LateCommits};
use sandbox::server;
use sandbox::{Running, SandboxConfig};
use serde_json::{Value as Json, json};
use sluice::config::Config;
use sluice::consolidate::TableRef;
use sluice::model::{Naming, SluiceType, TableSchema};
use sluice::pipeline::{self, FlowStatus, RunStatus, SyncOptions};
use sluice::source::salesforce::SalesforceSource;
use sluice::source::salesforce::describe::Selection;
use target::{Kind, Warehouse};
use warehouse::{Expect, assert_matches, canon_truth, truth};

/// Rows of each object at the start.
const ACCOUNTS: usize = 400;
const CONTACTS: usize = 300;
/// Rounds when `SLUICE_FAULT_ROUNDS` is not set.
const DEFAULT_ROUNDS: usize = 35;
/// The flows' look-back (sluice's default): late commits are delayed by less.
const LOOKBACK_SECS: f64 = 600.0;
/// The longest delay of a late commit.
const MAX_LATE_SECS: f64 = 240.0;

/// One flow under test.
struct Flow {
    object: &'static str,
    schema: TableSchema,
    expect: Expect,
}

/// The state of one warehouse's suite.
struct Suite {
    seed: u64,
    kind: Kind,
    rng: ChaCha8Rng,
    sb: Running,
    wh: Warehouse,
    config: Config,
    flows: Vec<Flow>,
    /// The last committed window end of each table (epoch ms).
    windows: HashMap<String, i64>,
}

/// Calls the admin API at `base` (usable from a side task); panics unless it succeeds.
async fn admin_post(base: &str, path: &str, body: Json) -> Json {
    let resp = reqwest::Client::new().post(format!("{base}{path}")).json(&body).send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    if text.is_empty() { Json::Null } else { serde_json::from_str(&text).unwrap() }
}

fn seed() -> u64 {
    match std::env::var("SLUICE_FAULT_SEED") {
        Ok(s) => s.trim().parse().unwrap_or_else(|_| panic!("SLUICE_FAULT_SEED={s} is not a number")),
        Err(_) => rand::random(),
    }
}

fn rounds() -> usize {
    match std::env::var("SLUICE_FAULT_ROUNDS") {
        Ok(s) => s.trim().parse().unwrap_or_else(|_| panic!("SLUICE_FAULT_ROUNDS={s} is not a number")),
        Err(_) => DEFAULT_ROUNDS,
    }
}

/// Prints the seed if the test panics anywhere (helpers' own assertions included).
struct SeedOnPanic(u64, Kind);

impl Drop for SeedOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("faults {:?}: FAILED; replay with SLUICE_FAULT_SEED={}", self.1, self.0);
        }
    }
}

/// The text of a panic payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic".into())
}

/// A random sample of `n` Ids of `truth` rows that are live (or in the recycle bin).
fn pick(rng: &mut ChaCha8Rng, truth: &HashMap<String, Json>, deleted: bool, n: usize) -> Vec<String> {
    let mut ids: Vec<&String> =
        truth.iter().filter(|(_, r)| r["IsDeleted"].as_bool().unwrap_or(false) == deleted).map(|(id, _)| id).collect();
    ids.sort();
    ids.choose_multiple(rng, n).map(|s| (*s).clone()).collect()
}

/// A share in `0..max`, zero a fifth of the time.
fn share(rng: &mut ChaCha8Rng, max: f64) -> f64 {
    if rng.random_bool(0.2) { 0.0 } else { rng.random_range(0.0..max) }
}

/// The knobs a round sets, in one line.
fn describe_knobs(k: &Knobs) -> String {
    let c = &k.churn;
    format!(
        "5xx {:.3}, 429 {:.3}, cut {:.3}, latency {} ms, token {} s, locator {} s, churn/s +{:.1} ~{:.1} \
         -{:.1} ^{:.1} ties {}, late {:.2} after {:.0} s, bulk {:.2} s fail {:.3}",
        k.error_rate,
        k.rate_limit_rate,
        k.truncate_rate,
        k.latency_ms,
        k.token_lifetime_secs.map_or("-".into(), |s| s.to_string()),
        k.query_locator_ttl_secs.map_or("-".into(), |s| s.to_string()),
        c.inserts_per_sec,
        c.updates_per_sec,
        c.deletes_per_sec,
        c.undeletes_per_sec,
        c.timestamp_ties,
        k.late_commits.fraction,
        k.late_commits.delay_secs,
        k.bulk.in_progress_secs,
        k.bulk.fail_rate,
    )
}

/// What happens during a faulty run, besides the knobs: after a pause (real time), the clock
/// jumps or every session is expired.
#[derive(Debug, Clone, Copy)]
enum SideEvent {
    Advance { after_ms: u64, secs: f64 },
    ExpireSessions { after_ms: u64 },
}

impl Suite {
    async fn new(kind: Kind) -> Self {
        let seed = seed();
        eprintln!("faults {kind:?}: seed {seed} (replay with SLUICE_FAULT_SEED={seed})");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let counts = [("Account", ACCOUNTS), ("Contact", CONTACTS)].iter().map(|(o, n)| (o.to_string(), *n as u64));
        let sb = server::start(SandboxConfig { seed, counts: counts.collect(), ..SandboxConfig::default() })
            .await
            .expect("sandbox starts");
        let wh = Warehouse::new(kind).await;
        // One flow sliced, one soft and one hard, which is which drawn from the seed.
        let account_soft = rng.random_bool(0.5);
        let deletes = |soft: bool| if soft { "soft" } else { "hard" };
        let text = format!(
            "{}\n{}\n[defaults]\nlookback = \"{}s\"\n\n[[flows]]\nobject = \"Account\"\nslice = \"400d\"\ndeletes = \
             \"{}\"\n\n[[flows]]\nobject = \"Contact\"\ndeletes = \"{}\"\n",
            common::source_toml(&sb.login_url, ""),
            wh.toml,
            LOOKBACK_SECS as u64,
            deletes(account_soft),
            deletes(!account_soft),
        );
        let mut config = sluice::load_config(&text, "faults.toml", &|_| None).expect("valid config");
        // Reconciliation is due at every run (`reconcile_due` goes by the local clock), the
        // verification run included, so purges are found.
        for flow in &mut config.flows {
            flow.settings.reconcile_every = Some(Duration::ZERO);
        }
        let source = SalesforceSource::connect(&common::password(&sb.login_url)).await.unwrap();
        let selection = Selection { naming: Naming::SnakeCase, ..Selection::default() };
        let mut flows = Vec::new();
        for (object, soft) in [("Account", account_soft), ("Contact", !account_soft)] {
            let schema = source.describe(object, &selection).await.unwrap().schema;
            flows.push(Flow { object, schema, expect: if soft { Expect::Soft } else { Expect::Hard } });
        }
        Suite { seed, kind, rng, sb, wh, config, flows, windows: HashMap::new() }
    }

    fn replay(&self, round: usize) -> String {
        format!("replay with SLUICE_FAULT_SEED={} ({:?}, round {round})", self.seed, self.kind)
    }

    /// Changes the org before a faulty run (late writes, delayed by less than `late_delay`,
    /// only with `late_mode`); returns the mutations.
    async fn change_the_org(&mut self, late_mode: bool, late_delay: f64) -> Vec<Json> {
        let mut ops = Vec::new();
        for flow in &self.flows {
            let object = flow.object;
            let t = truth(&self.sb, object).await;
            let rng = &mut self.rng;
            if rng.random_bool(0.8) {
                ops.push(json!({
                    "op": "churn", "object": object,
                    "inserts": rng.random_range(0..15), "updates": rng.random_range(0..25),
                    "deletes": rng.random_range(0..6), "undeletes": rng.random_range(0..3),
                }));
            }
            if rng.random_bool(0.3) {
                // Hard deletes: live rows gone without passing through the recycle bin.
                let n = rng.random_range(1..=3);
                for id in pick(rng, &t, false, n) {
                    ops.push(json!({"op": "purge", "object": object, "id": id}));
                }
            }
            if rng.random_bool(0.2) {
                ops.push(json!({"op": "purge", "object": object}));
            }
        }
        if !ops.is_empty() {
            common::mutate(&self.sb, json!(ops)).await;
        }
        if late_mode {
            // Late writes go to rows that are live once the changes above have landed (they
            // may have deleted or purged any row), and that nothing else writes until these
            // commit: background churn inserts only in a round with late commits.
            let mut late = Vec::new();
            for flow in &self.flows {
                let object = flow.object;
                let t = truth(&self.sb, object).await;
                let rng = &mut self.rng;
                let name = if object == "Account" { "Name" } else { "LastName" };
                for (i, id) in pick(rng, &t, false, 4).iter().enumerate() {
                    let secs = rng.random_range(1.0..late_delay.max(2.0));
                    late.push(if i == 0 {
                        json!({"op": "delete", "object": object, "id": id, "late_secs": secs})
                    } else {
                        json!({"op": "update", "object": object, "id": id, "fields": {name: format!("Late {i}")}, "late_secs": secs})
                    });
                }
                let secs = rng.random_range(1.0..late_delay.max(2.0));
                late.push(
                    json!({"op": "insert", "object": object, "fields": {name: "Late Insert"}, "late_secs": secs}),
                );
            }
            common::mutate(&self.sb, json!(late)).await;
            ops.extend(late);
        }
        ops
    }

    /// Random knobs for a faulty run.
    fn knobs(&mut self, late_mode: bool, late_delay: f64) -> Knobs {
        let rng = &mut self.rng;
        let objects = vec!["Account".to_owned(), "Contact".to_owned()];
        let churn = if rng.random_bool(0.5) {
            Churn {
                inserts_per_sec: rng.random_range(0.0..10.0),
                updates_per_sec: if late_mode { 0.0 } else { rng.random_range(0.0..15.0) },
                deletes_per_sec: if late_mode { 0.0 } else { rng.random_range(0.0..3.0) },
                undeletes_per_sec: if late_mode { 0.0 } else { rng.random_range(0.0..1.0) },
                objects,
                timestamp_ties: if late_mode || rng.random_bool(0.7) { 0 } else { rng.random_range(1..40) },
            }
        } else {
            Churn::default()
        };
        Knobs {
            error_rate: share(rng, 0.15),
            rate_limit_rate: share(rng, 0.1),
            truncate_rate: share(rng, 0.1),
            latency_ms: rng.random_range(0..15),
            token_lifetime_secs: rng.random_bool(0.3).then(|| rng.random_range(1..8)),
            query_locator_ttl_secs: rng.random_bool(0.2).then(|| rng.random_range(1..20)),
            churn,
            late_commits: if late_mode {
                LateCommits { fraction: rng.random_range(0.1..0.6), delay_secs: late_delay }
            } else {
                LateCommits::default()
            },
            bulk: BulkKnobs {
                in_progress_secs: if rng.random_bool(0.3) { rng.random_range(0.0..0.5) } else { 0.0 },
                fail_rate: share(rng, 0.2),
                fail_above_rows: None,
            },
            ..Knobs::default()
        }
    }

    fn side_events(&mut self, lifetime: Option<u64>) -> Vec<SideEvent> {
        let rng = &mut self.rng;
        (0..rng.random_range(0..4))
            .map(|_| {
                let after_ms = rng.random_range(20..1500);
                if rng.random_bool(0.3) {
                    SideEvent::ExpireSessions { after_ms }
                } else {
                    // Past a short token lifetime, so tokens expire mid-run.
                    let secs = lifetime.map_or(rng.random_range(1.0..30.0), |l| l as f64 + rng.random_range(0.5..5.0));
                    SideEvent::Advance { after_ms, secs }
                }
            })
            .collect()
    }

    async fn put_knobs(&self, knobs: &Knobs) {
        let resp = reqwest::Client::new()
            .put(format!("{}/sandbox/v1/knobs", self.sb.instance_url))
            .json(knobs)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "knobs: {}", resp.text().await.unwrap());
    }

    async fn table_exists(&self, schema: &str, table: &str) -> bool {
        let d = self.wh.dialect();
        let sql = format!(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = {} AND table_name = {}",
            d.quote_literal(schema),
            d.quote_literal(table)
        );
        self.wh.query_i64(&sql).await > 0
    }

    /// What must hold after any run, whatever it ended in.
    async fn check_invariants(&mut self, round: usize, when: &str) {
        let replay = self.replay(round);
        let d = self.wh.dialect();
        for flow in &self.flows {
            let table = &flow.schema.table;
            if !self.table_exists("salesforce", table).await {
                continue;
            }
            let id = d.quote_ident(&flow.schema.column_by_source("Id").unwrap().name);
            let stamp = &flow.schema.column_by_source("SystemModstamp").unwrap().name;
            let target = d.table(&TableRef::new("salesforce", table));
            let twice =
                self.wh.query(&format!("SELECT {id}, COUNT(*) FROM {target} GROUP BY {id} HAVING COUNT(*) > 1")).await;
            assert!(twice.is_empty(), "{when}: {table} holds an Id more than once: {twice:?}; {replay}");
            let truth = truth(&self.sb, flow.object).await;
            let rows = self
                .wh
                .query(&format!("SELECT {id}, CAST({} AS VARCHAR) FROM {target}", d.epoch_ms(&d.quote_ident(stamp))))
                .await;
            let mut newer = Vec::new();
            for r in &rows {
                let (Some(id), Some(ms)) = (&r[0], &r[1]) else { continue };
                let Some(t) = truth.get(id) else { continue }; // purged at the source
                let source = canon_truth(SluiceType::Timestamp, &t["SystemModstamp"]).unwrap();
                if ms.parse::<i64>().unwrap() > source.parse::<i64>().unwrap() {
                    newer.push(format!("{id}: destination {ms}, source {source}"));
                }
            }
            assert!(newer.is_empty(), "{when}: {table} has rows newer than the source's: {newer:?}; {replay}");
        }
        if self.table_exists("_sluice", "flows").await {
            let sql = format!(
                "SELECT target_table, CAST({} AS VARCHAR) FROM _sluice.flows WHERE window_end IS NOT NULL",
                d.epoch_ms("window_end")
            );
            for r in self.wh.query(&sql).await {
                let (table, end) = (r[0].clone().unwrap(), r[1].as_deref().unwrap().parse::<i64>().unwrap());
                if let Some(&before) = self.windows.get(&table) {
                    assert!(
                        end >= before,
                        "{when}: the window end of {table} moved back from {before} to {end}; {replay}"
                    );
                }
                self.windows.insert(table, end);
            }
        }
    }

    /// The faulty run, with the side events played while it runs; returns its outcome.
    async fn faulty_run(&self, max_retries: usize, events: &[SideEvent]) -> String {
        let opts = SyncOptions {
            source: common::quick_source(max_retries),
            flow_retry: common::quick_flow_retry(),
            ..SyncOptions::default()
        };
        let run = pipeline::sync(&self.config, &opts, &pipeline::Quiet);
        let base = self.sb.instance_url.clone();
        let side = async move {
            for e in events {
                match *e {
                    SideEvent::Advance { after_ms, secs } => {
                        tokio::time::sleep(Duration::from_millis(after_ms)).await;
                        admin_post(&base, "/sandbox/v1/clock", json!({ "advance_secs": secs })).await;
                    }
                    SideEvent::ExpireSessions { after_ms } => {
                        tokio::time::sleep(Duration::from_millis(after_ms)).await;
                        admin_post(&base, "/sandbox/v1/sessions/expire", json!({})).await;
                    }
                }
            }
            std::future::pending::<()>().await
        };
        let result = tokio::select! {
            r = run => r,
            () = side => unreachable!("the side task never ends"),
        };
        match result {
            Err(e) => format!("did not start ({})", e.message),
            Ok(s) => {
                let flows: Vec<String> = s
                    .flows
                    .iter()
                    .map(|f| match &f.error {
                        Some(e) => format!("{} {}: {}", f.object, f.status, e.chars().take(160).collect::<String>()),
                        None => format!("{} {}", f.object, f.status),
                    })
                    .collect();
                format!("{} [{}]", s.status, flows.join("; "))
            }
        }
    }

    /// Clears the faults, lets late commits land, syncs cleanly and compares with the truth.
    async fn verify(&mut self, round: usize) {
        let replay = self.replay(round);
        self.put_knobs(&Knobs::default()).await;
        // A churn step that read the knobs before they were cleared lands within a period.
        tokio::time::sleep(Duration::from_millis(300)).await;
        common::advance(&self.sb, MAX_LATE_SECS + 1.0).await;
        let status = common::admin(&self.sb, reqwest::Method::GET, "/sandbox/v1/status", None).await;
        let status: Json = serde_json::from_str(&status).unwrap();
        assert_eq!(status["pending_late_writes"], 0, "late writes still pending: {status}; {replay}");
        let opts = SyncOptions {
            source: common::quick_source(10),
            flow_retry: common::quick_flow_retry(),
            ..SyncOptions::default()
        };
        let summary = pipeline::sync(&self.config, &opts, &pipeline::Quiet)
            .await
            .unwrap_or_else(|e| panic!("the clean run does not start: {}; {replay}", e.message));
        for f in &summary.flows {
            assert_eq!(f.status, FlowStatus::Ok, "the clean run: {f:#?}; {replay}");
            assert!(f.reconciled.is_some(), "reconciliation ran in the clean run: {f:#?}; {replay}");
            assert!(f.verify.is_some_and(|v| v.matches()), "the clean run's counts: {f:#?}; {replay}");
        }
        assert_eq!(summary.status, RunStatus::Ok, "{replay}");
        self.check_invariants(round, "after the clean run").await;
        for flow in &self.flows {
            let rows = AssertUnwindSafe(warehouse::rows(&self.wh, "salesforce", &flow.schema)).catch_unwind().await;
            let rows = rows.unwrap_or_else(|p| panic!("{}: {}; {replay}", flow.object, panic_text(&*p)));
            let truth = truth(&self.sb, flow.object).await;
            let compared =
                std::panic::catch_unwind(AssertUnwindSafe(|| assert_matches(&rows, &truth, &flow.schema, flow.expect)));
            let compared = compared.unwrap_or_else(|p| {
                panic!("{} ({:?}) differs from the source: {}; {replay}", flow.object, flow.expect, panic_text(&*p))
            });
            assert!(compared > 0, "{}: nothing compared; {replay}", flow.object);
        }
    }
}

/// Many rounds of random faults, each verified against the truth (module docs).
async fn random_faults_then_a_clean_run_match_the_source(kind: Kind) {
    let started = Instant::now();
    let mut s = Suite::new(kind).await;
    let _guard = SeedOnPanic(s.seed, kind);
    let rounds = rounds();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for round in 1..=rounds {
        let rng = &mut s.rng;
        // Now and then days pass between rounds: the recycle bin's retention purges rows.
        let days = if rng.random_bool(0.1) { 16.0 * 86_400.0 } else { 0.0 };
        let late_mode = rng.random_bool(0.4);
        let late_delay = rng.random_range(5.0..MAX_LATE_SECS);
        // No retry of a call half the time, so flows fail too (sluice retries a failed flow).
        let max_retries = if rng.random_bool(0.5) { 0 } else { rng.random_range(1..6) };
        if days > 0.0 {
            common::advance(&s.sb, days).await;
        }
        let ops = s.change_the_org(late_mode, late_delay).await;
        let knobs = s.knobs(late_mode, late_delay);
        let events = s.side_events(knobs.token_lifetime_secs);
        let advance = s.rng.random_range(1.0..60.0);
        s.put_knobs(&knobs).await;
        common::advance(&s.sb, advance).await;
        let outcome = s.faulty_run(max_retries, &events).await;
        eprintln!(
            "faults {kind:?} round {round}: {} mutations{}, retries {max_retries}, clock +{advance:.0} s, during the \
             run {events:?}; {}\n  → {outcome}",
            ops.len(),
            if days > 0.0 { " 16 days later" } else { "" },
            describe_knobs(&knobs),
        );
        let key = outcome.split(' ').next().unwrap_or_default().to_owned();
        *outcomes.entry(key).or_default() += 1;
        s.check_invariants(round, "after the faulty run").await;
        s.verify(round).await;
    }
    eprintln!(
        "faults {kind:?}: seed {}: {rounds} rounds green in {:.0?}; faulty runs: {outcomes:?}",
        s.seed,
        started.elapsed()
    );
    s.sb.shutdown().await;
}

target::suite!(random_faults_then_a_clean_run_match_the_source);
