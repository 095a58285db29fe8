"""Dead-man's-switch pings around a run, in the style of Healthchecks.io (`heartbeat.url`).

A run that holds its lease pings `URL/start`; when it ends it pings `URL` (exit 0) or `URL/<exit
code>` (any other), both with the same `rid` (run id) query parameter, so the receiver can pair them
and time the run. A run that fails before its lease (database down: 69, clock off: 71) pings only
its exit code; one that finds the lease held (75) pings nothing, since the run holding it reports.
`{job}` and `{shard}` in the URL are filled in per run (`ping-sweep`, `0-of-1`), so one URL
template gives each job and shard a check of its own.

Each ping is one attempt with a short timeout; a ping that fails is a warning line and never the
run's failure. The URL is never logged: its path usually is the check's key.
"""

from __future__ import annotations

import logging
import string
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

PLACEHOLDERS = ("job", "shard")


def template_problem(template: str) -> str | None:
    """Why `template` cannot be filled in (an unknown or malformed placeholder), or None."""
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template)
                  if name is not None]
    except ValueError:
        return "has an unmatched { or }: placeholders are {job} and {shard}"
    for name, spec, conversion in fields:
        if name not in PLACEHOLDERS or spec or conversion:
            return f"unknown placeholder {{{name}}}: placeholders are {{job}} and {{shard}}"
    return None


def fill_in(template: str, job: str, shard: str) -> str:
    """The URL of one job and shard: `shard` "1/4" becomes "1-of-4" (a slash would add a path level)."""
    return template.format(job=job, shard=shard.replace("/", "-of-"))


def _with_suffix(url: str, suffix: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + suffix))


@dataclass(frozen=True)
class RunPings:
    """The pings of one run; with no URL (heartbeat off) each is a no-op."""

    url: str | None
    timeout_s: float
    session: requests.Session | None
    rid: str

    def start(self) -> None:
        self._send("/start", "start")

    def finish(self, exit_code: int) -> None:
        if exit_code == 0:
            self._send("", "success")
        else:
            self._send(f"/{exit_code}", f"exit {exit_code}")

    def _send(self, suffix: str, what: str) -> None:
        if self.url is None or self.session is None:
            return
        import requests

        try:
            response = self.session.get(_with_suffix(self.url, suffix), params={"rid": self.rid},
                                        timeout=(self.timeout_s, self.timeout_s), allow_redirects=False)
        except requests.RequestException as exc:
            log.warning("heartbeat: the %s ping failed (%s); the run goes on", what, type(exc).__name__)
            return
        response.close()
        if response.status_code >= 300:
            log.warning("heartbeat: the %s ping got HTTP %d; the run goes on", what, response.status_code)


@dataclass(frozen=True)
class Heartbeat:
    """`template`: heartbeat.url, or None (off)."""

    template: str | None
    timeout_s: float
    session: requests.Session | None

    def for_run(self, job: str, shard: str) -> RunPings:
        url = None if self.template is None else fill_in(self.template, job, shard)
        return RunPings(url, self.timeout_s, self.session, str(uuid.uuid4()))


OFF = Heartbeat(None, 0.0, None)
