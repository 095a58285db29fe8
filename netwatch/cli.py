"""The `netwatch` command: parses, builds dependencies, calls a job, maps errors to exit codes.

Only this module imports click. What a command needs beyond click (SQLAlchemy, requests, the
jobs) is imported inside that command, so `netwatch --version` and `--help` start fast.
Logging is set up from the arguments before click parses them, so even a usage error comes out
in the chosen format; the global options are accepted before or after the subcommand.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

from netwatch import logs
from netwatch.errors import ExitCode, NetwatchError, StopNow, UsageError
from netwatch.running.stopflag import StopFlag

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from netwatch.config import Config
    from netwatch.deps import Deps

log = logging.getLogger("netwatch.cli")

LOG_LEVELS = ("debug", "info", "warning", "error")
CONFIG_HELP = "Config file (default: $NETWATCH_CONFIG, else ./netwatch.yaml)."


class _ConfigFile(click.Path):
    """A config file name: shell completion offers file names (click.Path), nothing is checked here.

    The config loader checks the file itself, as it does one named by $NETWATCH_CONFIG: a
    directory, a FIFO or an unreadable file is a configuration error (78) naming it, not a usage error.
    """

    def __init__(self) -> None:
        super().__init__(dir_okay=False)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return value


config_option = click.option("--config", "config_file", type=_ConfigFile(), metavar="FILE", help=CONFIG_HELP)


DepsFactory = Callable[["Config", Mapping[str, str], StopFlag, logs.Redactor], "Deps"]


@dataclass(frozen=True)
class Runtime:
    """What the process made before parsing: its secrets' redactor, its stop flag, how to build Deps."""

    redactor: logs.Redactor
    stop: StopFlag
    build_deps: DepsFactory | None = None


def _log_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """The global options, accepted on every command too (their values are applied before parsing)."""
    level = click.option("--log-level", type=click.Choice(LOG_LEVELS), expose_value=False,
                         help="Lowest level logged (default info).")
    fmt = click.option("--log-format", type=click.Choice(logs.LOG_FORMATS), expose_value=False,
                       help="Log lines on stderr: text or json (default text, env NETWATCH_LOG_FORMAT).")
    return fmt(level(function))


def _command(group: click.Group, name: str | None = None, *,
             transaction: bool = False) -> Callable[[Callable[..., Any]], click.Command]:
    """A command of `group` with the global options; `transaction`: it works in one database transaction."""

    def decorate(function: Callable[..., Any]) -> click.Command:
        @functools.wraps(function)
        def callback(*args: Any, **kwargs: Any) -> Any:
            if group is not run:  # a job's work begins when its run is armed (netwatch/running/runner.py)
                _begin(transaction)
            return function(*args, **kwargs)

        return group.command(name)(_log_options(callback))
    return decorate


def _begin(transaction: bool) -> None:
    """Tells the stop flag which command a signal from now on would interrupt, for its one line."""
    ctx = click.get_current_context()
    runtime = ctx.find_object(Runtime)
    if runtime is not None:
        rolled_back = ": its open transaction rolled back" if transaction else ""
        runtime.stop.begin(f"`{ctx.command_path}`{rolled_back}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@_log_options
@click.version_option(package_name="netwatch")
def cli() -> None:
    """Monitoring jobs for alarm-monitoring operators: each run does one pass and exits.

    \b
    Example:
      netwatch run ping-sweep --config /etc/netwatch/netwatch.yaml
    """


@cli.group()
@_log_options
def run() -> None:
    """Run one pass of a job.

    \b
    Example:
      netwatch run ping-sweep --config netwatch.yaml
    """


def _shard_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--shard", metavar="INDEX/COUNT",
                        help=f"Handle only this share of the {what}, e.g. 1/4 (one lease per shard). Default: "
                             "$JOB_COMPLETION_INDEX/$NETWATCH_SHARDS (an Indexed Job), else 0/1.")


@_command(run, "ping-sweep")
@config_option
@_shard_option("hosts")
@click.pass_obj
def ping_sweep_command(runtime: Runtime, config_file: str | None, shard: str | None) -> int:
    """Ping every host once, apply thresholds, record results, send confirmed changes to Sigma.

    \b
    Example:
      netwatch run ping-sweep --config netwatch.yaml --shard 0/2
    """
    from netwatch.jobs.ping_sweep import run_ping_sweep
    from netwatch.shard import shard_from

    chosen = shard_from(shard, os.environ)
    with _job_setup(runtime, config_file) as (config, deps):
        return run_ping_sweep(config, deps, chosen)


