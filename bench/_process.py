"""One child process timed as a whole: wall time from spawn to exit, and that child's own rusage.

`os.wait4` gives the rusage of exactly the child it reaps (what RUSAGE_CHILDREN adds up over all
reaped children), so CPU and peak RSS belong to that one process: interpreter start, imports,
config, the job and the teardown. Also what the benches that run `netwatch` share: its environment
without NETWATCH_*, a failed run in one line, and the fields of its JSON summary line.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Timed:
    """How one process ended and what it cost."""

    exit_code: int
    wall_s: float
    cpu_s: float
    peak_mb: float
    timed_out: bool
    stdout: str
    stderr: str


def run_timed(command: Sequence[str], env: Mapping[str, str], timeout_s: float, log_dir: Path, tag: str) -> Timed:
    """Runs `command` to its end (killed after `timeout_s`); its output goes through files, not pipes."""
    out_path, err_path = log_dir / f"{tag}.out", log_dir / f"{tag}.err"
    with out_path.open("w", encoding="utf-8") as out, err_path.open("w", encoding="utf-8") as err:
        began = time.perf_counter()
        proc = subprocess.Popen(list(command), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=dict(env))
        killer = threading.Timer(timeout_s, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        wall_s = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    return Timed(
        exit_code=proc.returncode,
        wall_s=wall_s,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_mb=usage.ru_maxrss / 1024,  # Linux reports KiB
        timed_out=wall_s >= timeout_s and proc.returncode < 0,
        stdout=out_path.read_text(encoding="utf-8", errors="replace"),
        stderr=err_path.read_text(encoding="utf-8", errors="replace"),
    )


def stop_server(proc: subprocess.Popen[str]) -> None:
    """Ends a bench server that serves until its stdin closes: close it, wait, kill it if it does not go."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    proc.stdout.close()


def child_env() -> dict[str, str]:
    """This environment without NETWATCH_* (a NETWATCH_DATABASE_URL here must not redirect the bench)."""
    return {key: value for key, value in os.environ.items() if not key.startswith("NETWATCH_")}


def failure(what: str, timed: Timed) -> str:
    """One line on a process that failed: how it ended and the last lines of its stderr."""
    lines = [line.strip() for line in timed.stderr.splitlines() if line.strip(" ^~")][-3:]  # no traceback carets
    ending = "timed out" if timed.timed_out else f"exited {timed.exit_code}"
    return f"{what} {ending}: " + " | ".join(lines)


def summary_fields(stderr: str, message: str) -> dict[str, object] | None:
    """The fields of a run's JSON summary line (`--log-format json`, its `msg` is `message`), or None."""
    for line in stderr.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("msg") == message:
            return entry
    return None


def field_count(fields: Mapping[str, object], key: str) -> int:
    """A count of a summary line's `fields`: its value where it is an integer, else 0."""
    value = fields.get(key)
    return value if isinstance(value, int) else 0
