"""YAML config + environment overrides -> frozen dataclasses. Every error names file and key path."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netwatch import files, limits
from netwatch.core.addresses import ADDRESS_FAMILIES, AUTO, ip_version
from netwatch.core.hoststate import Thresholds
from netwatch.db.url import DEFAULT_SQLITE_FILE, FILE_KEY, resolve_paths
from netwatch.errors import ConfigError
from netwatch.excerpt import clip, excerpt
from netwatch.heartbeat import template_problem
from netwatch.inventory import HostSpec, hosts_from_csv, hosts_from_yaml
from netwatch.notify.templates import validate_overrides
from netwatch.service_inventory import (
    http_checks_from_csv,
    http_checks_from_yaml,
    tcp_checks_from_csv,
    tcp_checks_from_yaml,
)
from netwatch.services import HttpCheckSpec, TcpCheckSpec
from netwatch.yamldoc import parse_yaml

DEFAULT_DATABASE_URL = f"sqlite:///{DEFAULT_SQLITE_FILE}"
ENV_DATABASE_URL = "NETWATCH_DATABASE_URL"
# A file holding the URL (a mounted Kubernetes Secret), in place of the variable.
ENV_DATABASE_URL_FILE = "NETWATCH_DATABASE_URL_FILE"
# Where a URL may come from besides the config file's database.url: its errors name the source.
FILE_URL_KEY = "database.url_file"
ENVIRONMENT_URL_KEYS = (ENV_DATABASE_URL, ENV_DATABASE_URL_FILE)
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
# `ping.socket`: the ICMP socket kind of the sweeps (netwatch/probes/icmp.py); auto takes datagram where permitted.
PING_SOCKETS = ("auto", "raw", "datagram")


@dataclass(frozen=True)
class RunConfig:
    deadline_seconds: float = 300.0
    lease_seconds: float = 120.0
    clock_tolerance_seconds: float = 60.0


@dataclass(frozen=True)
class PingConfig:
    count: int = 3
    timeout_seconds: float = 1.0
    interval_ms: int = 200
    rate_limit_pps: int = 1000
    retries: int = 1
    loss_degraded_percent: float = 20.0
    latency_degraded_ms: float = 500.0
    resolve_concurrency: int = 32
    socket: str = "auto"
    address_family: str = AUTO  # auto, "4" or "6" (netwatch/core/addresses.py)


@dataclass(frozen=True)
class HistoryConfig:
    """`gap_limit_seconds`: the longest time between two checks of a host that counts as observed."""

    gap_limit_seconds: int = 900


@dataclass(frozen=True)
class ApiConfig:
    """Connection settings of one external API; the token itself is read later, never stored here."""

    section: str
    base_url: str | None
    token_env: str
    token_file: Path | None
    timeout_seconds: float


@dataclass(frozen=True)
class SegwareConfig:
    api: ApiConfig
    cache_ttl_seconds: int = 3600


@dataclass(frozen=True)
class SigmaConfig:
    """Event codes: a host offline / online again, an HTTP or TCP check down / up again."""

    api: ApiConfig
    offline_code: str = "E356"
    online_code: str = "R356"
    http_down_code: str = "E357"
    http_up_code: str = "R357"
    max_attempts: int = 10
    retry_backoff_seconds: float = 60.0


@dataclass(frozen=True)
class HttpConfig:
    """How the HTTP and TCP checks run: checks at once, body bytes read, the bound on the whole pass."""

    concurrency: int = 50
    max_body_bytes: int = 1024 * 1024
    run_deadline_seconds: float = 45.0


@dataclass(frozen=True)
class HeartbeatConfig:
    """Dead-man's-switch pings of every run (netwatch/heartbeat.py); `url` None: off."""

    url: str | None = None
    timeout_seconds: float = 5.0


@dataclass(frozen=True)
class MetricsConfig:
    """Where each run's Prometheus metrics go (netwatch/metrics.py); neither set: nowhere."""

    pushgateway_url: str | None = None
    textfile_dir: Path | None = None
    timeout_seconds: float = 5.0


@dataclass(frozen=True)
class EncryptionConfig:
    """`key_file`: the file holding the key of the checks' encrypted passwords (netwatch.passwords)."""

    key_file: Path | None = None


