"""The `netwatch` command: parses, builds dependencies, calls a job, maps errors to exit codes.

Only this module imports click and only this module ends the process.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

import click
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from netwatch import logs, reports
from netwatch.config import Config, config_path, load_config
from netwatch.db import migrate
from netwatch.db.ddl import mysql_ddl
from netwatch.db.engine import build_engine, describe_db_error, is_db_unavailable
from netwatch.deps import Deps, build_deps, utc_now
from netwatch.errors import ExitCode, NetwatchError, UsageError
from netwatch.jobs.alert_clear import run_alert_clear
from netwatch.jobs.event_scan import run_event_scan
from netwatch.jobs.ping_sweep import run_ping_sweep
from netwatch.running.stopflag import StopFlag, install_sigterm_handler
from netwatch.shard import parse_shard

log = logging.getLogger("netwatch.cli")

CONFIG_HELP = "Config file (default: $NETWATCH_CONFIG, else ./netwatch.yaml)."
config_option = click.option("--config", "config_file", metavar="FILE", help=CONFIG_HELP)


def _load(config_file: str | None) -> Config:
    return load_config(config_path(config_file), os.environ)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-format", type=click.Choice(logs.FORMATS), envvar="NETWATCH_LOG_FORMAT", default="text",
              show_default=True, help="Log lines on stderr: human text or JSON (env NETWATCH_LOG_FORMAT).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True, help="Lowest level logged.")
@click.version_option(package_name="netwatch")
def cli(log_format: str, log_level: str) -> None:
    """Monitoring jobs for alarm-monitoring operators: each run does one pass and exits.

    \b
    Example:
      netwatch run ping-sweep --config /etc/netwatch/netwatch.yaml
    """
    logs.setup_logging(log_format, log_level)


@cli.group()
def run() -> None:
    """Run one pass of a job.

    \b
    Example:
      netwatch run ping-sweep --config netwatch.yaml
    """


@run.command("ping-sweep")
@config_option
@click.option("--shard", default="0/1", show_default=True, metavar="INDEX/COUNT",
              help="Handle only this share of the hosts, e.g. 1/4 (one lease per shard).")
def ping_sweep_command(config_file: str | None, shard: str) -> None:
    """Ping every host once, apply thresholds, record results, send confirmed changes to Sigma.

    \b
    Example:
      netwatch run ping-sweep --config netwatch.yaml --shard 0/2
    """
    chosen = parse_shard(shard)
    config, deps = _job_setup(config_file)
    sys.exit(int(run_ping_sweep(config, deps, chosen)))


@run.command("event-scan")
@config_option
def event_scan_command(config_file: str | None) -> None:
    """Count the window's Segware alarm events per account/CUC/code and raise each alert once.

    \b
    Example:
      netwatch run event-scan --config netwatch.yaml
    """
    config, deps = _job_setup(config_file)
    sys.exit(int(run_event_scan(config, deps)))


@run.command("alert-clear")
@config_option
def alert_clear_command(config_file: str | None) -> None:
    """Clear active alerts whose volume fell below the clear level or that saw no event for too long.

    \b
    Example:
      netwatch run alert-clear --config netwatch.yaml
    """
    config, deps = _job_setup(config_file)
    sys.exit(int(run_alert_clear(config, deps)))


def _job_setup(config_file: str | None) -> tuple[Config, Deps]:
    config = _load(config_file)
    stop = StopFlag()
    install_sigterm_handler(stop)
    return config, build_deps(config, os.environ, stop)


@cli.group()
def db() -> None:
    """Create, upgrade or print the database schema.

    \b
    Example:
      netwatch db init --config netwatch.yaml
    """


@db.command("init")
@config_option
def db_init(config_file: str | None) -> None:
    """Create the schema on an empty database (does nothing if it is already there).

    \b
    Example:
      NETWATCH_DATABASE_URL=mysql+pymysql://netwatch@db/netwatch netwatch db init
    """
    engine = build_engine(_load(config_file).database_url)
    with engine.begin() as conn:
        if migrate.current_version(conn) is not None:
            migrate.require_current(conn)
            click.echo(f"schema already initialised at version {migrate.LATEST}")
            return
        migrate.upgrade(conn, utc_now())
    click.echo(f"schema created at version {migrate.LATEST}")


@db.command("upgrade")
@config_option
def db_upgrade(config_file: str | None) -> None:
    """Apply the versioned schema changes this netwatch has and the database lacks.

    On an empty database this creates the whole schema, like `db init`.

    \b
    Example:
      netwatch db upgrade --config netwatch.yaml
    """
    engine = build_engine(_load(config_file).database_url)
    with engine.begin() as conn:
        applied = migrate.upgrade(conn, utc_now())
    click.echo(f"applied versions {applied}" if applied else f"schema is current (version {migrate.LATEST})")


@db.command("schema")
def db_schema() -> None:
    """Print the MySQL DDL generated from the table definitions (the content of schema.sql).

    \b
    Example:
      netwatch db schema > schema.sql
    """
    click.echo(mysql_ddl(), nl=False)


@cli.command("init-config")
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


@cli.command("check-config")
@config_option
def check_config(config_file: str | None) -> None:
    """Validate a config file; prints the first problem with its key path (exit 78).

    \b
    Example:
      netwatch check-config --config netwatch.yaml
    """
    config = _load(config_file)
    click.echo(f"{config.source}: ok ({len(config.hosts)} hosts)")


@cli.command("status")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def status(config_file: str | None, as_json: bool) -> None:
    """Print each host's current state as recorded by the last ping-sweep runs.

    \b
    Example:
      netwatch status --config netwatch.yaml --json
    """
    with _report_connection(config_file) as conn:
        rows = reports.host_rows(conn)
    fmt = "json" if as_json else "table"
    click.echo(reports.render(rows, reports.HOST_COLUMNS, fmt, reports.HOST_TABLE), nl=False)


def _format_option(function: Callable[..., Any]) -> Callable[..., Any]:
    json_flag = click.option("--json", "fmt", flag_value="json", help="Print a JSON list.")
    csv_flag = click.option("--csv", "fmt", flag_value="csv", help="Print CSV with a header line.")
    return json_flag(csv_flag(function))


def _since_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--since", metavar="AGE", help="Only what was seen within AGE, e.g. 90m, 24h, 7d.")(function)


@cli.group("alerts", invoke_without_command=True)
@config_option
@click.option("--active", is_flag=True, help="Only alerts that are active now.")
@_since_option
@_format_option
@click.pass_context
def alerts(ctx: click.Context, config_file: str | None, active: bool, since: str | None, fmt: str | None) -> None:
    """List alarm-volume alerts with account, CUC, code, counts, first/last seen and enrichment.

    \b
    Example:
      netwatch alerts --active --since 24h --json
    """
    if ctx.invoked_subcommand is not None:
        if active:
            raise UsageError("--active lists active alerts; it does not apply to `alerts log`")
        # `netwatch alerts --config X --json log` means the same as `netwatch alerts log --config X --json`.
        ctx.obj = {"config_file": config_file, "since": since, "fmt": fmt}
        return
    cutoff = utc_now() - reports.parse_age(since) if since else None
    with _report_connection(config_file) as conn:
        rows = reports.alert_rows(conn, active, cutoff)
    click.echo(reports.render(rows, reports.ALERT_COLUMNS, fmt or "table", reports.ALERT_TABLE), nl=False)


@alerts.command("log")
@config_option
@_since_option
@_format_option
@click.pass_obj
def alerts_log(outer: dict[str, str | None], config_file: str | None, since: str | None, fmt: str | None) -> None:
    """Print the register log: every alert raised and cleared, oldest first.

    \b
    Example:
      netwatch alerts log --since 7d --csv
    """
    config_file = config_file or outer["config_file"]
    since = since or outer["since"]
    fmt = fmt or outer["fmt"]
    cutoff = utc_now() - reports.parse_age(since) if since else None
    with _report_connection(config_file) as conn:
        rows = reports.log_rows(conn, cutoff)
    click.echo(reports.render(rows, reports.LOG_COLUMNS, fmt or "table"), nl=False)


@contextmanager
def _report_connection(config_file: str | None) -> Iterator[Connection]:
    engine = build_engine(_load(config_file).database_url)
    with engine.begin() as conn:
        migrate.require_current(conn)
        yield conn


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one place maps every expected failure to a line and an exit code."""
    sys.exit(_run(lambda: cli.main(args=argv, prog_name="netwatch", standalone_mode=False)))