@_command(run, "http-check")
@config_option
@_shard_option("checks")
@click.pass_obj
def http_check_command(runtime: Runtime, config_file: str | None, shard: str | None) -> int:
    """Run every HTTP and TCP check once, apply thresholds, record results, send confirmed changes to Sigma.

    \b
    Example:
      netwatch run http-check --config netwatch.yaml --shard 0/2
    """
    from netwatch.jobs.http_check import run_http_check
    from netwatch.shard import shard_from

    chosen = shard_from(shard, os.environ)
    with _job_setup(runtime, config_file) as (config, deps):
        return run_http_check(config, deps, chosen, os.environ)


@_command(run, "event-scan")
@config_option
@click.pass_obj
def event_scan_command(runtime: Runtime, config_file: str | None) -> int:
    """Count the window's Segware alarm events per account/CUC/code and raise each alert once.

    \b
    Example:
      netwatch run event-scan --config netwatch.yaml
    """
    from netwatch.jobs.event_scan import run_event_scan

    with _job_setup(runtime, config_file) as (config, deps):
        return run_event_scan(config, deps)


@_command(run, "alert-clear")
@config_option
@click.pass_obj
def alert_clear_command(runtime: Runtime, config_file: str | None) -> int:
    """Clear active alerts whose volume fell below the clear level or that saw no event for too long.

    \b
    Example:
      netwatch run alert-clear --config netwatch.yaml
    """
    from netwatch.jobs.alert_clear import run_alert_clear

    with _job_setup(runtime, config_file) as (config, deps):
        return run_alert_clear(config, deps)


@_command(run, "cleanup")
@config_option
@click.option("--dry-run", is_flag=True, help="Count what is past retention without deleting it.")
@click.pass_obj
def cleanup_command(runtime: Runtime, config_file: str | None, dry_run: bool) -> int:
    """Delete history past its retention (retention.*) in small batches; safe to stop at any time.

    \b
    Example:
      netwatch run cleanup --config netwatch.yaml --dry-run
    """
    from netwatch.jobs.cleanup import run_cleanup

    with _job_setup(runtime, config_file) as (config, deps):
        return run_cleanup(config, deps, dry_run)


@_command(run, "status-page")
@config_option
@click.option("--out", "out", required=True, metavar="DIR", type=click.Path(file_okay=False),
              help="Where the page goes: a link netwatch swaps atomically to each new version (see README).")
@click.pass_obj
def status_page_command(runtime: Runtime, config_file: str | None, out: str) -> int:
    """Write the static status page (HTML, status.json, SVG badges) of the hosts' state and history.

    \b
    Example:
      netwatch run status-page --config netwatch.yaml --out /var/www/status
    """
    from netwatch.jobs.status_page import run_status_page

    with _job_setup(runtime, config_file) as (config, deps):
        return run_status_page(config, deps, Path(out))


def _load(config_file: str | None) -> Config:
    from netwatch.config import config_path, load_config

    return load_config(config_path(config_file, os.environ), os.environ)


@contextmanager
def _job_setup(runtime: Runtime, config_file: str | None) -> Iterator[tuple[Config, Deps]]:
    """The config and the run's dependencies, after a start line naming both (password masked, paths absolute).

    The engine is disposed (its connections closed) at the end.
    """
    from netwatch.db.engine import safe_url
    from netwatch.deps import build_deps

    config = _load(config_file)
    deps = (runtime.build_deps or build_deps)(config, os.environ, runtime.stop, runtime.redactor)
    log.info("%s started", click.get_current_context().info_name,
             extra={"fields": {"database": safe_url(config.database_url),
                               "config": str(Path(config.source).absolute())}})
    try:
        with _database_outages(config.database_key):
            yield config, deps
    finally:
        deps.engine.dispose()


@cli.group()
@_log_options
def db() -> None:
    """Create, upgrade or print the database schema.

    \b
    Example:
      netwatch db init --config netwatch.yaml
    """


