#!/usr/bin/env python3
"""End-to-end benchmarks of the release `sluice` binary against the sandbox, printed as
Markdown tables for docs/benchmarks.md (scripts/bench writes the file).

Every measured run is a separate `sluice sync` process: wall time is from spawn to exit
(login, describe, Bulk job, download, load, consolidation, verify), memory is that
process's peak RSS (VmHWM, polled). The sandbox runs as its own process, so its memory is
not counted. The `duckdb` Python package is the reference: DuckDB's own read_csv of the
same rows is the floor for a full load, and it grows the 10 M-row table for the merge
case (a 10 M-row org would need about 7 GB in the sandbox). With `--postgres`, the same
cases run into PostgreSQL, with `psql \\copy` of the same rows as CSV as the floor.

    scripts/bench.py --sluice target/release/sluice --accounts 1000000
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
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
        try:
            with urllib.request.urlopen(req) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as e:
            raise SystemExit(f"sandbox {path}: HTTP {e.code}: {e.read().decode(errors='replace')[:500]}") from e

    def churn(self):
        self.post("/sandbox/v1/mutations", {"mutations": [{"op": "churn", "object": "Account", **CHANGES}]})
        # The run's window ends at the org's clock: 11 minutes on, so the changes are in it
        # and the next round's 10-minute lookback starts after them.
        self.post("/sandbox/v1/clock", {"advance_secs": 660.0})

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def write_config(sb, work, name, api, destination):
    # The files destination is append-only: reconciliation has no meaning there, and sluice
    # refuses a key that would have no effect.
    defaults = "" if 'type = "files"' in destination else '[defaults]\nreconcile_every = "never"\n\n'
    text = SOURCE.format(api=api, **sb.info) + destination + "\n" + defaults + '[[flows]]\nobject = "Account"\n'

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


def sync(sluice, config, *extra):
    """One `sluice sync --json [extra]`: (wall seconds, peak RSS MiB, summary, consolidation ms)."""
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    env = dict(os.environ, SLUICE_LOG="sluice=info")
    started = time.monotonic()
    proc = subprocess.Popen([sluice, "--config", config, "sync", "--json", *extra], stdout=out, stderr=err, env=env)
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
    remove(fresh)
    with duckdb.connect(fresh) as con:
        started = time.monotonic()
        rows = con.execute(f"CREATE TABLE account AS SELECT * FROM read_csv('{csv}')").fetchone()[0]
        secs = time.monotonic() - started
    return rows, secs, os.path.getsize(csv)


def remove(db_path):
    """Deletes a DuckDB file and its write-ahead log, if there."""
    for path in (db_path, db_path + ".wal"):
        if os.path.exists(path):
            os.remove(path)


def grow(db_path, factor):
    """Copies every row of salesforce.account `factor - 1` times under new Ids, each copy
    stored next to its original: the sandbox knows only the originals, and this way their
    changes are spread over the whole grown table, as an org of that size spreads them."""
    started = time.monotonic()
    with duckdb.connect(db_path) as con:
        con.execute(
            "CREATE TABLE salesforce.grown AS SELECT a.* REPLACE (CASE WHEN r.i = 0 THEN a.id ELSE "
            "printf('001SY%013d', r.i * 1000000000 + a.rowid) END AS id) "
            f"FROM salesforce.account a, range(0, {factor}) r(i) ORDER BY a.rowid, r.i"
        )
        con.execute("DROP TABLE salesforce.account")
        con.execute("ALTER TABLE salesforce.grown RENAME TO account")
        rows = con.execute("SELECT COUNT(*) FROM salesforce.account").fetchone()[0]
    return rows, time.monotonic() - started


def psql(url, *args):
    """Runs psql against `url` (ON_ERROR_STOP); returns stdout."""
    out = subprocess.run(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", *args], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"psql {args}: {out.stderr}")
    return out.stdout.strip()


def pg_database(admin_url, name):
    """A fresh database on the benchmark server; its URL."""
    psql(admin_url, "-c", f"DROP DATABASE IF EXISTS {name}")
    psql(admin_url, "-c", f"CREATE DATABASE {name}")
    base, _, query = admin_url.partition("?")
    return base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")


def pg_columns(url, id_expr=None):
    """The source columns of salesforce.account, comma-separated; `id` replaced by `id_expr`."""
    names = psql(
        url,
        "-c",
        "SELECT string_agg(quote_ident(column_name), ',' ORDER BY ordinal_position) FROM information_schema.columns "
        "WHERE table_schema = 'salesforce' AND table_name = 'account'",
    ).split(",")
    if id_expr is None:
        return ", ".join(c for c in names if not c.startswith("_sluice"))
    return ", ".join(id_expr if c == "id" else f"a.{c}" for c in names)


def pg_floor(url, work):
    """psql's \\copy of the loaded rows, as CSV, into a new table: the fastest a load can go."""
    csv = os.path.join(work, "pg-accounts.csv")
    cols = pg_columns(url)
    psql(url, "-c", f"\\copy (SELECT {cols} FROM salesforce.account) TO '{csv}' CSV HEADER")
    psql(url, "-c", "DROP TABLE IF EXISTS floor_account")
    psql(url, "-c", f"CREATE TABLE floor_account AS SELECT {cols} FROM salesforce.account LIMIT 0")
    started = time.monotonic()
    psql(url, "-c", f"\\copy floor_account FROM '{csv}' CSV HEADER")
    secs = time.monotonic() - started
    rows = int(psql(url, "-c", "SELECT COUNT(*) FROM floor_account"))
    return rows, secs, os.path.getsize(csv)


