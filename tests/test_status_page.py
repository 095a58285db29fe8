"""`netwatch run status-page`: what the page says (through status.json and the HTML), hosts by account
and HTTP and TCP checks by client, escaping, no external reference, safe file names, the atomic swap
of DIR, its refusals and its statement count."""

from __future__ import annotations

import gc
import json
import re
import sys
import threading
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

from historyseed import (
    NOW,
    PAYLOAD,
    TODAY,
    SeedHost,
    add_account,
    add_daily,
    add_hosts,
    add_hourly,
    daily_row,
    hourly_row,
    seed_checks,
    seed_fleet,
    write_page,
)
from inproc import Clock, InProcess
from sqlalchemy import update
from sqlalchemy.engine import Engine

from netwatch.db import tables
from netwatch.jobs.status_page import status_page

SAFE_FILE = re.compile(
    r"^(index\.html|status\.json|(accounts|clients)/[a-z0-9-]+\.html|badges/(hosts|accounts|checks|clients)/[a-z0-9-]+\.svg)$")


def written_files(out: Path) -> dict[str, bytes]:
    root = out.resolve()
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_status_json_has_accounts_offline_first_with_bars_latency_and_badges(
        nwi: InProcess, engine: Engine, tmp_path: Path) -> None:
    seed_fleet(engine)

    status = write_page(nwi, tmp_path / "www")

    assert [a["label"] for a in status["accounts"]] == ["Loja Centro (1234)", "(no account)", "99"]
    loja = status["accounts"][0]
    assert loja["counts"] == {"hosts": 2, "online": 1, "offline": 1, "unknown": 0}
    assert [h["name"] for h in loja["hosts"]] == [PAYLOAD, "web-1"]
    web = loja["hosts"][1]
    assert len(status["days"]) == 90 and status["days"][-1] == "2026-11-22" and status["days"][0] == "2026-08-25"
    assert web["daily_uptime"][-3] == round(100 * 85_800 / 86_400, 3)
    assert web["daily_uptime"][-1] == 100.0 and web["daily_uptime"][:80] == [None] * 80
    assert web["daily_incidents"][-3] == 1 and sum(web["daily_incidents"]) == 1
    assert len(web["latency_ms"]) == 24 and web["latency_ms"][-11:] == [float(h) for h in range(1, 12)]
    assert web["latency_ms"][:13] == [None] * 13
    assert web["uptime_30d"] == round(100 * (10 * 86_400 - 600) / (10 * 86_400), 3)
    offline = loja["hosts"][0]
    assert offline["state"] == "offline" and offline["since"] == "2026-11-22T08:00:00Z"
    assert offline["daily_incidents"][-1] == 1 and offline["daily_uptime"][-1] == 80.0
    assert status["counts"] == {"hosts": 4, "online": 2, "offline": 1, "unknown": 1}
    assert status["banner"]["state"] == "offline"
    assert [(a["account"], a["code"]) for a in status["alerts"]] == [("1234", "E130")]
    assert [(i["host"], i["end"]) for i in status["incidents"]] == [
        (PAYLOAD, None), ("web-1", "2026-11-20T05:10:00Z")]
    files = written_files(tmp_path / "www")
    for account in status["accounts"]:
        assert account["badge"] in files and all(page in files for page in account["pages"])
        assert all(host["badge"] in files and host["page"] in account["pages"] for host in account["hosts"])
    badge = files[web["badge"]].decode()
    assert "web-1" in badge and "online · 99.931 %" in badge


