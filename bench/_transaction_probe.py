"""`netwatch` as a whole process (netwatch.entry.main of whichever venv runs this file), with every
database transaction timed from the outside: bench/sweep_transaction.py runs it for trees that may
not report `commit_ms` themselves.

Two SQLAlchemy hooks, the same for every tree: the engine's `begin` event starts a transaction's
clock and counts its statements (`before_cursor_execute`; an executemany counts once), and the
dialect's `do_commit` stops it once the COMMIT returned. Each committed transaction appends one
JSON line (milliseconds, statements) to the file named by NETWATCH_BENCH_TRANSACTIONS, written at
once because netwatch ends with os._exit. Usage: `python bench/_transaction_probe.py run ping-sweep
--config FILE` (the arguments are netwatch's).
"""

from __future__ import annotations

import json
import os
import time

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.engine.default import DefaultDialect

_OUT = os.environ["NETWATCH_BENCH_TRANSACTIONS"]
_open: dict[int, list[float]] = {}  # id(DBAPI connection) -> [began, statements]


@event.listens_for(Engine, "begin")
def _begin(conn) -> None:
    _open[id(conn.connection.dbapi_connection)] = [time.perf_counter(), 0]


@event.listens_for(Engine, "before_cursor_execute")
def _statement(conn, cursor, statement, parameters, context, executemany) -> None:
    current = _open.get(id(conn.connection.dbapi_connection))
    if current is not None:
        current[1] += 1


_do_commit = DefaultDialect.do_commit


def _timed_commit(self, dbapi_connection) -> None:
    _do_commit(self, dbapi_connection)
    # SQLAlchemy hands in its pool's proxy of the DBAPI connection
    current = _open.pop(id(getattr(dbapi_connection, "dbapi_connection", dbapi_connection)), None)
    if current is not None:
        with open(_OUT, "a", encoding="utf-8") as out:
            out.write(json.dumps({"ms": (time.perf_counter() - current[0]) * 1000, "statements": current[1]}) + "\n")


DefaultDialect.do_commit = _timed_commit

if __name__ == "__main__":
    import sys

    from netwatch.entry import main

    sys.argv[0] = "netwatch"
    main()
