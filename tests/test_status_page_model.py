"""The status page's pure parts: colour classes, file names, the latency line, incidents per day,
hosts by account and checks by client, the banner, and the `status_page:` config section."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from netwatch.config import parse_config
from netwatch.core.rollup import DAY, STATE_CODES
from netwatch.core.statuspage import (
    NO_COUNTS,
    Counts,
    DailyUptime,
    HostInput,
    StaleJob,
    build_page,
    latency_chart,
    make_banner,
    safe_name,
    stale_jobs,
    uptime_class,
)
from netwatch.errors import ConfigError

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize(("uptime", "expected"), [
    (100.0, "up"), (99.9, "up"), (99.899, "minor"), (99.0, "minor"), (98.999, "major"), (95.0, "major"),
    (94.999, "down"), (0.0, "down"), (None, "nodata"),
])
def test_uptime_class_bounds(uptime: float | None, expected: str) -> None:
    assert uptime_class(uptime) == expected


@pytest.mark.parametrize("name", ["../../etc/passwd", "/abs", "..", "", "Ação 1", "a" * 300, "\x00\n", "<script>"])
def test_safe_name_is_a_plain_stem_for_any_name(name: str) -> None:
    stem = safe_name(name)

    assert stem.replace("-", "").isalnum() and stem.isascii() and stem == stem.lower()
    assert len(stem) <= 51 and "/" not in stem and not stem.startswith(".")


def test_safe_name_keeps_names_apart_that_slug_alike() -> None:
    names = ["Web 1", "web-1", "WEB_1", "web 1"]

    assert len({safe_name(n) for n in names}) == len(names)
    assert safe_name("web-1") == safe_name("web-1") and safe_name("web-1").startswith("web-1-")


def test_latency_line_breaks_at_hours_without_replies() -> None:
    chart = latency_chart([None, 2.0, 4.0, None, 1.0] + [None] * 19)

    assert chart.path == "M15.0 20.0 L25.0 2.0 M45.0 29.0"
    assert chart.max_ms == 4.0
    assert latency_chart([None] * 24).path == ""


def test_an_incident_counts_on_every_day_it_overlaps_and_an_old_one_entering_the_period_too() -> None:
    today = int(NOW.timestamp()) - int(NOW.timestamp()) % DAY
    first_day = today - 89 * DAY
    changes = [
        (1, first_day - 5 * DAY, STATE_CODES["offline"]), (1, first_day + 3600, STATE_CODES["online"]),
        (1, today - 2 * DAY + 100, STATE_CODES["offline"]), (1, today - DAY + 50, STATE_CODES["online"]),
        (2, first_day - 10 * DAY, STATE_CODES["offline"]), (2, first_day - 9 * DAY, STATE_CODES["online"]),
    ]
    hosts = [HostInput("a", None, "online", None, 1), HostInput("b", None, "online", None, 2)]

    model = build_page("t", NOW, hosts, {}, DailyUptime([], []), [], changes, [], [])

    a, b = model.accounts[0].members
    assert a.daily_incidents[0] == 1 and a.daily_incidents[-3:] == (1, 1, 0) and sum(a.daily_incidents) == 3
    assert sum(b.daily_incidents) == 0
    assert [(i.host, i.start) for i in model.incidents] == [
        ("a", datetime.fromtimestamp(today - 2 * DAY + 100, UTC)),
        ("a", datetime.fromtimestamp(first_day - 5 * DAY, UTC)),
        ("b", datetime.fromtimestamp(first_day - 10 * DAY, UTC)),
    ]


def test_stale_means_older_than_the_age_or_never_and_null_is_unwatched() -> None:
    last = {"ping-sweep": NOW - timedelta(minutes=10), "event-scan": NOW - timedelta(minutes=10, seconds=1)}
    ages = {"ping-sweep": 10, "event-scan": 10, "alert-clear": 30, "other": None}

    assert [s.job for s in stale_jobs(NOW, last, ages)] == ["event-scan", "alert-clear"]


def test_banner_puts_stale_jobs_first_then_offline_hosts() -> None:
    stale = [StaleJob("ping-sweep", None, 10)]

    assert make_banner(stale, Counts(5, 4, 1, 0), NO_COUNTS).lines == (
        "ping-sweep is stale: no successful run recorded", "1 of 5 hosts offline")
    assert make_banner([], Counts(5, 4, 1, 0), NO_COUNTS).state == "offline"
    assert make_banner([], Counts(5, 5, 0, 0), NO_COUNTS).lines == ("all 5 hosts up",)
    assert make_banner([], Counts(5, 4, 0, 1), NO_COUNTS).lines == ("no host offline (1 unknown)",)


def test_banner_counts_offline_checks_beside_the_hosts() -> None:
    stale = [StaleJob("http-check", None, 10)]

    assert make_banner(stale, Counts(5, 4, 1, 0), Counts(3, 1, 2, 0)).lines == (
        "http-check is stale: no successful run recorded", "1 of 5 hosts offline", "2 of 3 checks offline")
    only_checks = make_banner([], Counts(5, 5, 0, 0), Counts(3, 2, 1, 0))
    assert (only_checks.state, only_checks.lines) == ("offline", ("1 of 3 checks offline",))
    assert make_banner([], Counts(5, 5, 0, 0), Counts(3, 3, 0, 0)).lines == ("all 5 hosts and 3 checks up",)
    assert make_banner([], NO_COUNTS, Counts(3, 3, 0, 0)).lines == ("all 3 checks up",)
    assert make_banner([], Counts(5, 4, 0, 1), Counts(3, 2, 0, 1)).lines == ("no host or check offline (2 unknown)",)


def test_hosts_go_to_their_account_and_checks_to_their_client_offline_first() -> None:
    since = NOW - timedelta(hours=1)
    hosts = [
        HostInput("web-1", "1234", "online", since, 1),
        HostInput("shop", "1234", "offline", since, 2, "http", "Zeta"),
        HostInput("shop-db", "1234", "online", since, 3, "tcp", "Zeta"),
        HostInput("api", None, "online", since, 4, "http", "Acme"),
        HostInput("orphan", None, "unknown", None, None, "tcp", None),
    ]

    model = build_page("t", NOW, hosts, {}, DailyUptime([], []), [], [], [], [])

    [account] = model.accounts
    assert (account.key, [h.name for h in account.members]) == ("1234", ["web-1"])
    assert [(c.label, [(m.name, m.kind) for m in c.members]) for c in model.clients] == [
        ("Zeta", [("shop", "http"), ("shop-db", "tcp")]), ("(no client)", [("orphan", "tcp")]),
        ("Acme", [("api", "http")])]
    zeta, nobody, _ = model.clients
    assert zeta.pages == (f"clients/{safe_name('Zeta')}.html",)
    assert zeta.badge == f"badges/clients/{safe_name('Zeta')}.svg"
    assert nobody.pages == ("clients/no-client.html",) and nobody.badge == "badges/clients/no-client.svg"
    assert zeta.members[0].page == zeta.pages[0] and zeta.members[0].badge == f"badges/checks/{safe_name('shop')}.svg"
    assert (model.counts, model.check_counts) == (Counts(1, 1, 0, 0), Counts(4, 2, 1, 1))
    assert model.banner.lines == ("1 of 4 checks offline",)


def _parse(section: object) -> object:
    return parse_config({"status_page": section}, "c.yaml", Path("."), {}).status_page


def test_status_page_config_defaults_and_values() -> None:
    default = _parse(None)
    chosen = _parse({"title": "NOC", "stale_after_minutes": {"ping-sweep": 3, "event-scan": None}})

    assert default.title == "netwatch status"  # type: ignore[attr-defined]
    assert default.stale_after_minutes == {  # type: ignore[attr-defined]
        "ping-sweep": 10, "event-scan": 10, "alert-clear": 30, "cleanup": 120, "http-check": None}
    assert chosen.title == "NOC"  # type: ignore[attr-defined]
    assert chosen.stale_after_minutes == {  # type: ignore[attr-defined]
        "ping-sweep": 3, "event-scan": None, "alert-clear": 30, "cleanup": 120, "http-check": None}


TCP_CHECK = {"name": "shop-db", "host": "127.0.0.1", "port": 5432, "client": "Acme"}


@pytest.mark.parametrize(("checks", "section", "expected"), [
    ({"tcp_checks": [TCP_CHECK]}, None, 10),
    ({"http_checks": [{"name": "shop", "url": "http://127.0.0.1/", "client": "Acme"}]}, None, 10),
    ({"tcp_checks": [TCP_CHECK]}, {"stale_after_minutes": {"http-check": 3}}, 3),
    ({"tcp_checks": [TCP_CHECK]}, {"stale_after_minutes": {"http-check": None}}, None),
    ({}, {"stale_after_minutes": {"http-check": 3}}, None),
])
def test_http_check_is_watched_only_when_the_config_has_checks(
        checks: dict[str, object], section: object, expected: int | None) -> None:
    config = parse_config({"status_page": section, **checks}, "c.yaml", Path("."), {})

    assert config.status_page.stale_after_minutes["http-check"] == expected


@pytest.mark.parametrize(("section", "message"), [
    ({"stale_after_minutes": {"ping-swep": 5}}, "c.yaml: status_page.stale_after_minutes.ping-swep: unknown key"),
    ({"stale_after_minutes": {"ping-sweep": "ten"}},
     "c.yaml: status_page.stale_after_minutes.ping-sweep: must be a whole number, got 'ten'"),
    ({"stale_after_minutes": {"alert-clear": 0}},
     "c.yaml: status_page.stale_after_minutes.alert-clear: must be at least 1, got 0"),
    ({"stale_after_minutes": {"http-check": "ten"}},
     "c.yaml: status_page.stale_after_minutes.http-check: must be a whole number, got 'ten'"),
    ({"stale_after_minutes": [1]}, "c.yaml: status_page.stale_after_minutes: must be a mapping"),
    ({"title": "x" * 191}, "c.yaml: status_page.title: has at most 190 characters"),
    ({"title": ""}, "c.yaml: status_page.title: must be a non-empty string, got ''"),
])
def test_bad_status_page_config_names_the_key(section: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _parse(section)

    assert caught.value.message == message


def test_daily_uptime_from_masks_and_partial_days() -> None:
    today = int(NOW.timestamp()) - int(NOW.timestamp()) % DAY
    first_day = today - 89 * DAY
    # Days 0, 31 and 89 fully online; day 1 half offline; day 2 a row without known time.
    daily = DailyUptime(full=[(1, 1, 2, 1 << 29, 86_400, 0)],
                        partial=[(1, first_day + DAY, 43_200, 43_200), (1, first_day + 2 * DAY, 0, 0)])

    model = build_page("t", NOW, [HostInput("a", None, "online", None, 1)], {}, daily, [], [], [], [])

    uptimes = model.accounts[0].members[0].daily_uptime
    assert {i: u for i, u in enumerate(uptimes) if u is not None} == {0: 100.0, 1: 50.0, 31: 100.0, 89: 100.0}
    assert model.accounts[0].members[0].uptime_30d == 100.0
