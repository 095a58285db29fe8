"""A quoted boolean in the config is refused with words that say it was a string.

`notify_initial: "false"` used to read `must be true or false, got 'false'`, as if the value had
been the boolean. Booleans stay strict (a string is never taken for one); the message now says it
got a string and that YAML booleans are unquoted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netwatch.config import load_config
from netwatch.errors import ConfigError


def refusal(tmp_path: Path, text: str) -> str:
    path = tmp_path / "netwatch.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    return caught.value.message.removeprefix(f"{path}: ")


@pytest.mark.parametrize("quoted", ['"false"', "'true'", '"yes"'])
def test_a_quoted_boolean_is_named_a_string(tmp_path: Path, quoted: str) -> None:
    message = refusal(tmp_path, f"thresholds:\n  notify_initial: {quoted}\n")
    assert message == (f"thresholds.notify_initial: must be true or false, got the string '{quoted[1:-1]}' "
                       "(YAML booleans are unquoted: true or false)")


def test_every_boolean_key_says_so(tmp_path: Path) -> None:
    message = refusal(tmp_path, "notifications:\n  webhook: {url: 'http://127.0.0.1:1', send_recovery: 'no'}\n")
    assert message.startswith("notifications.webhook.send_recovery: must be true or false, got the string 'no'")


def test_another_value_keeps_its_plain_message(tmp_path: Path) -> None:
    assert refusal(tmp_path, "thresholds:\n  notify_initial: 1\n") == (
        "thresholds.notify_initial: must be true or false, got 1")


def test_unquoted_booleans_load(tmp_path: Path) -> None:
    path = tmp_path / "netwatch.yaml"
    path.write_text("thresholds:\n  notify_initial: true\n", encoding="utf-8")
    assert load_config(path, {}).thresholds.notify_initial is True
