//! Provides the DuckDB library that the `duckdb` crate links against, so that a first
//! build does not spend about 25 minutes (on 2 cores) compiling DuckDB's C++.
//!
//! By default sluice links DuckDB's own prebuilt `libduckdb` of the version the `duckdb`
//! crate was made for (1.5.6). The npm registry is where DuckDB publishes it (the Node.js
//! bindings packages carry the C library as it is built by DuckDB's release CI), so this
//! script fetches the package once with `curl`, checks its SHA-512 against the one pinned
//! here (the registry's own `dist.integrity`), and keeps `libduckdb.so` under the target
//! directory, where every later build, `cargo run` and `cargo test` find it. Binaries get
//! an rpath to it (through the `links` metadata, `sluice-cli`'s build script too).
//!
//! Other ways, each chosen by the builder:
//! - `--features bundled-duckdb` (on `sluice-cli`): compile DuckDB from source and link it
//!   statically, for one self-contained binary to ship (this script then does nothing);
//! - `DUCKDB_LIB_DIR=<dir>` (read by `libduckdb-sys`): a `libduckdb` 1.5.6 already on disk,
//!   e.g. for builds without network; binaries get an rpath to that directory;
//! - `NPM_CONFIG_REGISTRY=<url>` (npm's own variable): a registry mirror; the checksum
//!   still has to match.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The DuckDB version the `duckdb` crate's bindings were generated from (its crate version
/// `1.MMmmpp.N` encodes it), and the npm release of DuckDB's bindings that ships it.
const DUCKDB: &str = "1.5.6";
const NPM_VERSION: &str = "1.5.6-r.1";
const DEFAULT_REGISTRY: &str = "https://registry.npmjs.org";

/// A platform DuckDB publishes a prebuilt library for: the npm package and the SHA-512 of
/// its tarball (hex of the registry's `dist.integrity`).
struct Prebuilt {
    target: &'static str,
    package: &'static str,
    library: &'static str,
    sha512: &'static str,
}

const PREBUILT: &[Prebuilt] = &[
    Prebuilt {
        target: "x86_64-unknown-linux-gnu",
        package: "node-bindings-linux-x64",
        library: "libduckdb.so",
        sha512: "21772b64913a904a8cd19e30c1d5671811d7fdface4b7dd53cd0300d743f43e1\
                 6cf386f4e7c41ef78721ac208870d2651bc6375072145387817824315b998dd5",
    },
    Prebuilt {
        target: "aarch64-unknown-linux-gnu",
        package: "node-bindings-linux-arm64",
        library: "libduckdb.so",
        sha512: "de39d46838a5d41ac5ffabc067055a227275c6805a5861c1e0f0e2527cc958a0\
                 a8f1af132f1f63eff80fc8f97f5064417edad822e4e28516527c5e2658c82d58",
    },
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=DUCKDB_LIB_DIR");
    println!("cargo::rerun-if-env-changed=NPM_CONFIG_REGISTRY");
    if std::env::var_os("CARGO_FEATURE_BUNDLED_DUCKDB").is_some() {
        return;
    }
    let dir = match std::env::var_os("DUCKDB_LIB_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => match fetch() {
            Ok(dir) => dir,
            Err(why) => {
                // A build script's panic message is what cargo shows; say what to do.
                panic!(
                    "\n\nsluice: could not provide DuckDB {DUCKDB}: {why}\n\
                     Choose one:\n  \
                     - make {registry} reachable (or set NPM_CONFIG_REGISTRY to a mirror) and build again;\n  \
                     - set DUCKDB_LIB_DIR to a directory holding DuckDB {DUCKDB}'s libduckdb;\n  \
                     - build with `--features bundled-duckdb` to compile DuckDB from source \
                     (about 25 minutes on 2 cores).\n",
                    registry = registry()
                )
            }
        },
    };
    // `libduckdb-sys` asks for `-lduckdb`; this says where it is, for every crate that links.
    println!("cargo::rustc-link-search=native={}", dir.display());
    // This package's own tests and examples find it at run time without cargo's help...
    println!("cargo::rustc-link-arg=-Wl,-rpath,{}", dir.display());
    // ...and so does the `sluice` binary, whose build script reads this.
    println!("cargo::metadata=lib_dir={}", dir.display());
}

