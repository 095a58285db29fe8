"""Throwaway databases for the benchmarks: a SQLite file, or a MariaDB database dropped afterwards."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pymysql
from sqlalchemy import select
from sqlalchemy.engine import Engine

from netwatch.db.tables import job_runs

MYSQL_HOST, MYSQL_PORT, MYSQL_USER = "127.0.0.1", 3306, "root"


def mysql_connect(database: str | None = None) -> pymysql.Connection:
    return pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user=MYSQL_USER, password="",
                           database=database, connect_timeout=5)


def mysql_available() -> str | None:
    """None when MariaDB answers, else why not."""
    try:
        mysql_connect().close()
    except pymysql.MySQLError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@contextmanager
def throwaway_database(backend: str, directory: Path, prefix: str, tag: str) -> Iterator[str]:
    """A fresh empty database URL; the MariaDB one is dropped afterwards, also on error."""
    if backend == "sqlite":
        path = directory / f"{prefix}-{tag}.db"
        path.unlink(missing_ok=True)
        yield f"sqlite:///{path}"
        return
    name = f"nw_{prefix}_{os.getpid()}_{tag}"
    with mysql_connect() as conn, conn.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        yield f"mysql+pymysql://{MYSQL_USER}@{MYSQL_HOST}:{MYSQL_PORT}/{name}"
    finally:
        with mysql_connect() as conn, conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


def last_run_counts(engine: Engine, job: str) -> dict[str, int]:
    """The counts the latest run of `job` recorded."""
    with engine.begin() as conn:
        counts = conn.execute(
            select(job_runs.c.counts).where(job_runs.c.job == job).order_by(job_runs.c.id.desc()).limit(1)
        ).scalar_one()
    return json.loads(counts) if counts else {}
