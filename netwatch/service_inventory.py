"""The HTTP and TCP checks, from `http_checks:` / `tcp_checks:` in the YAML config or their CSV files.

A YAML list item and a CSV row are read by the same rules: in YAML a value has its YAML type (a
number is a number), in CSV every cell is text, read as the key's type. Errors name the list index
and key (`http_checks[3].url`) or the file, line and column (`checks.csv line 7: url`). They never
show a header's value, a URL's user part or anything of a password.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from netwatch import files, limits
from netwatch.core.addresses import is_ipv4
from netwatch.csvfile import FALSE_WORDS, TRUE_WORDS, csv_rows
from netwatch.encryption import value_problem
from netwatch.errors import ConfigError
from netwatch.excerpt import clip, excerpt
from netwatch.inventory import NAME_PATTERN
from netwatch.services import DEFAULT_EXPECTED_STATUS, METHODS, HttpCheckSpec, TcpCheckSpec

HTTP_REQUIRED_COLUMNS = ("name", "url", "client", "account")
HTTP_OPTIONAL_COLUMNS = (
    "method", "body", "expected_status", "timeout_seconds", "follow_redirects", "body_contains", "body_matches",
    "headers", "degraded_after_ms", "verify_tls", "ca_file", "cert_expiry_warning_days", "username",
    "password_encrypted",
)
TCP_REQUIRED_COLUMNS = ("name", "host", "port", "client", "account")
TCP_OPTIONAL_COLUMNS = ("timeout_seconds", "degraded_after_ms")

MAX_TIMEOUT_S = 300.0
URL_MAX_CHARS = 2048
BODY_MAX_CHARS = 65_536
PATTERN_MAX_CHARS = 1024
USERNAME_MAX_CHARS = 255
MAX_HEADERS = 50
HEADER_VALUE_MAX_CHARS = 8192
MAX_CERT_WARNING_DAYS = 3650
CA_FILE_MAX_BYTES = 4 * 1024 * 1024
_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
PLAIN_PASSWORD = ("a password is never kept in plain text: put the value `netwatch secret encrypt` prints "
                  "in password_encrypted")
# Headers netwatch sets itself, or that would hold a credential in plain text.
_REFUSED_HEADERS = {
    "authorization": "a credential in plain text: use username and password_encrypted (Basic-Auth)",
    "proxy-authorization": "a credential in plain text",
    "content-length": "netwatch sets it from the body",
    "transfer-encoding": "netwatch sets it from the body",
}
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")
_HOST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$")
_DOTTED_NUMBERS = re.compile(r"^[0-9.]+$")
_STATUS_PART = re.compile(r"^([0-9]{3})(?:\s*-\s*([0-9]{3}))?$")


def http_checks_from_yaml(items: Any, source: str, base_dir: Path) -> Iterator[HttpCheckSpec]:
    """HTTP checks listed under `http_checks:`; a relative ca_file is taken from `base_dir`."""
    ca_files = _CaFiles(base_dir)
    keys = (*HTTP_REQUIRED_COLUMNS, *HTTP_OPTIONAL_COLUMNS)
    for fields in _yaml_items(items, source, "http_checks", keys, {"password": PLAIN_PASSWORD}):
        yield _http_check(fields, ca_files)


def http_checks_from_csv(path: Path, where: str, base_dir: Path) -> Iterator[HttpCheckSpec]:
    """HTTP checks of a CSV file (header name,url,client,account[,...]); `where` names its config key."""
    ca_files = _CaFiles(base_dir)
    rows = csv_rows(path, where, "HTTP checks file", HTTP_REQUIRED_COLUMNS, HTTP_OPTIONAL_COLUMNS,
                    refused={"password": PLAIN_PASSWORD})
    for origin, values in rows:
        yield _http_check(_Fields(values, origin, from_csv=True), ca_files)


def tcp_checks_from_yaml(items: Any, source: str) -> Iterator[TcpCheckSpec]:
    """TCP checks listed under `tcp_checks:`."""
    for fields in _yaml_items(items, source, "tcp_checks", (*TCP_REQUIRED_COLUMNS, *TCP_OPTIONAL_COLUMNS), {}):
        yield _tcp_check(fields)


def tcp_checks_from_csv(path: Path, where: str) -> Iterator[TcpCheckSpec]:
    """TCP checks of a CSV file (header name,host,port,client,account[,timeout_seconds,degraded_after_ms])."""
    for origin, values in csv_rows(path, where, "TCP checks file", TCP_REQUIRED_COLUMNS, TCP_OPTIONAL_COLUMNS):
        yield _tcp_check(_Fields(values, origin, from_csv=True))


def parse_expected_status(value: Any) -> tuple[tuple[int, int], ...]:
    """Inclusive code ranges from "200-299,301", a code, or a list of either; ValueError says what is wrong."""
    items = value if isinstance(value, list) else [value]
    ranges: list[tuple[int, int]] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise ValueError(f"must be codes and ranges such as \"200-299,301\" or a list of them, got {excerpt(item)}")
        for part in str(item).split(","):
            match = _STATUS_PART.match(part.strip())
            if match is None:
                raise ValueError(f"{excerpt(part.strip())} is not a status code (100-599) or a range such as 200-299")
            low, high = int(match[1]), int(match[2] or match[1])
            if not (100 <= low <= 599 and 100 <= high <= 599):
                raise ValueError(f"{excerpt(part.strip())}: status codes are 100 to 599")
            if low > high:
                raise ValueError(f"{excerpt(part.strip())}: the range ends below its start")
            ranges.append((low, high))
    if not ranges:
        raise ValueError("lists no status code")
    return tuple(ranges)


class _Fields:
    """One check's values by key; `from_csv`: every value is a cell's text, else it has its YAML type."""

    def __init__(self, values: Mapping[str, Any], origin: str, from_csv: bool) -> None:
        self.values = values
        self.origin = origin
        self.from_csv = from_csv

    def where(self, key: str) -> str:
        return f"{self.origin}: {key}" if self.from_csv else f"{self.origin}.{key}"

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.where(key)}: {problem}")

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def text(self, key: str, width: int, *, strip: bool = True, shown: bool = True) -> str | None:
        """A string of at most `width` characters (None when absent); `shown`: an error may quote it."""
        value = self.values.get(key)
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            got = f" {excerpt(value)}" if shown else ""
            raise self.error(key, f"must be a quoted string, got the number{got}")
        if not isinstance(value, str) or not value.strip():
            got = f", got {excerpt(value)}" if shown else ""
            raise self.error(key, f"must be a non-empty string{got}")
        value = value.strip() if strip else value
        if len(value) > width:
            raise self.error(key, f"longer than {width} characters")
        return value

    def number(self, key: str, default: float, maximum: float) -> float:
        """A number above 0 and at most `maximum`."""
        value = self.values.get(key)
        if value is None:
            return default
        if self.from_csv:
            try:
                value = float(value)
            except ValueError:
                raise self.error(key, f"must be a number, got {excerpt(value)}") from None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.error(key, f"must be a number, got {excerpt(value)}")
        if not 0 < value <= maximum:
            raise self.error(key, f"must be more than 0 and at most {maximum:g}, got {excerpt(value)}")
        return float(value)

    def integer(self, key: str, minimum: int, maximum: int) -> int | None:
        value = self.values.get(key)
        if value is None:
            return None
        if self.from_csv:
            if not value.isascii() or not value.isdigit():
                raise self.error(key, f"must be a whole number, got {excerpt(value)}")
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be a whole number, got {excerpt(value)}")
        if not minimum <= value <= maximum:
            raise self.error(key, f"must be {minimum} to {maximum}, got {excerpt(value)}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.values.get(key)
        if value is None:
            return default
        if self.from_csv and value.lower() in TRUE_WORDS | FALSE_WORDS:
            return value.lower() in TRUE_WORDS
        if isinstance(value, str) and not self.from_csv:
            raise self.error(key, f"must be true or false, got the string {excerpt(value)} "
                                  "(YAML booleans are unquoted: true or false)")
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {excerpt(value)}")
        return value


def _yaml_items(items: Any, source: str, key: str, known: Sequence[str],
                refused: Mapping[str, str]) -> Iterator[_Fields]:
    if items is None:
        return
    if not isinstance(items, list):
        raise ConfigError(f"{source}: {key}: must be a list of checks")
    for index, item in enumerate(items):
        origin = f"{source}: {key}[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{origin}: must be a mapping with a name")
        for name in sorted(map(str, item)):
            if name in refused:
                raise ConfigError(f"{origin}.{name}: unknown key: {refused[name]}")
            if name not in known:
                raise ConfigError(f"{origin}.{clip(name)}: unknown key")
        yield _Fields(item, origin, from_csv=False)


def _name(fields: _Fields, kind: str) -> str:
    name = fields.text("name", limits.HOST_NAME)
    if name is None:
        raise fields.error("name", f"is empty (every {kind} has a unique name)")
    if not NAME_PATTERN.match(name):
        raise fields.error("name", f"invalid name {excerpt(name)} (letters, digits and ._:@/- only)")
    return name


def _owner(fields: _Fields) -> tuple[str | None, str | None]:
    """The check's client and account."""
    return fields.text("client", limits.CLIENT), fields.text("account", limits.ACCOUNT)


