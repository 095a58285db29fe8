"""Drift between the code and the files that describe it: README, Makefile, config example, CI script.

Config keys are enumerated from the parser itself, not from a list kept by hand: every mapping of the
example is probed with each identifier-like string of the netwatch package as a new key, and a key
counts as accepted when the parser does not answer "<path>.<key>: unknown key". The example's
commented-out sections (the notification channels) count as documented: uncommented, they are YAML
that is merged into the example at the place of the comment, and the result must be a valid config.
"""

from __future__ import annotations

import ast
import copy
import functools
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

import netwatch
from netwatch.config import parse_config
from netwatch.errors import ConfigError, ExitCode
from netwatch.inventory import OPTIONAL_COLUMNS, REQUIRED_COLUMNS

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
MAKEFILE = REPO / "Makefile"
EXAMPLE = REPO / "netwatch" / "config.example.yaml"
CI_SCRIPT = REPO / ".ci" / "run"
SOURCE = "example.yaml"
FREE_FORM = {"event_scan.codes", "notifications.templates", "http_checks[].headers"}
_BOGUS_KEY = "zz_not_a_config_key"
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
_COMMENT_LINE = re.compile(r"^( *)# ?(.*)$")
_KEY_LINE = re.compile(r"^( *)([A-Za-z_][A-Za-z0-9_]*):")
_CELL_SEPARATOR = re.compile(r"(?<!\\)\|")

KeyPath = tuple[str | int, ...]


# --- README and Makefile -----------------------------------------------------------------------


def readme_section(title: str) -> list[str]:
    """The lines of README's `## title` section."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"## {title}") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def table_rows(lines: Sequence[str]) -> list[list[str]]:
    """The cells of each body row of the markdown tables in `lines` (escaped `\\|` kept in a cell)."""
    rows = [[cell.strip() for cell in _CELL_SEPARATOR.split(line.strip())[1:-1]]
            for line in lines if line.startswith("|")]
    return [row for row in rows[1:] if not all(set(cell) <= set("-: ") for cell in row)]


def test_readme_opens_with_make_run_and_make_test() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    fence = next(i for i, line in enumerate(lines) if line.startswith("```"))
    end = next(i for i in range(fence + 1, len(lines)) if lines[i].startswith("```"))
    commands = [line.split("#", 1)[0].strip() for line in lines[fence + 1 : end]]

    assert lines[0].startswith("# ") and all(not line.strip() for line in lines[1:fence]), "README starts elsewhere"
    assert [command for command in commands if command] == ["make run", "make test"]


def test_makefile_has_the_developer_targets() -> None:
    targets = set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", MAKEFILE.read_text(encoding="utf-8"), re.MULTILINE))

    assert {"install", "run", "test", "lint", "bench"} <= targets


def test_readme_exit_codes_are_the_exit_code_enum() -> None:
    rows = table_rows(readme_section("Exit codes"))
    codes = [int(row[0]) for row in rows]

    assert sorted(codes) == sorted(int(code) for code in ExitCode)
    assert len(codes) == len(set(codes)), "a code is listed twice"
    assert all(row[1] for row in rows), "a code without a meaning"


# --- config keys -------------------------------------------------------------------------------


class _Probe:
    """A value no config reader accepts: the parser rejects it naming its key, or calls the key unknown."""

    def __repr__(self) -> str:
        return "<probe>"


def _commented_blocks(text: str) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """(parent key path, mapping) of each comment run that is YAML with identifier keys once uncommented."""
    parents: list[tuple[int, str]] = []
    run: list[re.Match[str]] = []
    for line in [*text.splitlines(), ""]:
        comment = _COMMENT_LINE.match(line)
        if comment:
            run.append(comment)
            continue
        if run:
            block = _uncommented(run)
            if block is not None:
                column = len(run[0].group(1))
                yield tuple(key for indent, key in parents if indent < column), block
            run = []
        live = _KEY_LINE.match(line)
        if live:
            indent = len(live.group(1))
            parents = [(i, key) for i, key in parents if i < indent] + [(indent, live.group(2))]


def _uncommented(run: Sequence[re.Match[str]]) -> dict[str, Any] | None:
    if len({len(match.group(1)) for match in run}) != 1:
        return None
    try:
        block = yaml.safe_load(textwrap.dedent("\n".join(match.group(2) for match in run)))
    except yaml.YAMLError:
        return None  # prose
    if not isinstance(block, dict) or not all(isinstance(key, str) and _IDENTIFIER.match(key) for key in block):
        return None
    return block


# Keys the example shows commented out beside the active key they replace (giving both is an error).
ALTERNATIVES = {("database", "url_file"): ("database", "url")}


def merged_example() -> dict[str, Any]:
    """The example config with its commented-out sections merged in where the comments stand."""
    text = EXAMPLE.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    for parent, block in _commented_blocks(text):
        target = data
        for key in parent:
            target = target[key]
        for key, value in block.items():
            target.setdefault(key, value)
    return data


def _lookup(data: dict[str, Any], path: tuple[str, ...]) -> bool:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True


@functools.cache
def documented_example() -> dict[str, Any]:
    """The merged example without the alternatives of keys it sets (a config the parser takes)."""
    data = merged_example()
    for alternative, active in ALTERNATIVES.items():
        if _lookup(data, active) and _lookup(data, alternative):
            parent: Any = data
            for part in alternative[:-1]:
                parent = parent[part]
            del parent[alternative[-1]]
    return data


@functools.cache
def candidate_keys() -> frozenset[str]:
    """Every identifier-like string literal of the netwatch package: a superset of the config keys."""
    names: set[str] = set()
    for module in Path(netwatch.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _IDENTIFIER.match(node.value):
                names.add(node.value)
    return frozenset(names)


def _where(path: KeyPath) -> str:
    """A key path as the parser writes it: `hosts[0].name`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def _name(path: KeyPath) -> str:
    """A key path as the docs write it: `hosts[].name`."""
    return re.sub(r"\[\d+\]", "[]", _where(path))


