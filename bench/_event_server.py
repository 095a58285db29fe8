"""The loopback Segware server of bench/event_scan.py, in its own process so its CPU is not the job's.

Starts tests/fakeapi.py's FakeApis on 127.0.0.1 (port 0), fills `events` with N contract-shaped
events over the 100 minutes before `--now` and `accounts` with every bench account, sorts the index
once (a warm-up query), then prints one JSON line on stdout (`url`, `pid`, `codes`: the code ->
threshold map the job must watch, `hot_groups`: alerts a first run should raise) and serves until
its stdin closes.

Groups: 5,000 = 1,000 accounts x 5 CUCs, each with one of four watched codes. 50 "hot" groups get
a fixed count a little over their code's threshold (alerts are raised); the other events are dealt
round-robin to the 4,950 other groups. The thresholds grow with N (times N // 100,000, at least 1),
so at every N the other groups stay under every threshold and the hot groups, raised alerts and
account look-ups are the same: only the events to read and count grow.

    python bench/_event_server.py --events 100000 --max-results 10000 --now 2026-11-22T10:00:00Z
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

# tests/ is not a package: FakeApis is imported from its directory.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fakeapi import FakeApis

from netwatch.clients.segware import format_timestamp, parse_timestamp

TOKEN = "bench-segware-token"
BASE_CODES = {"E130": 50, "E131": 50, "E132": 80, "E133": 100}  # code -> threshold at up to 199,999 events
SCALE_EVENTS = 100_000  # the thresholds are BASE_CODES times N // SCALE_EVENTS (at least 1)
ACCOUNTS, CUCS = 1_000, 5
GROUPS = ACCOUNTS * CUCS
HOT_GROUPS = frozenset(101 * k for k in range(50))  # distinct accounts, all four codes
SPREAD = timedelta(minutes=100)
SEED = 20261122


def codes_for(n: int) -> dict[str, int]:
    """The code -> threshold map of the bench config at N events."""
    scale = max(1, n // SCALE_EVENTS)
    return {code: threshold * scale for code, threshold in BASE_CODES.items()}


def group_of(index: int) -> tuple[str, str, str]:
    """(account, cuc, code) of group `index` (0 <= index < GROUPS)."""
    code = list(BASE_CODES)[(index // CUCS + index) % len(BASE_CODES)]
    return f"{10_000 + index // CUCS}", f"CUC-{index % CUCS}", code


def hot_count(index: int, codes: dict[str, int]) -> int:
    """Events of a hot group: 5 to 14 over its code's threshold."""
    return codes[group_of(index)[2]] + 5 + index % 10


def make_events(n: int, now: datetime) -> list[dict[str, Any]]:
    """N events, ids in receivedAt order, spread evenly (whole seconds, so ties) over [now - 100 min, now)."""
    codes = codes_for(n)
    hot = [index for index in sorted(HOT_GROUPS) for _ in range(hot_count(index, codes))]
    if len(hot) > n:
        raise ValueError(f"--events: at least {len(hot)} (the hot groups alone)")
    cold = [index for index in range(GROUPS) if index not in HOT_GROUPS]
    owners = hot + [cold[position % len(cold)] for position in range(n - len(hot))]
    random.Random(SEED).shuffle(owners)
    start = now - SPREAD
    step = SPREAD / n
    # One set of strings per group, shared by its events: 1,000,000 events fit in the server's memory.
    groups = [(*group_of(index), f"{index % 1000:03d}") for index in range(GROUPS)]
    events = []
    for position, index in enumerate(owners):
        account, cuc, code, zone = groups[index]
        at = (start + step * position).replace(microsecond=0)
        events.append({"id": f"ev-{position:07d}", "account": account, "cuc": cuc, "code": code,
                       "partition": "01", "zone": zone, "receivedAt": format_timestamp(at)})
    return events


def make_accounts() -> dict[str, dict[str, Any]]:
    """Account details (contract shape) for every bench account, so enrichment finds them."""
    accounts = {}
    for number in range(ACCOUNTS):
        account = f"{10_000 + number}"
        accounts[account] = {
            "account": account, "name": f"Bench {account}", "companyId": number % 20,
            "companyName": f"Company {number % 20}", "clientGroup": f"Group {number % 7}",
            "partitions": [{"code": "01", "name": "Main"}],
            "zones": [{"code": "000", "name": "Zone", "partition": "01"}],
        }
    return accounts


def main(argv: list[str] | None = None) -> int:
    """Serves until stdin closes."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, required=True, help="events in the window")
    parser.add_argument("--max-results", type=int, default=10_000, help="server limit per query (default 10,000)")
    parser.add_argument("--now", required=True, help="the job's fixed clock, ISO 8601 with offset")
    args = parser.parse_args(argv)
    now = parse_timestamp(args.now)

    fake = FakeApis(accounts=make_accounts(), token=TOKEN, max_results=args.max_results)
    fake.events = make_events(args.events, now)
    with fake:
        # One query over everything sorts the index now, not during the first measured page.
        query = f"from={format_timestamp(now - SPREAD)}&to={format_timestamp(now)}&page=0&size=1"
        fake.answer("GET", "/v1/events", {"authorization": f"Bearer {TOKEN}"}, b"", query)
        print(json.dumps({"url": fake.url, "pid": os.getpid(), "codes": codes_for(args.events),
                          "hot_groups": len(HOT_GROUPS)}),
              flush=True)
        sys.stdin.read()  # until the bench closes our stdin
    return 0


if __name__ == "__main__":
    sys.exit(main())
