"""Prometheus metrics of each run, for batch jobs: pushed to a Pushgateway and/or written to a textfile.

After a run (any exit but a held lease's, whose holder reports), the run's own figures (end time,
duration, exit code, its counts such as checks, transitions and events sent) and the state it
leaves (hosts and checks by kind and state, open outbox messages per channel and status with the
age of the oldest, active volume alerts, the job's last successful run) go to:

- `metrics.pushgateway_url`: PUT to `/metrics/job/netwatch-<job>/shard/<I-of-N>`, so each job and
  shard has its group and a push replaces only its own;
- `metrics.textfile_dir`: `netwatch-<job>-<I-of-N>.prom` for node_exporter's textfile collector,
  written to a temporary file and renamed (a scrape never reads half a file), mode 0644 (the
  exporter runs as another user), with `job` and `shard` labels.

The state is read in its own short transaction after the run; when the database cannot answer
(the run failed for that), only the run's figures go out. A failure to read, push or write is a
warning line and never the run's outcome; the Pushgateway URL is never logged (it may hold a password).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from netwatch.db import gauges, runs

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger(__name__)

PREFIX = "netwatch"


@dataclass(frozen=True)
class RunFigures:
    """What one run did: its job and shard ("0/1"), when it ended, how long it took, its exit code and counts."""

    job: str
    shard: str
    ended: datetime
    duration_s: float
    exit_code: int
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def shard_label(self) -> str:
        return self.shard.replace("/", "-of-")


@dataclass(frozen=True)
class Metrics:
    """Where the metrics go; with neither target set, nothing is read or sent."""

    pushgateway_url: str | None = None
    textfile_dir: Path | None = None
    timeout_s: float = 5.0

    @property
    def enabled(self) -> bool:
        return self.pushgateway_url is not None or self.textfile_dir is not None

    def publish(self, engine: Engine, figures: RunFigures) -> None:
        if not self.enabled:
            return
        state = _read_state(engine, figures)
        if self.pushgateway_url is not None:
            self._push(figures, state)
        if self.textfile_dir is not None:
            self._write(figures, state)

    def _push(self, figures: RunFigures, state: _State | None) -> None:
        from prometheus_client import push_to_gateway

        registry = _registry(figures, state, with_run_labels=False)
        try:
            push_to_gateway(self.pushgateway_url or "", job=f"{PREFIX}-{figures.job}", registry=registry,
                            grouping_key={"shard": figures.shard_label}, timeout=self.timeout_s)
        except (OSError, ValueError) as exc:  # urllib's errors (HTTPError, URLError, timeouts) are OSErrors
            log.warning("metrics: the push to the Pushgateway failed (%s); the run goes on", type(exc).__name__)

    def _write(self, figures: RunFigures, state: _State | None) -> None:
        from prometheus_client import generate_latest

        directory = self.textfile_dir or Path()
        target = directory / f"{PREFIX}-{figures.job}-{figures.shard_label}.prom"
        try:
            data = generate_latest(_registry(figures, state, with_run_labels=True))
            # A name without .prom until the rename: the collector reads only *.prom files.
            fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                os.chmod(temporary, 0o644)
                os.replace(temporary, target)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError as exc:
            log.warning("metrics: cannot write %s (%s); the run goes on", target, exc.strerror or type(exc).__name__)


@dataclass(frozen=True)
class _State:
    last_success: datetime | None
    targets: Mapping[tuple[str, str], int]
    messages: list[gauges.OpenMessages]
    alerts: int


def _read_state(engine: Engine, figures: RunFigures) -> _State | None:
    try:
        with engine.connect() as conn:
            last = runs.last_committed_run(conn, (figures.job,), figures.shard)
            return _State(last_success=last.started_at if last else None, targets=gauges.state_counts(conn),
                          messages=gauges.open_messages(conn), alerts=gauges.active_alerts(conn))
    except SQLAlchemyError as exc:
        log.warning("metrics: cannot read the state from the database (%s); only the run's figures go out",
                    type(exc).__name__)
        return None


def _registry(figures: RunFigures, state: _State | None, with_run_labels: bool) -> CollectorRegistry:
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    run_labels = {"job": figures.job, "shard": figures.shard_label} if with_run_labels else {}
    names = tuple(run_labels)

    def gauge(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(f"{PREFIX}_{name}", documentation, labelnames=(*names, *labels), registry=registry)

    def put(metric: Gauge, value: float, **labels: str) -> None:
        values = {**run_labels, **labels}
        (metric.labels(**values) if values else metric).set(value)

    put(gauge("run_end_timestamp_seconds", "When the run ended (Unix time)."), figures.ended.timestamp())
    put(gauge("run_duration_seconds", "How long the run took."), figures.duration_s)
    put(gauge("run_exit_code", "The run's exit code (0: success; see README, exit codes)."), figures.exit_code)
    counted = gauge("run_items", "The run's counts, by what was counted (checks, transitions, events, ...).",
                    ("counted",))
    for name, value in sorted(figures.counts.items()):
        put(counted, value, counted=name)
    if state is None:
        return registry
    if state.last_success is not None:
        put(gauge("last_success_timestamp_seconds", "The start of the job's (and shard's) last successful run."),
            state.last_success.timestamp())
    targets = gauge("targets", "Hosts and HTTP / TCP checks by kind and confirmed state (all shards).",
                    ("kind", "state"))
    for (kind, status), count in sorted(state.targets.items()):
        put(targets, count, kind=kind, state=status)
    messages = gauge("outbox_messages", "Outbox messages not delivered, by channel and status.", ("channel", "status"))
    oldest = gauge("outbox_oldest_queued_timestamp_seconds",
                   "When the oldest of them was queued (Unix time), by channel and status.", ("channel", "status"))
    for item in state.messages:
        put(messages, item.count, channel=item.channel, status=item.status)
        put(oldest, item.oldest.timestamp(), channel=item.channel, status=item.status)
    put(gauge("active_alerts", "Alarm-volume alerts active now."), state.alerts)
    return registry


NO_METRICS = Metrics()
