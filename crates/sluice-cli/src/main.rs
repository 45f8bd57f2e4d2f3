//! The `sluice` binary: argument parsing, output and exit codes. It holds no
//! replication logic; that lives in the `sluice` library (and the org in `sandbox`).
//!
//! Exit codes (DESIGN "CLI"):
//! - 0: everything asked for was done.
//! - 1: the work was attempted and some of it failed (a flow failed, counts differ, the
//!   verification found differences), or something outside stopped it (the source or
//!   the destination is down, another run holds the destination); the same command may
//!   succeed later.
//! - 2: bad config or usage: the command line, the config file, or something only the
//!   user can fix stopped the command before any work (the library's [`sluice::Kind::User`]
//!   errors: wrong credentials, an unknown object named on the command line, a
//!   destination path or database the user must change); retrying unchanged fails again.
//!   A flow that fails during a run for a reason of the user's (an unknown field, say)
//!   is a failed flow: 1, since the other flows ran.
//!
//! Nothing printed holds a credential: the library never renders a secret, and as the
//! last line of defence every line written to stdout (`say!`), every error and every
//! log line has the user-info of any URL in it redacted ([`sluice::redact::userinfo`]).

/// `println!` that ignores a closed stdout (`sluice discover | head`) instead of
/// panicking, and redacts URL user-info ([`sluice::redact::userinfo`]) from what it prints.
macro_rules! say {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock());
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let text = format!($($arg)*);
        let _ = writeln!(std::io::stdout().lock(), "{}", sluice::redact::userinfo(&text));
    }};
}

mod commands;
mod demo;
mod failure;
mod inspect;
mod query;
mod sandbox_cmd;
mod serve_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use failure::EXIT_FAILURE;

/// jemalloc for the whole process, DuckDB's C++ included (its `malloc` replaces glibc's).
/// glibc kept what each extraction thread freed in that thread's arena, where DuckDB's
/// threads could not reuse it: a 1 M-row load peaked at ~335 MiB, ~100 MiB of it such
/// memory. Its options are in [`MALLOC_CONF`].
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start from this symbol (it overrides jemalloc's weak
/// default), so every build of the binary has them, `cargo install` included. The
/// `MALLOC_CONF` environment variable still overrides them.
/// - `narenas:1`: memory the extraction threads free is reused by DuckDB's threads in the
///   consolidation instead of sitting in the extraction threads' arenas;
/// - `dirty_decay_ms:100`: freed pages go back to the OS within ~100 ms (default 10 s), so
///   what extraction freed is not still counted when DuckDB fills its memory limit;
/// - `muzzy_decay_ms:0`: returned at once, as MADV_FREE'd ("muzzy") pages still count in RSS.
///
/// A 1 M-row DuckDB load, 3 runs each on the 2-core bench machine (`docs/benchmarks.md` has
/// the current figures): one arena alone 6.0 s and 284 MiB peak; with a 500 ms decay 6.2 s
/// and 267 MiB; with 100 ms 6.6 s and 256 MiB (returning pages costs page faults when they
/// are used again); jemalloc's defaults 6.4 s and 424 MiB; glibc 7.2 s and 335 MiB. Later,
/// one run each with DuckDB's limit at 128 MiB: no decay at all (`dirty_decay_ms:0`) 8.7 s
/// and 200 MiB, against 6.4 s and 249 MiB with 100 ms.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code, reason = "jemalloc reads its options from this symbol and defines it only weakly")]
#[unsafe(export_name = "malloc_conf")]
pub static MALLOC_CONF: &[u8; 46] = b"narenas:1,dirty_decay_ms:100,muzzy_decay_ms:0\0";

#[derive(Parser)]
#[command(name = "sluice", version, about = "Replicate SaaS objects into your warehouse, exactly once.")]
struct Cli {
    /// The config file.
    #[arg(long, global = true, value_name = "FILE", default_value = "sluice.toml")]
    config: PathBuf,
    /// Log lines on stderr: for people, or one JSON object per line for log shippers.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// `--log-format`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Write a commented sample config (to --config, default ./sluice.toml).
    Init(commands::InitArgs),
    /// Check the config, the credentials, every flow's object and the destination.
    Check,
    /// List the org's objects, or one object's fields with sluice types and column names.
    Discover(commands::DiscoverArgs),
    /// Run every flow (or --objects) once.
    Sync(commands::SyncArgs),
    /// Forget the --objects flows' committed state and reload them in full.
    Reset(commands::ResetArgs),
    /// Each flow's committed window end, last run, live rows and lag.
    Status(inspect::StatusArgs),
    /// Recent runs and what each flow did in them.
    History(inspect::HistoryArgs),
    /// Compare source counts with destination live rows; --repair reconciles first.
    Verify(inspect::VerifyArgs),
    /// Run SQL against the destination, read-only, and print the result (table, --json, --csv).
    Query(query::QueryArgs),
    /// Run a Salesforce-compatible org locally (OAuth, REST, Bulk API 2.0, admin API).
    Sandbox(sandbox_cmd::Args),
    /// Run every flow on its schedule (`every` / `cron`), with an HTTP API, until stopped.
    Serve,
    /// Sandbox org + DuckDB file + two syncs with changes between them + verify, in one go.
    Demo(demo::DemoArgs),
}

/// stderr for log lines, with URL user-info redacted. The fmt layer writes each event
/// with one `write_all` of the whole line, so a URL is never split between two writes.
struct RedactingStderr;

impl std::io::Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().lock().write_all(sluice::redact::userinfo(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A service says what it does (each run's start); a command only what goes wrong.
    let default_filter = if matches!(cli.command, Command::Serve) { "warn,sluice=info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(|| RedactingStderr);
    match cli.log_format {
        // Escape codes only for a terminal: logs piped to a file or a collector stay plain.
        LogFormat::Human => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        // One object per line: time, level, target, and the event's fields (run, object, ...)
        // at the top level.
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(false).init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let result = runtime.block_on(async {
        let Cli { config, command, .. } = cli;
        match command {
            Command::Init(args) => commands::init(&config, &args),
            Command::Check => commands::check(&config).await,
            Command::Discover(args) => commands::discover(&config, &args).await,
            Command::Sync(args) => commands::sync(&config, &args).await,
            Command::Reset(args) => commands::reset(&config, &args).await,
            Command::Status(args) => inspect::status(&config, &args).await,
            Command::History(args) => inspect::history(&config, &args).await,
            Command::Verify(args) => inspect::verify(&config, &args).await,
            Command::Query(args) => query::run(&config, &args).await,
            Command::Sandbox(args) => sandbox_cmd::run(args).await,
            Command::Demo(args) => demo::run(&args).await,
            Command::Serve => serve_cmd::run(&config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let text = format!("{:#}", f.error);
            eprintln!("error: {}", sluice::redact::userinfo(&text));
            ExitCode::from(f.code)
        }
    }
}