def pg_grow(url, factor):
    """As `grow`, on PostgreSQL: each copy stored next to its original (rewritten in that
    order in one transaction)."""
    started = time.monotonic()
    cols = pg_columns(
        url, id_expr="CASE WHEN r.i = 0 THEN a.id ELSE '001SY' || lpad((r.i::bigint * 1000000000 + a.n)::text, 13, '0') END"
    )
    psql(
        url,
        "-c",
        f"CREATE TEMP TABLE grown AS SELECT {cols} FROM (SELECT *, row_number() OVER () AS n FROM "
        f"salesforce.account) a, generate_series(0, {factor - 1}) r(i) ORDER BY a.n, r.i; "
        "TRUNCATE salesforce.account; INSERT INTO salesforce.account SELECT * FROM grown",
    )
    psql(url, "-c", "VACUUM ANALYZE salesforce.account")
    rows = int(psql(url, "-c", "SELECT COUNT(*) FROM salesforce.account"))
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


def warehouse_case(sluice, sb, work, name, destination, reset, floor_of, grow_by, reps):
    """`reps` full loads (each into an emptied destination) and as many floors, `reps`
    merges of 10,000 changes, the table grown tenfold, `reps` more. A single full load
    varied by 5 % between runs on this machine: medians, and the highest peak RSS."""
    config = write_config(sb, work, name, "bulk", destination)
    loads = []
    for i in range(reps):
        log(f"{name}: full load {i + 1} of {reps}")
        if i:
            reset()
        loads.append(sync(sluice, config))
    floors = [floor_of() for _ in range(reps)]
    log(f"{name}: 10,000 changes into the loaded table")
    small = merges(sluice, sb, config, reps)
    big_rows, grow_secs = grow_by(10)
    log(f"{name}: grew the table to {big_rows} rows in {grow_secs:.0f} s; 10,000 changes into it")
    try:
        big = merges(sluice, sb, config, reps)
    except SystemExit as e:
        # Reported in its table: a merge that fails is a finding, not a reason to stop.
        big = str(e)
    return dict(
        secs=statistics.median(l[0] for l in loads), rss=max(l[1] for l in loads),
        rows=loads[-1][2]["flows"][0]["rows"], merge_ms=statistics.median(l[3] for l in loads),
        floor_rows=floors[-1][0], floor_secs=statistics.median(f[1] for f in floors), csv=floors[-1][2],
        small=small, big=big, big_rows=big_rows, grow_secs=grow_secs, reps=reps,
    )


def size_case(sluice, work, accounts):
    """A first load of `accounts` Accounts into a new DuckDB file, then a full refresh of it
    (every row re-read, deleted and inserted again in one transaction): memory must not
    grow with the table. Its own sandbox, started once the main one has stopped."""
    sb = Sandbox(sluice, accounts)
    try:
        db = os.path.join(work, "size.duckdb")
        config = write_config(sb, work, "size", "bulk", f'[destination]\ntype = "duckdb"\npath = "{db}"\n')
        log(f"duckdb: first load of {accounts} Accounts")
        load = sync(sluice, config)
        log(f"duckdb: full refresh of {accounts} Accounts")
        refresh = sync(sluice, config, "--full-refresh")
    finally:
        sb.stop()
    return dict(accounts=accounts, load=load, refresh=refresh)