@dataclass(frozen=True)
class EventScanConfig:
    codes: Mapping[str, int] = field(default_factory=dict)   # code -> threshold (defaults resolved)
    window_minutes: int = 120
    default_threshold: int = 50
    page_size: int = 500
    clear_below_percent: float = 100.0
    expire_minutes: float = 60.0
    min_slice_seconds: int = 60
    record_floor: int = 10


@dataclass(frozen=True)
class ChannelPolicy:
    """What every notification channel has: spacing per subject and whether recoveries go out."""

    cooldown_seconds: float
    send_recovery: bool


@dataclass(frozen=True)
class EmailConfig:
    host: str
    port: int
    starttls: bool
    tls: bool
    username: str | None
    password_env: str
    sender: str
    recipients: tuple[str, ...]
    timeout_seconds: float
    policy: ChannelPolicy
    # A file holding the password (a mounted Secret), read instead of password_env.
    password_file: Path | None = None


@dataclass(frozen=True)
class WebhookConfig:
    api: ApiConfig
    policy: ChannelPolicy


@dataclass(frozen=True)
class WhatsappConfig:
    api: ApiConfig
    recipients: tuple[str, ...]
    policy: ChannelPolicy


@dataclass(frozen=True)
class SegwareAlarmConfig:
    code: str
    recovery_code: str | None
    policy: ChannelPolicy


@dataclass(frozen=True)
class NotificationsConfig:
    email: EmailConfig | None = None
    webhook: WebhookConfig | None = None
    whatsapp: WhatsappConfig | None = None
    segware_alarm: SegwareAlarmConfig | None = None
    templates: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    max_attempts: int = 10
    retry_backoff_seconds: float = 60.0

    def policies(self) -> dict[str, ChannelPolicy]:
        """The policy of every configured channel, by channel name."""
        channels = {"email": self.email, "webhook": self.webhook, "whatsapp": self.whatsapp,
                    "segware_alarm": self.segware_alarm}
        return {name: channel.policy for name, channel in channels.items() if channel is not None}


# Jobs whose staleness the status page watches, with the default age (minutes) of a stale last success:
# a few periods of each job's schedule (cleanup's is hourly: two missed runs; http-check runs every
# minute, like ping-sweep).
STATUS_PAGE_JOBS = {"ping-sweep": 10, "event-scan": 10, "alert-clear": 30, "cleanup": 120, "http-check": 10}
# Watched only when the config has HTTP or TCP checks: without any the job has nothing to do (a site
# need not schedule it), and an upgrade must not make a banner call a job that was never run stale.
CHECK_JOBS = frozenset({"http-check"})


def stale_ages(ages: Mapping[str, int | None], has_checks: bool) -> dict[str, int | None]:
    """The ages of the jobs the banner watches for a config with or without HTTP and TCP checks."""
    return {job: None if job in CHECK_JOBS and not has_checks else age for job, age in ages.items()}


@dataclass(frozen=True)
class StatusPageConfig:
    """`stale_after_minutes`: per watched job, how old its last successful run may be (None: not watched)."""

    title: str = "netwatch status"
    stale_after_minutes: Mapping[str, int | None] = field(
        default_factory=lambda: stale_ages(STATUS_PAGE_JOBS, has_checks=False))


@dataclass(frozen=True)
class RetentionConfig:
    """Whole UTC days each kind of history is kept, before today (`netwatch run cleanup`), and its batch size."""

    raw_days: int = 14
    hourly_days: int = 90
    daily_days: int = 400
    transitions_days: int = 400
    runs_days: int = 90
    outbox_days: int = 30
    register_days: int = 400
    scan_counts_days: int = 14
    batch_rows: int = 5000