def _http_check(fields: _Fields, ca_files: _CaFiles) -> HttpCheckSpec:
    name = _name(fields, "HTTP check")
    url = _url(fields)
    method = _method(fields)
    body = fields.text("body", BODY_MAX_CHARS, strip=False)
    if body is not None and method != "POST":
        raise fields.error("body", f"only a POST sends a body (method is {method})")
    timeout = fields.number("timeout_seconds", HttpCheckSpec.timeout_seconds, MAX_TIMEOUT_S)
    body_contains = fields.text("body_contains", PATTERN_MAX_CHARS, strip=False)
    body_matches = _pattern(fields)
    for key, given in (("body_contains", body_contains), ("body_matches", body_matches)):
        if given is not None and method == "HEAD":
            raise fields.error(key, "the answer to a HEAD request has no body to look at")
    verify_tls = fields.boolean("verify_tls", HttpCheckSpec.verify_tls)
    ca_file = ca_files.check(fields)
    if ca_file is not None and not verify_tls:
        raise fields.error("ca_file", "needs verify_tls: true (it names the CA to verify the server with)")
    username, password_encrypted = _basic_auth(fields)
    client, account = _owner(fields)
    return HttpCheckSpec(
        name=name, url=url, method=method, body=body, client=client, account=account,
        expected_status=_expected_status(fields), timeout_seconds=timeout,
        follow_redirects=fields.boolean("follow_redirects", HttpCheckSpec.follow_redirects),
        body_contains=body_contains, body_matches=body_matches, headers=_headers(fields),
        degraded_after_ms=_degraded_after(fields, timeout), verify_tls=verify_tls, ca_file=ca_file,
        cert_expiry_warning_days=fields.integer("cert_expiry_warning_days", 1, MAX_CERT_WARNING_DAYS),
        username=username, password_encrypted=password_encrypted, origin=fields.origin,
    )


