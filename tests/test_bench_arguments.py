"""The benchmarks' own arguments (the benchmarks need root and a quiet machine: they are not run here)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _bench_module(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """bench/NAME.py imported as a module (its dataclasses look their module up in sys.modules)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_sweep_engine_names_a_before_tree_given_as_dot_by_its_folder(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    tree = tmp_path / "nw-before"
    (tree / ".venv" / "bin").mkdir(parents=True)
    (tree / ".venv" / "bin" / "python").touch()
    monkeypatch.chdir(tree)

    args = _bench_module("sweep_engine", monkeypatch).parse_args(["--before", "."])

    assert [before.name for before in args.before] == ["nw-before"]