fn registry() -> String {
    std::env::var("NPM_CONFIG_REGISTRY")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_REGISTRY.to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// The directory holding the prebuilt library, fetched if it is not there yet.
fn fetch() -> Result<PathBuf, String> {
    let target = std::env::var("TARGET").map_err(|e| format!("TARGET: {e}"))?;
    let Some(prebuilt) = PREBUILT.iter().find(|p| p.target == target) else {
        let known: Vec<&str> = PREBUILT.iter().map(|p| p.target).collect();
        return Err(format!("DuckDB publishes no prebuilt library sluice knows of for {target} (known: {known:?})"));
    };
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    let dir = cache_dir(&out_dir).join(format!("duckdb-{NPM_VERSION}-{target}"));
    let library = dir.join(prebuilt.library);
    // Run again should the library go (a cleaned directory) or change.
    println!("cargo::rerun-if-changed={}", library.display());
    if library.is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    // Unique names: two build scripts (this crate with and without test features) may
    // fetch at once; the last rename wins with identical bytes.
    let scratch = dir.join(format!("fetch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| format!("creating {}: {e}", scratch.display()))?;
    let result = download_and_unpack(prebuilt, &scratch).and_then(|unpacked| {
        std::fs::rename(&unpacked, &library).map_err(|e| format!("moving {}: {e}", unpacked.display()))
    });
    let _ = std::fs::remove_dir_all(&scratch);
    result.map(|()| dir)
}

/// Downloads the package tarball into `scratch`, checks it, and unpacks the library;
/// returns the unpacked library's path.
fn download_and_unpack(prebuilt: &Prebuilt, scratch: &Path) -> Result<PathBuf, String> {
    let url = format!("{}/@duckdb/{p}/-/{p}-{NPM_VERSION}.tgz", registry(), p = prebuilt.package);
    let tarball = scratch.join("package.tgz");
    run(Command::new("curl")
        .args(["--fail", "--silent", "--show-error", "--location", "--retry", "3", "--connect-timeout", "30"])
        .args(["--max-time", "600", "--output"])
        .arg(&tarball)
        .arg(&url))
    .map_err(|e| format!("downloading {url}: {e}"))?;
    let bytes = std::fs::read(&tarball).map_err(|e| format!("reading {}: {e}", tarball.display()))?;
    let got = hex(&<sha2::Sha512 as sha2::Digest>::digest(&bytes));
    let want: String = prebuilt.sha512.split_whitespace().collect();
    if got != want {
        return Err(format!("{url} has SHA-512 {got}, not the pinned {want}"));
    }
    let member = format!("package/{}", prebuilt.library);
    run(Command::new("tar").arg("-xzf").arg(&tarball).arg("-C").arg(scratch).arg(&member))
        .map_err(|e| format!("unpacking {member} from {url}: {e}"))?;
    Ok(scratch.join(member))
}

/// Runs `cmd`; its standard error becomes the error when it fails.
fn run(cmd: &mut Command) -> Result<(), String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.output().map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{program} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The profile directory (`<target>/release`), shared by every build of this crate whatever
/// its features, so the library is fetched once per target directory; `OUT_DIR` itself
/// where the layout is not the usual `<profile>/build/<crate>-<hash>/out`.
fn cache_dir(out_dir: &Path) -> PathBuf {
    match out_dir.parent().and_then(Path::parent) {
        Some(build) if build.ends_with("build") => build.parent().unwrap_or(build).to_owned(),
        _ => out_dir.to_owned(),
    }
}
