"""What event-scan and alert-clear say about an alert: its subject, message fields, stable keys, labels."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime

from netwatch import limits
from netwatch.config import Config
from netwatch.core.volume import GroupKey
from netwatch.db.triggers import TriggerRow


def subject(key: GroupKey) -> str:
    return f"{key.account}/{key.cuc}/{key.code}"


def alert_fields(row: TriggerRow, config: Config, occurred_at: datetime) -> dict[str, str]:
    """The template fields of an alert message (see netwatch.notify.templates)."""
    return {
        "account": row.key.account, "account_name": row.account_name or "unknown",
        "company": row.company or "unknown", "client_group": row.client_group or "unknown",
        "cuc": row.key.cuc, "code": row.key.code, "count": str(row.count), "threshold": str(row.threshold),
        "window_minutes": str(config.event_scan.window_minutes), "occurred_at": occurred_at.isoformat(),
    }


def alert_key(row: TriggerRow, action: str) -> str:
    """Stable across retries: the group, the raise generation and what happened."""
    text = f"{row.key.account}|{row.key.cuc}|{row.key.code}|{row.generation}|{action}"
    return f"alert-{hashlib.sha256(text.encode()).hexdigest()[:40]}"


def account_labels(found: Mapping[str, object] | None) -> tuple[str | None, str | None, str | None]:
    """Account name, company and client group from a cached account dict, cut to the column width."""
    if not found:
        return None, None, None
    return _label(found.get("name")), _label(found.get("company_name")), _label(found.get("client_group"))


def _label(value: object) -> str | None:
    return str(value)[: limits.LABEL] or None if value else None