def test_checks_are_in_a_section_per_client_offline_first_with_bars_latency_and_badges(
        nwi: InProcess, engine: Engine, tmp_path: Path) -> None:
    seed_fleet(engine)
    seed_checks(engine)

    status = write_page(nwi, tmp_path / "www")

    assert [c["label"] for c in status["clients"]] == ["Zeta", "(no client)", "Acme"]
    zeta, nobody, _ = status["clients"]
    assert zeta["counts"] == {"checks": 2, "online": 1, "offline": 1, "unknown": 0}
    assert [(c["name"], c["kind"], c["state"]) for c in zeta["checks"]] == [
        ("zeta-shop", "http", "offline"), ("zeta-db", "tcp", "online")]
    assert (nobody["client"], [c["name"] for c in nobody["checks"]]) == (None, ["stray"])
    shop, db = zeta["checks"]
    assert shop["since"] == "2026-11-22T09:00:00Z" and shop["daily_uptime"][-1] == 90.0
    assert shop["daily_incidents"][-1] == 1 and sum(shop["daily_incidents"]) == 1
    assert db["daily_uptime"][-5:] == [100.0] * 5 and db["daily_uptime"][:85] == [None] * 85
    assert db["latency_ms"][-11:] == [2.0 * h for h in range(1, 12)] and db["uptime_30d"] == 100.0
    assert status["check_counts"] == {"checks": 4, "online": 2, "offline": 1, "unknown": 1}
    assert [(i["host"], i["kind"], i["client"]) for i in status["incidents"]][:2] == [
        ("zeta-shop", "http", "Zeta"), (PAYLOAD, "host", None)]
    files = written_files(tmp_path / "www")
    for client in status["clients"]:
        assert client["badge"] in files and all(page in files for page in client["pages"])
        assert all(c["badge"] in files and c["page"] in client["pages"] for c in client["checks"])
    # The client's 30-day uptime is its checks' time together: (5 days + 9 h) online of 5 days + 10 h.
    assert zeta["uptime_30d"] == round(100 * (5 * 86_400 + 9 * 3600) / (5 * 86_400 + 10 * 3600), 3)
    assert "1 offline · 99.231 %" in files[zeta["badge"]].decode()
    assert "zeta-shop" in files[shop["badge"]].decode() and "offline · 90 %" in files[shop["badge"]].decode()
    page = files[zeta["pages"][0]].decode()
    rows = re.findall(r'<tr class="check kind-(\w+) state-(\w+)"><td class="name">([^<]*)</td><td class="kind">', page)
    assert rows == [("http", "offline", "zeta-shop"), ("tcp", "online", "zeta-db")]
    assert page.count("<i class=") == 2 * 90 and "hourly average response time, last 24 h; highest 22.0 ms" in page
    index = files["index.html"].decode()
    assert index.index('id="accounts"') < index.index('id="clients"')
    assert f'<a href="{zeta["pages"][0]}">Zeta</a>' in index
    assert '<a href="clients/no-client.html">(no client)</a>' in index
    # A check's target (URL, host:port) is on no page, in no file.
    assert not any(b"example.invalid" in data for data in files.values())


def test_account_pages_list_hosts_only_even_for_checks_of_the_same_account(
        nwi: InProcess, engine: Engine, tmp_path: Path) -> None:
    seed_fleet(engine)
    seed_checks(engine)

    status = write_page(nwi, tmp_path / "www")

    loja = status["accounts"][0]
    assert loja["account"] == "1234" and [h["name"] for h in loja["hosts"]] == [PAYLOAD, "web-1"]
    assert status["counts"] == {"hosts": 4, "online": 2, "offline": 1, "unknown": 1}
    assert sum(a["counts"]["hosts"] for a in status["accounts"]) == 4
    page = (tmp_path / "www" / loja["pages"][0]).read_text(encoding="utf-8")
    assert "zeta-" not in page and 'class="check' not in page
    index = (tmp_path / "www" / "index.html").read_text(encoding="utf-8")
    accounts = index[index.index('id="accounts"'):index.index('id="clients"')]
    assert "zeta-" not in accounts and "stray" not in accounts


def test_banner_counts_offline_checks_beside_the_hosts(nwi: InProcess, engine: Engine, tmp_path: Path) -> None:
    seed_fleet(engine)
    seed_checks(engine)

    both = write_page(nwi, tmp_path / "both")
    with engine.begin() as conn:
        conn.execute(update(tables.hosts).where(tables.hosts.c.kind == "host").values(status="online"))
    checks_only = write_page(nwi, tmp_path / "checks")

    assert both["banner"] == {"state": "offline", "lines": ["1 of 4 hosts offline", "1 of 4 checks offline"]}
    assert checks_only["banner"] == {"state": "offline", "lines": ["1 of 4 checks offline"]}
    index = (tmp_path / "checks" / "index.html").read_text(encoding="utf-8")
    assert '<p>1 of 4 checks offline</p>' in index and '<dl class="counts" id="check-counts">' in index


