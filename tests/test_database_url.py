"""database.url mistakes are config errors (78, one line naming the key and the file, never the password).

Also: a relative SQLite path in the config file is the config file's neighbour, every job run names its
database at its start, and the SQLite file and its -wal/-shm files are created 0600 whatever the umask.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from inproc import InProcess
from jobkit import TOKEN, log_lines
from sqlalchemy import text

from netwatch.db.engine import build_engine
from netwatch.db.url import check_database_url
from netwatch.errors import ConfigError, ExitCode

PASSWORD = "hunter2-db-secret"
MYSQL = f"mysql+pymysql://netwatch:{PASSWORD}@127.0.0.1:1/netwatch"
_FS_IOC_GETFLAGS, _FS_IOC_SETFLAGS, _FS_IMMUTABLE_FL = 0x80086601, 0x40086602, 0x10


def refused(url: str) -> str:
    """build_engine's one-line ConfigError for `url` (exit 78), checked to hold no password."""
    with pytest.raises(ConfigError) as caught:
        build_engine(url)
    message = caught.value.message
    assert caught.value.exit_code == ExitCode.CONFIG
    assert message.startswith("database.url: "), message
    assert "\n" not in message and PASSWORD not in message
    return message


# --- MySQL ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [f"mysql+pymysql://netwatch:{PASSWORD}@db.invalid",
                                 f"mysql+pymysql://netwatch:{PASSWORD}@db.invalid/"])
def test_mysql_url_without_a_database_name(url: str) -> None:
    assert "names no database" in refused(url)


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("charset=klingon", "unknown charset 'klingon'"),
        ("compress=true", "unknown option 'compress'"),
        ("init_command=DROP", "unknown option 'init_command'"),
        ("read_timeout=-5", "read_timeout must be a whole number of seconds from 1 to 3600, got '-5'"),
        ("connect_timeout=soon", "connect_timeout must be a whole number of seconds from 1 to 3600, got 'soon'"),
        ("write_timeout=1.5", "write_timeout must be a whole number"),
        ("read_timeout=0", "read_timeout must be a whole number"),
        ("read_timeout=99999", "from 1 to 3600"),
        ("charset=utf8mb4&charset=latin1", "option charset is given more than once"),
        ("ssl_verify_cert=maybe", "ssl_verify_cert must be true or false, got 'maybe'"),
        ("ssl_verify_identity=true", "ssl_verify_identity needs ssl_ca"),
    ],
)
def test_bad_mysql_options(query: str, fragment: str) -> None:
    assert fragment in refused(f"{MYSQL}?{query}")


def test_an_unknown_option_is_named_but_its_value_never_shown() -> None:
    message = refused(f"{MYSQL}?password=value-that-may-be-secret")
    assert "unknown option 'password'" in message and "charset" in message  # names what is supported
    assert "value-that-may-be-secret" not in message


@pytest.mark.parametrize("option", ["ssl_ca", "ssl_cert", "ssl_key"])
def test_an_ssl_file_that_does_not_exist(option: str, tmp_path: Path) -> None:
    missing = tmp_path / "no-such.pem"
    assert f"{option}: cannot read {missing}: No such file or directory" in refused(f"{MYSQL}?{option}={missing}")


def test_an_ssl_file_that_is_a_folder(tmp_path: Path) -> None:
    assert f"ssl_ca: cannot read {tmp_path}: a directory, not a regular file" in refused(f"{MYSQL}?ssl_ca={tmp_path}")


def test_ssl_key_without_its_certificate(tmp_path: Path) -> None:
    key = tmp_path / "client.key"
    key.write_text("key\n", encoding="utf-8")
    assert "ssl_key needs ssl_cert" in refused(f"{MYSQL}?ssl_key={key}")


def test_host_name_check_on_an_unverified_certificate_is_refused(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("ca\n", encoding="utf-8")
    assert "needs ssl_verify_cert=true" in refused(f"{MYSQL}?ssl_ca={ca}&ssl_verify_identity=true&ssl_verify_cert=no")


def test_supported_options_become_typed_connect_arguments(tmp_path: Path) -> None:
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "client.pem", "client.key"))
    for path in (ca, cert, key):
        path.write_text("pem\n", encoding="utf-8")
    query = (f"charset=utf8mb4&connect_timeout=5&read_timeout=30&write_timeout=30&ssl_ca={ca}&ssl_cert={cert}"
             f"&ssl_key={key}&ssl_verify_cert=true&ssl_verify_identity=true&unix_socket=/run/mysqld/mysqld.sock"
             "&program_name=netwatch")

    target = check_database_url(f"{MYSQL}?{query}")

    assert dict(target.options) == {
        "charset": "utf8mb4", "connect_timeout": 5, "read_timeout": 30, "write_timeout": 30,
        "unix_socket": "/run/mysqld/mysqld.sock", "program_name": "netwatch",
        "ssl": {"ca": str(ca), "cert": str(cert), "key": str(key), "verify_mode": True, "check_hostname": True},
    }
    assert not target.url.query and target.url.password == PASSWORD


