"""The `netwatch` process: signal handlers first, then the CLI; the only place that exits."""

from __future__ import annotations

import gc
import os
import sys
import threading

from netwatch.running.stopflag import StopFlag, install_signal_handlers

_GC_THRESHOLD = 10_000


def main() -> None:
    """Console entry point (`netwatch` and `python -m netwatch`)."""
    stop = StopFlag()
    install_signal_handlers(stop)
    # One pass of a job: most objects live until the exit (modules, config, hosts), so the cyclic
    # collector's passes over them are pure cost; collect less often (default 700 allocations).
    gc.set_threshold(_GC_THRESHOLD, *gc.get_threshold()[1:])
    from netwatch.cli import run_cli

    exit_now(run_cli(sys.argv[1:], stop))


def exit_now(code: int) -> None:
    """Ends the process with `code` once its output is flushed, without the interpreter's teardown.

    By now the command has committed, released its lease and disposed of its engine; what the
    interpreter would still do is free every object and module one by one, a quarter of a second
    after a large sweep. Where a non-daemon thread still runs, the interpreter's own exit waits for it.
    """
    import logging  # not at the top: nothing but the signal handlers' own imports may come before them

    if any(thread.is_alive() and not thread.daemon for thread in threading.enumerate()
           if thread is not threading.main_thread()):
        sys.exit(code)
    logging.shutdown()  # flushes and closes every handler
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)  # output was lost (a closed pipe): the interpreter reports it as it always does
    os._exit(code)