def test_http_check_is_watched_with_the_default_age_when_the_config_has_checks(
        nwi: InProcess, engine: Engine, tmp_path: Path) -> None:
    seed_fleet(engine)
    seed_checks(engine, last_check=NOW - timedelta(minutes=11))
    check = {"name": "zeta-db", "host": "127.0.0.1", "port": 5432, "client": "Zeta"}

    without = write_page(nwi, tmp_path / "without")
    watched = write_page(nwi, tmp_path / "with", tcp_checks=[check])

    assert without["stale_jobs"] == []
    assert watched["stale_jobs"] == [{"job": "http-check", "last_success": "2026-11-22T10:19:00Z",
                                      "stale_after_minutes": 10}]
    index = (tmp_path / "with" / "index.html").read_text(encoding="utf-8")
    assert "http-check is stale: last successful run 2026-11-22 10:19 UTC, more than 10 min ago" in index


def test_stale_banner_names_the_job_whose_last_success_is_too_old(
        nwi: InProcess, engine: Engine, tmp_path: Path) -> None:
    seed_fleet(engine, last_sweep=NOW - timedelta(minutes=11))

    status = write_page(nwi, tmp_path / "www", stale_after_minutes={"ping-sweep": 10})

    assert status["banner"]["state"] == "stale"
    assert status["stale_jobs"] == [{"job": "ping-sweep", "last_success": "2026-11-22T10:19:00Z",
                                     "stale_after_minutes": 10}]
    index = (tmp_path / "www" / "index.html").read_text(encoding="utf-8")
    assert "ping-sweep is stale: last successful run 2026-11-22 10:19 UTC, more than 10 min ago" in index


def test_stale_banner_names_cleanup_two_hours_after_its_last_success_by_default(
        nwi: InProcess, engine: Engine, tmp_path: Path) -> None:
    seed_fleet(engine, last_cleanup=NOW - timedelta(minutes=121))

    status = write_page(nwi, tmp_path / "www")

    assert status["banner"]["state"] == "stale"
    assert status["stale_jobs"] == [{"job": "cleanup", "last_success": "2026-11-22T08:29:00Z",
                                     "stale_after_minutes": 120}]
    index = (tmp_path / "www" / "index.html").read_text(encoding="utf-8")
    assert "cleanup is stale: last successful run 2026-11-22 08:29 UTC, more than 120 min ago" in index


def test_a_fresh_run_clears_the_banner_and_a_job_set_to_null_is_not_watched(
        nwi: InProcess, engine: Engine, tmp_path: Path) -> None:
    seed_fleet(engine, last_sweep=NOW - timedelta(minutes=9))

    status = write_page(nwi, tmp_path / "www", stale_after_minutes={"ping-sweep": 10, "event-scan": None,
                                                                     "alert-clear": 5, "cleanup": None})

    assert [s["job"] for s in status["stale_jobs"]] == ["alert-clear"]


def test_a_job_that_never_succeeded_is_stale(nwi: InProcess, engine: Engine, tmp_path: Path) -> None:
    status = write_page(nwi, tmp_path / "www")

    assert {s["job"]: s["last_success"] for s in status["stale_jobs"]} == {
        "ping-sweep": None, "event-scan": None, "alert-clear": None, "cleanup": None}
    assert status["counts"]["hosts"] == 0


