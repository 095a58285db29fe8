"""Service checks as configured and as measured: HTTP and TCP endpoints of the operator's clients.

Plain data shared by the config reader (which builds the specs), the probes (which measure them)
and the http-check job (which turns results into states). No I/O here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from netwatch import limits
from netwatch.core.checks import CheckStatus
from netwatch.excerpt import clip

# `expected_status` when a check does not say: any success or redirect code.
DEFAULT_EXPECTED_STATUS: tuple[tuple[int, int], ...] = ((200, 399),)
METHODS = ("GET", "HEAD", "POST")


@dataclass(frozen=True)
class HttpCheckSpec:
    """One HTTP(S) check; `origin` says where it was configured (file and line or list index).

    `expected_status` holds inclusive (low, high) code ranges. `password_encrypted` is the Basic-Auth
    password as configured (a `nwenc:v1:` value, its form checked); the config leaves `password` None,
    and `netwatch.passwords.with_passwords` fills it in, decrypted, for the run that sends it. Neither
    is shown by repr, logged or stored; nor are `headers` and `body`, which may carry an API key or a
    login.
    """

    name: str
    url: str
    method: str = "GET"
    body: str | None = field(default=None, repr=False)
    client: str | None = None
    account: str | None = None
    expected_status: tuple[tuple[int, int], ...] = DEFAULT_EXPECTED_STATUS
    timeout_seconds: float = 10.0
    follow_redirects: bool = True
    body_contains: str | None = None
    body_matches: re.Pattern[str] | None = None
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    degraded_after_ms: float | None = None
    verify_tls: bool = True
    ca_file: Path | None = None
    cert_expiry_warning_days: int | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    password_encrypted: str | None = field(default=None, repr=False)
    origin: str = field(default="", compare=False)


@dataclass(frozen=True)
class TcpCheckSpec:
    """One TCP check: does a connection to host:port open, and how long did it take."""

    name: str
    host: str
    port: int
    timeout_seconds: float = 5.0
    client: str | None = None
    account: str | None = None
    degraded_after_ms: float | None = None
    origin: str = field(default="", compare=False)


@dataclass(frozen=True)
class ServiceResult:
    """What one HTTP or TCP check measured.

    `reason` says why a check is degraded or failed ("status 500", "timeout after 5 s", "DNS error:
    ...", "connection refused", "TLS error: ...", "body mismatch", "certificate expires in 3 days");
    None when ok. `elapsed_ms` is the response (or connect) time, `status_code` and `size_bytes`
    those of the HTTP response when one came, `excerpt` the first bytes of the body of a failed
    check (bounded; never request headers or anything the check sent).
    """

    name: str
    status: CheckStatus
    reason: str | None
    elapsed_ms: float | None
    status_code: int | None = None
    size_bytes: int | None = None
    excerpt: str | None = None


def shown_target(spec: HttpCheckSpec | TcpCheckSpec) -> str:
    """What a check is about, safe to store, show and send: the URL without its user part, query and
    fragment (each may hold a secret), or host:port; cut around '...' to the stored width."""
    if isinstance(spec, TcpCheckSpec):
        host = f"[{spec.host}]" if ":" in spec.host else spec.host
        return clip(f"{host}:{spec.port}", limits.ADDRESS_COLUMN)
    parts = urlsplit(spec.url)
    return clip(urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", "")),
                limits.ADDRESS_COLUMN)
