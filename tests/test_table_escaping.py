"""Control characters from an API or the inventory neither forge a log line nor break a table.

A Segware account or CUC holding "\\n", "\\r" or an escape sequence is shown escaped in text logs and
in the tables of `netwatch alerts` / `netwatch status`; JSON and CSV keep the real value (both quote it).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fakeapi import FakeApis
from inproc import InProcess, _restored_logging
from jobkit import ACCOUNT, log_lines

from netwatch import logs, reports
from netwatch.printable import printable

FORGED = "2026-11-22T10:00:00.000Z error: forged line"
HOSTILE_ACCOUNT = f"1234\n{FORGED}"
HOSTILE_CUC = "CUC\r77\x1b[2J"
HOSTILE_NAME = "Loja\x1b[2J\u2028Centro\x85"
RAW_CONTROLS = ("\n", "\r", "\x1b", "\u2028", "\x85")  # "\n" first: it also ends every line


@pytest.mark.parametrize(("raw", "shown"), [
    ("a\nb", "a\\nb"), ("a\rb", "a\\rb"), ("a\tb", "a\\tb"), ("\x00", "\\x00"), ("\x1b[2J", "\\x1b[2J"),
    ("\x7f", "\\x7f"), ("\x85", "\\x85"), ("\x9b", "\\x9b"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"),
    ("São Paulo \u00b7 中文 ✓", "São Paulo \u00b7 中文 ✓"), ("", ""),
])
def test_printable_escapes_control_characters_only(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def logged(fmt: str, message: str, *args: object, **fields: object) -> str:
    stream = io.StringIO()
    with _restored_logging():
        logs.setup_logging(fmt, "info", logs.Redactor(), stream)
        logging.getLogger("netwatch.test").warning(message, *args, extra={"fields": fields})
    return stream.getvalue()


def test_a_text_log_line_shows_control_characters_of_message_and_fields_escaped() -> None:
    text = logged("text", "account %s not enriched", HOSTILE_ACCOUNT, cuc=HOSTILE_CUC)

    [line] = log_lines(text)
    assert line == ("warning: account 1234\\n2026-11-22T10:00:00.000Z error: forged line not enriched "
                    "cuc=CUC\\r77\\x1b[2J")
    assert text.count("\n") == 1 and not any(char in text for char in RAW_CONTROLS[1:])


def test_a_json_log_line_keeps_the_real_values_on_one_line() -> None:
    text = logged("json", "account %s not enriched", HOSTILE_ACCOUNT, cuc=HOSTILE_CUC)

    [line] = text.splitlines()
    entry = json.loads(line)
    assert entry["msg"] == f"account {HOSTILE_ACCOUNT} not enriched"
    assert entry["cuc"] == HOSTILE_CUC


def hostile_rows() -> list[dict[str, Any]]:
    return [
        {"account": HOSTILE_ACCOUNT, "cuc": HOSTILE_CUC, "code": "E130", "status": "active", "count": 60,
         "threshold": 50, "account_name": HOSTILE_NAME, "first_seen": datetime(2026, 11, 22, 9, 0, tzinfo=UTC)},
        {"account": "5678", "cuc": "CUC-1", "code": "E131", "status": "cleared", "count": 3, "threshold": 20,
         "account_name": None, "first_seen": None},
    ]


COLUMNS = ("account", "cuc", "code", "status", "count", "threshold", "account_name", "first_seen")


def test_a_table_has_one_line_per_row_and_no_raw_control_character() -> None:
    text = reports.render(hostile_rows(), COLUMNS, "table")

    lines = text.splitlines()  # splits at \r, \x85 and \u2028 too
    assert len(lines) == text.count("\n") == 3  # the header and one line per row
    assert not any(char in text for char in RAW_CONTROLS[1:])
    assert "1234\\n2026-11-22T10:00:00.000Z error: forged line" in lines[1]
    assert "CUC\\r77\\x1b[2J" in lines[1]
    assert "Loja\\x1b[2J\\u2028Centro\\x85" in lines[1]


def test_table_columns_stay_aligned_with_escaped_cells() -> None:
    lines = reports.render(hostile_rows(), COLUMNS, "table").splitlines()

    code_column = lines[0].index("code")
    assert lines[1][code_column:].startswith("E130")
    assert lines[2][code_column:].startswith("E131")


def test_json_and_csv_keep_the_real_values() -> None:
    rows = hostile_rows()

    as_json = json.loads(reports.render(rows, COLUMNS, "json"))
    as_csv = list(csv.DictReader(io.StringIO(reports.render(rows, COLUMNS, "csv"))))

    assert [(r["account"], r["cuc"], r["account_name"]) for r in as_json] == [
        (HOSTILE_ACCOUNT, HOSTILE_CUC, HOSTILE_NAME), ("5678", "CUC-1", None)]
    assert [(r["account"], r["cuc"], r["account_name"]) for r in as_csv] == [
        (HOSTILE_ACCOUNT, HOSTILE_CUC, HOSTILE_NAME), ("5678", "CUC-1", "")]


def test_csv_quotes_a_value_with_a_bare_carriage_return() -> None:
    text = reports.render([{"account": "12\r34", "cuc": "x"}], ("account", "cuc"), "csv")

    assert text == 'account,cuc\r\n"12\r34",x\r\n'
    assert list(csv.reader(io.StringIO(text, newline=""))) == [["account", "cuc"], ["12\r34", "x"]]


def events(count: int, account: str, cuc: str) -> list[dict[str, Any]]:
    """`count` contract-shaped E130 events over the last 90 minutes."""
    now = datetime.now(UTC)
    return [
        {"id": f"ev-{account.encode().hex()[:16]}-{i:05d}", "account": account, "cuc": cuc, "code": "E130",
         "partition": "01", "zone": "003",
         "receivedAt": (now - timedelta(minutes=90) * (i + 1) / (count + 1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
        for i in range(count)
    ]


def test_hostile_segware_values_forge_no_log_line_and_no_alerts_row(nwi: InProcess, fake: FakeApis) -> None:
    fake.accounts[HOSTILE_ACCOUNT] = {**ACCOUNT, "account": HOSTILE_ACCOUNT, "name": HOSTILE_NAME,
                                      "companyName": "Acme\nSeguranca", "clientGroup": "Varejo\x1b[2J"}
    fake.events = events(60, HOSTILE_ACCOUNT, HOSTILE_CUC) + events(60, "1234", "CUC\n\r88") + events(5, "1234", "ok")
    nwi.write_config([], segware={"base_url": fake.url}, event_scan={"codes": {"E130": 50}, "page_size": 100})

    scan = nwi.run("run", "event-scan")
    table = nwi.run("alerts")

    assert scan.returncode == 0, scan.stderr
    lines = log_lines(scan.stderr)  # fails on any line that is not a timestamped log line
    assert not any(line.startswith("error: forged") for line in lines)
    raised = [line for line in lines if line.startswith("warning: alert raised: ")]
    assert len(raised) == 2, scan.stderr
    assert any(f"1234\\n{FORGED}/CUC\\r77\\x1b[2J/E130 count 60" in line for line in raised)
    assert not any(char in scan.stderr for char in RAW_CONTROLS[1:])
    assert table.returncode == 0, table.stderr
    rows = table.stdout.splitlines()
    assert len(rows) == table.stdout.count("\n") == 3, table.stdout  # the header and the two alerts
    assert not any(char in table.stdout for char in RAW_CONTROLS[1:])
    assert any("Loja\\x1b[2J\\u2028Centro\\x85" in row and "Acme\\nSeguranca" in row for row in rows)
    assert sorted((t["account"], t["cuc"]) for t in nwi.rows("triggers")) == sorted(
        [(HOSTILE_ACCOUNT, HOSTILE_CUC), ("1234", "CUC\n\r88")])