def _tcp_check(fields: _Fields) -> TcpCheckSpec:
    name = _name(fields, "TCP check")
    host = _host(fields)
    port = fields.integer("port", 1, 65535)
    if port is None:
        raise fields.error("port", f"is empty (TCP check {excerpt(name)})")
    timeout = fields.number("timeout_seconds", TcpCheckSpec.timeout_seconds, MAX_TIMEOUT_S)
    client, account = _owner(fields)
    return TcpCheckSpec(name=name, host=host, port=port, timeout_seconds=timeout, client=client, account=account,
                        degraded_after_ms=_degraded_after(fields, timeout), origin=fields.origin)


def _url(fields: _Fields) -> str:
    url = fields.text("url", URL_MAX_CHARS, shown=False)
    if url is None:
        raise fields.error("url", "is empty")
    try:
        parts = urlsplit(url)
    except ValueError:
        # Not echoed: it may hold a user part.
        raise fields.error("url", "is not a valid URL (a bracketed IPv6 address not closed?)") from None
    if "@" in parts.netloc:
        # Not echoed: the part before @ is a user name and most likely a password.
        raise fields.error("url", "holds a user part (user:password@): a credential in plain text; use username "
                                  "and password_encrypted")
    if any(char.isspace() or unicodedata.category(char) == "Cc" for char in url):
        raise fields.error("url", f"contains a space or a control character: {excerpt(url)}")
    if parts.scheme.lower() not in ("http", "https"):
        raise fields.error("url", f"must start with http:// or https://, got {excerpt(url)}")
    try:
        host, _port = parts.hostname, parts.port
    except ValueError:
        raise fields.error("url", f"has an invalid port or address: {excerpt(url)}") from None
    if not host:
        raise fields.error("url", f"names no host: {excerpt(url)}")
    return url


def _method(fields: _Fields) -> str:
    value = fields.get("method")
    if value is None:
        return "GET"
    if not isinstance(value, str) or value.strip().upper() not in METHODS:
        raise fields.error("method", f"must be one of {', '.join(METHODS)}, got {excerpt(value)}")
    return value.strip().upper()


def _expected_status(fields: _Fields) -> tuple[tuple[int, int], ...]:
    value = fields.get("expected_status")
    if value is None:
        return DEFAULT_EXPECTED_STATUS
    try:
        return parse_expected_status(value)
    except ValueError as exc:
        raise fields.error("expected_status", str(exc)) from None


def _pattern(fields: _Fields) -> re.Pattern[str] | None:
    text = fields.text("body_matches", PATTERN_MAX_CHARS, strip=False)
    if text is None:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise fields.error("body_matches", f"is not a regular expression: {exc.msg} at position {exc.pos}") from None


