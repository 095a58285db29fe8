"""`netwatch ARGS` under cProfile, imports included, for `bench/event_scan.py --profile`.

Does what the console script does (netwatch/entry.py: the signal handlers, the collector's
threshold, then `netwatch.cli.run_cli`) with the profiler on from before the CLI's first import,
dumps the stats to FILE and exits with the command's code. The interpreter's teardown, which the
console script skips, is skipped here too. Run with the Python of the netwatch to profile.

    python bench/_event_scan_driver.py --profile /tmp/x/es.prof run event-scan --config /tmp/x/es.yaml
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import sys
from pathlib import Path

from netwatch import entry
from netwatch.running.stopflag import StopFlag, install_signal_handlers


def _command(argv: list[str], stop: StopFlag) -> int:
    gc.set_threshold(entry._GC_THRESHOLD, *gc.get_threshold()[1:])  # the console script's threshold
    from netwatch.cli import run_cli

    return run_cli(argv, stop)


def main(argv: list[str] | None = None) -> int:
    """Runs the netwatch command under the profiler; returns its exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", required=True, type=Path, help="write the cProfile stats to this file")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the netwatch arguments, e.g. run event-scan ...")
    args = parser.parse_args(argv)
    stop = StopFlag()
    install_signal_handlers(stop)
    profiler = cProfile.Profile()
    code = profiler.runcall(_command, args.command, stop)
    profiler.dump_stats(str(args.profile))
    sys.stdout.flush()
    sys.stderr.flush()
    return code


if __name__ == "__main__":
    os._exit(main())