def size_table(c):
    if "error" in c:
        first = c["error"].strip().splitlines()[0][:300].replace("|", "\\|")
        return f"| failed | | | | | {first} |"
    rows = []
    for what, r in (("first load", c["load"]), ("full refresh (`--full-refresh`)", c["refresh"])):
        secs, rss, summary, merge_ms = r
        n = summary["flows"][0]["rows"]
        rows.append(f"| {what} | {n:,} | {secs:.1f} s | {merge_ms / 1000:.1f} s | {n / secs:,.0f} | **{rss:.0f} MiB** |")
    return "\n".join(rows)


def median(runs, i):
    return statistics.median(r[i] for r in runs)


def merge_table(c, n, reps, target):
    """The 10,000-changes table of a warehouse case."""
    small, big = c["small"], c["big"]
    m = small[0][4]
    if isinstance(big, str):
        first = big.strip().splitlines()
        error = next((l for l in first if '"error"' in l), first[0] if first else "")[:300].replace("|", "\\|")
        big_row = f"| {c['big_rows']:,} | | **failed**: {error} | | |"
        ratio_row = f"| **ratio**{target} | | **failed** | | |"
    else:
        e2e = median(big, 0) / median(small, 0)
        merge = median(big, 1) / max(median(small, 1), 1)
        big_row = (
            f"| {c['big_rows']:,} | {big[0][3]} | {median(big, 0):.2f} s | {median(big, 1) / 1000:.2f} s | "
            f"{max(r[2] for r in big):.0f} MiB |"
        )
        ratio_row = f"| **ratio**{target} | | **{e2e:.2f}×** | **{merge:.2f}×** | |"
    return f"""Each round: {CHANGES['inserts']:,} inserts, {CHANGES['updates']:,} updates and {CHANGES['deletes']:,} deletes at the
sandbox, then one incremental `sluice sync` (the org's clock then moves 11 minutes, so the next round's
10-minute lookback holds none of these changes;
merged {m['inserted']}/{m['updated']}/{m['deleted']} inserted/updated/deleted in the first round). The {c['big_rows']:,}-row
table is the {n:,}-row one with every row copied 9 times under new Ids, each copy stored
next to its original (built in {c['grow_secs']:.0f} s), so the changes, which the sandbox makes
to the original rows, are spread over the whole table. Median of {reps} rounds.

| target rows | rows read | wall time (median) | consolidation (median) | peak RSS |
|---|---|---|---|---|
| {n:,} | {small[0][3]} | {median(small, 0):.2f} s | {median(small, 1) / 1000:.2f} s | {max(r[2] for r in small):.0f} MiB |
{big_row}
{ratio_row}
"""


# ---------------------------------------------------------------------------------------
# The lake: a full load into Delta tables, then 10,000 changes merged, at two sizes.


def log_actions(table):
    """(version, action) of every commit of the Delta table at directory `table`, oldest
    first, from its `_delta_log` JSON commits (never expired by sluice), without a Delta
    library."""
    log_dir = os.path.join(table, "_delta_log")
    for v in sorted(int(f[:20]) for f in os.listdir(log_dir) if re.fullmatch(r"\d{20}\.json", f)):
        with open(os.path.join(log_dir, f"{v:020d}.json")) as f:
            for line in f:
                yield v, json.loads(line)


def delta_commits(table, after):
    """The newest version of the Delta table at `table`, and the data files added and
    removed by its commits after version `after`, with their bytes."""
    out = dict(version=-1, added=0, added_bytes=0, removed=0, removed_bytes=0)
    for v, action in log_actions(table):
        out["version"] = v
        if v <= after:
            continue
        if "add" in action:
            out["added"] += 1
            out["added_bytes"] += action["add"]["size"]
        if "remove" in action:
            out["removed"] += 1
            out["removed_bytes"] += action["remove"].get("size") or 0
    return out


def live_files(table):
    """(data files, bytes) of the newest version, by replaying the whole log."""
    live = {}
    for _, action in log_actions(table):
        if "add" in action:
            live[action["add"]["path"]] = action["add"]["size"]
        if "remove" in action:
            live.pop(action["remove"]["path"], None)
    return len(live), sum(live.values())


