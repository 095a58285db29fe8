"""One pass of N HTTPS checks through netwatch.probes.http.check_http, in a fresh process (bench/http_check.py).

Prints one JSON line: `pass_s` (wall time of check_http alone), `pass_cpu_s` (this process's CPU
meanwhile, every thread), `statuses` (result status -> count) and `reasons` (the five most common).

    python bench/_http_check_driver.py --url https://127.0.0.1:PORT/ --ca-file ca.pem --checks 1000
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from netwatch.probes.http import check_http
from netwatch.probes.pool import ProbeSettings
from netwatch.services import HttpCheckSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--ca-file", type=Path, required=True)
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--deadline-s", type=float, default=120)
    args = parser.parse_args()
    specs = [HttpCheckSpec(f"site-{n}", args.url, ca_file=args.ca_file, cert_expiry_warning_days=14)
             for n in range(args.checks)]
    began, began_cpu = time.perf_counter(), time.process_time()
    settings = ProbeSettings(deadline_at=time.monotonic() + args.deadline_s, concurrency=args.concurrency)
    results = check_http(specs, settings, now=datetime.now(UTC), check_stop=lambda: None)
    pass_s, pass_cpu_s = time.perf_counter() - began, time.process_time() - began_cpu
    statuses = collections.Counter(str(result.status) for result in results.values())
    reasons = collections.Counter(result.reason for result in results.values() if result.reason)
    print(json.dumps({"pass_s": pass_s, "pass_cpu_s": pass_cpu_s, "statuses": dict(statuses),
                      "reasons": dict(reasons.most_common(5))}))


if __name__ == "__main__":
    main()
