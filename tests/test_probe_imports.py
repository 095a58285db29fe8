"""The probes measure and nothing else: importing them brings in no database, API client or CLI code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import netwatch.probes

FORBIDDEN = ("netwatch.db", "netwatch.clients", "netwatch.cli", "click", "sqlalchemy", "pymysql")


def test_no_probe_module_imports_the_database_the_api_clients_or_click() -> None:
    modules = sorted(f"netwatch.probes.{path.stem}" for path in Path(netwatch.probes.__file__).parent.glob("*.py")
                     if path.stem != "__init__")
    assert {"netwatch.probes.http", "netwatch.probes.tcp"} <= set(modules)
    # A fresh interpreter: what this test process imported already says nothing.
    code = ("import importlib, sys\n"
            f"for name in {modules!r}: importlib.import_module(name)\n"
            f"print(*(m for m in sorted(sys.modules) if any(m == f or m.startswith(f + '.') for f in {FORBIDDEN!r})))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)

    assert loaded.stdout.split() == []