@_command(db, "init", transaction=True)
@config_option
def db_init(config_file: str | None) -> None:
    """Create the schema on an empty database (does nothing if it is already there).

    \b
    Example:
      NETWATCH_DATABASE_URL=mysql+pymysql://netwatch@db/netwatch netwatch db init
    """
    from netwatch.core.times import utc_now
    from netwatch.db import migrate

    with _engine(config_file) as engine, engine.begin() as conn:
        if migrate.current_version(conn) is not None:
            migrate.require_current(conn)
            click.echo(f"schema already initialised at version {migrate.LATEST}")
            return
        migrate.upgrade(conn, utc_now())
    click.echo(f"schema created at version {migrate.LATEST}")


@_command(db, "upgrade", transaction=True)
@config_option
def db_upgrade(config_file: str | None) -> None:
    """Apply the versioned schema changes this netwatch has and the database lacks.

    On an empty database this creates the whole schema, like `db init`.

    \b
    Example:
      netwatch db upgrade --config netwatch.yaml
    """
    from netwatch.core.times import utc_now
    from netwatch.db import migrate

    with _engine(config_file) as engine, engine.begin() as conn:
        applied = migrate.upgrade(conn, utc_now())
    click.echo(f"applied versions {applied}" if applied else f"schema is current (version {migrate.LATEST})")


@_command(db, "schema")
def db_schema() -> None:
    """Print the MySQL DDL generated from the table definitions (the content of schema.sql).

    \b
    Example:
      netwatch db schema > schema.sql
    """
    from netwatch.db.ddl import mysql_ddl

    click.echo(mysql_ddl(), nl=False)


@_command(cli, "init-config")
@click.argument("path", default="netwatch.yaml", metavar="[PATH]")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init_config(path: str, force: bool) -> None:
    """Write a commented example config to PATH (default ./netwatch.yaml; - for stdout).

    \b
    Example:
      netwatch init-config /etc/netwatch/netwatch.yaml
    """
    text = files("netwatch").joinpath("config.example.yaml").read_text(encoding="utf-8")
    if path == "-":
        click.echo(text, nl=False)
        return
    target = Path(path)
    if target.exists() and not force:
        raise UsageError(f"{path} exists: pass --force to overwrite it")
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    click.echo(f"wrote {path}")


@_command(cli, "check-config")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--job", "jobs", multiple=True, type=click.Choice(sorted(run.commands)),
              help="Exit 78 unless the config is ready for this job (repeatable).")
def check_config(config_file: str | None, as_json: bool, jobs: tuple[str, ...]) -> None:
    """Check a config as the jobs would, without contacting a server; say which jobs it is ready for.

    Exit 78 when the config is not valid (the first problem, with its key path, on stderr), or
    when a job named with --job is not ready.

    \b
    Example:
      netwatch check-config --config netwatch.yaml --job ping-sweep
    """
    from netwatch.config import config_path, load_config
    from netwatch.errors import ConfigError
    from netwatch.readiness import check_readiness, unloadable

    path = config_path(config_file, os.environ)
    try:
        config = load_config(path, os.environ)
    except ConfigError as exc:
        if as_json:
            click.echo(unloadable(str(path), exc).as_json(), nl=False)
        raise
    readiness = check_readiness(config, os.environ)
    click.echo(readiness.as_json() if as_json else readiness.as_text(), nl=False)
    refusal = readiness.refusal(jobs)
    if refusal is not None:
        raise refusal


@_command(cli, "doctor")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the findings as one JSON object.")
def doctor(config_file: str | None, as_json: bool) -> None:
    """Check that the jobs can run here: config, database, schema, clock, last runs, APIs, ICMP.

    Contacts the database (read-only) and the configured APIs, sends nothing; one line per check,
    PASS, FAIL or SKIP. Exit 1 when a check failed.

    \b
    Example:
      netwatch doctor --config /etc/netwatch/netwatch.yaml
    """
    from netwatch import doctor as diagnosis
    from netwatch.clients.http import make_session
    from netwatch.config import config_path, load_config
    from netwatch.core.times import utc_now
    from netwatch.db.clock import server_now
    from netwatch.db.engine import build_engine
    from netwatch.errors import ConfigError
    from netwatch.probes.icmp import require_permission

    path = config_path(config_file, os.environ)
    try:
        config = load_config(path, os.environ)
    except ConfigError as exc:
        findings = [diagnosis.Finding("config", diagnosis.FAIL, exc.message),
                    diagnosis.Finding("everything else", diagnosis.SKIP, "needs a config that loads")]
    else:
        with make_session() as session:
            deps = diagnosis.DoctorDeps(
                open_engine=lambda: build_engine(config.database_url, config.database_key, read_only=True),
                session=session, clock=utc_now, server_clock=server_now, ping_permission=require_permission,
                icmp_kinds=diagnosis.icmp_kinds)
            findings = diagnosis.diagnose(config, os.environ, deps)
    click.echo(diagnosis.as_json(findings) if as_json else diagnosis.as_text(findings), nl=False)
    if diagnosis.failed(findings):
        raise click.exceptions.Exit(1)


