#!/usr/bin/env python3
"""End-to-end benchmarks of the release `sluice` binary against the sandbox, printed as
Markdown tables for docs/benchmarks.md (scripts/bench writes the file).

Every measured run is a separate `sluice sync` process: wall time is from spawn to exit
(login, describe, Bulk job, download, load, consolidation, verify), memory is that
process's peak RSS (VmHWM, polled). The sandbox runs as its own process, so its memory is
not counted. The `duckdb` Python package is the reference: DuckDB's own read_csv of the
same rows is the floor for a full load, and it grows the 10 M-row table for the merge
case (a 10 M-row org would need about 7 GB in the sandbox).

    scripts/bench.py --sluice target/release/sluice --accounts 1000000
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import duckdb

SOURCE = """[source]
type = "salesforce"
login_url = "{login_url}"
auth = "password"
client_id = "{client_id}"
client_secret = "{client_secret}"
username = "{username}"
password = "{password}"
api = "{api}"
api_budget_percent = 100
"""

# The changes merged in the incremental case: 10,000 in all.
CHANGES = {"inserts": 1000, "updates": 8000, "deletes": 1000}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Sandbox:
    def __init__(self, sluice, accounts):
        self.proc = subprocess.Popen(
            [sluice, "sandbox", "--json", "--records", f"Account={accounts}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("the sandbox did not start")
        self.info = json.loads(line)

    def post(self, path, body):
        req = urllib.request.Request(
            self.info["instance_url"] + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req) as resp:
            return json.load(resp)

    def churn(self):
        self.post("/sandbox/v1/mutations", {"mutations": [{"op": "churn", "object": "Account", **CHANGES}]})
        # The run's window ends at the org's clock: 11 minutes on, so the changes are in it
        # and the next round's 10-minute lookback starts after them.
        self.post("/sandbox/v1/clock", {"advance_secs": 660.0})

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def write_config(sb, work, name, api, destination):
    text = SOURCE.format(api=api, **sb.info) + destination + """
[defaults]
reconcile_every = "never"

[[flows]]
object = "Account"
"""
    path = os.path.join(work, f"{name}.toml")
    with open(path, "w") as f:
        f.write(text)
    return path


def peak_rss_mib(pid, proc):
    """The child's VmHWM, polled until it exits. (wait4's ru_maxrss would count the memory
    of this Python process, from which the child was forked, before it exec'd sluice.)"""
    peak = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.01)
    return peak / 1024


def sync(sluice, config):
    """One `sluice sync --json`: (wall seconds, peak RSS MiB, summary, consolidation ms)."""
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    env = dict(os.environ, SLUICE_LOG="sluice=info")
    started = time.monotonic()
    proc = subprocess.Popen([sluice, "--config", config, "sync", "--json"], stdout=out, stderr=err, env=env)
    rss = peak_rss_mib(proc.pid, proc)
    status = proc.wait()
    secs = time.monotonic() - started
    out.seek(0)
    err.seek(0)
    stdout, stderr = out.read().decode(), err.read().decode()
    if status != 0:
        raise SystemExit(f"sluice sync failed ({status}):\n{stdout}\n{stderr}")
    summary = json.loads(stdout)
    if summary["status"] != "ok":
        raise SystemExit(f"the run was not ok:\n{stdout}")
    merge_ms = sum(int(m) for m in re.findall(r"consolidated.*?elapsed_ms=(\d+)", stderr))
    return secs, rss, summary, merge_ms


def files_case(sluice, sb, work, api):
    data = os.path.join(work, f"parquet-{api}")
    config = write_config(sb, work, f"files-{api}", api, f'[destination]\ntype = "files"\npath = "{data}"\n')
    secs, rss, summary, _ = sync(sluice, config)
    rows = summary["flows"][0]["rows"]
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(data) for f in fs if f.endswith(".parquet"))
    return f"| {api.capitalize()} | {rows} | {secs:.1f} s | **{rows / secs:,.0f}** | {size / 2**20:.0f} MiB | **{rss:.0f} MiB** |"


def floor(db_path, work):
    """DuckDB's read_csv of the table's rows, into a fresh file: the fastest a load can go."""
    csv = os.path.join(work, "accounts.csv")
    with duckdb.connect(db_path, read_only=True) as con:
        cols = [
            r[0]
            for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'salesforce' "
                "AND table_name = 'account' AND column_name NOT LIKE '\\_sluice%' ESCAPE '\\' ORDER BY ordinal_position"
            ).fetchall()
        ]
        select = ", ".join(f'"{c}"' for c in cols)
        con.execute(f"COPY (SELECT {select} FROM salesforce.account) TO '{csv}' (HEADER)")
    fresh = os.path.join(work, "floor.duckdb")
    with duckdb.connect(fresh) as con:
        started = time.monotonic()
        rows = con.execute(f"CREATE TABLE account AS SELECT * FROM read_csv('{csv}')").fetchone()[0]
        secs = time.monotonic() - started
    return rows, secs, os.path.getsize(csv)


