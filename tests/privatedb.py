"""A private MariaDB server for one test session: killed with SIGKILL and started again at will.

    with PrivateMariaDB(tmp_dir) as server:     # mariadb-install-db, then mariadbd on 127.0.0.1:<free port>
        url = server.create_database("nwt_cell_1")
        server.kill()                           # SIGKILL: what a crash or an OOM kill does to the server
        server.start()                          # the same datadir and port: InnoDB recovers, clients reconnect

The shared MariaDB other test runs use is never touched: this server has its own datadir, socket
and port, runs without grant tables (root, no password, loopback only) and is stopped and removed
when the block ends. Every wait is bounded.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pymysql

INSTALL_DB = "mariadb-install-db"
SERVER = "/usr/sbin/mariadbd"
READY_TIMEOUT_S = 30.0


def unavailable_reason() -> str | None:
    """None when a private MariaDB server can be started here, else why not."""
    if shutil.which(INSTALL_DB) is None or not Path(SERVER).exists():
        return f"no {INSTALL_DB} or {SERVER} (Debian: apt-get install mariadb-server)"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateMariaDB:
    """One mariadbd on a datadir of its own under `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.datadir = directory / "data"
        self.port = _free_port()
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrivateMariaDB:
        self.directory.mkdir(parents=True, exist_ok=True)
        subprocess.run([INSTALL_DB, "--no-defaults", f"--datadir={self.datadir}", "--user=root", "--skip-test-db",
                        "--auth-root-authentication-method=normal"],
                       check=True, capture_output=True, timeout=120)
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    def start(self) -> None:
        """Starts mariadbd on the datadir and port and waits (bounded) until it answers."""
        assert self._process is None, "already running"
        log = (self.directory / "error.log").open("ab")
        self._process = subprocess.Popen(
            [SERVER, "--no-defaults", f"--datadir={self.datadir}", f"--socket={self.directory / 'sock'}",
             f"--pid-file={self.directory / 'mariadbd.pid'}", f"--port={self.port}", "--bind-address=127.0.0.1",
             "--user=root", "--skip-grant-tables", "--skip-log-bin", "--innodb-buffer-pool-size=32M"],
            stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                self._connect().close()
                return
            except pymysql.MySQLError:
                if self._process.poll() is not None:
                    raise AssertionError(f"mariadbd exited with {self._process.returncode}; see "
                                         f"{self.directory / 'error.log'}") from None
                if time.monotonic() > deadline:
                    raise AssertionError(f"mariadbd did not answer within {READY_TIMEOUT_S} s") from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush beyond what InnoDB already made durable."""
        if self._process is None:
            return
        self._process.kill()
        self._process.wait(timeout=30)
        self._process = None

    def restart(self) -> None:
        """Killed with SIGKILL, then started again on the same datadir and port."""
        self.kill()
        self.start()
        self.restarts += 1

    def _connect(self, database: str | None = None) -> pymysql.Connection:
        return pymysql.connect(host="127.0.0.1", port=self.port, user="root", password="", database=database,
                               connect_timeout=2)

    def create_database(self, name: str) -> str:
        """An empty database on this server; returns its netwatch URL."""
        conn = self._connect()
        try:
            with conn.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        finally:
            conn.close()
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{name}"

    def aborted_clients(self) -> int:
        """Connections that ended without a COM_QUIT since the server started (each one a log warning)."""
        conn = self._connect()
        try:
            with conn.cursor() as cursor:
                cursor.execute("SHOW GLOBAL STATUS LIKE 'Aborted_clients'")
                return int(cursor.fetchone()[1])
        finally:
            conn.close()

    def error_log(self) -> str:
        return (self.directory / "error.log").read_text(encoding="utf-8", errors="replace")
