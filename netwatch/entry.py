"""The `netwatch` process: signal handlers first, then the CLI; the only place that exits."""

from __future__ import annotations

import sys

from netwatch.running.stopflag import StopFlag, install_signal_handlers


def main() -> None:
    """Console entry point (`netwatch` and `python -m netwatch`)."""
    stop = StopFlag()
    install_signal_handlers(stop)
    from netwatch.cli import run_cli

    sys.exit(run_cli(sys.argv[1:], stop))
