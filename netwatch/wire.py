"""What every HTTP user of netwatch shares on the wire: our User-Agent, JSON bodies and a capped body read.

The API clients (netwatch/clients/http.py) and the service probes (netwatch/probes/http.py) both
read bodies through `read_capped`, so a huge or dripping body costs neither of them more than its cap.
"""

from __future__ import annotations

import functools
import json
import threading
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import urllib3

_CHUNK_BYTES = 64 * 1024


def json_bytes(value: Any) -> bytes:
    """A request's JSON body: compact, keys sorted, so the same data is always the same bytes.

    The outbox stores payloads in this form (netwatch/db/outbox.py `encode_payload`), so every
    attempt of one Idempotency-Key sends the same bytes: in the run that located the event (a body
    built in memory) and after a kill (the body read back from its row) alike.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


@functools.cache
def user_agent() -> str:
    """`netwatch/<version>`, the User-Agent of every request netwatch sends.

    Cached: reading the installed package's metadata takes milliseconds, and a pass of service
    checks sends thousands of requests.
    """
    try:
        return f"netwatch/{version('netwatch')}"
    except PackageNotFoundError:
        return "netwatch/unknown"


def read_capped(raw: urllib3.BaseHTTPResponse, limit: int, abandoned: threading.Event) -> bytes:
    """Up to `limit` bytes of the body (decoded), fewer when it ends first or the read is `abandoned`.

    read1 returns whatever has arrived, so a read given up on stops at the next bytes the server sends.
    """
    chunks: list[bytes] = []
    size = 0
    while size < limit and not abandoned.is_set():
        chunk = raw.read1(min(_CHUNK_BYTES, limit - size), decode_content=True)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