class _Tags(HTMLParser):
    """Every start tag of a document with its attributes, and the text of its style elements."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.styles: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        if self.tags and self.tags[-1][0] == "style":
            self.styles.append(data)


def test_nothing_is_fetched_from_anywhere_and_both_colour_schemes_are_inline(
        nwi: InProcess, engine: Engine, tmp_path: Path) -> None:
    seed_fleet(engine)
    seed_checks(engine)

    write_page(nwi, tmp_path / "www")

    for name, data in written_files(tmp_path / "www").items():
        text = data.decode("utf-8")
        # The one URL: the SVG namespace, which names the language of a badge file and fetches nothing.
        assert set(re.findall(r"https?://[^\s\"'<>]*", text)) <= (
            {"http://www.w3.org/2000/svg"} if name.endswith(".svg") else set()), name
        if not name.endswith(".html"):
            continue
        page = _Tags(text)
        assert {tag for tag, _ in page.tags} <= {
            "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "p", "div", "dl", "dt",
            "dd", "section", "table", "thead", "tbody", "tr", "th", "td", "a", "nav", "span", "i", "svg", "path",
            "text"}, name
        assert not any("src" in attrs or any(a.startswith("on") for a in attrs) for _, attrs in page.tags)
        links = [attrs["href"] for tag, attrs in page.tags if tag == "a"]
        assert links and all(link and ":" not in link and not link.startswith("/") for link in links), name
        assert page.styles and not any("url(" in style or "@import" in style for style in page.styles)
        assert "@media (prefers-color-scheme: dark)" in "".join(page.styles), name


def test_every_value_is_escaped(nwi: InProcess, engine: Engine, tmp_path: Path) -> None:
    seed_fleet(engine)
    with engine.begin() as conn:
        add_account(conn, "99", '"><img src=x onerror=alert(2)>', NOW)
        add_hosts(conn, [SeedHost("<b>shop</b>", None, "offline", NOW, "http", "<img src=y onerror=alert(3)>")])

    write_page(nwi, tmp_path / "www", title="<b>Ops</b> & co")

    for name, data in written_files(tmp_path / "www").items():
        if name.endswith(".json"):
            continue
        text = data.decode("utf-8")
        tags = {tag for tag, _ in _Tags(text).tags}
        assert not tags & {"script", "img", "b"}, name
    index = (tmp_path / "www" / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index
    assert "&lt;b&gt;Ops&lt;/b&gt; &amp; co" in index
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt; (99)" in index
    assert "&lt;img src=y onerror=alert(3)&gt;</a>" in index and "&lt;b&gt;shop&lt;/b&gt;</a>" in index


def test_file_names_are_safe_whatever_the_names(nwi: InProcess, engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        add_hosts(conn, [SeedHost("../../escape", "../../etc", "online", NOW),
                         SeedHost("ESCAPE", "/abs", "online", NOW),
                         SeedHost("escape", "Ação 1", "online", NOW),
                         SeedHost("../../check", "../../etc", "online", NOW, "http", "../../etc"),
                         SeedHost("CHECK", None, "online", NOW, "tcp", "/abs"),
                         SeedHost("check", None, "online", NOW, "tcp", None)])

    status = write_page(nwi, tmp_path / "www")

    files = written_files(tmp_path / "www")
    assert len(files) == 2 + 3 * 2 + 3 + 3 * 2 + 3
    assert all(SAFE_FILE.match(name) for name in files), sorted(files)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(("netwatch", "www", ".www."))) == []
    assert len({h["badge"] for a in status["accounts"] for h in a["hosts"]}) == 3
    assert len({c["badge"] for c in status["clients"] for c in c["checks"]}) == 3
    assert "clients/no-client.html" in files


def test_dir_is_swapped_whole_while_a_reader_reads_it(nwi: InProcess, engine: Engine, tmp_path: Path) -> None:
    """Every read through DIR during a rewrite gets a complete file of one run; old generations go."""
    seed_fleet(engine)
    out = tmp_path / "www"
    write_page(nwi, out)
    first = out.resolve()
    seen: list[tuple[str, str]] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            index = (out / "index.html").read_text(encoding="utf-8")
            status = (out / "status.json").read_text(encoding="utf-8")
            seen.append((index, status))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(3):
            nwi.clock = Clock(NOW)
            assert nwi.run("run", "status-page", "--out", str(out)).returncode == 0
    finally:
        done.set()
        reader.join()

    assert seen
    for index, status in seen:
        assert index.endswith("</html>\n") and status.endswith("}\n")
        json.loads(status)
    generations = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".www."))
    assert len(generations) == 2 and out.resolve().name in generations and first.name not in generations
    assert out.is_symlink() and not any(name.endswith(".link") for name in generations)


def test_a_run_links_every_file_that_did_not_change_and_each_is_what_a_fresh_run_writes(
        nwi: InProcess, engine: Engine, tmp_path: Path) -> None:
    seed_fleet(engine)
    out = tmp_path / "www"
    first = write_page(nwi, out)
    before = out.resolve()
    with engine.begin() as conn:
        conn.execute(update(tables.hosts).where(tables.hosts.c.name == "web-1").values(status="offline"))

    second = write_page(nwi, out)

    after = out.resolve()
    old, new = written_files(before), written_files(after)
    linked = {name for name in new if (after / name).stat().st_ino == (before / name).stat().st_ino}
    assert linked == {name for name in new if old.get(name) == new[name]}
    badges = {h["name"]: h["badge"] for a in second["accounts"] for h in a["hosts"]}
    assert badges["db-1"] in linked and badges["web-1"] not in linked and "offline" in new[badges["web-1"]].decode()
    assert first["accounts"][0]["badge"] not in linked
    assert _counts(nwi)["reused"] == len(linked) and _counts(nwi)["files"] == len(new)
    write_page(nwi, out)
    write_page(nwi, tmp_path / "fresh")
    assert written_files(out) == written_files(tmp_path / "fresh") == new


def test_the_written_line_says_where_the_time_went(nwi: InProcess, engine: Engine, tmp_path: Path) -> None:
    seed_fleet(engine)
    nwi.clock = Clock(NOW)
    nwi.write_config([])

    done = nwi.run("run", "status-page", "--out", str(tmp_path / "www"))

    [line] = [line for line in done.stderr.splitlines() if "status page written" in line]
    split = dict(re.findall(r" (read_s|model_s|render_s|write_s)=([0-9.]+)", line))
    assert sorted(split) == ["model_s", "read_s", "render_s", "write_s"]
    assert all(float(value) >= 0 for value in split.values())


def test_no_cyclic_collection_runs_while_the_page_is_made_and_the_collector_is_back_after(
        nwi: InProcess, engine: Engine, tmp_path: Path) -> None:
    seed_fleet(engine)
    during: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        frame = sys._getframe(1)
        while phase == "start" and frame is not None:
            if frame.f_code is status_page.__code__:
                during.append(info["generation"])
            frame = frame.f_back

    gc.callbacks.append(seen)
    try:
        write_page(nwi, tmp_path / "www")
    finally:
        gc.callbacks.remove(seen)

    assert during == [] and gc.isenabled()


def test_an_existing_folder_with_files_is_refused_and_an_empty_one_taken(
        nwi: InProcess, tmp_path: Path) -> None:
    nwi.clock = Clock(NOW)
    nwi.write_config([])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine", encoding="utf-8")
    (tmp_path / "empty").mkdir()

    refused = nwi.run("run", "status-page", "--out", str(tmp_path / "full"))
    taken = nwi.run("run", "status-page", "--out", str(tmp_path / "empty"))
    missing = nwi.run("run", "status-page", "--out", str(tmp_path / "no" / "such"))

    assert refused.returncode == 64
    assert f"--out {tmp_path / 'full'}: exists and is not a status page netwatch wrote" in refused.stderr
    assert "Traceback" not in refused.stderr and (tmp_path / "full" / "keep.txt").exists()
    assert taken.returncode == 0 and (tmp_path / "empty").is_symlink()
    assert missing.returncode == 64 and f"its folder {tmp_path / 'no'} does not exist" in missing.stderr


def _counts(nwi: InProcess) -> dict[str, int]:
    runs = [r for r in nwi.rows("job_runs") if r["job"] == "status-page"]
    return dict(json.loads(runs[-1]["counts"]))


def _statements(nwi: InProcess) -> int:
    return _counts(nwi)["statements"]


def test_statements_per_run_do_not_grow_with_hosts_or_checks(
        nwi: InProcess, engine: Engine, tmp_path: Path) -> None:
    seed_fleet(engine)
    seed_checks(engine)
    check = [{"name": "zeta-db", "host": "127.0.0.1", "port": 5432}]  # http-check watched: its read counts too
    write_page(nwi, tmp_path / "www", tcp_checks=check)  # the first run of a job also makes its lease row
    write_page(nwi, tmp_path / "www", tcp_checks=check)
    few = _statements(nwi)
    with engine.begin() as conn:
        ids = add_hosts(conn, [SeedHost(f"more-{n}", f"acct-{n % 7}", "online", NOW) for n in range(300)]
                        + [SeedHost(f"svc-{n}", None, "offline" if n % 9 == 0 else "online", NOW,
                                    "http" if n % 2 else "tcp", f"client-{n % 11}") for n in range(300)])
        more = [i for name, i in ids.items() if name.startswith(("more-", "svc-"))]
        add_daily(conn, [daily_row(i, TODAY - timedelta(days=d), 86_400) for i in more for d in range(3)])
        add_hourly(conn, [hourly_row(ids[f"svc-{n}"], TODAY + timedelta(hours=1), 5_000) for n in range(300)])

    status = write_page(nwi, tmp_path / "www", tcp_checks=check)

    assert status["counts"]["hosts"] == 304 and status["check_counts"]["checks"] == 304
    assert len(status["clients"]) == 3 + 11
    assert _statements(nwi) == few