def _accepts(base: dict[str, Any], path: KeyPath, key: str) -> bool:
    data = copy.deepcopy(base)
    target: Any = data
    for part in path:
        target = target[part]
    target[key] = _Probe()
    try:
        parse_config(data, SOURCE, EXAMPLE.parent, {})
    except ConfigError as exc:
        # "unknown key" may go on with a hint (http_checks[].password: use password_encrypted).
        unknown = f"{SOURCE}: {_where((*path, key))}: unknown key"
        return exc.message != unknown and not exc.message.startswith(f"{unknown}: ")
    return True


@dataclass
class Survey:
    """The config keys the parser accepts, by where the example has them."""

    sections: set[str] = field(default_factory=set)     # strict mappings (and the host list)
    free_form: set[str] = field(default_factory=set)    # mappings of the user's own keys
    in_example: set[str] = field(default_factory=set)   # leaf keys the example shows
    not_in_example: set[str] = field(default_factory=set)

    def leaves(self) -> set[str]:
        return self.in_example | self.not_in_example | self.free_form

    def accepted(self) -> set[str]:
        return self.leaves() | self.sections


@functools.cache
def survey() -> Survey:
    base = documented_example()
    result = Survey()

    def visit(path: KeyPath, mapping: dict[str, Any]) -> None:
        if _accepts(base, path, _BOGUS_KEY):
            result.free_form.add(_name(path))
            return
        if path:
            result.sections.add(_name(path))
        for key, value in mapping.items():
            child = (*path, key)
            if isinstance(value, dict):
                visit(child, value)
            elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
                result.sections.add(_name(child))
                # Probed on the first item; a key any item shows counts as shown.
                visit((*child, 0), {k: v for item in value for k, v in item.items()})
            else:
                result.in_example.add(_name(child))
        for key in sorted(candidate_keys() - set(mapping)):
            if _accepts(base, path, key):
                result.not_in_example.add(_name((*path, key)))

    visit((), base)
    merged = merged_example()
    for alternative in ALTERNATIVES:
        if _lookup(merged, alternative):
            result.in_example.add(".".join(alternative))
            result.not_in_example.discard(".".join(alternative))
    return result


def _expand(pattern: str) -> list[tuple[str, ...]]:
    """README key notation -> key paths: `a.{b,c}` is a.b and a.c, a `<placeholder>` segment is `*`."""
    braces = re.search(r"\{([^}]*)\}", pattern)
    if braces:
        return [path for choice in braces.group(1).split(",")
                for path in _expand(pattern[: braces.start()] + choice.strip() + pattern[braces.end() :])]
    return [tuple("*" if part.startswith("<") else part for part in pattern.split("."))]


@functools.cache
def readme_keys() -> tuple[tuple[str, ...], ...]:
    """Every key path README's configuration table documents."""
    paths: list[tuple[str, ...]] = []
    for row in table_rows(readme_section("Configuration")):
        items = [item.replace("\\|", "|") for item in re.findall(r"`([^`]+)`", row[0])]
        if not items:
            continue
        # `a.b` / `c` in one cell: c is a sibling of b.
        parent = items[0].rsplit(".", 1)[0] + "." if "." in items[0].split("{")[0] else ""
        for index, item in enumerate(items):
            paths.extend(_expand(item if index == 0 or "." in item else parent + item))
        listed = re.search(r"list of `\{([^}]*)\}`", row[-1])
        if listed:
            paths.extend((f"{items[0]}[]", key.strip()) for key in listed.group(1).split(","))
    return tuple(paths)


def _covers(documented: tuple[str, ...], key: tuple[str, ...]) -> bool:
    """Whether README path `documented` is `key` or lies below it."""
    return len(documented) >= len(key) and all(d in ("*", k) for d, k in zip(documented, key, strict=False))