def _run(call: Callable[[], Any]) -> int:
    try:
        return _run_expected(call)
    except Exception as exc:
        # A bug: the traceback is the report. Logged (not printed) so registered secrets are masked.
        detail = f"netwatch bug ({type(exc).__name__}), exit {int(ExitCode.SOFTWARE)}; traceback:\n"
        if logging.getLogger("netwatch").handlers:
            log.critical("%s%s", detail, traceback.format_exc().rstrip())
        else:
            click.echo(f"netwatch: {detail}{traceback.format_exc().rstrip()}", err=True)
        return int(ExitCode.SOFTWARE)


def _run_expected(call: Callable[[], Any]) -> int:
    try:
        result = call()
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else _fail(exc.code, ExitCode.USAGE)
    except click.exceptions.NoArgsIsHelpError as exc:
        # A bare `netwatch` or `netwatch db`: the help is the answer, not an error line.
        click.echo(exc.format_message(), err=True)
        return int(ExitCode.USAGE)
    except click.exceptions.Abort:
        return _fail("aborted", ExitCode.STOPPED)
    except click.UsageError as exc:
        return _fail(exc.format_message(), ExitCode.USAGE)
    except click.ClickException as exc:
        return _fail(exc.format_message(), ExitCode.USAGE)
    except NetwatchError as exc:
        return _fail(exc.message, exc.exit_code)
    except SQLAlchemyError as exc:
        if not is_db_unavailable(exc):
            raise  # a bug: _run logs it with its traceback and exits 70
        error = describe_db_error(exc)
        return _fail(error.message, error.exit_code)
    return int(result or 0)


def _fail(message: str, code: int) -> int:
    # Before logging is set up (a bad global option) the error goes out plain, once.
    if logging.getLogger("netwatch").handlers:
        log.error(message, extra={"fields": {"exit_code": int(code)}})
    else:
        click.echo(f"netwatch: {message}", err=True)
    return int(code)
