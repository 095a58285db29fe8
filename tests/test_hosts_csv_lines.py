"""A bad byte or a malformed row in a hosts CSV is reported on the line it is on.

The file used to be decoded while csv read it, in chunks: a bad byte on line 52 came out as "line 1,
malformed header" and one on line 3002 as line 2992.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netwatch.errors import ConfigError
from netwatch.inventory import hosts_from_csv

HEADER = b"name,address,account,partition,zone,description\n"


def rows(count: int) -> list[bytes]:
    """Lines 2 .. count+1 of a valid file, one host each."""
    return [f"host-{n},10.0.{n // 250}.{n % 250 + 1},1234,01,001,desk {n}\n".encode() for n in range(count)]


def csv_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        list(hosts_from_csv(path))
    return caught.value.message


def with_bad_byte(tmp_path: Path, line: int, bad: bytes = b"caf\xe9") -> Path:
    """A 4000-line file whose line `line` holds `bad` in its description."""
    lines = [HEADER, *rows(4000)]
    target = lines[line - 1]
    lines[line - 1] = target.rstrip(b"\n") + bad + b"\n"
    path = tmp_path / "hosts.csv"
    path.write_bytes(b"".join(lines))
    return path


@pytest.mark.parametrize("line", [1, 2, 52, 3002, 4001])
def test_a_byte_that_is_not_utf8_is_reported_on_its_line(tmp_path: Path, line: int) -> None:
    path = with_bad_byte(tmp_path, line)
    column = len((HEADER if line == 1 else rows(4000)[line - 2]).rstrip(b"\n")) + 4

    assert csv_error(path) == f"{path} line {line}: not UTF-8 text (byte 0xe9 at column {column})"


@pytest.mark.parametrize("line", [1, 52, 3002])
def test_a_nul_byte_is_reported_on_its_line(tmp_path: Path, line: int) -> None:
    path = with_bad_byte(tmp_path, line, b"a\x00b")

    assert csv_error(path) == f"{path} line {line}: contains a NUL byte"


def test_a_byte_order_mark_is_not_a_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "hosts.csv"
    path.write_bytes(b"\xef\xbb\xbf" + HEADER + b"".join(rows(3)))

    assert [host.name for host in hosts_from_csv(path)] == ["host-0", "host-1", "host-2"]


def test_crlf_lines_are_counted_once(tmp_path: Path) -> None:
    path = tmp_path / "hosts.csv"
    path.write_bytes((HEADER + b"".join(rows(60))).replace(b"\n", b"\r\n") + b"bad,name!,1,1,1,x\r\n")

    assert csv_error(path).startswith(f"{path} line 62: ")


def test_a_row_is_named_by_the_line_it_starts_on(tmp_path: Path) -> None:
    path = tmp_path / "hosts.csv"
    path.write_bytes(HEADER + b"".join(rows(50)) + b'bad host,10.0.0.1,1,1,1,"two\nlines"\n')

    assert csv_error(path) == f"{path} line 52: name: invalid host name 'bad host'"


def test_a_csv_error_is_reported_on_its_line(tmp_path: Path) -> None:
    path = tmp_path / "hosts.csv"
    path.write_bytes(HEADER + b"".join(rows(3000)) + b"h,10.0.0.1,1,1,1," + b"d" * 140_000 + b"\n")

    assert csv_error(path) == f"{path} line 3002: malformed row: field larger than field limit (131072)"
