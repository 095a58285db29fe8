"""parse_events (the fast path of a page) gives exactly what parse_event gives, item by item: value or error text.

Every timestamp form the contract allows (ISO 8601 with an offset) and every way an event can be
malformed, alone and inside a page (where each distinct receivedAt is parsed once).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from netwatch import limits
from netwatch.clients.http import parse_timestamp
from netwatch.clients.segware import SegwareEvent, parse_event, parse_events

# receivedAt forms the contract allows, with the instant each one is (UTC).
VALID_TIMES = {
    "2026-11-22T09:58:12Z": datetime(2026, 11, 22, 9, 58, 12, tzinfo=UTC),
    "2026-11-22T09:58:12+00:00": datetime(2026, 11, 22, 9, 58, 12, tzinfo=UTC),
    "2026-11-22T09:58:12-00:00": datetime(2026, 11, 22, 9, 58, 12, tzinfo=UTC),
    "2026-11-22T09:58:12-03:00": datetime(2026, 11, 22, 12, 58, 12, tzinfo=UTC),
    "2026-11-22T09:58:12+05:30": datetime(2026, 11, 22, 4, 28, 12, tzinfo=UTC),
    "2026-11-22T09:58:12+0530": datetime(2026, 11, 22, 4, 28, 12, tzinfo=UTC),
    "2026-11-22T09:58:12+01:30:15": datetime(2026, 11, 22, 8, 27, 57, tzinfo=UTC),
    "2026-11-22T09:58:12.5Z": datetime(2026, 11, 22, 9, 58, 12, 500_000, tzinfo=UTC),
    "2026-11-22T09:58:12,5Z": datetime(2026, 11, 22, 9, 58, 12, 500_000, tzinfo=UTC),
    "2026-11-22T09:58:12.123Z": datetime(2026, 11, 22, 9, 58, 12, 123_000, tzinfo=UTC),
    "2026-11-22T09:58:12.123456Z": datetime(2026, 11, 22, 9, 58, 12, 123_456, tzinfo=UTC),
    "2026-11-22T09:58:12.1234567Z": datetime(2026, 11, 22, 9, 58, 12, 123_456, tzinfo=UTC),
    "2026-11-22T09:58:12.000000Z": datetime(2026, 11, 22, 9, 58, 12, tzinfo=UTC),
    "2026-11-22T09:58:12.999999-03:00": datetime(2026, 11, 22, 12, 58, 12, 999_999, tzinfo=UTC),
    "2026-11-22T23:30:00-03:00": datetime(2026, 11, 23, 2, 30, tzinfo=UTC),
    "2026-11-22T09:58Z": datetime(2026, 11, 22, 9, 58, tzinfo=UTC),
    "2026-11-22 09:58:12Z": datetime(2026, 11, 22, 9, 58, 12, tzinfo=UTC),
    "20261122T095812Z": datetime(2026, 11, 22, 9, 58, 12, tzinfo=UTC),
    "2026-W47-7T09:58:12Z": datetime(2026, 11, 22, 9, 58, 12, tzinfo=UTC),
}

# receivedAt values that are no timestamp with an offset that a datetime can hold.
BAD_TIMES: dict[str, Any] = {
    "no offset": "2026-11-22T09:58:12",
    "a date only": "2026-11-22",
    "lower case": "2026-11-22t09:58:12z",
    "hour 24": "2026-11-22T24:00:00Z",
    "second 60": "2026-11-22T09:58:60Z",
    "offset 24:00": "2026-11-22T09:58:12+24:00",
    "a trailing space": "2026-11-22T09:58:12Z ",
    "full-width digits": "\uff12\uff10\uff12\uff16-11-22T09:58:12Z",
    "words": "yesterday",
    "empty": "",
    "long garbage": "x" * 10_000,
    "before year 1 in UTC": "0001-01-01T00:00:00+01:00",
    "after year 9999 in UTC": "9999-12-31T23:59:59-01:00",
    "a number": 1_763_805_492,
    "a float": 1.5,
    "null": None,
    "true": True,
    "a list": ["2026-11-22T09:58:12Z"],
    "an object": {"at": "2026-11-22T09:58:12Z"},
}


def event(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"id": "ev-000123", "account": "1234", "cuc": "CUC-77", "code": "E130",
                            "partition": "01", "zone": "003", "receivedAt": "2026-11-22T09:58:12Z"}
    item.update(changes)
    return {key: value for key, value in item.items() if value is not MISSING}


MISSING: Any = object()
FIELDS = ("id", "account", "cuc", "code", "partition", "zone", "receivedAt")
WRONG_TYPES = (None, 7, 0, 1.5, True, False, [], ["x"], {}, {"x": "y"})

# Events that are not the contract's shape (or are, at its edges), named for the test ids.
EDGE_EVENTS: dict[str, Any] = {
    "not an object: list": [["ev-1", "1234"]],
    "not an object: string": "ev-1",
    "not an object: null": None,
    "not an object: number": 7,
    "an empty object": {},
    "extra fields are ignored": event(description="Porta", receivedAt="2026-11-22T09:58:12Z", extra=[1]),
    "empty id": event(id=""),
    "empty account": event(account=""),
    "empty code": event(code=""),
    "empty cuc": event(cuc=""),
    "empty partition": event(partition=""),
    "empty zone": event(zone=""),
    "account at its limit": event(account="a" * limits.ACCOUNT),
    "account over its limit": event(account="a" * (limits.ACCOUNT + 1)),
    "cuc at its limit": event(cuc="c" * limits.CUC),
    "cuc over its limit": event(cuc="c" * (limits.CUC + 1)),
    "code at its limit": event(code="E" * limits.CODE),
    "code over its limit": event(code="E" * (limits.CODE + 1)),
    "empty account and a cuc over its limit": event(account="", cuc="c" * (limits.CUC + 1)),
    "partition at its limit": event(partition="p" * limits.PARTITION),
    "partition over its limit is unknown": event(partition="p" * (limits.PARTITION + 1)),
    "zone at its limit": event(zone="z" * limits.ZONE),
    "zone over its limit is unknown": event(zone="z" * (limits.ZONE + 1)),
    "a long id is kept": event(id="i" * 5_000),
    "non-ASCII text": event(account="Loja São João", cuc="CUC-ç", partition="ü", zone="ß"),
    **{f"{field} missing": event(**{field: MISSING}) for field in FIELDS},
    **{f"{field} is {value!r}": event(**{field: value}) for field in FIELDS for value in WRONG_TYPES},
    **{f"receivedAt {name}": event(receivedAt=value) for name, value in BAD_TIMES.items()},
    **{f"receivedAt {text}": event(receivedAt=text) for text in VALID_TIMES},
}


def outcome(parse: Any, item: Any) -> tuple[str, object]:
    """("value", the result) or ("error", the exception's type and text)."""
    try:
        return "value", parse(item)
    except ValueError as exc:
        return "error", (type(exc), str(exc))


def page_outcome(items: list[Any]) -> tuple[str, object]:
    """What parse_event gives item by item: the list of events, or the first item's error."""
    events = []
    for item in items:
        kind, result = outcome(parse_event, item)
        if kind == "error":
            return kind, result
        events.append(result)
    return "value", events


@pytest.mark.parametrize("item", list(EDGE_EVENTS.values()), ids=list(EDGE_EVENTS))
def test_the_fast_path_gives_what_parse_event_gives(item: Any) -> None:
    expected = outcome(parse_event, item)
    got = outcome(parse_events, [item])
    assert got == (expected[0], [expected[1]] if expected[0] == "value" else expected[1])
    if got[0] == "value":
        (parsed,) = got[1]  # type: ignore[misc]
        assert type(parsed) is SegwareEvent and parsed.received_at.tzinfo is UTC


@pytest.mark.parametrize(("text", "instant"), list(VALID_TIMES.items()), ids=list(VALID_TIMES))
def test_each_allowed_timestamp_form_is_its_instant_in_utc(text: str, instant: datetime) -> None:
    (parsed,) = parse_events([event(receivedAt=text)])
    assert parsed.received_at == instant and parsed.received_at.utcoffset() is not None
    assert parsed.received_at.tzinfo is UTC and parsed == parse_event(event(receivedAt=text))


@pytest.mark.parametrize("value", list(BAD_TIMES.values()), ids=list(BAD_TIMES))
def test_each_bad_timestamp_fails_with_a_short_value_error(value: Any) -> None:
    with pytest.raises(ValueError) as err:
        parse_events([event(receivedAt="2026-11-22T09:58:12Z"), event(id="ev-2", receivedAt=value)])
    assert str(err.value) == str(outcome(parse_event, event(receivedAt=value))[1][1])  # type: ignore[index]
    assert len(str(err.value)) < 120


def test_the_contract_fields_become_the_event() -> None:
    assert parse_events([event()]) == [SegwareEvent(
        id="ev-000123", account="1234", cuc="CUC-77", code="E130", partition="01", zone="003",
        received_at=datetime(2026, 11, 22, 9, 58, 12, tzinfo=UTC),
    )]


def test_an_event_of_the_fast_path_is_the_named_tuple_its_constructor_builds() -> None:
    # parse_events builds it with tuple.__new__, around SegwareEvent's own __new__.
    (parsed,) = parse_events([event()])
    built = SegwareEvent(**parsed._asdict())
    assert type(parsed) is type(built) is SegwareEvent
    assert parsed == built and hash(parsed) == hash(built) and parsed._asdict() == built._asdict()
    assert (parsed.id, parsed.code, parsed.received_at) == ("ev-000123", "E130", datetime(2026, 11, 22, 9, 58, 12,
                                                                                         tzinfo=UTC))


def test_a_page_mixing_every_form_gives_what_parse_event_gives_item_by_item() -> None:
    # Repeated texts (parsed once per page), equal instants written apart, and good events around bad ones.
    good = [event(id=f"ev-{n}", receivedAt=text) for n, text in enumerate([*VALID_TIMES, *VALID_TIMES])]
    assert page_outcome(good)[0] == "value"
    assert outcome(parse_events, good) == page_outcome(good)
    for name, item in EDGE_EVENTS.items():
        page = [*good[:5], item, *good[5:]]
        assert outcome(parse_events, page) == page_outcome(page), name


def test_a_timestamp_repeated_on_a_page_is_the_same_instant_each_time() -> None:
    first, second, third = parse_events([event(id="a"), event(id="b", receivedAt="2026-11-22T06:58:12-03:00"),
                                         event(id="c")])
    assert first.received_at == second.received_at == third.received_at
    assert [e.id for e in (first, second, third)] == ["a", "b", "c"]


def test_parse_timestamp_turns_an_instant_out_of_range_into_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"timestamp '0001-01-01T00:00:00\+01:00' is out of range"):
        parse_timestamp("0001-01-01T00:00:00+01:00")
