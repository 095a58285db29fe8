"""`database.url` checked before any connection: each mistake is one line naming the key (exit 78).

Checks only what needs no server: the URL's shape, its options (PyMySQL's connect arguments that
netwatch supports, with their types), the files they name, and for SQLite the file and its folder.
Each message names where the URL came from (`database.url`, or NETWATCH_DATABASE_URL when the
environment set it); none holds the password.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from netwatch import files, limits
from netwatch.errors import ConfigError
from netwatch.excerpt import clip, excerpt

log = logging.getLogger(__name__)

FILE_KEY = "database.url"
# The file name of the embedded default, sqlite:///netwatch.db (beside the config file).
DEFAULT_SQLITE_FILE = "netwatch.db"
SQLITE_HEADER = b"SQLite format 3\x00"
TIMEOUT_MAX_SECONDS = 3600
# The query options of a MySQL URL: PyMySQL connect arguments (README lists what each means).
MYSQL_OPTIONS = ("charset", "connect_timeout", "read_timeout", "write_timeout", "ssl_ca", "ssl_cert", "ssl_key",
                 "ssl_verify_cert", "ssl_verify_identity", "unix_socket", "program_name")
_TIMEOUTS = ("connect_timeout", "read_timeout", "write_timeout")
_FILES = ("ssl_ca", "ssl_cert", "ssl_key")
_OTHERS = 0o006  # read or write permission for users outside the file's owner and group
_FLAGS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
_WHOLE = re.compile(r"^[0-9]{1,7}$")
_MYSQL_SHAPE = "mysql+pymysql://USER:PASSWORD@HOST/DATABASE"


@dataclass(frozen=True)
class DatabaseTarget:
    """What build_engine connects to: the URL without its query, the options it held, the SQLite file."""

    url: URL
    options: Mapping[str, Any] = field(default_factory=dict)
    sqlite_path: Path | None = None


class _Refusal(Exception):
    """What is wrong with the URL, in words that follow the key it came from."""


def check_database_url(url: str, key: str = FILE_KEY, read_only: bool = False) -> DatabaseTarget:
    """The checked target of `url`; ConfigError naming `key` for anything a run would trip over.

    `read_only`: for a command that only reads (a report). A SQLite file must then exist already,
    and neither it nor its folder needs to be writable.
    """
    try:
        parsed: URL = make_url(url)
    except (ArgumentError, ValueError):
        # ValueError: a port that is not a number, e.g. after an unencoded '@' in a password.
        raise ConfigError(f"{key}: not a database URL (use sqlite:///PATH or {_MYSQL_SHAPE})") from None
    try:
        return _check(url, parsed, key, read_only)
    except _Refusal as refusal:
        raise ConfigError(f"{key}: {refusal}") from None


def _check(url: str, parsed: URL, key: str, read_only: bool) -> DatabaseTarget:
    if ambiguous_credentials(url, parsed):
        raise _Refusal("more than one '@' in the user:password part: URL-encode '@' in the user name or "
                        "password as %40")
    backend = parsed.get_backend_name()
    if backend == "mysql":
        return _mysql(parsed)
    if backend == "sqlite":
        return _sqlite(parsed, key, read_only)
    raise _Refusal(f"unsupported database {excerpt(backend)} (use sqlite:/// or mysql+pymysql://)")


def resolve_paths(url: str, base_dir: Path) -> str:
    """`url` with its relative file paths taken from `base_dir`: a SQLite file, a MySQL URL's ssl_* files.

    The config file's folder for a URL from the file, the current directory for one from the
    environment. A URL check_database_url will refuse is returned unchanged, for it to report.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return url
    if ambiguous_credentials(url, parsed):
        return url
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if not database or database == ":memory:" or Path(database).is_absolute():
            return url
        return parsed.set(database=str((base_dir / database).absolute())).render_as_string(hide_password=False)
    relative = {name: str((base_dir / value).absolute()) for name, value in parsed.query.items()
                if name in _FILES and isinstance(value, str) and value and not Path(value).is_absolute()}
    if backend != "mysql" or not relative:
        return url
    return render_url(parsed.update_query_dict(relative), hide_password=False)