@cli.group()
@_log_options
def secret() -> None:
    """Encrypt a secret for the config (an HTTP check's password_encrypted), or make a new key.

    \b
    Example:
      netwatch secret generate-key > encryption.key
    """


@_command(secret, "encrypt")
@click.option("--key-file", type=click.Path(dir_okay=False), metavar="FILE",
              help="File holding the key (default: $NETWATCH_ENCRYPTION_KEY_FILE, else $NETWATCH_ENCRYPTION_KEY).")
@click.pass_obj
def secret_encrypt(runtime: Runtime, key_file: str | None) -> None:
    """Read a secret from stdin (one line) and print its encrypted value, to paste as password_encrypted.

    On a terminal it asks for the secret twice, without echo. The value is AES-256-GCM under the
    key; only netwatch with the same key reads it back.

    \b
    Example:
      printf '%s\\n' "$PASSWORD" | netwatch secret encrypt --key-file /etc/netwatch/encryption.key
    """
    from netwatch.encryption import encrypt
    from netwatch.passwords import SECRET_MAX_CHARS, read_key, secret_from_input

    key = read_key(os.environ, ("--key-file", Path(key_file)) if key_file else None)
    if sys.stdin is None:
        raise UsageError("stdin: no secret given (stdin is closed)")
    if sys.stdin.isatty():
        text = click.prompt("Secret", hide_input=True, confirmation_prompt=True, err=True)
    else:
        # One line and its end, a little more to tell a longer secret or a second line.
        text = sys.stdin.read(SECRET_MAX_CHARS + 3)
    password = secret_from_input(text)
    runtime.redactor.add(password)  # checked first: a short secret would mask ordinary words
    click.echo(encrypt(password, key))


@_command(secret, "generate-key")
def secret_generate_key() -> None:
    """Print a new random encryption key (32 bytes, base64) for NETWATCH_ENCRYPTION_KEY or a key file.

    \b
    Example:
      (umask 077 && netwatch secret generate-key > /etc/netwatch/encryption.key)
    """
    from netwatch.encryption import generate_key

    click.echo(generate_key())


def _format_option(function: Callable[..., Any]) -> Callable[..., Any]:
    json_flag = click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
    csv_flag = click.option("--csv", "as_csv", is_flag=True, help="Print CSV with a header line.")
    return json_flag(csv_flag(function))


def _output_format(as_json: bool, as_csv: bool, outer: str | None = None) -> str | None:
    """"json", "csv" or None (a table) from the flags, also those given to `alerts` before `log`."""
    chosen = {fmt for fmt, given in (("json", as_json), ("csv", as_csv)) if given}
    if outer is not None:
        chosen.add(outer)
    if len(chosen) > 1:
        raise UsageError("--json and --csv print different formats: give one of them")
    return chosen.pop() if chosen else None


_kind_option = click.option(
    "--kind", "kinds", multiple=True, type=click.Choice(["host", "http", "tcp"]),
    help="Only hosts (ping-sweep) or HTTP or TCP checks (http-check); repeatable. Default: all.")


@_command(cli, "status", transaction=True)
@config_option
@_kind_option
@_format_option
def status(config_file: str | None, kinds: tuple[str, ...], as_json: bool, as_csv: bool) -> None:
    """Print each host's and check's current state as recorded by the last ping-sweep and http-check runs.

    Checks are grouped by client.

    \b
    Example:
      netwatch status --config netwatch.yaml --kind http --json
    """
    from datetime import timedelta

    from netwatch import reports

    fmt = _output_format(as_json, as_csv) or "table"
    config = _load(config_file)
    with _report_connection(config_file, config) as conn:
        rows = reports.host_rows(conn, timedelta(seconds=config.thresholds.min_transition_seconds),
                                 kinds or reports.KINDS)
    click.echo(reports.render(rows, reports.HOST_COLUMNS, fmt, reports.HOST_TABLE), nl=False)


