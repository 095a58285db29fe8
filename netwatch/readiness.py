"""What `netwatch check-config` reports: which jobs a config is ready for, and why not the others.

It runs the checks the jobs run before any work, and nothing that needs a server: the database URL
(build_engine's check), every token a run reads (build_deps' reads), the SMTP password, each
job's own needs (its `config_problems`), and for http-check whether the HTTP checks' passwords
decrypt (the key is set and right): the other jobs run without the key. Raw-ICMP
permission (exit 77) is left out: it belongs to the machine that runs ping-sweep, not to the config.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from netwatch.config import ENVIRONMENT_URL_KEYS, Config
from netwatch.db.engine import safe_url
from netwatch.db.url import check_database_url
from netwatch.errors import ConfigError
from netwatch.jobs import alert_clear, cleanup, event_scan, http_check, ping_sweep, status_page
from netwatch.passwords import with_passwords
from netwatch.tokens import read_password, read_token, token_apis

# Each job and its own needs beyond the shared checks (ping-sweep and cleanup have none the config can miss).
_JOB_NEEDS: dict[str, Callable[[Config], list[str]]] = {
    ping_sweep.JOB: lambda _config: [],
    event_scan.JOB: event_scan.config_problems,
    alert_clear.JOB: alert_clear.config_problems,
    cleanup.JOB: lambda _config: [],
    status_page.JOB: lambda _config: [],
    # And the HTTP checks' passwords, which need the environment too (check_readiness).
    http_check.JOB: lambda _config: [],
}
JOBS = tuple(_JOB_NEEDS)


@dataclass(frozen=True)
class Readiness:
    """`problems` stop every job (the config is not valid); `needs` are each job's own missing pieces.

    `from_environment`: the problems that are not the config file's (a NETWATCH_DATABASE_URL the
    environment set), so the refusal does not put the file's name before them.
    """

    source: str
    hosts: int | None
    database: str | None
    problems: tuple[str, ...]
    needs: Mapping[str, tuple[str, ...]]
    from_environment: frozenset[str] = frozenset()
    http_checks: int | None = None
    tcp_checks: int | None = None

    @property
    def valid(self) -> bool:
        return not self.problems

    def reasons(self, job: str) -> tuple[str, ...]:
        """Why `job` would refuse to run (empty: it is ready)."""
        return self.problems + self.needs[job]

    def as_dict(self) -> dict[str, object]:
        return {
            "config": self.source, "valid": self.valid, "hosts": self.hosts, "http_checks": self.http_checks,
            "tcp_checks": self.tcp_checks, "database": self.database, "problems": list(self.problems),
            "jobs": {job: {"ready": not self.reasons(job), "reasons": list(self.reasons(job))} for job in JOBS},
        }

    def as_json(self) -> str:
        return json.dumps(self.as_dict()) + "\n"

    def as_text(self) -> str:
        counts = [_count(self.hosts, "host")]
        counts += [_count(count, kind) for count, kind in ((self.http_checks, "HTTP check"),
                                                           (self.tcp_checks, "TCP check")) if count]
        head = f"{self.source}: ok ({', '.join(counts)})" if self.valid else f"{self.source}: not valid"
        lines = [head, f"database: {self.database}"]
        for job in JOBS:
            reasons = self.reasons(job)
            lines.append(f"{job}: not ready: {'; '.join(reasons)}" if reasons else f"{job}: ready")
        return "\n".join(lines) + "\n"

    def refusal(self, required: Sequence[str]) -> ConfigError | None:
        """The error to exit 78 with: the config is not valid, or a job in `required` is not ready."""
        if self.problems:
            first = self.problems[0]
            return ConfigError(first if first in self.from_environment else f"{self.source}: {first}")
        for job in required:
            if self.reasons(job):
                return ConfigError(f"{self.source}: not ready for {job}: {self.reasons(job)[0]}")
        return None


def check_readiness(config: Config, env: Mapping[str, str]) -> Readiness:
    """Every check a job makes before its work, on `config` and the secrets `env` holds."""
    database = _problem(lambda: check_database_url(config.database_url, config.database_key))
    checks: list[Callable[[], object]] = [lambda api=api: read_token(api, env) for api in token_apis(config)]
    email = config.notifications.email
    if email is not None:
        checks.append(lambda: read_password(email, env))
    problems = tuple(problem for problem in (database, *map(_problem, checks)) if problem is not None)
    # A URL from the environment is not the config file's: its problem is shown without the file's name.
    from_environment = (frozenset({database}) if database and config.database_key in ENVIRONMENT_URL_KEYS
                        else frozenset())
    needs = {job: tuple(job_needs(config)) for job, job_needs in _JOB_NEEDS.items()}
    passwords = _problem(lambda: with_passwords(config.http_checks, env, config.encryption.key_file))
    if passwords is not None:
        needs[http_check.JOB] += (passwords,)
    return Readiness(source=config.source, hosts=len(config.hosts), database=safe_url(config.database_url),
                     problems=problems, needs=needs, from_environment=from_environment,
                     http_checks=len(config.http_checks), tcp_checks=len(config.tcp_checks))


def unloadable(source: str, error: ConfigError) -> Readiness:
    """The report of a config that does not load: its one error stops every job."""
    return Readiness(source=source, hosts=None, database=None, problems=(error.message,),
                     needs={job: () for job in JOBS})


def _count(count: int | None, kind: str) -> str:
    return f"1 {kind}" if count == 1 else f"{count} {kind}s"


def _problem(check: Callable[[], object]) -> str | None:
    try:
        check()
    except ConfigError as exc:
        return exc.message
    return None