def test_example_with_its_commented_sections_is_a_valid_config() -> None:
    config = parse_config(documented_example(), SOURCE, EXAMPLE.parent, {})

    assert config.notifications.email is not None
    assert config.notifications.webhook is not None
    assert config.notifications.whatsapp is not None


def test_the_key_survey_finds_known_keys() -> None:
    """Guards the survey itself: were probing broken, the drift tests below would pass on nothing."""
    accepted = survey().accepted()

    assert {"database.url", "ping.count", "hosts", "hosts[].name", "hosts_file", "event_scan.codes",
            "notifications.email.host", "notifications.segware_alarm.cooldown_seconds"} <= accepted
    assert not any(_BOGUS_KEY in key for key in accepted)


def test_every_config_section_rejects_unknown_keys() -> None:
    assert survey().free_form == FREE_FORM


def test_every_accepted_config_key_is_in_the_example() -> None:
    assert sorted(survey().not_in_example) == [], (
        f"{EXAMPLE.name} lacks keys the parser accepts (add them, commented out where they must stay off)"
    )


def test_every_accepted_config_key_is_in_the_readme() -> None:
    missing = [key for key in sorted(survey().leaves())
               if not any(_covers(documented, tuple(key.split("."))) for documented in readme_keys())]

    assert missing == [], "README's configuration table lacks these keys"


def test_every_readme_config_key_is_accepted() -> None:
    accepted = [tuple(key.split(".")) for key in survey().accepted()]
    free_form = [tuple(key.split(".")) for key in survey().free_form]
    stale = [
        ".".join(path) for path in readme_keys()
        if not any(_covers(path, key) and len(path) == len(key) for key in accepted)
        and not any(_covers(path, key) for key in free_form)
    ]

    assert stale == [], "README documents keys the parser rejects"


def test_hosts_file_columns_are_documented() -> None:
    header = f"{','.join(REQUIRED_COLUMNS)}[,{','.join(OPTIONAL_COLUMNS)}]"
    hosts_file_row = next(row for row in table_rows(readme_section("Configuration")) if row[0] == "`hosts_file`")
    example = EXAMPLE.read_text(encoding="utf-8")

    assert f"`{header}`" in hosts_file_row[-1]
    assert ",".join(REQUIRED_COLUMNS) in example and ",".join(OPTIONAL_COLUMNS) in example


# --- CI ----------------------------------------------------------------------------------------


def ci_commands() -> list[str]:
    """The lines of .ci/run without comments and blank lines."""
    lines = (line.split(" #", 1)[0].strip() for line in CI_SCRIPT.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def test_ci_runs_make_test_with_mysql_netns_and_chromium_required() -> None:
    commands = ci_commands()
    runs = [i for i, line in enumerate(commands) if re.fullmatch(r"(exec\s+)?make\s+test", line)]

    assert runs, ".ci/run does not run README's test command `make test`"
    for variable in ("NETWATCH_REQUIRE_MYSQL", "NETWATCH_REQUIRE_NETNS", "NETWATCH_REQUIRE_CHROMIUM"):
        assert f"export {variable}=1" in commands[: runs[0]], f".ci/run must set {variable}=1 before make test"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_ci_script_is_executable_bash() -> None:
    check = subprocess.run(["bash", "-n", str(CI_SCRIPT)], capture_output=True, text=True, timeout=30, check=False)

    assert check.returncode == 0, check.stderr
    assert os.access(CI_SCRIPT, os.X_OK)


def _start_netns_tests(tmp_path: Path, require: bool) -> subprocess.Popen[str]:
    """The suite's netns tests where they cannot run: `ip` is off the PATH (and root may be missing)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NETWATCH_REQUIRE_")}
    env["PATH"] = str(tmp_path)
    if require:
        env["NETWATCH_REQUIRE_NETNS"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "netns", "-rsE", "tests"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        stdout, _ = process.communicate(timeout=300)
    finally:
        process.kill()
    return process.returncode, stdout


def _outcomes(output: str) -> dict[str, int]:
    last = output.strip().splitlines()[-1]
    return {word.rstrip("s"): int(count) for count, word in re.findall(r"(\d+) (\w+)", last)}


def test_netns_tests_skip_where_unavailable_but_fail_when_ci_requires_them(tmp_path: Path) -> None:
    both = [_start_netns_tests(tmp_path, require=False), _start_netns_tests(tmp_path, require=True)]
    (local_code, local), (required_code, required) = (_finish(process) for process in both)

    skipped = _outcomes(local)
    assert local_code == 0, local
    assert skipped.get("skipped", 0) > 0, local
    assert not {"passed", "failed", "error"} & set(skipped), local
    assert "netns test hosts need" in local
    failed = _outcomes(required)
    assert required_code == 1, required
    assert failed.get("error", 0) == skipped["skipped"], required
    assert not {"passed", "skipped"} & set(failed), required
    assert "NETWATCH_REQUIRE_NETNS=1" in required
