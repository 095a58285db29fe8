"""`netwatch secret encrypt` and `netwatch secret generate-key` as an operator uses them.

The secret comes on stdin (a pipe, or a terminal that asks twice without echo); the value goes to
stdout alone. The secret and the key never appear in a log line, an error or the help.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from inproc import run_command
from jobkit import log_lines

from netwatch.encryption import decrypt, generate_key, parse_key

SECRET = "Shop-Basic-Auth-pw-4417"
KEY = generate_key()


def clean_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("NETWATCH_")}, **extra}


def netwatch(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m netwatch ARGS` with `stdin` piped in."""
    return subprocess.run([sys.executable, "-m", "netwatch", *args], input=stdin, env=env or clean_env(),
                          capture_output=True, text=True, timeout=60, check=False)


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text and KEY not in text


def test_generate_key_prints_a_new_key_each_time() -> None:
    first, second = netwatch("secret", "generate-key"), netwatch("secret", "generate-key")

    assert first.returncode == second.returncode == 0
    assert first.stderr == ""
    assert len(parse_key(first.stdout)) == 32 and first.stdout.endswith("\n") and first.stdout.count("\n") == 1
    assert first.stdout != second.stdout


def test_encrypt_prints_only_the_value_and_it_decrypts_with_the_key() -> None:
    done = netwatch("secret", "encrypt", stdin=SECRET + "\n", env=clean_env(NETWATCH_ENCRYPTION_KEY=KEY))

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    [value] = done.stdout.splitlines()
    assert value.startswith("nwenc:v1:")
    assert decrypt(value, parse_key(KEY)) == SECRET
    assert_no_secret(done.stdout)


def test_encrypt_reads_the_key_file_option_before_the_environment(tmp_path: Path) -> None:
    key_file = tmp_path / "enc.key"
    key_file.write_text(KEY + "\n", encoding="ascii")
    key_file.chmod(0o600)
    env = clean_env(NETWATCH_ENCRYPTION_KEY=generate_key(), NETWATCH_ENCRYPTION_KEY_FILE=str(tmp_path / "none"))

    done = netwatch("secret", "encrypt", "--key-file", str(key_file), stdin=SECRET, env=env)

    assert done.returncode == 0, done.stderr
    assert decrypt(done.stdout.strip(), parse_key(KEY)) == SECRET


def test_encrypt_reads_the_key_file_the_environment_names(tmp_path: Path) -> None:
    key_file = tmp_path / "enc.key"
    key_file.write_text(KEY, encoding="ascii")
    key_file.chmod(0o600)

    done = netwatch("secret", "encrypt", stdin=SECRET, env=clean_env(NETWATCH_ENCRYPTION_KEY_FILE=str(key_file)))

    assert done.returncode == 0, done.stderr
    assert decrypt(done.stdout.strip(), parse_key(KEY)) == SECRET


@pytest.mark.parametrize(("env", "stdin", "code", "line"), [
    ({}, SECRET, 78, "error: no encryption key is set (NETWATCH_ENCRYPTION_KEY, NETWATCH_ENCRYPTION_KEY_FILE or "
                     "encryption.key_file)"),
    ({"NETWATCH_ENCRYPTION_KEY": KEY[:-4]}, SECRET, 78,
     "error: NETWATCH_ENCRYPTION_KEY: the key is 30 bytes, not 32: a key is 32 random bytes in base64 (`netwatch "
     "secret generate-key` makes one)"),
    ({"NETWATCH_ENCRYPTION_KEY": KEY}, "", 64, "error: stdin: no secret given (the line is empty)"),
    ({"NETWATCH_ENCRYPTION_KEY": KEY}, f"{SECRET}\n{SECRET}\n", 64,
     "error: stdin: give the secret on one line (more lines followed it)"),
    ({"NETWATCH_ENCRYPTION_KEY": KEY}, "short\n", 64, "error: stdin: the secret is shorter than 8 characters"),
])
def test_encrypt_refusals_are_one_line_with_their_exit_code(env: dict[str, str], stdin: str, code: int,
                                                              line: str) -> None:
    done = netwatch("secret", "encrypt", stdin=stdin, env=clean_env(**env))

    assert done.returncode == code
    assert done.stdout == ""
    assert log_lines(done.stderr) == [line]
    assert_no_secret(done.stderr)


def test_a_missing_key_file_option_names_it(tmp_path: Path) -> None:
    done = netwatch("secret", "encrypt", "--key-file", str(tmp_path / "no.key"), stdin=SECRET)

    assert done.returncode == 78
    assert log_lines(done.stderr) == [f"error: --key-file: cannot read {tmp_path / 'no.key'}: No such file or "
                                      "directory"]


def test_a_closed_stdin_is_a_usage_error() -> None:
    done = subprocess.run(["sh", "-c", f"exec {sys.executable} -m netwatch secret encrypt <&-"],
                          env=clean_env(NETWATCH_ENCRYPTION_KEY=KEY), capture_output=True, text=True, timeout=60,
                          check=False)

    assert done.returncode == 64
    assert log_lines(done.stderr) == ["error: stdin: no secret given (stdin is closed)"]


def test_the_refusal_is_a_json_line_under_log_format_json() -> None:
    done = netwatch("--log-format", "json", "secret", "encrypt", stdin="short\n",
                    env=clean_env(NETWATCH_ENCRYPTION_KEY=KEY))

    assert done.returncode == 64
    assert '"msg": "stdin: the secret is shorter than 8 characters"' in done.stderr
    assert '"exit_code": 64' in done.stderr


@pytest.mark.parametrize("path", [["secret"], ["secret", "encrypt"], ["secret", "generate-key"]])
def test_the_help_shows_no_key(path: list[str]) -> None:
    done = run_command([*path, "--help"], clean_env(NETWATCH_ENCRYPTION_KEY=KEY))

    assert done.returncode == 0
    assert "Example:" in done.stdout
    assert_no_secret(done.stdout, done.stderr)


def _read(fd: int, until: bytes | None, seconds: float = 30) -> bytes:
    """What the terminal shows up to `until`, or (None) until the child closes it."""
    seen = b""
    end = time.monotonic() + seconds
    while until is None or until not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
        assert ready, f"the terminal showed no {until!r}; it showed {seen!r}"
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child has closed the terminal
            chunk = b""
        if not chunk:
            assert until is None, f"the terminal closed before {until!r}; it showed {seen!r}"
            return seen
        seen += chunk
    return seen


def test_on_a_terminal_the_secret_is_asked_twice_without_echo() -> None:
    env = clean_env(NETWATCH_ENCRYPTION_KEY=KEY, TERM="dumb")
    pid, terminal = pty.fork()
    if pid == 0:  # the child: the terminal is its controlling terminal, stdin, stdout and stderr
        os.execve(sys.executable, [sys.executable, "-m", "netwatch", "secret", "encrypt"], env)
    try:
        shown = _read(terminal, b"Secret: ")
        os.write(terminal, SECRET.encode() + b"\r")
        shown += _read(terminal, b"Repeat for confirmation: ")
        os.write(terminal, SECRET.encode() + b"\r")
        shown += _read(terminal, None)
    finally:
        os.close(terminal)
        _, status = os.waitpid(pid, 0)
    output = shown.decode()

    assert os.waitstatus_to_exitcode(status) == 0, output
    [value] = [line.strip() for line in output.splitlines() if line.strip().startswith("nwenc:v1:")]
    assert decrypt(value, parse_key(KEY)) == SECRET
    assert SECRET not in output  # not echoed as it was typed
