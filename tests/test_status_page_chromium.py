"""The status page in a real headless Chromium (Debian's `chromium`): the rendered DOM and a screenshot.

Chromium is driven from the command line (`--dump-dom`, `--screenshot`), each test with its own
profile folder, on SQLite only: the browser sees files, whatever database wrote them.
"""

from __future__ import annotations

import subprocess
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from historyseed import NOW, PAYLOAD, seed_checks, seed_fleet, write_page
from inproc import InProcess
from sqlalchemy.engine import Engine

pytestmark = [pytest.mark.chromium, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# The page is a file: Chromium's own background traffic (updates, field trials, safe browsing) is
# switched off, and anything left goes to a proxy on a closed loopback port, so nothing leaves the host.
NO_NETWORK = ("--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-domain-reliability", "--no-default-browser-check", "--metrics-recording-only",
              "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>")


def chromium(tmp_path: Path, page: Path, *args: str) -> str:
    """Opens `page` (a file) in headless Chromium with a profile of this test's own; its stdout."""
    done = subprocess.run(
        ["chromium", "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", *NO_NETWORK,
         f"--user-data-dir={tmp_path / 'chromium-profile'}", *args, page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


class _Dom(HTMLParser):
    """What the tests look at in a dumped DOM: host and check rows with their bars, script elements, the banner."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.rows: list[dict[str, object]] = []
        self.scripts = 0
        self.banner: list[str] = []
        self._in: list[str] = []
        self._row: dict[str, object] | None = None
        self._field: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        classes = (found.get("class") or "").split()
        if tag == "script":
            self.scripts += 1
        if tag == "div" and found.get("id") == "banner":
            self._in.append("banner")
        if tag == "tr" and {"host", "check"} & set(classes):
            self._row = {"class": classes, "name": "", "kind": "", "bars": [], "paths": 0}
            self.rows.append(self._row)
        if self._row is not None:
            if tag == "td" and {"name", "kind"} & set(classes):
                self._field = classes[0]
            elif tag == "i":
                self._row["bars"].append((found.get("class"), found.get("title")))  # type: ignore[attr-defined]
            elif tag == "path":
                self._row["paths"] += 1  # type: ignore[operator]

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None
        if tag == "td":
            self._field = None
        if tag == "div" and self._in:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if self._row is not None and self._field is not None:
            self._row[self._field] = str(self._row[self._field]) + data
        if self._in and data.strip():
            self.banner.append(data.strip())


def test_account_page_shows_host_rows_with_90_bars_and_a_host_named_like_markup_as_text(
        nwi: InProcess, engine: Engine, tmp_path: Path) -> None:
    seed_fleet(engine)
    status = write_page(nwi, tmp_path / "www")
    page = tmp_path / "www" / status["accounts"][0]["pages"][0]

    dom = _Dom(chromium(tmp_path, page, "--dump-dom"))

    assert [row["name"] for row in dom.rows] == [PAYLOAD, "web-1"]
    assert dom.scripts == 0
    assert all(len(row["bars"]) == 90 for row in dom.rows)  # type: ignore[arg-type]
    web = dom.rows[1]["bars"]
    assert web[-3] == ("minor", "2026-11-20: 99.306 % up, 1 incident")  # type: ignore[index]
    assert web[0] == ("nodata", "2026-08-25: no data")  # type: ignore[index]
    assert dom.rows[1]["paths"] == 1 and dom.rows[0]["paths"] == 0
    assert dom.rows[0]["class"] == ["host", "state-offline"]


def test_client_page_shows_its_checks_with_their_kind_90_bars_and_response_times(
        nwi: InProcess, engine: Engine, tmp_path: Path) -> None:
    seed_fleet(engine)
    seed_checks(engine)
    status = write_page(nwi, tmp_path / "www")
    page = tmp_path / "www" / status["clients"][0]["pages"][0]

    dom = _Dom(chromium(tmp_path, page, "--dump-dom"))

    assert [(row["name"], row["kind"]) for row in dom.rows] == [("zeta-shop", "http"), ("zeta-db", "tcp")]
    assert dom.rows[0]["class"] == ["check", "kind-http", "state-offline"]
    assert all(len(row["bars"]) == 90 for row in dom.rows)  # type: ignore[arg-type]
    assert dom.rows[0]["bars"][-1] == ("down", "2026-11-22: 90 % up, 1 incident")  # type: ignore[index]
    assert dom.rows[1]["paths"] == 1 and dom.rows[0]["paths"] == 0
    assert dom.banner == ["1 of 4 hosts offline", "1 of 4 checks offline"] and dom.scripts == 0


def test_index_shows_the_stale_banner_and_every_host_and_screenshots_as_png(
        nwi: InProcess, engine: Engine, tmp_path: Path) -> None:
    seed_fleet(engine, last_sweep=NOW - timedelta(hours=1))
    write_page(nwi, tmp_path / "www")
    index = tmp_path / "www" / "index.html"
    shot = tmp_path / "index.png"

    dom = _Dom(chromium(tmp_path, index, "--dump-dom"))
    chromium(tmp_path, index, f"--screenshot={shot}", "--window-size=1200,900")

    assert dom.banner[0] == "ping-sweep is stale: last successful run 2026-11-22 09:30 UTC, more than 10 min ago"
    assert dom.banner[1] == "1 of 4 hosts offline"
    assert sorted(str(row["name"]) for row in dom.rows) == sorted([PAYLOAD, "web-1", "db-1", "lonely"])
    assert dom.scripts == 0
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
