"""Inventory CSV files (hosts_file, http_checks_file, tcp_checks_file): rows by header, errors by line.

The whole file is read (up to its limit) and decoded first, so a bad byte is reported on its own
line; a row is named by the line it starts on (a quoted field may span lines); blank rows are skipped.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from netwatch import files
from netwatch.errors import ConfigError
from netwatch.excerpt import clip, excerpt

Row = dict[str, str | None]
# A true or false cell, in any case.
TRUE_WORDS = frozenset({"true", "yes", "1", "y"})
FALSE_WORDS = frozenset({"false", "no", "0", "n"})


def csv_rows(path: Path, where: str, what: str, required: Sequence[str], optional: Sequence[str],
             refused: Mapping[str, str] | None = None) -> Iterator[tuple[str, Row]]:
    """(origin "PATH line N", cells by column, an empty cell None) of each non-blank row of `path`.

    `where` names the config key that points at the file, for the error when it cannot be read;
    `what` the kind of file ("hosts file"); `refused` columns that are not accepted, with the reason.
    """
    reader = csv.reader(io.StringIO(_csv_text(path, where), newline=""))
    try:
        header = [column.strip().lower() for column in next(reader)]
    except StopIteration:
        raise ConfigError(f"{path}: empty {what} (needs a header: {','.join(required)})") from None
    except csv.Error as exc:
        raise ConfigError(f"{path} line {reader.line_num}: malformed header: {clip(str(exc))}") from None
    missing = [column for column in required if column not in header]
    if missing:
        raise ConfigError(f"{path} line 1: header lacks column {excerpt(missing[0])}")
    for column in header:
        if refused and column in refused:
            raise ConfigError(f"{path} line 1: column {excerpt(column)} is not accepted: {refused[column]}")
        if column not in (*required, *optional):
            raise ConfigError(f"{path} line 1: unknown column {excerpt(column)}")
    if len(set(header)) != len(header):
        raise ConfigError(f"{path} line 1: a column is named twice")
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ConfigError(f"{path} line {reader.line_num}: malformed row: {clip(str(exc))}") from None
        if not any(cell.strip() for cell in row):
            continue
        origin = f"{path} line {line}"
        if len(row) != len(header):
            raise ConfigError(f"{origin}: expected {len(header)} fields, found {len(row)}")
        yield origin, {column: (cell.strip() or None) for column, cell in zip(header, row, strict=True)}


def _csv_text(path: Path, where: str) -> str:
    """The file as text: UTF-8 (a byte order mark is dropped), no NUL; errors name the line."""
    try:
        data = files.read_file(path, files.HOSTS_FILE_MAX_BYTES).data
    except files.UnreadableFile as exc:
        raise ConfigError(f"{where}: cannot read {clip(str(path))}: {exc.reason}") from None
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        problem = f"not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column})"
        raise ConfigError(f"{path} line {line}: {problem}") from None
    nul = text.find("\0")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise ConfigError(f"{path} line {line}: contains a NUL byte")
    return text