def _headers(fields: _Fields) -> tuple[tuple[str, str], ...]:
    value = fields.get("headers")
    if value is None:
        return ()
    if fields.from_csv:
        try:
            value = json.loads(value)
        except ValueError:
            raise fields.error("headers", 'must be a JSON object of header names and values, e.g. {"X-Probe": "1"}'
                               ) from None
    if not isinstance(value, Mapping):
        raise fields.error("headers", "must map header names to values")
    if len(value) > MAX_HEADERS:
        raise fields.error("headers", f"more than {MAX_HEADERS} headers")
    headers: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, text in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise fields.error("headers", f"{excerpt(name)} is not a header name (letters, digits and !#$%&'*+.^_`|~-)")
        where = f"headers.{name}" if not fields.from_csv else f"headers: {name}"
        if name.lower() in _REFUSED_HEADERS:
            raise fields.error(where, f"not accepted: {_REFUSED_HEADERS[name.lower()]}")
        if name.lower() in seen:
            raise fields.error(where, "named twice (header names are case-insensitive)")
        seen.add(name.lower())
        # Values are never echoed: a header may carry an API key.
        if isinstance(text, int) and not isinstance(text, bool):
            text = str(text)
        if not isinstance(text, str):
            raise fields.error(where, "the value must be a string")
        if any(unicodedata.category(char) == "Cc" and char != "\t" for char in text):
            raise fields.error(where, "the value contains a control character (a line break?)")
        if len(text) > HEADER_VALUE_MAX_CHARS:
            raise fields.error(where, f"the value is longer than {HEADER_VALUE_MAX_CHARS} characters")
        headers.append((name, text.strip()))
    return tuple(headers)


def _degraded_after(fields: _Fields, timeout_s: float) -> float | None:
    if fields.get("degraded_after_ms") is None:
        return None
    value = fields.number("degraded_after_ms", 0.0, MAX_TIMEOUT_S * 1000)
    if value >= timeout_s * 1000:
        raise fields.error("degraded_after_ms", f"must be below the timeout ({timeout_s * 1000:g} ms), got "
                                                f"{value:g}: a slower answer is a timeout")
    return value


def _basic_auth(fields: _Fields) -> tuple[str | None, str | None]:
    username = fields.text("username", USERNAME_MAX_CHARS)
    if username is not None and ":" in username:
        raise fields.error("username", "a Basic-Auth user name cannot hold ':'")
    if username is not None and any(unicodedata.category(char) == "Cc" for char in username):
        raise fields.error("username", "contains a control character")
    encrypted = fields.text("password_encrypted", BODY_MAX_CHARS, shown=False)
    if encrypted is None:
        if username is not None:
            raise fields.error("username", "needs password_encrypted (the Basic-Auth password, encrypted with "
                                           "`netwatch secret encrypt`)")
        return None, None
    if username is None:
        raise fields.error("password_encrypted", "needs username (Basic-Auth sends both)")
    problem = value_problem(encrypted)
    if problem is not None:
        raise fields.error("password_encrypted", problem)
    return username, encrypted


def _host(fields: _Fields) -> str:
    host = fields.text("host", limits.ADDRESS)
    if host is None:
        raise fields.error("host", "is empty")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise fields.error("host", f"invalid IPv6 address {excerpt(host)}") from None
        return host
    if _DOTTED_NUMBERS.match(host):
        if not is_ipv4(host):
            raise fields.error("host", f"invalid IPv4 address {excerpt(host)}")
        return host
    if not _HOST_NAME.match(host):
        raise fields.error("host", f"invalid host name {excerpt(host)}")
    return host


class _CaFiles:
    """Checks each ca_file once: a readable regular file holding a PEM certificate."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.checked: dict[Path, str | None] = {}

    def check(self, fields: _Fields) -> Path | None:
        name = fields.text("ca_file", 4096)
        if name is None:
            return None
        path = self.base_dir / name
        if path not in self.checked:
            self.checked[path] = _ca_problem(path)
        problem = self.checked[path]
        if problem is not None:
            raise fields.error("ca_file", problem)
        return path


def _ca_problem(path: Path) -> str | None:
    try:
        data = files.read_file(path, CA_FILE_MAX_BYTES).data
    except files.UnreadableFile as exc:
        return f"cannot read {clip(str(path))}: {exc.reason}"
    if _CERTIFICATE not in data:
        return f"{clip(str(path))} holds no PEM certificate (a {_CERTIFICATE.decode()} line)"
    return None
