"""Hostile files: FIFOs, devices, oversized files, YAML alias bombs and huge values are refused quickly.

Each refusal is a ConfigError (exit 78) of one bounded line. A FIFO read would block forever, so those
tests run the read in a thread and give up on it after a few seconds instead of hanging the suite.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from inproc import InProcess
from jobkit import log_lines

from netwatch import files
from netwatch.config import ApiConfig, load_config
from netwatch.errors import ConfigError, ExitCode
from netwatch.tokens import read_token
from netwatch.yamldoc import MAX_NODES, parse_yaml

MAX_MESSAGE = 400  # no refusal below may be longer than this, whatever the input held

BILLION_LAUGHS = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def refusal(load: Callable[[], object], seconds: float = 10) -> str:
    """The ConfigError message of `load()`, which must come within `seconds` (run in a thread)."""
    outcome: list[BaseException | object] = []

    def target() -> None:
        try:
            outcome.append(load())
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still reading after {seconds} s"
    [error] = outcome
    assert isinstance(error, ConfigError), error
    assert error.exit_code == ExitCode.CONFIG
    assert "\n" not in error.message and len(error.message) <= MAX_MESSAGE, error.message[:1000]
    return error.message


def config_refusal(path: Path) -> str:
    return refusal(lambda: load_config(path, {}))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def sparse(path: Path, size: int) -> Path:
    """A file of `size` bytes that takes no disk space (zeros)."""
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def api(token_file: Path) -> ApiConfig:
    return ApiConfig(section="sigma", base_url="http://127.0.0.1:1", token_env="NW_TEST_SIGMA_TOKEN",
                     token_file=token_file, timeout_seconds=1.0)


# --- not a regular file ----------------------------------------------------------------------------


def test_a_config_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "netwatch.yaml"
    os.mkfifo(fifo)
    assert config_refusal(fifo) == f"{fifo}: cannot read config file: a FIFO, not a regular file"


def test_a_config_that_is_dev_zero_is_refused_unread(tmp_path: Path) -> None:
    link = tmp_path / "netwatch.yaml"
    link.symlink_to("/dev/zero")
    assert config_refusal(link) == f"{link}: cannot read config file: a character device, not a regular file"


def test_a_config_folder_is_refused(tmp_path: Path) -> None:
    assert config_refusal(tmp_path) == f"{tmp_path}: cannot read config file: a directory, not a regular file"


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_hosts_file_that_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    hosts = tmp_path / "hosts.csv"
    if kind == "fifo":
        os.mkfifo(hosts)
    else:
        hosts.symlink_to("/dev/zero")
    config = write(tmp_path / "netwatch.yaml", "hosts_file: hosts.csv\n")
    what = "a FIFO" if kind == "fifo" else "a character device"
    assert config_refusal(config) == f"{config}: hosts_file: cannot read {hosts}: {what}, not a regular file"


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_token_file_that_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    token_file = tmp_path / "sigma.token"
    if kind == "fifo":
        os.mkfifo(token_file)
    else:
        token_file.symlink_to("/dev/zero")
    message = refusal(lambda: read_token(api(token_file), {}))
    assert message.startswith(f"sigma.token_file: cannot read {token_file}: a ")
    assert message.endswith(", not a regular file")


def test_a_fifo_config_through_the_cli_exits_78_at_once(nwi: InProcess, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(nwi.cli("run", "ping-sweep", "--config", str(fifo))),
                              daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "the job waited on the FIFO"
    [done] = outcome
    assert done.returncode == 78  # type: ignore[attr-defined]
    assert log_lines(done.stderr) == [  # type: ignore[attr-defined]
        f"error: {fifo}: cannot read config file: a FIFO, not a regular file"]


# --- size limits -----------------------------------------------------------------------------------


def test_the_documented_limits() -> None:
    assert (files.CONFIG_MAX_BYTES, files.HOSTS_FILE_MAX_BYTES, files.TOKEN_FILE_MAX_BYTES) == (
        16 * 1024 * 1024, 64 * 1024 * 1024, 64 * 1024)


def test_a_config_over_16_mib_is_refused(tmp_path: Path) -> None:
    path = sparse(tmp_path / "netwatch.yaml", files.CONFIG_MAX_BYTES + 1)
    assert config_refusal(path) == f"{path}: cannot read config file: larger than 16 MiB (the limit for this file)"


def test_a_config_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "netwatch.yaml"
    path.write_bytes(b"#" * (files.CONFIG_MAX_BYTES - 1) + b"\n")
    assert load_config(path, {}).hosts == ()


def test_a_hosts_file_over_64_mib_is_refused(tmp_path: Path) -> None:
    hosts = sparse(tmp_path / "hosts.csv", files.HOSTS_FILE_MAX_BYTES + 1)
    config = write(tmp_path / "netwatch.yaml", "hosts_file: hosts.csv\n")
    assert config_refusal(config) == (f"{config}: hosts_file: cannot read {hosts}: larger than 64 MiB "
                                      "(the limit for this file)")


def test_a_token_file_over_64_kib_is_refused(tmp_path: Path) -> None:
    token_file = tmp_path / "sigma.token"
    token_file.write_bytes(b"a" * (files.TOKEN_FILE_MAX_BYTES + 1))
    assert refusal(lambda: read_token(api(token_file), {})) == (
        f"sigma.token_file: cannot read {token_file}: larger than 64 KiB (the limit for this file)")


# --- YAML that expands ------------------------------------------------------------------------------


def test_a_billion_laughs_config_is_refused_quickly(tmp_path: Path) -> None:
    path = write(tmp_path / "netwatch.yaml", BILLION_LAUGHS)
    started = time.monotonic()
    message = config_refusal(path)
    assert time.monotonic() - started < 2
    assert message.startswith(f"{path}: line ")
    assert f"expands to more than {MAX_NODES:,} nodes" in message


def test_an_alias_bomb_under_a_typed_key_is_refused_before_the_key_is_read(tmp_path: Path) -> None:
    # It used to take a minute and 2 GB: the error for ping.count printed the expanded value.
    path = write(tmp_path / "netwatch.yaml", BILLION_LAUGHS.replace("i: &i", "ping:\n  count: &i"))
    assert "expands to more than" in config_refusal(path)


def test_aliases_within_the_limit_still_work(tmp_path: Path) -> None:
    path = write(tmp_path / "netwatch.yaml", "x-host: &lo {address: 127.0.0.1, account: '1'}\n"
                                             "hosts: [{<<: *lo, name: a}, {<<: *lo, name: b}]\n")
    assert "x-host: unknown key" in config_refusal(path)  # the aliases were read; the anchor's key is not one
    path = write(tmp_path / "netwatch.yaml", "hosts: [{name: a, address: &ip 127.0.0.1}, {name: b, address: *ip}]\n")
    assert [host.address for host in load_config(path, {}).hosts] == ["127.0.0.1", "127.0.0.1"]


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "netwatch.yaml", "hosts: &h [*h]\n")
    assert "an alias refers to the YAML around it" in config_refusal(path)


def test_deep_nesting_is_refused_without_a_crash(tmp_path: Path) -> None:
    path = write(tmp_path / "netwatch.yaml", "hosts: " + "[" * 50_000 + "]" * 50_000 + "\n")
    assert config_refusal(path) == f"{path}: line 1: invalid YAML: exceeded maximum nesting depth"


def test_nesting_just_under_the_parser_limit_is_read_without_a_crash() -> None:
    value = parse_yaml("deep: " + "[" * 999 + "]" * 999 + "\n", "netwatch.yaml")["deep"]
    for _ in range(998):
        [value] = value
    assert value == []


def test_an_integer_python_cannot_hold_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "netwatch.yaml", f"ping: {{count: {'9' * 5000}}}\n")
    assert config_refusal(path).startswith(f"{path}: invalid YAML value: ")


# --- every echoed value is bounded ------------------------------------------------------------------

HUGE = "x" * 1_000_000
LONG = "x" * 100_000  # a CSV field may be at most 131072 characters


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (f"ping: {{count: '{HUGE}'}}\n", "ping.count: must be a whole number, got 'xxx"),
        (f"ping: {{count: [{', '.join(['1'] * 10_000)}]}}\n", "ping.count: must be a whole number, got [1, 1"),
        (f"ping: {{count: {'9' * 4000}}}\n", "ping.count: must be at most 100, got 999"),
        (f"ping:\n  ? '{HUGE}'\n  : 1\n", ": unknown key"),
        (f"sigma: {{base_url: 'ftp://{HUGE}'}}\n", "sigma.base_url: must start with http:// or https://"),
        (f"event_scan:\n  codes:\n    ? '{HUGE}'\n    : 1\n", "an alarm code has at most 32 characters"),
        (f"event_scan: {{codes: {{E1: '{HUGE}'}}}}\n", "must be a whole number >= 1 or null, got 'xxx"),
        (f"hosts: [{{name: '!{HUGE}', address: 127.0.0.1}}]\n", "hosts[0].name: invalid host name '!xxx"),
        (f"hosts: [{{name: a, address: '!{HUGE}'}}]\n", "hosts[0].address: invalid address '!xxx"),
        (f"hosts:\n  - name: a\n    address: 127.0.0.1\n    ? '{HUGE}'\n    : 1\n", ": unknown key"),
        (f"hosts: [{{name: a, address: 127.0.0.1, enabled: '{HUGE}'}}]\n", "enabled: must be true or false"),
        (f"? '{HUGE}'\n: 1\n? '{HUGE}'\n: 2\n", "duplicate key 'xxx"),
    ],
)
def test_no_error_message_holds_an_unbounded_value(tmp_path: Path, text: str, fragment: str) -> None:
    assert fragment in config_refusal(write(tmp_path / "netwatch.yaml", text))


@pytest.mark.parametrize(
    ("csv", "fragment"),
    [
        (f"name,address,account,partition,zone\n!{LONG},127.0.0.1,1,1,1\n", "line 2: name: invalid host name '!xxx"),
        (f"name,address,account,partition,zone,{LONG}\n", "line 1: unknown column 'xxx"),
        (f"name,address,account,partition,zone\nh,127.0.0.1,1,1,{LONG}\n", "line 2: zone: longer than 32"),
        (f"name,address,account,partition,zone\nh,127.0.0.1,1,1,1,{LONG}\n", "line 2: expected 5 fields, found 6"),
    ],
)
def test_no_hosts_file_error_holds_an_unbounded_value(tmp_path: Path, csv: str, fragment: str) -> None:
    write(tmp_path / "hosts.csv", csv)
    assert fragment in config_refusal(write(tmp_path / "netwatch.yaml", "hosts_file: hosts.csv\n"))