def render_url(parsed: URL, hide_password: bool) -> str:
    """`parsed` as text with the paths in its query readable: SQLAlchemy would encode every "/"."""
    base = parsed.set(query={}).render_as_string(hide_password=hide_password)
    if not parsed.query:
        return base
    return f"{base}?{urlencode(parsed.query, doseq=True, safe='/', quote_via=quote)}"


def ambiguous_credentials(url: str, parsed: URL) -> bool:
    """True when an unencoded '@' left make_url unsure where the user:password part ends.

    A SQLite path or a query value may hold '@'. make_url ends the password at its first '@', so a
    second one in the password moves a piece of it into the host name, which then shows in
    errors. An unencoded '@' in the user name (or, with no password, one later in the URL) takes
    the text up to it as the user name.
    """
    user = parsed.username or ""
    raw_user = "@" in user and url.partition("://")[2].startswith(user)
    return raw_user or "@" in (parsed.host or "")


def _mysql(parsed: URL) -> DatabaseTarget:
    if parsed.get_driver_name() != "pymysql":
        raise _Refusal("MySQL URLs must use the PyMySQL driver (mysql+pymysql://...)")
    if not parsed.database:
        raise _Refusal(f"names no database ({_MYSQL_SHAPE})")
    if parsed.password and len(parsed.password) < limits.PASSWORD_MIN_CHARS:
        # Only its length is wrong, and only its length is told.
        raise _Refusal(f"the password is shorter than {limits.PASSWORD_MIN_CHARS} characters (netwatch masks "
                        "it in every log line and stored error, where a short one would hide ordinary text)")
    return DatabaseTarget(url=parsed.set(query={}), options=_mysql_options(parsed.query))


def _mysql_options(query: Mapping[str, str | tuple[str, ...]]) -> dict[str, Any]:
    """The PyMySQL connect arguments of a MySQL URL's query, checked and typed."""
    values: dict[str, str] = {}
    for name, value in query.items():
        if name not in MYSQL_OPTIONS:
            raise _Refusal(f"unknown option {excerpt(name)} (netwatch supports "
                            f"{', '.join(MYSQL_OPTIONS)})")
        if not isinstance(value, str):
            raise _Refusal(f"option {name} is given more than once")
        values[name] = value
    options: dict[str, Any] = {name: values[name] for name in ("unix_socket", "program_name") if name in values}
    if "charset" in values:
        from pymysql.charset import charset_by_name  # here: a SQLite run never imports PyMySQL

        if charset_by_name(values["charset"]) is None:
            raise _Refusal(f"unknown charset {excerpt(values['charset'])} (e.g. utf8mb4)")
        options["charset"] = values["charset"]
    for name in _TIMEOUTS:
        if name in values:
            options[name] = _seconds(name, values[name])
    ssl = _ssl(values)
    if ssl:
        options["ssl"] = ssl
    return options


def _seconds(name: str, value: str) -> int:
    seconds = int(value) if _WHOLE.match(value) else 0
    if not 1 <= seconds <= TIMEOUT_MAX_SECONDS:
        raise _Refusal(f"{name} must be a whole number of seconds from 1 to "
                        f"{TIMEOUT_MAX_SECONDS}, got {excerpt(value)}")
    return seconds


def _flag(values: Mapping[str, str], name: str) -> bool | None:
    if name not in values:
        return None
    flag = _FLAGS.get(values[name].lower())
    if flag is None:
        raise _Refusal(f"{name} must be true or false, got {excerpt(values[name])}")
    return flag