def _since_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--since", metavar="AGE", help="Only what was seen within AGE, e.g. 90m, 24h, 7d.")(function)


@cli.group("alerts", invoke_without_command=True)
@_log_options
@config_option
@click.option("--active", is_flag=True, help="Only alerts that are active now.")
@_since_option
@_format_option
@click.pass_context
def alerts(ctx: click.Context, config_file: str | None, active: bool, since: str | None, as_json: bool,
           as_csv: bool) -> None:
    """List alarm-volume alerts with account, CUC, code, counts, first/last seen and enrichment.

    \b
    Example:
      netwatch alerts --active --since 24h --json
    """
    from netwatch import reports
    from netwatch.core.times import utc_now

    fmt = _output_format(as_json, as_csv)
    if ctx.invoked_subcommand is not None:
        if active:
            raise UsageError("--active lists active alerts; it does not apply to `alerts log`")
        # `netwatch alerts --config X --json log` means the same as `netwatch alerts log --config X --json`.
        ctx.meta["alerts"] = {"config_file": config_file, "since": since, "fmt": fmt}
        return
    _begin(transaction=True)
    cutoff = utc_now() - reports.parse_age(since) if since else None
    with _report_connection(config_file) as conn:
        rows = reports.alert_rows(conn, active, cutoff)
    click.echo(reports.render(rows, reports.ALERT_COLUMNS, fmt or "table", reports.ALERT_TABLE), nl=False)


@_command(alerts, "log", transaction=True)
@config_option
@_since_option
@_format_option
@click.pass_context
def alerts_log(ctx: click.Context, config_file: str | None, since: str | None, as_json: bool, as_csv: bool) -> None:
    """Print the register log: every alert raised and cleared, oldest first.

    \b
    Example:
      netwatch alerts log --since 7d --csv
    """
    from netwatch import reports
    from netwatch.core.times import utc_now

    outer = ctx.meta.get("alerts", {})
    config_file = config_file or outer.get("config_file")
    since = since or outer.get("since")
    fmt = _output_format(as_json, as_csv, outer.get("fmt"))
    cutoff = utc_now() - reports.parse_age(since) if since else None
    with _report_connection(config_file) as conn:
        rows = reports.log_rows(conn, cutoff)
    click.echo(reports.render(rows, reports.LOG_COLUMNS, fmt or "table"), nl=False)


# History read back (issue 8): reports, one host's history, runs, the outbox.

@cli.group()
@_log_options
def report() -> None:
    """Reports over the stored history: uptime, incidents, the day-wise report.

    \b
    Example:
      netwatch report uptime --since 30d --by account
    """


def _scope_options(function: Callable[..., Any]) -> Callable[..., Any]:
    host = click.option("--host", metavar="NAME", help="Only this host or check.")
    account = click.option("--account", metavar="ACCOUNT", help="Only the hosts and checks of this account.")
    client = click.option("--client", metavar="CLIENT", help="Only the checks of this client organisation.")
    return host(account(client(_kind_option(function))))


def _scope(conn: Connection, host: str | None, account: str | None, client: str | None, kinds: tuple[str, ...],
           by: str = "host") -> Any:
    from netwatch.history.incidents import Scope
    from netwatch.history.timeline import require_target

    if host is not None:
        require_target(conn, host, "--host")
    return Scope(host=host, account=account, client=client, kinds=kinds, by=by)


@_command(report, "uptime", transaction=True)
@config_option
@click.option("--since", metavar="Nd", help="The last N UTC days including today (default 30d).")
@click.option("--from", "first", metavar="DATE", help="First UTC day of the period, e.g. 2026-11-01.")
@click.option("--to", "last", metavar="DATE", help="Last UTC day of the period, included (default today).")
@_scope_options
@click.option("--by", type=click.Choice(["host", "account", "client"]), default="host", show_default=True,
              help="One row per host or check, per account or per client.")