def lake_case(sluice, work, accounts, reps):
    """A first load of `accounts` Accounts into a new local lake, then `reps` rounds of
    10,000 changes, each merged by one incremental run; the Delta files each run wrote.
    Its own sandbox (a lake is grown only by sluice: its layout and marks are sluice's)."""
    sb = Sandbox(sluice, accounts)
    try:
        lake = os.path.join(work, f"lake-{accounts}")
        config = write_config(sb, work, f"lake-{accounts}", "bulk", f'[destination]\ntype = "lake"\npath = "{lake}"\n')
        table = os.path.join(lake, "salesforce", "account")
        raw = os.path.join(lake, "salesforce", "raw", "account")
        log(f"lake: first load of {accounts} Accounts")
        load = sync(sluice, config)
        after = delta_commits(table, -1)
        after_raw = delta_commits(raw, -1)
        files = live_files(table)
        work_db = os.path.getsize(os.path.join(lake, "_sluice", "work.duckdb"))
        rounds = []
        merge_error = None
        for i in range(reps):
            log(f"lake: 10,000 changes into {accounts} rows, round {i + 1} of {reps}")
            sb.churn()
            try:
                secs, rss, summary, merge_ms = sync(sluice, config)
            except SystemExit as e:
                merge_error = str(e)
                break
            wrote = delta_commits(table, after["version"])
            wrote_raw = delta_commits(raw, after_raw["version"])
            rounds.append(dict(secs=secs, merge_ms=merge_ms, rss=rss, rows=summary["flows"][0]["rows"],
                               merged=summary["flows"][0]["merged"], wrote=wrote, raw=wrote_raw))
            after, after_raw = wrote, wrote_raw
    finally:
        sb.stop()
        shutil.rmtree(os.path.join(work, f"lake-{accounts}"), ignore_errors=True)
    return dict(accounts=accounts, load=load, first=after, files=files, work_db=work_db, rounds=rounds,
                merge_error=merge_error)


def failure(text):
    """Why a run failed, for a table cell: the binary's own last word (`error: …`) and the
    flow's error where the summary has one."""
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
    flow = next((l for l in lines if l.startswith('"error":')), "")
    last = next((l for l in reversed(lines) if l.startswith(("error", "Error"))), lines[0] if lines else "")
    return f"{last} {flow}"[:600].replace("|", "\\|")