def test_an_unverified_certificate_also_skips_the_host_name_check(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("pem\n", encoding="utf-8")
    # PyMySQL would otherwise keep its default host name check and fail inside ssl on CERT_NONE.
    assert check_database_url(f"{MYSQL}?ssl_ca={ca}&ssl_verify_cert=false").options["ssl"] == {
        "ca": str(ca), "verify_mode": False, "check_hostname": False}


@pytest.mark.mysql
def test_supported_options_reach_a_real_server(mysql_url: str) -> None:
    engine = build_engine(f"{mysql_url}?charset=utf8mb4&connect_timeout=5&read_timeout=30&write_timeout=30"
                          "&program_name=netwatch-test")
    try:
        with engine.begin() as conn:
            assert conn.execute(text("SELECT @@session.time_zone")).scalar() == "+00:00"
            assert conn.execute(text("SELECT @@character_set_client")).scalar() == "utf8mb4"
    finally:
        engine.dispose()


def test_a_bad_option_is_one_line_and_78_from_a_job_and_from_check_config(nwi: InProcess) -> None:
    nwi.write_config([{"name": "lo", "address": "127.0.0.1"}])
    nwi.env["NETWATCH_DATABASE_URL"] = f"{MYSQL}?charset=klingon"

    for done in (nwi.sweep(), nwi.run("check-config")):
        assert done.returncode == 78, done.stderr
        [line] = log_lines(done.stderr)
        # The environment supplied the URL, so the line names it, not the config file's database.url.
        assert line == "error: NETWATCH_DATABASE_URL: unknown charset 'klingon' (e.g. utf8mb4)"
        assert PASSWORD not in done.stderr + done.stdout


# --- SQLite --------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///"])
def test_an_in_memory_sqlite_database_is_refused(url: str) -> None:
    assert "in-memory SQLite database" in refused(url)


def test_sqlite_options_are_refused(tmp_path: Path) -> None:
    assert "SQLite URLs take no options, got 'timeout'" in refused(f"sqlite:///{tmp_path / 'nw.db'}?timeout=1")


def test_a_sqlite_url_with_a_host_is_refused(tmp_path: Path) -> None:
    assert "sqlite:///PATH" in refused(f"sqlite://host{tmp_path / 'nw.db'}")


def test_a_sqlite_url_naming_a_folder_names_it(tmp_path: Path) -> None:
    # It used to pass here and fail at the first connection: exit 69, "unable to open database file".
    assert refused(f"sqlite:///{tmp_path}") == f"database.url: {tmp_path} is a directory, not a SQLite file"


def test_a_file_that_is_not_a_sqlite_database_is_named_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("my notes\n", encoding="utf-8")

    assert refused(f"sqlite:///{path}") == f"database.url: {path} is not a SQLite database"
    assert path.read_text(encoding="utf-8") == "my notes\n"


def test_a_fifo_or_a_device_is_not_a_sqlite_file(tmp_path: Path) -> None:
    fifo = tmp_path / "nw.db"
    os.mkfifo(fifo)
    device = tmp_path / "zero.db"
    device.symlink_to("/dev/zero")

    assert refused(f"sqlite:///{fifo}") == f"database.url: cannot read {fifo}: a FIFO, not a regular file"
    assert refused(f"sqlite:///{device}") == (f"database.url: cannot read {device}: a character device, "
                                              "not a regular file")


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """`path` made unwritable, also for root (the immutable flag, as `chattr +i`), and restored after."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o500 if path.is_dir() else 0o400)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        flags = struct.unpack("i", fcntl.ioctl(fd, _FS_IOC_GETFLAGS, struct.pack("i", 0)))[0]
        try:
            fcntl.ioctl(fd, _FS_IOC_SETFLAGS, struct.pack("i", flags | _FS_IMMUTABLE_FL))
        except OSError as exc:
            pytest.skip(f"cannot make {path} read-only for root here: {exc.strerror}")
        try:
            yield
        finally:
            fcntl.ioctl(fd, _FS_IOC_SETFLAGS, struct.pack("i", flags))
    finally:
        os.close(fd)


def test_a_folder_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    with unwritable(folder):
        message = refused(f"sqlite:///{folder / 'nw.db'}")
    assert message.startswith(f"database.url: cannot write in {folder}, the folder of the SQLite file"), message
    assert not (folder / "nw.db").exists()


def create_database(path: Path) -> None:
    engine = build_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
    finally:
        engine.dispose()


def test_a_database_file_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nw.db"
    create_database(path)
    with unwritable(path):
        assert refused(f"sqlite:///{path}").startswith(f"database.url: cannot write {path}: ")


def test_a_sqlite_folder_problem_is_78_from_a_job(nwi: InProcess, tmp_path: Path) -> None:
    nwi.write_config([{"name": "lo", "address": "127.0.0.1"}])
    nwi.env["NETWATCH_DATABASE_URL"] = f"sqlite:///{tmp_path}"

    done = nwi.sweep()

    assert done.returncode == 78, done.stderr
    assert log_lines(done.stderr) == [f"error: NETWATCH_DATABASE_URL: {tmp_path} is a directory, not a SQLite file"]


def test_the_sqlite_files_are_created_0600_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "nw.db"
    old = os.umask(0)
    try:
        engine = build_engine(f"sqlite:///{path}")
        try:
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE t (x INTEGER)"))
                conn.execute(text("INSERT INTO t VALUES (1)"))
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
        finally:
            engine.dispose()
    finally:
        os.umask(old)
    assert modes == {"nw.db": 0o600, "nw.db-wal": 0o600, "nw.db-shm": 0o600}


def test_an_existing_sqlite_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "nw.db"
    create_database(path)
    path.chmod(0o640)

    create_database(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_the_file_is_created_at_the_first_connection_not_before(tmp_path: Path) -> None:
    path = tmp_path / "nw.db"
    engine = build_engine(f"sqlite:///{path}")
    assert not path.exists()
    with engine.begin() as conn:
        conn.execute(text("SELECT 1"))
    engine.dispose()
    assert path.is_file()


# --- where the SQLite file is, and the start line naming it ----------------------------------------


def test_a_relative_sqlite_path_is_taken_from_the_config_files_folder(nwi: InProcess, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    other, here = tmp_path / "other", tmp_path / "here"
    other.mkdir()
    here.mkdir()
    (other / "netwatch.yaml").write_text("database: {url: 'sqlite:///nw.db'}\nhosts: [{name: lo, address: 127.0.0.1}]\n"
                                         "thresholds: {down_after: 1, up_after: 1}\n", encoding="utf-8")
    monkeypatch.chdir(here)

    swept = nwi.cli("run", "ping-sweep", "--config", "../other/netwatch.yaml")
    status = nwi.cli("status", "--json", "--config", "../other/netwatch.yaml")

    assert swept.returncode == 0, swept.stderr
    assert (other / "nw.db").is_file() and list(here.iterdir()) == []
    assert status.returncode == 0, status.stderr
    assert '"name": "lo"' in status.stdout
    start = log_lines(swept.stderr)[0]
    assert start == f"info: ping-sweep started database=sqlite:///{here / '../other/nw.db'} " \
                    f"config={here / '../other/netwatch.yaml'}"


def test_a_relative_sqlite_path_from_the_environment_is_taken_from_the_current_folder(
        nwi: InProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = tmp_path / "here"
    here.mkdir()
    nwi.write_config([{"name": "lo", "address": "127.0.0.1"}])
    nwi.env["NETWATCH_DATABASE_URL"] = "sqlite:///env.db"
    monkeypatch.chdir(here)

    done = nwi.sweep()

    assert done.returncode == 0, done.stderr
    assert (here / "env.db").is_file()
    # The URL the run uses, its path made absolute; the config file's path absolute too.
    assert log_lines(done.stderr)[0] == (f"info: ping-sweep started database=sqlite:///{here / 'env.db'} "
                                         f"config={tmp_path / 'netwatch.yaml'}")


@pytest.mark.parametrize("job", ["ping-sweep", "event-scan", "alert-clear"])
def test_every_job_names_its_database_at_its_start_with_the_password_masked(nwi: InProcess, job: str) -> None:
    config = nwi.write_config([{"name": "lo", "address": "127.0.0.1"}],
                              segware={"base_url": "http://127.0.0.1:1"}, event_scan={"codes": {"E130": 5}})
    nwi.env.update({"NETWATCH_DATABASE_URL": MYSQL, "NETWATCH_SEGWARE_TOKEN": TOKEN})

    done = nwi.run("run", job)

    assert done.returncode == 69, done.stderr  # nothing listens on port 1
    start, error = log_lines(done.stderr)
    assert start == f"info: {job} started database=mysql+pymysql://netwatch:***@127.0.0.1:1/netwatch config={config}"
    assert error.startswith("error: database unavailable")
    assert PASSWORD not in done.stderr