@click.option("--from-raw", is_flag=True, help="Sum the raw checks instead of the daily rollups (same numbers).")
@_format_option
def report_uptime(config_file: str | None, since: str | None, first: str | None, last: str | None, host: str | None,
                  account: str | None, client: str | None, kinds: tuple[str, ...], by: str, from_raw: bool,
                  as_json: bool, as_csv: bool) -> None:
    """Uptime % of the known time, unknown time, check success, incidents, downtime, MTTR, loss, latency.

    \b
    Example:
      netwatch report uptime --from 2026-11-01 --to 2026-11-30 --account 1234 --csv
    """
    from netwatch import reports
    from netwatch.core.periods import report_period
    from netwatch.core.times import utc_now
    from netwatch.history import uptime

    fmt = _output_format(as_json, as_csv) or "table"
    period = report_period(since, first, last, utc_now())
    with _report_connection(config_file) as conn:
        rows = uptime.uptime_rows(conn, period, _scope(conn, host, account, client, kinds, by), from_raw)
    columns, table = uptime.COLUMNS_BY[by]
    click.echo(reports.render(rows, columns, fmt, table), nl=False)


@_command(report, "incidents", transaction=True)
@config_option
@_since_option
@_scope_options
@click.option("--open", "open_only", is_flag=True, help="Only incidents still ongoing.")
@_format_option
def report_incidents(config_file: str | None, since: str | None, host: str | None, account: str | None,
                     client: str | None, kinds: tuple[str, ...], open_only: bool, as_json: bool,
                     as_csv: bool) -> None:
    """Each offline period: host, account, start, end or "ongoing", duration, the events sent about it.

    \b
    Example:
      netwatch report incidents --since 7d --open
    """
    from netwatch import reports
    from netwatch.core.times import utc_now
    from netwatch.history import incidents

    fmt = _output_format(as_json, as_csv) or "table"
    now = utc_now()
    start_s = int((now - reports.parse_age(since)).timestamp()) if since else 0
    with _report_connection(config_file) as conn:
        rows = incidents.incident_rows(conn, start_s, int(now.timestamp()), _scope(conn, host, account, client, kinds),
                                         open_only)
    click.echo(reports.render(rows, incidents.COLUMNS, fmt, incidents.TABLE), nl=False)


@_command(report, "daily", transaction=True)
@config_option
@click.option("--date", "day", metavar="DATE", help="The UTC day (default today), e.g. 2026-11-22.")
@_scope_options
@_format_option
def report_daily(config_file: str | None, day: str | None, host: str | None, account: str | None,
                 client: str | None, kinds: tuple[str, ...], as_json: bool, as_csv: bool) -> None:
    """The day-wise report: per host its checks, good checks, uptime %, average latency, incidents.

    \b
    Example:
      netwatch report daily --date 2026-11-22 --csv
    """
    from netwatch import reports
    from netwatch.core.periods import day_period, parse_date
    from netwatch.core.times import utc_now
    from netwatch.history import uptime

    fmt = _output_format(as_json, as_csv) or "table"
    now = utc_now()
    period = day_period(parse_date("--date", day) if day else now.date(), now)
    with _report_connection(config_file) as conn:
        rows = uptime.daily_rows(conn, period, _scope(conn, host, account, client, kinds))
    click.echo(reports.render(rows, uptime.DAILY_COLUMNS, fmt), nl=False)


@_command(cli, "history", transaction=True)
@config_option
@click.argument("host", metavar="HOST")
@click.option("--since", default="24h", show_default=True, metavar="AGE", help="How far back, e.g. 90m, 24h, 7d.")
@_format_option
def history(config_file: str | None, host: str, since: str, as_json: bool, as_csv: bool) -> None:
    """One host's checks (status, loss, RTT, failure reason) and transitions, newest first.

    \b
    Example:
      netwatch history lo-1 --since 6h
    """
    from netwatch import reports
    from netwatch.core.times import utc_now
    from netwatch.history import timeline

    fmt = _output_format(as_json, as_csv) or "table"
    cutoff = utc_now() - reports.parse_age(since)
    with _report_connection(config_file) as conn:
        rows = timeline.timeline_rows(conn, timeline.require_target(conn, host, "HOST"), cutoff)
    click.echo(reports.render(rows, timeline.COLUMNS, fmt, timeline.TABLE), nl=False)


