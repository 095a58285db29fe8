"""`history.gap_limit_seconds`: default 900, 1..86400, errors naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netwatch.config import parse_config
from netwatch.errors import ConfigError


def _parse(tmp_path: Path, history: Any) -> int:
    config = parse_config({"history": history, "hosts": []}, "nw.yaml", tmp_path, {})
    return config.history.gap_limit_seconds


def test_the_default_is_900(tmp_path: Path) -> None:
    assert _parse(tmp_path, None) == 900


@pytest.mark.parametrize("value", [1, 86_400])
def test_the_bounds_are_accepted(tmp_path: Path, value: int) -> None:
    assert _parse(tmp_path, {"gap_limit_seconds": value}) == value


@pytest.mark.parametrize("value", [0, 86_401, -5, 1.5, "900", True])
def test_a_bad_value_names_the_key(tmp_path: Path, value: Any) -> None:
    with pytest.raises(ConfigError, match=r"^nw\.yaml: history\.gap_limit_seconds: "):
        _parse(tmp_path, {"gap_limit_seconds": value})


def test_an_unknown_key_in_the_section_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"history\.gap_limit"):
        _parse(tmp_path, {"gap_limit": 900})
