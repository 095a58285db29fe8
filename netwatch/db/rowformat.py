"""Whether a MariaDB / MySQL server can write the hourly rollups' compressed row format (tables.COMPRESSED).

MariaDB 10.6.0 to 10.6.5 and 10.7.0 to 10.7.1 open ROW_FORMAT=COMPRESSED tables read-only by default
(innodb_read_only_compressed=ON, back to OFF since MDEV-27736), so every run's rollup upsert would
fail; under innodb_strict_mode (the default) a server refuses to create such a table without
innodb_file_per_table, or with InnoDB pages over 16 KB or smaller than the table's 8 KB compressed
pages, halfway through a schema upgrade. `upgrade` asks first and refuses with the setting to change,
before it creates or alters anything.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from netwatch.db.tables import COMPRESSED

VARIABLES = ("innodb_read_only_compressed", "innodb_strict_mode", "innodb_file_per_table", "innodb_page_size")
# The largest InnoDB page size that has a compressed row format; a compressed page is no larger than one.
_LARGEST_PAGE = 16_384
_BLOCK = int(COMPRESSED["mysql_key_block_size"]) * 1024


def compression_problem(variables: Mapping[str, str]) -> str | None:
    """Why a server with these settings (`SHOW VARIABLES` names and values) cannot write the compressed
    hourly rollups, or None when it can. A setting the server lacks (MySQL has no
    innodb_read_only_compressed) is taken at its usual default."""

    def on(name: str, default: str) -> bool:
        return variables.get(name, default).upper() in ("ON", "1")

    if on("innodb_read_only_compressed", "OFF"):
        return ("the server opens ROW_FORMAT=COMPRESSED tables read-only (innodb_read_only_compressed=ON, "
                "the default of MariaDB 10.6.0 to 10.6.5): set innodb_read_only_compressed=OFF")
    if not on("innodb_strict_mode", "ON"):
        return None  # the server then creates the table uncompressed, with a warning, and writes it
    if not on("innodb_file_per_table", "ON"):
        return ("the server cannot create ROW_FORMAT=COMPRESSED tables with innodb_file_per_table=OFF: "
                "set innodb_file_per_table=ON")
    page = variables.get("innodb_page_size", str(_LARGEST_PAGE))
    if not page.isdigit() or not _BLOCK <= int(page) <= _LARGEST_PAGE:
        return (f"the server cannot create ROW_FORMAT=COMPRESSED tables of {_BLOCK // 1024} KB pages with "
                f"innodb_page_size={page} ({_BLOCK} to {_LARGEST_PAGE}): set innodb_strict_mode=OFF to have "
                "it created uncompressed")
    return None


def server_variables(conn: Connection) -> dict[str, str]:
    """The settings `compression_problem` reads, as this connection sees them (one statement)."""
    rows = conn.execute(text("SHOW VARIABLES WHERE Variable_name IN :names")
                        .bindparams(bindparam("names", VARIABLES, expanding=True)))
    return {str(name).lower(): str(value) for name, value in rows}