@_command(cli, "runs", transaction=True)
@config_option
@click.option("--job", metavar="JOB", help="Only runs of this job, e.g. ping-sweep.")
@click.option("--since", default="24h", show_default=True, metavar="AGE", help="Runs started within AGE.")
@click.option("--failed", "failed_only", is_flag=True, help="Only runs that failed, were stopped or abandoned.")
@_format_option
def runs(config_file: str | None, job: str | None, since: str, failed_only: bool, as_json: bool,
         as_csv: bool) -> None:
    """Job runs, newest first: outcome, exit code, duration and counts.

    \b
    Example:
      netwatch runs --job ping-sweep --failed
    """
    from netwatch import reports
    from netwatch.core.times import utc_now

    fmt = _output_format(as_json, as_csv) or "table"
    cutoff = utc_now() - reports.parse_age(since)
    with _report_connection(config_file) as conn:
        rows = reports.run_rows(conn, job, cutoff, failed_only)
    click.echo(reports.render(rows, reports.RUN_COLUMNS, fmt, reports.RUN_TABLE), nl=False)


@cli.group("outbox", invoke_without_command=True)
@_log_options
@config_option
@click.option("--status", "statuses", multiple=True, type=click.Choice(["pending", "failed", "dead"]),
              help="Only messages in this status (repeatable; default all three).")
@click.option("--channel", metavar="CHANNEL", help="Only messages of this channel, e.g. sigma, email.")
@_format_option
@click.pass_context
def outbox(ctx: click.Context, config_file: str | None, statuses: tuple[str, ...], channel: str | None,
           as_json: bool, as_csv: bool) -> None:
    """Queued messages (pending, failed, dead) with attempts, last error and next attempt.

    \b
    Example:
      netwatch outbox --status dead --channel sigma
    """
    from netwatch import reports
    from netwatch.db.outbox import OPEN_STATUSES

    if ctx.invoked_subcommand is not None:
        ctx.meta["outbox_config"] = config_file
        return
    _begin(transaction=True)
    fmt = _output_format(as_json, as_csv) or "table"
    with _report_connection(config_file) as conn:
        rows = reports.outbox_rows(conn, statuses or OPEN_STATUSES, channel)
    click.echo(reports.render(rows, reports.OUTBOX_COLUMNS, fmt, reports.OUTBOX_TABLE), nl=False)


@_command(outbox, "retry", transaction=True)
@config_option
@click.argument("ids", nargs=-1, required=True, type=click.IntRange(min=1, max=2**63 - 1), metavar="ID...")
@click.pass_context
def outbox_retry(ctx: click.Context, config_file: str | None, ids: tuple[int, ...]) -> None:
    """Give dead messages a new attempt budget (pending, 0 attempts, due now), keeping their idempotency key.

    All or nothing: a missing or not dead ID is an error (65) and nothing changes.

    \b
    Example:
      netwatch outbox retry 42 43
    """
    from netwatch.core.times import utc_now
    from netwatch.db import migrate
    from netwatch.db.outbox import retry_dead

    with _engine(config_file or ctx.meta.get("outbox_config")) as engine, engine.begin() as conn:
        migrate.require_current(conn)
        count = retry_dead(conn, ids, utc_now())
    click.echo(f"{count} message(s) pending again")


@contextmanager
def _report_connection(config_file: str | None, config: Config | None = None) -> Iterator[Connection]:
    """A read-only connection for a report: it never creates a database (nor writes to a SQLite file)."""
    from netwatch.db import migrate

    with _engine(config_file, read_only=True, config=config) as engine, engine.begin() as conn:
        migrate.require_current(conn)
        yield conn


@contextmanager
def _engine(config_file: str | None, read_only: bool = False, config: Config | None = None) -> Iterator[Engine]:
    """The configured database's engine (of `config` when already loaded), disposed at the end."""
    from netwatch.db.engine import build_engine

    config = config or _load(config_file)
    engine = build_engine(config.database_url, config.database_key, read_only=read_only)
    try:
        with _database_outages(config.database_key):
            yield engine
    finally:
        engine.dispose()


