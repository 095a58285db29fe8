"""Notification templates: defaults for every kind, operator overrides, validation, the Message payload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from netwatch.notify.kinds import FIELDS
from netwatch.notify.message import Message
from netwatch.notify.templates import DEFAULT_TEMPLATES, render, validate_overrides

HOST = {
    "host": "cam-01",
    "address": "10.1.2.3",
    "account": "1234",
    "partition": "1",
    "zone": "7",
    "streak": "3",
    "occurred_at": "2024-05-01T10:00:00+00:00",
}
ALERT = {
    "account": "1234",
    "account_name": "Padaria Central",
    "company": "ACME",
    "client_group": "retail",
    "cuc": "55",
    "code": "E130",
    "count": "12",
    "threshold": "10",
    "window_minutes": "15",
    "occurred_at": "2024-05-01T10:00:00+00:00",
}
CLEARED = {**ALERT, "reason": "below threshold", "last_count": "2", "duration": "1h 5m"}
FIRST = {**HOST, "status": "online"}
REMOVED = {key: value for key, value in HOST.items() if key != "streak"} | {"status": "offline"}
SERVICE = {"check": "shop", "kind": "http", "target": "https://shop.example.invalid/health", "client": "Acme",
           "account": "1234", "streak": "2", "reason": "status 500 (expected 200-399)",
           "occurred_at": "2024-05-01T10:00:00+00:00"}
SERVICE_FIRST = {**SERVICE, "status": "offline"}
SERVICE_REMOVED = {key: value for key, value in SERVICE.items() if key not in ("streak", "reason")} | {
    "status": "offline"}
FIELDS_BY_KIND = {"host_offline": HOST, "host_online": HOST, "host_first_status": FIRST, "host_removed": REMOVED,
                  "service_down": SERVICE, "service_up": SERVICE, "service_first_status": SERVICE_FIRST,
                  "service_removed": SERVICE_REMOVED, "alert_raised": ALERT, "alert_cleared": CLEARED}


def test_documented_fields_match_the_test_fields() -> None:
    assert set(DEFAULT_TEMPLATES) == set(FIELDS) == set(FIELDS_BY_KIND)
    for kind, fields in FIELDS_BY_KIND.items():
        assert FIELDS[kind] == set(fields), kind


@pytest.mark.parametrize("kind", sorted(FIELDS_BY_KIND))
def test_defaults_render_every_kind_without_leftover_placeholders(kind: str) -> None:
    title, body = render(kind, FIELDS_BY_KIND[kind], {})
    assert title and body
    assert "$" not in title + body
    assert "\n" not in title


def test_default_texts() -> None:
    assert render("host_offline", HOST, {}) == (
        "OFFLINE: cam-01 (10.1.2.3)",
        "Host cam-01 (10.1.2.3) stopped answering after 3 failed checks.\n"
        "Account 1234, partition 1, zone 7.\n"
        "Since 2024-05-01T10:00:00+00:00.",
    )
    assert render("host_online", HOST)[0] == "ONLINE: cam-01 (10.1.2.3)"
    assert render("host_first_status", FIRST) == (
        "MONITORED: cam-01 (10.1.2.3) is online",
        "First confirmed status of host cam-01 (10.1.2.3): online, after 3 consecutive checks.\n"
        "Account 1234, partition 1, zone 7.\n"
        "At 2024-05-01T10:00:00+00:00.",
    )
    assert render("host_removed", REMOVED)[0] == "REMOVED: cam-01 (10.1.2.3) from monitoring"
    assert render("alert_raised", ALERT)[0] == "ALERT: Padaria Central (1234) code E130: 12 in 15min"
    title, body = render("alert_cleared", CLEARED)
    assert title == "CLEARED: Padaria Central (1234) code E130"
    assert "cleared after 1h 5m (below threshold)" in body
    assert "Last count 2 in 15 minutes (threshold 10)" in body


def test_every_default_uses_only_documented_fields() -> None:
    validate_overrides(
        {kind: {"title": pair.title.template, "body": pair.body.template} for kind, pair in DEFAULT_TEMPLATES.items()}
    )


def test_override_replaces_only_the_part_it_names() -> None:
    overrides = {"host_offline": {"title": "[$account] ${host} down"}}
    validate_overrides(overrides)
    title, body = render("host_offline", HOST, overrides)
    assert title == "[1234] cam-01 down"
    assert body == render("host_offline", HOST, {})[1]
    assert render("host_online", HOST, overrides) == render("host_online", HOST, {})


def test_override_of_the_body() -> None:
    overrides = {"alert_cleared": {"body": "$code ok after $duration"}}
    validate_overrides(overrides)
    assert render("alert_cleared", CLEARED, overrides)[1] == "E130 ok after 1h 5m"


def test_double_dollar_is_a_literal_dollar() -> None:
    overrides = {"alert_raised": {"title": "$$$count alerts cost $$5"}}
    validate_overrides(overrides)
    assert render("alert_raised", ALERT, overrides)[0] == "$12 alerts cost $5"


def test_unknown_placeholder_names_kind_part_and_placeholder() -> None:
    with pytest.raises(ValueError, match=r"host_online\.body: unknown placeholder \$account_name") as info:
        validate_overrides({"host_online": {"body": "$host of $account_name"}})
    assert "available: account, address" in str(info.value)


def test_alert_field_is_unknown_in_a_host_template_and_braced_names_count() -> None:
    with pytest.raises(ValueError, match=r"host_offline\.title: unknown placeholder \$duration"):
        validate_overrides({"host_offline": {"title": "${duration}"}})


def test_cleared_only_fields_are_unknown_for_alert_raised() -> None:
    with pytest.raises(ValueError, match=r"alert_raised\.body: unknown placeholder \$reason"):
        validate_overrides({"alert_raised": {"body": "$reason"}})
    validate_overrides({"alert_cleared": {"body": "$reason"}})


def test_unknown_kind_and_part_are_named() -> None:
    with pytest.raises(ValueError, match="unknown template kind 'host_down'"):
        validate_overrides({"host_down": {"title": "x"}})
    with pytest.raises(ValueError, match=r"host_offline: unknown template part 'subject'"):
        validate_overrides({"host_offline": {"subject": "x"}})
    with pytest.raises(ValueError, match="unknown template kind 'host_down'"):
        render("host_down", HOST, {})


def test_bad_dollar_and_non_string_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"alert_raised\.title: bad '\$' at position 5"):
        validate_overrides({"alert_raised": {"title": "cost $5"}})
    with pytest.raises(ValueError, match=r"alert_raised\.title: template must be a string"):
        validate_overrides({"alert_raised": {"title": 5}})  # type: ignore[dict-item]


def test_missing_field_raises_instead_of_rendering_empty() -> None:
    fields = {k: v for k, v in HOST.items() if k != "zone"}
    with pytest.raises(ValueError, match=r"host_offline\.body: no value for placeholder \$zone"):
        render("host_offline", fields, {})


def _message(**changes: object) -> Message:
    values: dict[str, object] = {
        "kind": "alert_cleared",
        "subject": "1234/55/E130",
        "title": "CLEARED",
        "body": "body",
        "occurred_at": datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC),
        "recovery": True,
        "account": "1234",
        "partition": None,
        "zone": None,
        "code": "E130",
        "data": dict(CLEARED),
    }
    values.update(changes)
    return Message(**values)  # type: ignore[arg-type]


def test_message_payload_round_trips_with_iso_datetime() -> None:
    message = _message()
    payload = message.to_payload()
    assert payload["occurred_at"] == "2024-05-01T10:00:00.123456+00:00"
    assert payload["data"] == CLEARED and payload["recovery"] is True
    assert Message.from_payload(payload) == message


def test_message_payload_normalises_to_utc_and_rejects_naive_times() -> None:
    local = datetime(2024, 5, 1, 7, 0, tzinfo=timezone(timedelta(hours=-3)))
    payload = _message(occurred_at=local).to_payload()
    assert payload["occurred_at"] == "2024-05-01T10:00:00+00:00"
    assert Message.from_payload(payload).occurred_at.tzinfo is UTC
    with pytest.raises(ValueError, match="has no time zone"):
        Message.from_payload({**payload, "occurred_at": "2024-05-01T10:00:00"})
    with pytest.raises(ValueError, match="timezone-aware"):
        _message(occurred_at=datetime(2024, 5, 1, 10, 0))
    with pytest.raises(ValueError, match="unknown message kind"):
        _message(kind="host_down")


def test_service_texts_name_the_check_its_target_client_and_reason() -> None:
    assert render("service_down", SERVICE) == (
        "DOWN: shop (https://shop.example.invalid/health)",
        "The http check shop (https://shop.example.invalid/health) failed 2 times in a row: status 500 (expected"
        " 200-399).\nClient Acme, account 1234.\nSince 2024-05-01T10:00:00+00:00.",
    )
    assert render("service_up", SERVICE)[0] == "UP: shop (https://shop.example.invalid/health)"
    assert render("service_removed", SERVICE_REMOVED)[0] == (
        "REMOVED: shop (https://shop.example.invalid/health) from monitoring")
