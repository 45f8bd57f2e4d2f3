"""Starting and stopping the `sluice` binary from the Python test suites (tests/compat and
tests/serve): the child dies with pytest, its first stdout line (the address it serves,
or the sandbox's JSON) is handed back, the rest of stdout is drained so the pipe never
fills, and its stderr goes to a log file quoted when it does not start."""

from __future__ import annotations

import ctypes
import json
import signal
import subprocess
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def cargo_target_dir() -> Path:
    """The target directory cargo reports for the workspace."""
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=REPO, check=True, capture_output=True, text=True,
    )
    return Path(json.loads(meta.stdout)["target_directory"])


def die_with_parent():
    """In the child before exec: SIGTERM it if pytest dies without cleaning up (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start(binary: Path, args: list[str], cwd: Path, log: Path, what: str) -> tuple[subprocess.Popen, str]:
    """Starts `binary args` in `cwd`, its stderr into `log`; returns it and its first stdout
    line, or fails the test naming `what` and quoting the log."""
    with open(log, "wb") as handle:
        proc = subprocess.Popen(
            [str(binary), *args], stdout=subprocess.PIPE, stderr=handle, cwd=cwd, preexec_fn=die_with_parent
        )
    first: list[bytes] = []
    ready = threading.Event()

    def drain():
        for line in proc.stdout:
            if not ready.is_set():
                first.append(line)
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    if not ready.wait(120) or not first:
        proc.kill()
        proc.wait()
        pytest.fail(f"{what} did not start; log:\n{log.read_text(errors='replace')}")
    return proc, first[0].decode()


def stop(proc: subprocess.Popen, timeout: float) -> int:
    """SIGTERM, then SIGKILL after `timeout` seconds; the exit status."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