@contextmanager
def _database_outages(key: str) -> Iterator[None]:
    """A database outage as its one line, naming `key` (where the URL came from) for a refused login; a bug
    (any other database error) goes on with its traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from netwatch.db.engine import describe_db_error, is_db_unavailable

    try:
        yield
    except SQLAlchemyError as exc:
        if not is_db_unavailable(exc):
            raise
        raise describe_db_error(exc, key) from None


def early_log_options(args: Sequence[str], env: Mapping[str, str]) -> tuple[str, str]:
    """The log format and level the arguments ask for, wherever they stand (click checks them later).

    Without a valid `--log-format`, NETWATCH_LOG_FORMAT decides: text or json in any case, spaces
    around it ignored, empty as unset; anything else raises UsageError naming the variable.
    """
    chosen: dict[str, str | None] = {"--log-format": None, "--log-level": "info"}
    allowed = {"--log-format": logs.LOG_FORMATS, "--log-level": LOG_LEVELS}
    words = list(args[: args.index("--")] if "--" in args else args)
    for position, word in enumerate(words):
        name, equals, value = word.partition("=")
        if name not in chosen:
            continue
        if not equals:
            value = words[position + 1] if position + 1 < len(words) else ""
        if value in allowed[name]:
            chosen[name] = value
    level = chosen["--log-level"] or "info"
    return chosen["--log-format"] or env_log_format(env), level


def env_log_format(env: Mapping[str, str]) -> str:
    """The log format NETWATCH_LOG_FORMAT names (text when unset or empty); UsageError for another value."""
    raw = env.get("NETWATCH_LOG_FORMAT", "")
    value = raw.strip().lower()
    if not value:
        return "text"
    if value not in logs.LOG_FORMATS:
        from netwatch.excerpt import excerpt

        raise UsageError(f"NETWATCH_LOG_FORMAT={excerpt(raw)} is not a log format: use text or json")
    return value


def run_cli(args: list[str], stop: StopFlag, build_deps: DepsFactory | None = None,
            log_stream: TextIO | None = None) -> int:
    """Runs one command; returns its exit code. Every expected failure is one line, never a traceback.

    `build_deps` and `log_stream` are the seams for in-process tests (planned sweeps, fixed clocks).
    """
    redactor = logs.Redactor()
    try:
        fmt, level = early_log_options(args, os.environ)
    except UsageError as exc:
        logs.setup_logging("text", "info", redactor, log_stream)
        return _fail(exc.message, exc.exit_code)
    logs.setup_logging(fmt, level, redactor, log_stream)
    runtime = Runtime(redactor=redactor, stop=stop, build_deps=build_deps)

    def command() -> Any:
        # A signal noted while netwatch was importing ends the process here, as one line.
        stop.stop_at_once()
        return cli.main(args=args, prog_name="netwatch", standalone_mode=False, obj=runtime)

    try:
        return _run(command, fmt)
    except StopNow as exc:
        # A signal before a job's run was armed, or during a command that is no job, wherever it came.
        return _fail(exc.message, exc.exit_code)


def _run(call: Callable[[], Any], log_format: str = "text") -> int:
    try:
        return _run_expected(call, log_format)
    except Exception as exc:
        # A bug: the traceback is the report. Logged (not printed) so the process's secrets are masked.
        log.critical("netwatch bug (%s), exit %d; traceback:\n%s", type(exc).__name__, int(ExitCode.SOFTWARE),
                     traceback.format_exc().rstrip())
        return int(ExitCode.SOFTWARE)


def _run_expected(call: Callable[[], Any], log_format: str) -> int:
    try:
        result = call()
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else _fail(exc.code, ExitCode.USAGE)
    except click.exceptions.NoArgsIsHelpError as exc:
        if log_format == "json":
            # Whatever reads JSON lines from stderr gets one, not a page of help text.
            path = exc.ctx.command_path if exc.ctx else "netwatch"
            return _fail(f"missing command (see `{path} --help`)", ExitCode.USAGE)
        # A bare `netwatch` or `netwatch db`: the help is the answer, not an error line.
        click.echo(exc.format_message(), err=True)
        return int(ExitCode.USAGE)
    except click.exceptions.Abort:
        return _fail("aborted", ExitCode.INTERRUPTED)
    except click.ClickException as exc:
        return _fail(exc.format_message(), ExitCode.USAGE)
    except NetwatchError as exc:
        return _fail(exc.message, exc.exit_code)
    return int(result or 0)


def _fail(message: str, code: int) -> int:
    log.error(message, extra={"machine_fields": {"exit_code": int(code)}})
    return int(code)
