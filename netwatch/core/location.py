"""Where an event happened (partition and zone) when the host row does not say: pure choice."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

UNKNOWN = "unknown"


def choose_location(
    account: Mapping[str, Any] | None, partition: str | None, zone: str | None
) -> tuple[str, str]:
    """The host's own partition and zone, else the account's first partition and a zone in it.

    `account` is the cached account dict (`Account.to_cache()` form) or None when the account is
    unknown to Segware; anything that cannot be determined is "unknown".
    """
    partitions = [p["code"] for p in (account or {}).get("partitions", [])]
    zones = (account or {}).get("zones", [])
    chosen_partition = partition or (partitions[0] if partitions else None)
    if zone:
        return chosen_partition or UNKNOWN, zone
    in_partition = [z["code"] for z in zones if chosen_partition is None or z.get("partition") == chosen_partition]
    if not in_partition and chosen_partition is None:
        in_partition = [z["code"] for z in zones]
    return chosen_partition or UNKNOWN, in_partition[0] if in_partition else UNKNOWN