def grow(db_path, factor):
    """Copies every row of salesforce.account `factor - 1` times under new Ids."""
    started = time.monotonic()
    with duckdb.connect(db_path) as con:
        con.execute(
            "INSERT INTO salesforce.account SELECT a.* REPLACE (printf('001SY%013d', r.i * 1000000000 + a.rowid) AS id) "
            f"FROM salesforce.account a, range(1, {factor}) r(i)"
        )
        rows = con.execute("SELECT COUNT(*) FROM salesforce.account").fetchone()[0]
    return rows, time.monotonic() - started


def merges(sluice, sb, config, reps):
    """`reps` rounds of 10,000 changes, each merged by one incremental run."""
    runs = []
    for _ in range(reps):
        sb.churn()
        secs, rss, summary, merge_ms = sync(sluice, config)
        merged = summary["flows"][0]["merged"]
        runs.append((secs, merge_ms, rss, summary["flows"][0]["rows"], merged))
    return runs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluice", required=True)
    ap.add_argument("--accounts", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    n = args.accounts
    work = tempfile.mkdtemp(prefix="sluice-bench-")
    log(f"sandbox with {n} Accounts; working in {work}")
    sb = Sandbox(args.sluice, n)
    try:
        log("files destination: Bulk, then REST")
        files = [files_case(args.sluice, sb, work, api) for api in ("bulk", "rest")]

        log("DuckDB: full load")
        db = os.path.join(work, "bench.duckdb")
        config = write_config(sb, work, "duckdb", "bulk", f'[destination]\ntype = "duckdb"\npath = "{db}"\n')
        secs, rss, summary, merge_ms = sync(args.sluice, config)
        rows = summary["flows"][0]["rows"]
        floor_rows, floor_secs, csv_bytes = floor(db, work)

        log("DuckDB: 10,000 changes into the loaded table")
        small = merges(args.sluice, sb, config, args.reps)
        big_rows, grow_secs = grow(db, 10)
        log(f"grew the table to {big_rows} rows in {grow_secs:.0f} s; 10,000 changes into it")
        big = merges(args.sluice, sb, config, args.reps)
    finally:
        sb.stop()

    def median(runs, i):
        return statistics.median(r[i] for r in runs)

    small_rows = n
    e2e = median(big, 0) / median(small, 0)
    merge = median(big, 1) / max(median(small, 1), 1)
    m = small[0][4]
    print(
        f"""## sluice: full load of {n} Accounts, files destination (Parquet)

| API | rows | time | rows/s | Parquet | peak RSS |
|---|---|---|---|---|---|
{files[0]}
{files[1]}

## sluice: full load of {n} Accounts into DuckDB

| measure | value |
|---|---|
| rows read (Bulk API 2.0, every Account field) | {rows} |
| wall time, `sluice sync` process start to exit | {secs:.1f} s |
| of which consolidation (one transaction) | {merge_ms / 1000:.1f} s |
| **rows/s end to end** (target ≥ 150,000) | **{rows / secs:,.0f}** |
| **peak RSS of `sluice sync`** (target ≤ 256 MB) | **{rss:.0f} MiB** |
| floor: DuckDB `read_csv` of the same rows ({csv_bytes / 2**20:.0f} MiB CSV) into a new file | {floor_secs:.1f} s, {floor_rows / floor_secs:,.0f} rows/s |
| sluice end to end ÷ floor | {secs / floor_secs:.1f}× |

## sluice: 10,000 changes merged into {small_rows:,} and {big_rows:,} rows (DuckDB)

Each round: {CHANGES['inserts']:,} inserts, {CHANGES['updates']:,} updates and {CHANGES['deletes']:,} deletes at the
sandbox, then one incremental `sluice sync` (the org's clock then moves 11 minutes, so the next round's
10-minute lookback holds none of these changes;
merged {m['inserted']}/{m['updated']}/{m['deleted']} inserted/updated/deleted in the first round). The {big_rows:,}-row
table is the {small_rows:,}-row one with every row copied 9 times under new Ids (built in
{grow_secs:.0f} s by DuckDB). Median of {args.reps} rounds.

| target rows | rows read | wall time (median) | consolidation (median) | peak RSS |
|---|---|---|---|---|
| {small_rows:,} | {small[0][3]} | {median(small, 0):.2f} s | {median(small, 1) / 1000:.2f} s | {max(r[2] for r in small):.0f} MiB |
| {big_rows:,} | {big[0][3]} | {median(big, 0):.2f} s | {median(big, 1) / 1000:.2f} s | {max(r[2] for r in big):.0f} MiB |
| **ratio** (target ≤ 1.3×) | | **{e2e:.2f}×** | **{merge:.2f}×** | |
"""
    )


if __name__ == "__main__":
    main()
