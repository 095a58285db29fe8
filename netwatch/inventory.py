"""The monitored hosts, from `hosts:` in the YAML config or a CSV `hosts_file`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netwatch import limits
from netwatch.core.addresses import ip_version, is_ipv4
from netwatch.csvfile import FALSE_WORDS, TRUE_WORDS, csv_rows
from netwatch.errors import ConfigError
from netwatch.excerpt import clip, excerpt

REQUIRED_COLUMNS = ("name", "address", "account", "partition", "zone")
OPTIONAL_COLUMNS = ("description", "enabled")
# A target's name: hosts and service checks share it (and the `targets` table).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]*$")
_ADDRESS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*$")
_DOTTED_NUMBERS = re.compile(r"^[0-9.]+$")
# YAML reads an unquoted 01 as the number 1 (and 010 as 8), which would silently change these codes.
_CODE_KEYS = ("account", "partition", "zone")


# Checked when the config is read (see netwatch/limits.py); `description` is not stored.
FIELD_WIDTHS = {"name": limits.HOST_NAME, "address": limits.ADDRESS, "account": limits.ACCOUNT,
                "partition": limits.PARTITION, "zone": limits.ZONE}


@dataclass(frozen=True)
class HostSpec:
    """One monitored host as configured; `origin` says where (file and line or list index)."""

    name: str
    address: str
    account: str | None = None
    partition: str | None = None
    zone: str | None = None
    description: str | None = None
    origin: str = field(default="", compare=False)


def hosts_from_yaml(items: Any, source: str) -> Iterator[HostSpec]:
    """Hosts listed under `hosts:` (enabled ones only)."""
    if items is None:
        return
    if not isinstance(items, list):
        raise ConfigError(f"{source}: hosts: must be a list of hosts")
    for index, item in enumerate(items):
        origin = f"{source}: hosts[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{origin}: must be a mapping with name and address")
        unknown = sorted(set(map(str, item)) - set(REQUIRED_COLUMNS) - set(OPTIONAL_COLUMNS))
        if unknown:
            raise ConfigError(f"{origin}.{clip(unknown[0])}: unknown key")
        for key in _CODE_KEYS:
            value = item.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                raise ConfigError(f"{origin}.{key}: must be a quoted string, got the number {excerpt(value)}")
        values = {key: _cell(item.get(key), f"{origin}.{key}") for key in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)}
        host = _host(values, origin, lambda key, origin=origin: f"{origin}.{key}")
        if host is not None:
            yield host


def hosts_from_csv(path: Path, where: str = "hosts_file") -> Iterator[HostSpec]:
    """Hosts of a CSV file with header name,address,account,partition,zone[,description,enabled].

    `where` names the config key that points at the file, for the error when it cannot be read.
    """
    for origin, values in csv_rows(path, where, "hosts file", REQUIRED_COLUMNS, OPTIONAL_COLUMNS):
        host = _host(values, origin, lambda key, origin=origin: f"{origin}: {key}")
        if host is not None:
            yield host


def _cell(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):
        return str(value).strip() or None
    raise ConfigError(f"{where}: must be a string, got {excerpt(value)}")


def _host(values: dict[str, str | None], origin: str, key_at: Any) -> HostSpec | None:
    name, address = values.get("name"), values.get("address")
    if not name:
        raise ConfigError(f"{key_at('name')}: is empty")
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"{key_at('name')}: invalid host name {excerpt(name)}")
    if not address:
        raise ConfigError(f"{key_at('address')}: is empty (host {excerpt(name)})")
    if ":" in address:
        if "%" in address:
            # Link-local addresses need one; the sweep pings global and unique-local ones only.
            raise ConfigError(f"{key_at('address')}: an IPv6 zone (%...) is not supported: {excerpt(address)}")
        if ip_version(address) != 6:
            raise ConfigError(f"{key_at('address')}: invalid IPv6 address {excerpt(address)}")
    elif not _ADDRESS.match(address):
        raise ConfigError(f"{key_at('address')}: invalid address {excerpt(address)}")
    if _DOTTED_NUMBERS.match(address) and not is_ipv4(address):
        raise ConfigError(f"{key_at('address')}: invalid IPv4 address {excerpt(address)}")
    for key, width in FIELD_WIDTHS.items():
        value = values.get(key)
        if value is not None and len(value) > width:
            raise ConfigError(f"{key_at(key)}: longer than {width} characters (host {excerpt(name)})")
    enabled = (values.get("enabled") or "true").lower()
    if enabled not in TRUE_WORDS | FALSE_WORDS:
        raise ConfigError(f"{key_at('enabled')}: must be true or false, got {excerpt(enabled)}")
    if enabled in FALSE_WORDS:
        return None
    return HostSpec(
        name=name,
        address=address,
        account=values.get("account"),
        partition=values.get("partition"),
        zone=values.get("zone"),
        description=values.get("description"),
        origin=origin,
    )