@dataclass(frozen=True)
class Config:
    """`database_key`: where `database_url` came from, for its errors (database.url or NETWATCH_DATABASE_URL)."""

    source: str
    database_url: str
    run: RunConfig
    ping: PingConfig
    thresholds: Thresholds
    hosts: tuple[HostSpec, ...]
    segware: SegwareConfig
    sigma: SigmaConfig
    event_scan: EventScanConfig = field(default_factory=EventScanConfig)
    notifications: NotificationsConfig = field(default_factory=NotificationsConfig)
    database_key: str = FILE_KEY
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    status_page: StatusPageConfig = field(default_factory=StatusPageConfig)
    http_checks: tuple[HttpCheckSpec, ...] = ()
    tcp_checks: tuple[TcpCheckSpec, ...] = ()
    http: HttpConfig = field(default_factory=HttpConfig)
    encryption: EncryptionConfig = field(default_factory=EncryptionConfig)
    heartbeat: HeartbeatConfig = field(default_factory=HeartbeatConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)


class _Section:
    """Reads typed keys of one mapping and complains, by key path, about anything else."""

    def __init__(self, data: Any, path: str, source: str) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: {path or 'top level'}: must be a mapping")
        self.data = dict(data)
        self.path = path
        self.source = source

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {clip(self._key(key))}: {problem}")

    def section(self, key: str) -> _Section:
        return _Section(self.data.pop(key, None), self._key(key), self.source)

    def optional_section(self, key: str) -> _Section | None:
        """A sub-section, or None when the key is absent or null (a channel left off)."""
        if self.data.get(key) is None:
            self.data.pop(key, None)
            return None
        return self.section(key)

    def strings(self, key: str, required: bool = False) -> tuple[str, ...]:
        """A string or a list of strings (e-mail recipients, phone numbers)."""
        value = self.data.pop(key, None)
        items = [value] if isinstance(value, str) else value if isinstance(value, list) else None
        if value is None and not required:
            return ()
        if not items or not all(isinstance(item, str) and item.strip() for item in items):
            raise self.error(key, f"must be a non-empty string or list of strings, got {excerpt(value)}")
        return tuple(item.strip() for item in items)

    def raw(self, key: str) -> Any:
        return self.data.pop(key, None)

    def integer(self, key: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self.data.pop(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be a whole number, got {excerpt(value)}")
        self._check_range(key, value, minimum, maximum)
        return value

    def number(self, key: str, default: float, minimum: float | None = None, maximum: float | None = None) -> float:
        value = self.data.pop(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.error(key, f"must be a number, got {excerpt(value)}")
        self._check_range(key, value, minimum, maximum)
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.pop(key, default)
        if isinstance(value, str):
            raise self.error(key, f"must be true or false, got the string {excerpt(value)} "
                                  "(YAML booleans are unquoted: true or false)")
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {excerpt(value)}")
        return value

    def text(self, key: str, default: str | None) -> str | None:
        value = self.data.pop(key, default)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"must be a non-empty string, got {excerpt(value)}")
        return value.strip()

    def _check_range(self, key: str, value: float, minimum: float | None, maximum: float | None) -> None:
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {excerpt(value)}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be at most {maximum}, got {excerpt(value)}")

    def done(self) -> None:
        if self.data:
            key = sorted(map(str, self.data))[0]
            raise self.error(key, "unknown key")


def load_config(path: Path, env: Mapping[str, str]) -> Config:
    """Loads and validates `path`; `env` supplies overrides (NETWATCH_DATABASE_URL)."""
    source = str(path)
    try:
        raw = files.read_file(path, files.CONFIG_MAX_BYTES).data
    except files.UnreadableFile as exc:
        if exc.missing:
            raise ConfigError(f"{source}: config file not found (create one with `netwatch init-config`)") from None
        raise ConfigError(f"{source}: cannot read config file: {exc.reason}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: config file is not UTF-8 text (byte {exc.start})") from None
    return parse_config(parse_yaml(text, source), source, path.parent, env)


def parse_config(data: Any, source: str, base_dir: Path, env: Mapping[str, str]) -> Config:
    """Validates already-parsed YAML data; relative paths in it (hosts_file, token_file, a SQLite file) are
    taken from `base_dir`."""
    top = _Section(data, "", source)

    database = top.section("database")
    # Relative paths in the file's URL (a SQLite file, ssl_* files) are the file's neighbours, like
    # hosts_file; from the environment they are relative to the current directory, as any path given
    # on a command line. Either way the URL is made absolute here, so what a run shows is what it opens.
    url, database_key = _database_url(database, base_dir, env)
    database.done()

    run = top.section("run")
    run_config = RunConfig(
        deadline_seconds=run.number("deadline_seconds", RunConfig.deadline_seconds, minimum=1),
        lease_seconds=run.number("lease_seconds", RunConfig.lease_seconds, minimum=10),
        clock_tolerance_seconds=run.number("clock_tolerance_seconds", RunConfig.clock_tolerance_seconds, minimum=1),
    )
    run.done()

    ping = top.section("ping")
    ping_config = PingConfig(
        count=ping.integer("count", PingConfig.count, minimum=1, maximum=100),
        timeout_seconds=ping.number("timeout_seconds", PingConfig.timeout_seconds, minimum=0.01, maximum=60),
        interval_ms=ping.integer("interval_ms", PingConfig.interval_ms, minimum=0, maximum=60_000),
        rate_limit_pps=ping.integer("rate_limit_pps", PingConfig.rate_limit_pps, minimum=1, maximum=100_000),
        retries=ping.integer("retries", PingConfig.retries, minimum=0, maximum=10),
        loss_degraded_percent=ping.number(
            "loss_degraded_percent", PingConfig.loss_degraded_percent, minimum=0, maximum=100
        ),
        latency_degraded_ms=ping.number("latency_degraded_ms", PingConfig.latency_degraded_ms, minimum=0),
        resolve_concurrency=ping.integer("resolve_concurrency", PingConfig.resolve_concurrency, minimum=1, maximum=256),
        socket=_ping_socket(ping),
        address_family=_address_family(ping),
    )
    ping.done()

    thresholds = top.section("thresholds")
    threshold_config = Thresholds(
        down_after=thresholds.integer("down_after", 3, minimum=1),
        up_after=thresholds.integer("up_after", 2, minimum=1),
        min_transition_seconds=thresholds.number("min_transition_seconds", 300.0, minimum=0),
        notify_initial=thresholds.boolean("notify_initial", False),
    )
    thresholds.done()

    hosts = list(hosts_from_yaml(top.raw("hosts"), source))
    hosts_file = top.text("hosts_file", None)
    if hosts_file is not None:
        hosts.extend(hosts_from_csv(base_dir / hosts_file, f"{source}: hosts_file"))
    http_checks = list(http_checks_from_yaml(top.raw("http_checks"), source, base_dir))
    http_checks_file = top.text("http_checks_file", None)
    if http_checks_file is not None:
        http_checks.extend(http_checks_from_csv(base_dir / http_checks_file, f"{source}: http_checks_file", base_dir))
    tcp_checks = list(tcp_checks_from_yaml(top.raw("tcp_checks"), source))
    tcp_checks_file = top.text("tcp_checks_file", None)
    if tcp_checks_file is not None:
        tcp_checks.extend(tcp_checks_from_csv(base_dir / tcp_checks_file, f"{source}: tcp_checks_file"))
    _reject_other_family(hosts, ping_config.address_family)
    _reject_duplicate_names([("host", host.name, host.origin) for host in hosts]
                            + [("HTTP check", check.name, check.origin) for check in http_checks]
                            + [("TCP check", check.name, check.origin) for check in tcp_checks])

    segware = top.section("segware")
    segware_config = SegwareConfig(
        api=_api(segware, "NETWATCH_SEGWARE_TOKEN", base_dir),
        cache_ttl_seconds=segware.integer("cache_ttl_seconds", SegwareConfig.cache_ttl_seconds, minimum=0),
    )
    segware.done()

    sigma = top.section("sigma")
    sigma_config = SigmaConfig(
        api=_api(sigma, "NETWATCH_SIGMA_TOKEN", base_dir),
        offline_code=sigma.text("offline_code", SigmaConfig.offline_code) or SigmaConfig.offline_code,
        online_code=sigma.text("online_code", SigmaConfig.online_code) or SigmaConfig.online_code,
        max_attempts=sigma.integer("max_attempts", SigmaConfig.max_attempts, minimum=1),
        retry_backoff_seconds=sigma.number("retry_backoff_seconds", SigmaConfig.retry_backoff_seconds, minimum=0),
        http_down_code=sigma.text("http_down_code", SigmaConfig.http_down_code) or SigmaConfig.http_down_code,
        http_up_code=sigma.text("http_up_code", SigmaConfig.http_up_code) or SigmaConfig.http_up_code,
    )
    sigma.done()

    event_scan = _event_scan(top.section("event_scan"))

    history = top.section("history")
    history_config = HistoryConfig(gap_limit_seconds=history.integer(
        "gap_limit_seconds", HistoryConfig.gap_limit_seconds, minimum=1, maximum=86_400))
    history.done()
    notifications = _notifications(top.section("notifications"), segware_config, base_dir)
    retention = _retention(top.section("retention"))
    status_page = _status_page(top.section("status_page"), has_checks=bool(http_checks or tcp_checks))
    http = _http(top.section("http"))
    heartbeat = _heartbeat(top.section("heartbeat"))
    metrics = _metrics(top.section("metrics"), base_dir)
    encryption = top.section("encryption")
    key_file = encryption.text("key_file", None)
    encryption.done()

    top.done()
    return Config(
        source=source,
        database_url=url,
        run=run_config,
        ping=ping_config,
        thresholds=threshold_config,
        hosts=tuple(hosts),
        segware=segware_config,
        sigma=sigma_config,
        event_scan=event_scan,
        notifications=notifications,
        database_key=database_key,
        retention=retention,
        history=history_config,
        status_page=status_page,
        http_checks=tuple(http_checks),
        tcp_checks=tuple(tcp_checks),
        http=http,
        encryption=EncryptionConfig(key_file=base_dir / key_file if key_file else None),
        heartbeat=heartbeat,
        metrics=metrics,
    )


# A hundred years: more would reach before year 1 (no datetime) and keeps everything anyway.
_MAX_RETENTION_DAYS = 36_500


def _ping_socket(section: _Section) -> str:
    value = section.raw("socket")
    if value is None:
        return PingConfig.socket
    if value not in PING_SOCKETS:
        raise section.error("socket", f"must be one of {', '.join(PING_SOCKETS)}, got {excerpt(value)}")
    return str(value)


def _address_family(section: _Section) -> str:
    value = section.raw("address_family")
    if value is None:
        return PingConfig.address_family
    # YAML reads `4` as a number; "4" and 4 mean the same.
    if isinstance(value, bool) or str(value) not in ADDRESS_FAMILIES:
        raise section.error("address_family", f"must be one of {', '.join(ADDRESS_FAMILIES)}, got {excerpt(value)}")
    return str(value)


def _reject_other_family(hosts: list[HostSpec], family: str) -> None:
    """An IP literal of the family ping.address_family excludes could never be pinged: a config error."""
    if family == AUTO:
        return
    for host in hosts:
        version = ip_version(host.address)
        if version is not None and str(version) != family:
            raise ConfigError(f"{host.origin}: address {excerpt(host.address)} is an IPv{version} address, but "
                              f"ping.address_family is {family} (host {excerpt(host.name)})")


def _retention(section: _Section) -> RetentionConfig:
    days = {name: section.integer(name, getattr(RetentionConfig, name), minimum=1, maximum=_MAX_RETENTION_DAYS)
            for name in RetentionConfig.__dataclass_fields__ if name.endswith("_days")}
    batch_rows = section.integer("batch_rows", RetentionConfig.batch_rows, minimum=1, maximum=100_000)
    # A host's raw checks are found by the starts of the ping-sweep runs (netwatch.history.timeline).
    if days["runs_days"] < days["raw_days"]:
        raise section.error("runs_days", f"must be at least raw_days ({days['raw_days']}), got {days['runs_days']}:"
                                         " `netwatch history` finds raw checks by their ping-sweep runs")
    section.done()
    return RetentionConfig(**days, batch_rows=batch_rows)


# As much of an answer as netwatch reads from any API (MAX_BODY_BYTES in netwatch/clients/http.py).
_MAX_CHECK_BODY_BYTES = 16 * 1024 * 1024


def _http(section: _Section) -> HttpConfig:
    config = HttpConfig(
        concurrency=section.integer("concurrency", HttpConfig.concurrency, minimum=1, maximum=1000),
        max_body_bytes=section.integer("max_body_bytes", HttpConfig.max_body_bytes, minimum=1,
                                       maximum=_MAX_CHECK_BODY_BYTES),
        run_deadline_seconds=section.number("run_deadline_seconds", HttpConfig.run_deadline_seconds, minimum=1,
                                            maximum=3600),
    )
    section.done()
    return config


def _database_url(database: _Section, base_dir: Path, env: Mapping[str, str]) -> tuple[str, str]:
    """The URL and where it came from: NETWATCH_DATABASE_URL, else the file NETWATCH_DATABASE_URL_FILE
    names, else database.url_file, else database.url (default: the embedded SQLite file)."""
    text, url_file = database.text("url", None), database.text("url_file", None)
    if text is not None and url_file is not None:
        raise database.error("url_file", "give database.url or database.url_file, not both")
    if env.get(ENV_DATABASE_URL) and env.get(ENV_DATABASE_URL_FILE):
        raise ConfigError(f"{ENV_DATABASE_URL} and {ENV_DATABASE_URL_FILE} are both set: give one")
    if env.get(ENV_DATABASE_URL):
        return resolve_paths(env[ENV_DATABASE_URL], Path.cwd()), ENV_DATABASE_URL
    if env.get(ENV_DATABASE_URL_FILE):
        path = Path(env[ENV_DATABASE_URL_FILE])
        return resolve_paths(_url_from_file(ENV_DATABASE_URL_FILE, path), Path.cwd()), ENV_DATABASE_URL_FILE
    if url_file is not None:
        return resolve_paths(_url_from_file(database.source + ": " + FILE_URL_KEY, base_dir / url_file),
                             base_dir), FILE_URL_KEY
    return resolve_paths(text or DEFAULT_DATABASE_URL, base_dir), FILE_KEY


def _url_from_file(where: str, path: Path) -> str:
    """The one line of a file holding a database URL (its trailing line break dropped)."""
    data = files.read_secret_file(where, path, files.TOKEN_FILE_MAX_BYTES)
    try:
        url = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: {clip(str(path))} is not UTF-8 text") from None
    if not url or "\n" in url:
        raise ConfigError(f"{where}: {clip(str(path))} must hold the database URL on one line")
    return url


def _heartbeat(section: _Section) -> HeartbeatConfig:
    # The URL is not echoed in errors: its path is usually the check's key.
    url = section.text("url", None)
    if url is not None:
        if not url.startswith(("http://", "https://")):
            raise section.error("url", "must start with http:// or https://")
        problem = template_problem(url)
        if problem is not None:
            raise section.error("url", problem)
    config = HeartbeatConfig(url=url, timeout_seconds=section.number(
        "timeout_seconds", HeartbeatConfig.timeout_seconds, minimum=0.1, maximum=30))
    section.done()
    return config


def _metrics(section: _Section, base_dir: Path) -> MetricsConfig:
    url = section.text("pushgateway_url", None)
    if url is not None:
        if not url.startswith(("http://", "https://")):
            raise section.error("pushgateway_url", "must start with http:// or https://")
        if "@" in url.split("/")[2]:
            # Not echoed: the part before the @ would be a password.
            raise section.error("pushgateway_url", "credentials in the URL are not supported")
    directory = section.text("textfile_dir", None)
    config = MetricsConfig(
        pushgateway_url=url, textfile_dir=base_dir / directory if directory else None,
        timeout_seconds=section.number("timeout_seconds", MetricsConfig.timeout_seconds, minimum=0.1, maximum=30))
    section.done()
    return config


def _event_scan(section: _Section) -> EventScanConfig:
    default_threshold = section.integer("default_threshold", EventScanConfig.default_threshold, minimum=1)
    raw_codes = section.raw("codes")
    codes: dict[str, int] = {}
    if raw_codes is not None:
        if not isinstance(raw_codes, Mapping):
            raise section.error("codes", "must be a mapping of alarm code to threshold (or null for the default)")
        for code, threshold in raw_codes.items():
            if not isinstance(code, str) or not code.strip():
                raise section.error("codes", f"alarm codes must be quoted strings, got {excerpt(code)}")
            if "," in code or len(code.strip()) > limits.CODE:
                raise section.error(f"codes.{code.strip()}",
                                    f"an alarm code has at most {limits.CODE} characters and no comma")
            if threshold is None:
                threshold = default_threshold
            if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
                raise section.error(f"codes.{code}", f"must be a whole number >= 1 or null, got {excerpt(threshold)}")
            if code.strip() in codes:
                raise section.error(f"codes.{code.strip()}", "listed twice")
            codes[code.strip()] = threshold
    config = EventScanConfig(
        codes=codes,
        window_minutes=section.integer("window_minutes", EventScanConfig.window_minutes, minimum=1, maximum=10080),
        default_threshold=default_threshold,
        page_size=section.integer("page_size", EventScanConfig.page_size, minimum=1, maximum=500),
        clear_below_percent=section.number(
            "clear_below_percent", EventScanConfig.clear_below_percent, minimum=0.01, maximum=100
        ),
        expire_minutes=section.number("expire_minutes", EventScanConfig.expire_minutes, minimum=1),
        min_slice_seconds=section.integer("min_slice_seconds", EventScanConfig.min_slice_seconds, minimum=1),
        record_floor=section.integer("record_floor", EventScanConfig.record_floor, minimum=1),
    )
    section.done()
    return config


def _status_page(section: _Section, has_checks: bool) -> StatusPageConfig:
    title = section.text("title", StatusPageConfig.title) or StatusPageConfig.title
    if len(title) > limits.LABEL:
        raise section.error("title", f"has at most {limits.LABEL} characters")
    ages = section.section("stale_after_minutes")
    stale: dict[str, int | None] = {}
    for job, default in STATUS_PAGE_JOBS.items():
        # null: the job is not run here, so its age says nothing.
        stale[job] = None if job in ages.data and ages.data[job] is None else ages.integer(
            job, default, minimum=1, maximum=525_600)
        ages.data.pop(job, None)
    ages.done()
    section.done()
    return StatusPageConfig(title=title, stale_after_minutes=stale_ages(stale, has_checks))


def _notifications(section: _Section, segware: SegwareConfig, base_dir: Path) -> NotificationsConfig:
    templates = section.raw("templates") or {}
    if not isinstance(templates, Mapping) or not all(
        isinstance(parts, Mapping) and all(isinstance(v, str) for v in parts.values()) for parts in templates.values()
    ):
        raise section.error("templates", "must map a message kind to {title: text, body: text}")
    try:
        validate_overrides(templates)
    except ValueError as exc:
        raise section.error("templates", clip(str(exc))) from None
    config = NotificationsConfig(
        email=_email(section.optional_section("email"), base_dir),
        webhook=_webhook(section.optional_section("webhook")),
        whatsapp=_whatsapp(section.optional_section("whatsapp"), base_dir),
        segware_alarm=_segware_alarm(section.optional_section("segware_alarm"), segware),
        templates={kind: dict(parts) for kind, parts in templates.items()},
        max_attempts=section.integer("max_attempts", NotificationsConfig.max_attempts, minimum=1),
        retry_backoff_seconds=section.number(
            "retry_backoff_seconds", NotificationsConfig.retry_backoff_seconds, minimum=0
        ),
    )
    section.done()
    return config


def _policy(section: _Section, send_recovery: bool = True) -> ChannelPolicy:
    return ChannelPolicy(
        cooldown_seconds=section.number("cooldown_seconds", 300.0, minimum=0),
        send_recovery=section.boolean("send_recovery", send_recovery),
    )


def _required(section: _Section, key: str) -> str:
    value = section.text(key, None)
    if value is None:
        raise section.error(key, "is required when this channel is configured")
    return value


def _env_name(section: _Section, key: str, default: str) -> str:
    name = section.raw(key)
    name = default if name is None else name
    if not isinstance(name, str) or not _ENV_NAME.match(name.strip()):
        # Not echoed: a value here that is no variable name is most likely the secret itself.
        raise section.error(key, "must be the NAME of an environment variable (A-Z, 0-9, _), not a secret")
    return name.strip()


def _url(section: _Section, key: str) -> str:
    url = _required(section, key)
    if not url.startswith(("http://", "https://")):
        raise section.error(key, "must start with http:// or https://")
    return url


def _email(section: _Section | None, base_dir: Path) -> EmailConfig | None:
    if section is None:
        return None
    tls = section.boolean("tls", False)
    password_file = section.text("password_file", None)
    config = EmailConfig(
        host=_required(section, "host"),
        port=section.integer("port", 465 if tls else 587, minimum=1, maximum=65535),
        starttls=section.boolean("starttls", not tls),
        tls=tls,
        username=section.text("username", None),
        password_env=_env_name(section, "password_env", "NETWATCH_SMTP_PASSWORD"),
        sender=_required(section, "from"),
        recipients=section.strings("to", required=True),
        timeout_seconds=section.number("timeout_seconds", 10.0, minimum=0.1, maximum=300),
        policy=_policy(section),
        password_file=base_dir / password_file if password_file else None,
    )
    if config.tls and config.starttls:
        raise section.error("starttls", "choose one of tls (implicit TLS, port 465) and starttls")
    section.done()
    return config


def _webhook(section: _Section | None) -> WebhookConfig | None:
    if section is None:
        return None
    config = WebhookConfig(
        api=ApiConfig(section=section.path, base_url=_url(section, "url"), token_env="", token_file=None,
                      timeout_seconds=section.number("timeout_seconds", 10.0, minimum=0.1, maximum=300)),
        policy=_policy(section),
    )
    section.done()
    return config


def _whatsapp(section: _Section | None, base_dir: Path) -> WhatsappConfig | None:
    if section is None:
        return None
    token_file = section.text("token_file", None)
    config = WhatsappConfig(
        api=ApiConfig(section=section.path, base_url=_url(section, "url"),
                      token_env=_env_name(section, "token_env", "NETWATCH_WHATSAPP_TOKEN"),
                      token_file=(base_dir / token_file) if token_file else None,
                      timeout_seconds=section.number("timeout_seconds", 10.0, minimum=0.1, maximum=300)),
        recipients=section.strings("to", required=True),
        policy=_policy(section),
    )
    section.done()
    return config


def _segware_alarm(section: _Section | None, segware: SegwareConfig) -> SegwareAlarmConfig | None:
    if section is None:
        return None
    enabled = section.boolean("enabled", False)
    code = section.text("code", None)
    recovery_code = section.text("recovery_code", None)
    policy = _policy(section, send_recovery=False)
    section.done()
    if not enabled:
        return None
    if code is None:
        raise section.error("code", "is required when segware_alarm is enabled")
    if policy.send_recovery and recovery_code is None:
        # A recovery injected with the alarm code would read as a second alarm.
        raise section.error("recovery_code", "is required when send_recovery is true (a restore code, e.g. R900)")
    if segware.api.base_url is None:
        raise section.error("enabled", "needs segware.base_url (alarms are posted to the Segware API)")
    return SegwareAlarmConfig(code=code, recovery_code=recovery_code, policy=policy)


def _api(section: _Section, default_env: str, base_dir: Path) -> ApiConfig:
    base_url = section.text("base_url", None)
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        raise section.error("base_url", f"must start with http:// or https://, got {excerpt(base_url)}")
    token_file = section.text("token_file", None)
    token_env = _env_name(section, "token_env", default_env)
    return ApiConfig(
        section=section.path,
        base_url=base_url.rstrip("/") if base_url else None,
        token_env=token_env,
        token_file=(base_dir / token_file) if token_file else None,
        timeout_seconds=section.number("timeout_seconds", 10.0, minimum=0.1, maximum=300),
    )


def _reject_duplicate_names(targets: list[tuple[str, str, str]]) -> None:
    """Refuses a name given twice among (kind, name, origin): hosts and checks share the `targets` rows."""
    seen: dict[str, tuple[str, str]] = {}
    for kind, name, origin in targets:
        if name not in seen:
            seen[name] = (kind, origin)
            continue
        first_kind, first_origin = seen[name]
        if first_kind == kind:
            raise ConfigError(f"{origin}: duplicate {kind} name {excerpt(name)} (first at {first_origin})")
        raise ConfigError(f"{origin}: duplicate name {excerpt(name)}: the {first_kind} at {first_origin} has it "
                          "(hosts, HTTP and TCP checks share their names)")


def config_path(option: str | None, env: Mapping[str, str]) -> Path:
    """The config file to use: --config, else NETWATCH_CONFIG, else ./netwatch.yaml."""
    return Path(option or env.get("NETWATCH_CONFIG") or "netwatch.yaml")