def _ssl(values: Mapping[str, str]) -> dict[str, Any]:
    """PyMySQL's `ssl` argument. With ssl_ca the server's certificate and host name are verified by default."""
    for name in _FILES:
        if name in values:
            try:
                files.read_start(Path(values[name]), 1)
            except files.UnreadableFile as exc:
                raise _Refusal(f"{name}: cannot read {clip(values[name])}: {exc.reason}") from None
    verify_cert, verify_identity = _flag(values, "ssl_verify_cert"), _flag(values, "ssl_verify_identity")
    if "ssl_key" in values and "ssl_cert" not in values:
        raise _Refusal("ssl_key needs ssl_cert (the client certificate it belongs to)")
    if verify_identity and "ssl_ca" not in values:
        raise _Refusal("ssl_verify_identity needs ssl_ca (PyMySQL checks the host name only "
                        "against a given CA)")
    if verify_identity and verify_cert is False:
        raise _Refusal("ssl_verify_identity=true needs ssl_verify_cert=true "
                        "(a host name is checked on a verified certificate)")
    ssl: dict[str, Any] = {key: values[f"ssl_{key}"] for key in ("ca", "cert", "key") if f"ssl_{key}" in values}
    if verify_cert is not None:
        ssl["verify_mode"] = verify_cert
    if verify_identity is not None or verify_cert is False:
        ssl["check_hostname"] = bool(verify_identity)
    return ssl


def _sqlite(parsed: URL, key: str, read_only: bool) -> DatabaseTarget:
    if parsed.get_driver_name() != "pysqlite" or parsed.host or parsed.username or parsed.port:
        raise _Refusal("a SQLite URL is sqlite:///PATH (four slashes before an absolute path)")
    if parsed.query:
        raise _Refusal(f"SQLite URLs take no options, got {excerpt(sorted(parsed.query)[0])}")
    if not parsed.database or parsed.database == ":memory:":
        raise _Refusal("an in-memory SQLite database loses every state when the run ends: "
                        f"name a file, e.g. sqlite:///{DEFAULT_SQLITE_FILE}")
    path = Path(parsed.database)
    _check_sqlite_file(path, key, read_only)
    return DatabaseTarget(url=parsed, sqlite_path=path)


def _check_sqlite_file(path: Path, key: str, read_only: bool) -> None:
    """The folder exists and takes new files (SQLite adds -wal and -shm beside the database); the file,
    if there, is a SQLite database this process can write. Read-only: the file exists and is a database."""
    shown = clip(str(path))
    folder = path.parent
    if not folder.is_dir():
        raise _Refusal(f"the folder of the SQLite file does not exist: {clip(str(folder))}")
    try:
        mode: int | None = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise _Refusal(f"cannot use {shown}: {exc.strerror}") from None
    if mode is None:
        if read_only:
            raise _Refusal(f"sqlite:///{shown}: no such database file; the first job run "
                            "(`netwatch run ping-sweep`, `event-scan` or `alert-clear`) creates it")
    else:
        if stat.S_ISDIR(mode):
            raise _Refusal(f"{shown} is a directory, not a SQLite file")
        try:
            head = files.read_start(path, len(SQLITE_HEADER))
        except files.UnreadableFile as exc:
            raise _Refusal(f"cannot read {shown}: {exc.reason}") from None
        if head and head != SQLITE_HEADER:
            raise _Refusal(f"{shown} is not a SQLite database")
        if stat.S_IMODE(mode) & _OTHERS:
            # Left as it is (the operator's file), but it holds every host, alert and queued message.
            log.warning("%s: %s can be read or written by other users (mode %04o): chmod 600 it", key, shown,
                        stat.S_IMODE(mode))
        if read_only:
            return
        _require_writable(path)
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise _Refusal(f"cannot write in {clip(str(folder))}, the folder of the SQLite file "
                        f"(it holds the -wal and -shm files too): {exc.strerror}") from None


def _require_writable(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise _Refusal(f"cannot write {clip(str(path))}: {exc.strerror}") from None
    os.close(fd)
