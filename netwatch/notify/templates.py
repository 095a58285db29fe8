"""Default notification texts and operator overrides, as `string.Template` title/body pairs.

Placeholders are `$name` or `${name}`; write `$$` for a literal dollar sign. The job renders each
kind with exactly these fields, all strings:

- host_offline, host_online: host, address, account, partition, zone, streak, occurred_at
- host_first_status: the host fields plus status (online or offline)
- host_removed: host, address, account, partition, zone, occurred_at, status (the last one)
- service_down, service_up: check, kind (http or tcp), target (the URL or host:port), client,
  account, streak, reason (of the last check; "-" when it was ok), occurred_at
- service_first_status: the service_down fields plus status (online or offline)
- service_removed: check, kind, target, client, account, occurred_at, status (the last one)
- alert_raised: account, account_name, company, client_group, cuc, code, count, threshold,
  window_minutes, occurred_at
- alert_cleared: the alert_raised fields plus reason, last_count, duration (human, e.g. "1h 5m")

Overrides come from `notifications.templates.<kind>.<title|body>` and replace one part each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from string import Template
from types import MappingProxyType

from netwatch.notify.kinds import FIELDS, Kind

PARTS = ("title", "body")


@dataclass(frozen=True)
class TemplatePair:
    """The title and body template of one message kind."""

    title: Template
    body: Template


DEFAULT_TEMPLATES: Mapping[Kind, TemplatePair] = MappingProxyType(
    {
        Kind.HOST_OFFLINE: TemplatePair(
            title=Template("OFFLINE: $host ($address)"),
            body=Template(
                "Host $host ($address) stopped answering after $streak failed checks.\n"
                "Account $account, partition $partition, zone $zone.\n"
                "Since $occurred_at."
            ),
        ),
        Kind.HOST_ONLINE: TemplatePair(
            title=Template("ONLINE: $host ($address)"),
            body=Template(
                "Host $host ($address) answers again after $streak successful checks.\n"
                "Account $account, partition $partition, zone $zone.\n"
                "At $occurred_at."
            ),
        ),
        Kind.HOST_FIRST_STATUS: TemplatePair(
            title=Template("MONITORED: $host ($address) is $status"),
            body=Template(
                "First confirmed status of host $host ($address): $status, after $streak consecutive checks.\n"
                "Account $account, partition $partition, zone $zone.\n"
                "At $occurred_at."
            ),
        ),
        Kind.HOST_REMOVED: TemplatePair(
            title=Template("REMOVED: $host ($address) from monitoring"),
            body=Template(
                "Host $host ($address) was removed from the inventory while $status: it is no longer checked,\n"
                "so no recovery will be reported for it.\n"
                "Account $account, partition $partition, zone $zone.\n"
                "At $occurred_at."
            ),
        ),
        Kind.SERVICE_DOWN: TemplatePair(
            title=Template("DOWN: $check ($target)"),
            body=Template(
                "The $kind check $check ($target) failed $streak times in a row: $reason.\n"
                "Client $client, account $account.\n"
                "Since $occurred_at."
            ),
        ),
        Kind.SERVICE_UP: TemplatePair(
            title=Template("UP: $check ($target)"),
            body=Template(
                "The $kind check $check ($target) works again after $streak successful checks.\n"
                "Client $client, account $account.\n"
                "At $occurred_at."
            ),
        ),
        Kind.SERVICE_FIRST_STATUS: TemplatePair(
            title=Template("MONITORED: $check ($target) is $status"),
            body=Template(
                "First confirmed status of the $kind check $check ($target): $status, after $streak consecutive"
                " checks (last reason: $reason).\n"
                "Client $client, account $account.\n"
                "At $occurred_at."
            ),
        ),
        Kind.SERVICE_REMOVED: TemplatePair(
            title=Template("REMOVED: $check ($target) from monitoring"),
            body=Template(
                "The $kind check $check ($target) was removed from the config while $status: it is no longer run,\n"
                "so no recovery will be reported for it.\n"
                "Client $client, account $account.\n"
                "At $occurred_at."
            ),
        ),
        Kind.ALERT_RAISED: TemplatePair(
            title=Template("ALERT: $account_name ($account) code $code: $count in ${window_minutes}min"),
            body=Template(
                "Account $account ($account_name, $company, group $client_group), CUC $cuc:\n"
                "$count events with code $code in the last $window_minutes minutes "
                "(threshold $threshold).\n"
                "At $occurred_at."
            ),
        ),
        Kind.ALERT_CLEARED: TemplatePair(
            title=Template("CLEARED: $account_name ($account) code $code"),
            body=Template(
                "Account $account ($account_name, $company, group $client_group), CUC $cuc:\n"
                "the alert for code $code cleared after $duration ($reason).\n"
                "Last count $last_count in $window_minutes minutes (threshold $threshold).\n"
                "At $occurred_at."
            ),
        ),
    }
)


def _placeholders(template: Template) -> set[str]:
    """Names a template refers to; ValueError on a malformed `$` (use `$$` for a literal dollar)."""
    names: set[str] = set()
    for match in template.pattern.finditer(template.template):
        if match.group("invalid") is not None:
            raise ValueError(f"bad '$' at position {match.start()} (write $$ for a literal dollar sign)")
        name = match.group("named") or match.group("braced")
        if name is not None:
            names.add(name)
    return names


def validate_overrides(overrides: Mapping[str, Mapping[str, str]]) -> None:
    """Raise ValueError naming the kind, part and problem of the first bad override."""
    for kind, parts in overrides.items():
        if kind not in FIELDS:
            raise ValueError(f"unknown template kind {kind!r}; expected one of {', '.join(FIELDS)}")
        for part, text in parts.items():
            if part not in PARTS:
                raise ValueError(f"{kind}: unknown template part {part!r}; expected title or body")
            if not isinstance(text, str):
                raise ValueError(f"{kind}.{part}: template must be a string")
            try:
                names = _placeholders(Template(text))
            except ValueError as exc:
                raise ValueError(f"{kind}.{part}: {exc}") from None
            unknown = sorted(names - FIELDS[kind])
            if unknown:
                raise ValueError(
                    f"{kind}.{part}: unknown placeholder ${unknown[0]}; available: {', '.join(sorted(FIELDS[kind]))}"
                )


def render(
    kind: str, fields: Mapping[str, str], overrides: Mapping[str, Mapping[str, str]] | None = None
) -> tuple[str, str]:
    """Return (title, body) for `kind`; an override replaces the default part it names.

    Raises ValueError for an unknown kind or when a placeholder has no field (a missing value
    must never render as an empty string).
    """
    if kind not in DEFAULT_TEMPLATES:
        raise ValueError(f"unknown template kind {kind!r}; expected one of {', '.join(DEFAULT_TEMPLATES)}")
    default = DEFAULT_TEMPLATES[kind]
    chosen = (overrides or {}).get(kind, {})
    title = Template(chosen["title"]) if "title" in chosen else default.title
    body = Template(chosen["body"]) if "body" in chosen else default.body
    return _substitute(kind, "title", title, fields), _substitute(kind, "body", body, fields)


def _substitute(kind: str, part: str, template: Template, fields: Mapping[str, str]) -> str:
    try:
        return template.substitute(fields)
    except KeyError as exc:
        raise ValueError(f"{kind}.{part}: no value for placeholder ${exc.args[0]}") from None
