"""Running netwatch commands in this process through the CLI's `build_deps` seam.

    run = InProcess(tmp_path, db_url, env)          # the `nwi` fixture of conftest.py
    run.write_config(hosts, sigma={...})            # the same config files as jobkit.Netwatch
    run.sweep_plan.set_down("lo-1")                 # what the planned sweep answers for a host
    done = run.sweep()                              # `netwatch run ping-sweep --config FILE`, in-process
    assert done.returncode == 0, done.stderr

Everything but the process start and the ICMP socket is real: click parsing, the config file,
the database, the HTTP clients and servers, logging (captured), exit codes. The sweep is a
`PlannedSweep`; the clock is this machine's unless `clock` is set (a `Clock` to step by hand);
waits between API retries return at once (`NoWaitStop`), so a test never sleeps through a backoff.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

from jobkit import Netwatch
from sqlalchemy.engine import Engine

from netwatch.cli import run_cli
from netwatch.config import Config
from netwatch.db.engine import count_statements
from netwatch.deps import Deps, build_deps
from netwatch.jobs.ping_sweep import run_ping_sweep
from netwatch.logs import Redactor
from netwatch.probes.icmp import PingSettings, ProbeResult, Target
from netwatch.running.stopflag import StopFlag
from netwatch.shard import Shard

RTT_MS = 0.05


@dataclass
class Clock:
    """A hand-stepped clock: `now` until `advance` moves it."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 22, 10, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class PlannedSweep:
    """Stands in for the ICMP sweep: a host answers every request unless it is set down.

    By default loopback addresses (127.0.0.0/8) answer and anything else is silent, as on the
    real loopback. `calls` records the targets of each sweep, `settings` its settings.
    """

    up: set[str] = field(default_factory=set)
    down: set[str] = field(default_factory=set)
    calls: list[list[Target]] = field(default_factory=list)
    settings: list[PingSettings] = field(default_factory=list)

    def set_down(self, *names: str) -> None:
        self.down.update(names)
        self.up.difference_update(names)

    def set_up(self, *names: str) -> None:
        self.up.update(names)
        self.down.difference_update(names)

    def answers(self, target: Target) -> bool:
        if target.key in self.down:
            return False
        return target.key in self.up or target.address.startswith("127.")

    def __call__(self, targets: Sequence[Target], settings: PingSettings,
                 check_stop: Callable[[], None]) -> dict[str, ProbeResult]:
        check_stop()
        self.calls.append(list(targets))
        self.settings.append(settings)
        results = {}
        for target in targets:
            if self.answers(target):
                results[target.key] = ProbeResult(settings.count, settings.count, (RTT_MS,) * settings.count, 1, None)
            else:
                results[target.key] = ProbeResult(settings.count, 0, (), 1 + settings.retries, "no reply")
        return results


class NoWaitStop(StopFlag):
    """A stop flag whose waits (API retry backoff, Retry-After) return at once; `waits` records them."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.check()


@dataclass(frozen=True)
class Result:
    """What a command left: its exit code and what it wrote, like subprocess.CompletedProcess."""

    returncode: int
    stdout: str
    stderr: str


@dataclass
class InProcess(Netwatch):
    """A jobkit.Netwatch whose commands run in this process, with a planned sweep and a settable clock."""

    sweep_plan: PlannedSweep = field(default_factory=PlannedSweep)
    clock: Clock | None = None
    stop: StopFlag = field(default_factory=NoWaitStop)
    deps_seen: list[Deps] = field(default_factory=list)

    def _build(self, config: Config, env: Mapping[str, str], stop: StopFlag, redactor: Redactor) -> Deps:
        deps = replace(build_deps(config, env, stop, redactor), sweep=self.sweep_plan,
                       check_ping_permission=lambda _preference, _families: "raw")
        if self.clock is not None:
            clock = self.clock
            deps = replace(deps, clock=clock, server_clock=lambda _conn: clock())
        self.deps_seen.append(deps)
        return deps

    def run(self, *args: str, timeout: float = 60) -> Result:  # type: ignore[override]
        """Runs `netwatch <args> --config <file>` to completion in this process (no timeout applies)."""
        return self.cli(*args, "--config", str(self.tmp_path / "netwatch.yaml"))

    def cli(self, *args: str) -> Result:
        """Runs `netwatch <args>` exactly as given, in this process."""
        try:
            return run_command(list(args), {**os.environ, **self.env}, build_deps=self._build, stop=self.stop)
        finally:
            for deps in self.deps_seen:
                deps.engine.dispose()
            self.deps_seen.clear()

    def sweep(self) -> Result:  # type: ignore[override]
        return self.run("run", "ping-sweep")

    def run_in_background(self, *args: str) -> Future[Result]:
        """Starts `run(*args)` on a thread; the test goes on (one command at a time: logging is per process)."""
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netwatch-inproc")
        future = pool.submit(self.run, *args)
        pool.shutdown(wait=False)
        return future


def run_command(args: list[str], env: Mapping[str, str], cwd: Path | None = None,
                build_deps: Callable[[Config, Mapping[str, str], StopFlag, Redactor], Deps] | None = None,
                stop: StopFlag | None = None) -> Result:
    """`netwatch ARGS` in this process with exactly the environment `env`, in `cwd`: code, stdout, stderr."""
    stderr, stdout = io.StringIO(), io.StringIO()
    with (_restored_logging(), mock.patch.dict(os.environ, env, clear=True), _working_directory(cwd),
          contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr)):
        code = run_cli(args, stop or NoWaitStop(), build_deps, stderr)
    return Result(code, stdout.getvalue(), stderr.getvalue())


def sweep_counting(config: Config, now: datetime, plan: PlannedSweep | None = None,
                   watch: Callable[[Engine], contextlib.AbstractContextManager[None]] | None = None) -> int:
    """One ping-sweep run of `config` at `now` through `run_ping_sweep`; returns its statement count.

    With `plan` the planned sweep answers (as root would: a raw socket); without it, real ICMP does.
    `watch(engine)` is entered around the run beside the count.
    """
    deps = replace(build_deps(config, {}, StopFlag(), Redactor()), clock=lambda: now, server_clock=lambda _conn: now)
    if plan is not None:
        deps = replace(deps, sweep=plan, check_ping_permission=lambda _preference, _families: "raw")
    try:
        with count_statements(deps.engine) as counter, (watch or _unwatched)(deps.engine):
            assert run_ping_sweep(config, deps, Shard()) == 0
        return counter.value
    finally:
        deps.engine.dispose()


@contextlib.contextmanager
def _unwatched(_engine: Engine) -> Iterator[None]:
    yield


@contextlib.contextmanager
def _working_directory(cwd: Path | None) -> Iterator[None]:
    before = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(before)


@contextlib.contextmanager
def _restored_logging() -> Iterator[None]:
    """The CLI sets up the `netwatch` logger for its run; give it back as it was afterwards."""
    root = logging.getLogger("netwatch")
    saved = (root.handlers[:], root.level, root.propagate)
    try:
        yield
    finally:
        root.handlers[:], root.propagate = saved[0], saved[2]
        root.setLevel(saved[1])