def lake_section(sluice, accounts, big, reps):
    work = tempfile.mkdtemp(prefix="sluice-bench-lake-")
    cases = []
    try:
        for n in (accounts, big):
            try:
                cases.append(lake_case(sluice, work, n, reps))
            except SystemExit as e:
                cases.append(dict(accounts=n, error=str(e)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    loads, merges = [], []
    for c in cases:
        if "error" in c:
            loads.append(f"| {c['accounts']:,} | failed: {failure(c['error'])} | | | | | |")
            continue
        secs, rss, summary, merge_ms = c["load"]
        n = summary["flows"][0]["rows"]
        files, size = c["files"]
        loads.append(
            f"| {n:,} | {secs:.1f} s | {merge_ms / 1000:.1f} s | {n / secs:,.0f} | **{rss:.0f} MiB** | "
            f"{files} files, {size / 2**20:.0f} MiB | {c['work_db'] / 2**20:.0f} MiB |"
        )
        r = c["rounds"]
        if c["merge_error"]:
            merges.append(f"| {n:,} | failed after {len(r)} rounds: {failure(c['merge_error'])} | | | | | | |")
            continue
        mid = lambda k: statistics.median(x[k] for x in r)
        wrote = r[-1]["wrote"]
        merges.append(
            f"| {n:,} | {r[0]['rows']:,} | {mid('secs'):.2f} s | {mid('merge_ms') / 1000:.2f} s | "
            f"{max(x['rss'] for x in r):.0f} MiB | {wrote['removed']} of {files} ({wrote['removed_bytes'] / 2**20:.0f} MiB) | "
            f"{wrote['added']} ({wrote['added_bytes'] / 2**20:.0f} MiB) | {r[-1]['raw']['added_bytes'] / 2**20:.1f} MiB |"
        )
    ok = [c for c in cases if "error" not in c and not c["merge_error"]]
    ratio = ""
    if len(ok) == 2:
        med = lambda c: statistics.median(x["secs"] for x in c["rounds"])
        ratio = f"\n\n**10,000 changes into {ok[1]['accounts']:,} ÷ into {ok[0]['accounts']:,} rows (wall time, target ≤ 1.3×): {med(ok[1]) / med(ok[0]):.2f}×**"
    return f"""<!-- lake -->
## sluice: the lake (Delta tables on local disk)

`type = "lake"`, defaults otherwise (the raw layer on, `memory_limit` of the work database
112 MB). Each size is its own sandbox; a first load into an empty lake, then {reps} rounds
of {CHANGES['inserts']:,} inserts, {CHANGES['updates']:,} updates and {CHANGES['deletes']:,} deletes at the sandbox, each merged
by one incremental `sluice sync`. Files are bucketed by a hash of Id, the bucket count
fixed when the table is first written (one bucket per 250,000 rows, a power of two, at
most 256); a merge rewrites every bucket that holds a changed Id, whole. Consolidation
includes publishing (Parquet export, upload, Delta commit).

| rows | wall time | consolidation + publish | rows/s | peak RSS (target ≤ 256 MB) | table | work database |
|---|---|---|---|---|---|---|
{chr(10).join(loads)}

| table rows | rows read | wall time (median) | consolidation + publish (median) | peak RSS | files removed (last round) | files added | raw layer appended |
|---|---|---|---|---|---|---|---|
{chr(10).join(merges)}{ratio}
<!-- /lake -->"""


# ---------------------------------------------------------------------------------------
# Bounds: memory with wide rows, and how long a stalled server can hold a run.

WIDE_KIB = 100
WIDE_FIELD = "Wide__c"


def wide_text(i, kib):
    """`kib` KiB of text that does not compress to nothing (each row differs)."""
    words = [f"w{(i * 7919 + k * 104729) % 1000003:07d}" for k in range(kib * 1024 // 9 + 1)]
    return " ".join(words)[: kib * 1024]


def wide_org(sluice, rows, kib):
    """A sandbox of `rows` Accounts, each with a `kib` KiB long text field filled in."""
    sb = Sandbox(sluice, rows)
    field = {"name": WIDE_FIELD, "type": "textarea", "length": 131072}
    sb.post("/sandbox/v1/mutations", {"mutations": [{"op": "add_field", "object": "Account", "field": field}]})
    with urllib.request.urlopen(sb.info["instance_url"] + "/sandbox/v1/truth/Account") as resp:
        rows = [json.loads(line) for line in resp.read().decode().splitlines() if line]
    # Rows in the recycle bin cannot be updated; they are not read by a full load either.
    ids = [r["Id"] for r in rows if not r.get("IsDeleted")]
    ops = [{"op": "update", "object": "Account", "id": id_, "fields": {WIDE_FIELD: wide_text(i, kib)}} for i, id_ in enumerate(ids)]
    for k in range(0, len(ops), 20):
        sb.post("/sandbox/v1/mutations", {"mutations": ops[k : k + 20]})
    sb.post("/sandbox/v1/clock", {"advance_secs": 5.0})
    return sb


def wide_case(sluice, work, rows, pg_admin):
    """A full load of `rows` Accounts of about WIDE_KIB KiB each into every destination,
    through Bulk and through REST: peak RSS must stay under 256 MB."""
    sb = wide_org(sluice, rows, WIDE_KIB)
    lines = []
    try:
        dests = [("DuckDB", lambda n: f'[destination]\ntype = "duckdb"\npath = "{os.path.join(work, n)}.duckdb"\n')]
        if pg_admin:
            dests.append(("PostgreSQL", lambda n: f'[destination]\ntype = "postgres"\nurl = "{pg_database(pg_admin, n)}"\n'))
        dests.append(("files (Parquet)", lambda n: f'[destination]\ntype = "files"\npath = "{os.path.join(work, n)}"\n'))
        # DuckDB once more with a raised memory limit: what the load needs when the default
        # is not enough.
        dests.append(("DuckDB, memory_limit = \"1GB\"",
                      lambda n: f'[destination]\ntype = "duckdb"\npath = "{os.path.join(work, n)}.duckdb"\nmemory_limit = "1GB"\n'))
        for k, (name, dest) in enumerate(dests):
            for api in ("bulk", "rest"):
                tag = f"wide_{k}_{api}"
                log(f"wide rows: {name} via {api}")
                config = write_config(sb, work, tag, api, dest(tag))
                shown = "REST" if api == "rest" else "Bulk"
                try:
                    secs, rss, summary, _ = sync(sluice, config)
                except SystemExit as e:
                    # A failed case is reported with its error, not dropped.
                    reason = re.search(r"(Out of Memory Error[^(]*|error: [^\n]*)", str(e))
                    reason = (reason.group(1) if reason else str(e).strip().splitlines()[-1])[:140].replace("|", "\\|")
                    lines.append(f"| {name} | {shown} | – | – | – | **failed**: {reason} |")
                    continue
                n = summary["flows"][0]["rows"]
                mib = n * WIDE_KIB / 1024
                lines.append(f"| {name} | {shown} | {n:,} | {mib:,.0f} MiB | {secs:.1f} s | **{rss:.0f} MiB** |")
    finally:
        sb.stop()
    return "\n".join(lines)


class Silent:
    """A TCP server that accepts connections and never answers: a hung endpoint."""

    def __init__(self):
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self):
        self.sock.close()


def timed_failure(sluice, config, *extra):
    """(seconds, exit status, last line of stderr) of a `sluice sync` expected to fail."""
    started = time.monotonic()
    out = subprocess.run([sluice, "--config", config, "sync", "--json", *extra], capture_output=True, text=True)
    secs = time.monotonic() - started
    last = (out.stderr.strip().splitlines() or [""])[-1][:160].replace("|", "\\|")
    return secs, out.returncode, last


def stall_cases(sluice, work, pg_admin):
    """How long each kind of stall holds a run, with the time-outs that bound it."""
    rows = []
    silent = Silent()
    try:
        login = {
            "login_url": f"http://127.0.0.1:{silent.port}", "client_id": "x", "client_secret": "x",
            "username": "x", "password": "x",
        }
        config = os.path.join(work, "stall-login.toml")
        with open(config, "w") as f:
            f.write(SOURCE.format(api="auto", **login) + 'read_timeout = "5s"\n[destination]\ntype = "duckdb"\n'
                    f'path = "{os.path.join(work, "stall.duckdb")}"\n[[flows]]\nobject = "Account"\n')
        secs, status, last = timed_failure(sluice, config)
        rows.append(f"| login endpoint accepts, never answers | `read_timeout = \"5s\"` (3 login attempts) | {secs:.0f} s | exit {status}: {last} |")
    finally:
        silent.close()

    sb = Sandbox(sluice, 2000)
    try:
        knobs = json.loads(urllib.request.urlopen(sb.info["instance_url"] + "/sandbox/v1/knobs").read())
        knobs["bulk"]["in_progress_secs"] = 10 ** 7
        req = urllib.request.Request(sb.info["instance_url"] + "/sandbox/v1/knobs", data=json.dumps(knobs).encode(),
                                     headers={"Content-Type": "application/json"}, method="PUT")
        urllib.request.urlopen(req).read()
        config = os.path.join(work, "stall-bulk.toml")
        with open(config, "w") as f:
            f.write(SOURCE.format(api="bulk", **sb.info) + 'bulk_timeout = "1m"\n[destination]\ntype = "duckdb"\n'
                    f'path = "{os.path.join(work, "stall-bulk.duckdb")}"\n[defaults]\nreconcile_every = "never"\n'
                    '[[flows]]\nobject = "Account"\n')
        secs, rss, summary, _ = sync(sluice, config)
        rows.append(f"| Bulk job stays `InProgress` for ever | `bulk_timeout = \"1m\"`, then REST | {secs:.0f} s | ok, {summary['flows'][0]['rows']:,} rows |")
        if pg_admin:
            url = pg_database(pg_admin, "sluice_stall")
            config = write_config(sb, work, "stall-pg", "rest",
                                  f'[destination]\ntype = "postgres"\nurl = "{url}"\nlock_timeout = "5s"\n')
            sync(sluice, config)
            holder = subprocess.Popen(["psql", url, "-X", "-q", "-c", "BEGIN; LOCK TABLE salesforce.account; SELECT pg_sleep(3600)"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            sb.post("/sandbox/v1/mutations", {"mutations": [{"op": "churn", "object": "Account", "updates": 10}]})
            sb.post("/sandbox/v1/clock", {"advance_secs": 5.0})
            try:
                secs, status, last = timed_failure(sluice, config)
            finally:
                holder.kill()
                holder.wait()
            rows.append(f"| another session holds the target table | `lock_timeout = \"5s\"` (3 attempts of the flow) | {secs:.0f} s | exit {status}: {last} |")
    finally:
        sb.stop()
    return "\n".join(rows)


def duckdb_note(wide):
    """Why DuckDB fails the wide-row case, when it does (the target is then not met)."""
    if not re.search(r"^\| DuckDB \|.*failed", wide, re.M):
        return ""
    return """
**Not met on DuckDB.** The extraction and the staging Parquet stay bounded (the other
destinations read the same pages), but DuckDB keeps a transaction's inserted rows in memory
until it commits unless a whole row group (122,880 rows) fills: ~300 MB of wide text in
3,000 rows is one partial row group. The same happens without sluice: with DuckDB's Python
package 2.0.1, one `INSERT INTO t SELECT * FROM read_parquet(...)` of these rows fails at
memory limits of 112, 160, 200 and 256 MiB (`ROW_GROUP_SIZE 2048` on `ATTACH` does not
help). sluice fails the flow cleanly (window unchanged, message naming `memory_limit`);
what is left is to bound one DuckDB transaction by bytes (a wide load consolidated in
byte-bounded windows).
"""


def bounds_section(sluice, wide_rows, pg_admin):
    work = tempfile.mkdtemp(prefix="sluice-bounds-")
    try:
        wide = wide_case(sluice, work, wide_rows, pg_admin)
        stalls = stall_cases(sluice, work, pg_admin)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return f"""<!-- bounds -->
## Bounds: wide rows and stalled servers

Memory follows bytes, not rows: a full load of {wide_rows:,} Accounts, each carrying a
{WIDE_KIB} KiB long text field (`{WIDE_FIELD}`, added to the sandbox's Account), into every
destination, through Bulk and through REST. Target: peak RSS ≤ 256 MB on every destination.

| destination | API | rows | text read | wall time | peak RSS |
|---|---|---|---|---|---|
{wide}
{duckdb_note(wide)}
Stalls: how long a server that stops answering holds a run, with the setting that bounds it
(the defaults are `connect_timeout = "10s"`, `read_timeout = "60s"`, `bulk_timeout = "30m"`,
`lock_timeout = "1m"`, `statement_timeout = "5m"`; smaller values here keep the benchmark short).

| stall | bounded by | run held for | outcome |
|---|---|---|---|
{stalls}
<!-- /bounds -->
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluice", required=True)
    ap.add_argument("--accounts", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=3, choices=range(1, 11), metavar="1..10")
    ap.add_argument("--postgres", help="URL of a PostgreSQL server (as a superuser) for the PostgreSQL cases")
    ap.add_argument("--big", type=int, help="Accounts of the DuckDB load and full refresh at size (default 10 × --accounts; 0: skip)")
    ap.add_argument("--wide-rows", type=int, default=3000, help="rows of the wide-row case (0: skip)")
    ap.add_argument("--bounds-only", action="store_true", help="only the bounds section (wide rows, stalls)")
    ap.add_argument("--lake-only", action="store_true", help="only the lake section (--accounts and --big)")
    args = ap.parse_args()
    if args.lake_only:
        print(lake_section(args.sluice, args.accounts, args.big or 10 * args.accounts, args.reps))
        return
    if args.bounds_only:
        print(bounds_section(args.sluice, args.wide_rows, args.postgres))
        return
    n = args.accounts
    work = tempfile.mkdtemp(prefix="sluice-bench-")
    log(f"sandbox with {n} Accounts; working in {work}")
    sb = Sandbox(args.sluice, n)
    try:
        log("files destination: Bulk, then REST")
        files = [files_case(args.sluice, sb, work, api) for api in ("bulk", "rest")]
        db = os.path.join(work, "bench.duckdb")
        duck = warehouse_case(
            args.sluice, sb, work, "duckdb", f'[destination]\ntype = "duckdb"\npath = "{db}"\n',
            lambda: remove(db), lambda: floor(db, work), lambda k: grow(db, k), args.reps,
        )
        pg = None
        if args.postgres:
            url = pg_database(args.postgres, "sluice_bench")
            pg = warehouse_case(
                args.sluice, sb, work, "postgres", f'[destination]\ntype = "postgres"\nurl = "{url}"\n',
                lambda: pg_database(args.postgres, "sluice_bench"), lambda: pg_floor(url, work),
                lambda k: pg_grow(url, k), args.reps,
            )
            pg["version"] = psql(url, "-c", "SHOW server_version")
        sb.stop()
        # Room on disk for the size case: the files above are no longer needed.
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        big = 10 * n if args.big is None else args.big
        size = None
        if big:
            try:
                size = size_case(args.sluice, work, big)
            except SystemExit as e:
                # Reported in its table; the cases above still print.
                size = dict(accounts=big, error=str(e))
    finally:
        sb.stop()
        # 2 GB of CSV, Parquet and DuckDB files per run: left behind, they filled the disk.
        shutil.rmtree(work, ignore_errors=True)

    d = duck
    print(
        f"""## sluice: full load of {n} Accounts, files destination (Parquet)

| API | rows | time | rows/s | Parquet | peak RSS |
|---|---|---|---|---|---|
{files[0]}
{files[1]}

## sluice: full load of {n} Accounts into DuckDB

| measure | value |
|---|---|
| rows read (Bulk API 2.0, every Account field) | {d['rows']} |
| wall time, `sluice sync` process start to exit (median of {d['reps']} loads, each into an empty destination) | {d['secs']:.1f} s |
| of which consolidation (one transaction; median) | {d['merge_ms'] / 1000:.1f} s |
| **rows/s end to end** (target ≥ 150,000) | **{d['rows'] / d['secs']:,.0f}** |
| **peak RSS of `sluice sync`** (highest of the loads; target ≤ 256 MB) | **{d['rss']:.0f} MiB** |
| floor: DuckDB `read_csv` of the same rows ({d['csv'] / 2**20:.0f} MiB CSV) into a new file (median) | {d['floor_secs']:.1f} s, {d['floor_rows'] / d['floor_secs']:,.0f} rows/s |
| sluice end to end ÷ floor | {d['secs'] / d['floor_secs']:.1f}× |

## sluice: 10,000 changes merged into {n:,} and {d['big_rows']:,} rows (DuckDB)

{merge_table(d, n, args.reps, " (target ≤ 1.3×)")}"""
    )
    if size:
        print(
            f"""## sluice: first load and full refresh of {size['accounts']:,} Accounts (DuckDB)

Memory must not grow with the table (target ≤ 256 MB whatever the object size). One run
each, in a sandbox of {size['accounts']:,} Accounts: a first load into a new file, then
`sluice sync --full-refresh`, which reads every row again and replaces each one in one
transaction (deletes and inserts in slices of staged rows, `DUCKDB_SLICE_ROWS`).

| run | rows | wall time | consolidation | rows/s | peak RSS |
|---|---|---|---|---|---|
{size_table(size)}
"""
        )
    if args.wide_rows:
        print(bounds_section(args.sluice, args.wide_rows, args.postgres))
    if pg:
        print(
            f"""## sluice: full load of {n} Accounts into PostgreSQL

PostgreSQL {pg['version']} on loopback, started by `scripts/bench` (`fsync = off`, defaults otherwise). The floor
is `psql \\copy` of the same rows, exported as CSV, into a new table of the same columns.

| measure | value |
|---|---|
| rows read (Bulk API 2.0, every Account field) | {pg['rows']} |
| wall time, `sluice sync` process start to exit (median of {pg['reps']} loads, each into an empty destination) | {pg['secs']:.1f} s |
| of which consolidation (one transaction; median) | {pg['merge_ms'] / 1000:.1f} s |
| **rows/s end to end** | **{pg['rows'] / pg['secs']:,.0f}** |
| peak RSS of `sluice sync` (highest of the loads) | {pg['rss']:.0f} MiB |
| floor: `psql \\copy` of the same rows ({pg['csv'] / 2**20:.0f} MiB CSV) into a new table (median) | {pg['floor_secs']:.1f} s, {pg['floor_rows'] / pg['floor_secs']:,.0f} rows/s |
| **sluice end to end ÷ `psql \\copy`** (target ≤ 1.5×) | **{pg['secs'] / pg['floor_secs']:.2f}×** |

## sluice: 10,000 changes merged into {n:,} and {pg['big_rows']:,} rows (PostgreSQL)

{merge_table(pg, n, args.reps, "")}"""
        )


if __name__ == "__main__":
    main()
