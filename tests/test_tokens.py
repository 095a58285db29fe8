"""Tokens and the SMTP password are checked when loaded: a bad one is a config error naming its source.

It used to crash the run (exit 70) inside requests, with a traceback that printed the token. No message
here may show the value; a token_file others can read or write is warned about.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from inproc import InProcess
from jobkit import log_lines

from netwatch.config import ApiConfig, ChannelPolicy, EmailConfig, parse_config
from netwatch.errors import ConfigError, ExitCode
from netwatch.tokens import TOKEN_MAX_CHARS, TOKEN_MIN_CHARS, read_password, read_token

GOOD = "tok-0123456789abcdef"
VAR = "NW_TEST_SIGMA_TOKEN"
BAD_TOKENS = [
    (GOOD[:8] + "\n" + GOOD[8:], "contains a line break"),
    (GOOD[:8] + "\r" + GOOD[8:], "contains a line break"),
    (GOOD[:8] + "\x1b[2J" + GOOD[8:], "contains a control character"),
    (GOOD[:8] + "\x7f" + GOOD[8:], "contains a control character"),
    (GOOD[:8] + " " + GOOD[8:], "contains a space"),
    (GOOD[:8] + "\t" + GOOD[8:], "contains a control character"),
    (GOOD[:8] + "é" + GOOD[8:], "contains a non-ASCII character"),
    (GOOD[:8] + "\u2028" + GOOD[8:], "contains a non-ASCII character"),
    ("x", f"is shorter than {TOKEN_MIN_CHARS} characters"),
    ("a" * (TOKEN_MIN_CHARS - 1), f"is shorter than {TOKEN_MIN_CHARS} characters"),
    ("a" * (TOKEN_MAX_CHARS + 1), f"is longer than {TOKEN_MAX_CHARS} characters"),
]


def api(token_file: Path | None = None) -> ApiConfig:
    return ApiConfig(section="sigma", base_url="http://127.0.0.1:1", token_env=VAR, token_file=token_file,
                     timeout_seconds=1.0)


def refused(api_config: ApiConfig, env: dict[str, str], secret: str) -> str:
    with pytest.raises(ConfigError) as caught:
        read_token(api_config, env)
    message = caught.value.message
    assert caught.value.exit_code == ExitCode.CONFIG
    assert secret.strip() not in message and "\n" not in message
    return message


@pytest.mark.parametrize(("token", "problem"), BAD_TOKENS)
def test_a_bad_token_from_the_environment_names_the_variable(token: str, problem: str) -> None:
    message = refused(api(), {VAR: token}, token)
    assert message.startswith(f"sigma.token_env: the token in {VAR} {problem} (a token is 16 to 8192 printable")


@pytest.mark.parametrize(("token", "problem"), BAD_TOKENS)
def test_a_bad_token_from_a_file_names_the_file(token: str, problem: str, tmp_path: Path) -> None:
    token_file = tmp_path / "sigma.token"
    token_file.write_bytes(token.encode() + b"\n")
    token_file.chmod(0o600)
    message = refused(api(token_file), {}, token)
    assert message.startswith(f"sigma.token_file: the token in {token_file} {problem}")


def test_a_token_file_that_is_not_utf8_is_non_ascii(tmp_path: Path) -> None:
    token_file = tmp_path / "sigma.token"
    token_file.write_bytes(b"\xff" + GOOD.encode())
    token_file.chmod(0o600)
    assert "contains a non-ASCII character" in refused(api(token_file), {}, GOOD)


def test_surrounding_whitespace_is_not_part_of_the_token(tmp_path: Path) -> None:
    token_file = tmp_path / "sigma.token"
    token_file.write_text(f"{GOOD}\n", encoding="ascii")
    token_file.chmod(0o600)
    assert read_token(api(token_file), {}) == GOOD
    assert read_token(api(), {VAR: f"  {GOOD}\n"}) == GOOD  # a Secret made from a file keeps its newline


def test_the_shortest_and_longest_tokens_are_accepted() -> None:
    for token in ("a" * TOKEN_MIN_CHARS, "~" * TOKEN_MAX_CHARS):
        assert read_token(api(), {VAR: token}) == token


def test_a_token_file_others_can_read_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    token_file = tmp_path / "sigma.token"
    token_file.write_text(GOOD, encoding="ascii")
    token_file.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="netwatch"):
        assert read_token(api(token_file), {}) == GOOD
    [record] = caplog.records
    assert record.getMessage() == (f"sigma.token_file: {token_file} can be read or written by other users "
                                   "(mode 0644): chmod 600 it")
    assert GOOD not in record.getMessage()


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o640, 0o440])
def test_a_token_file_only_its_owner_and_group_can_read_is_not_warned_about(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int) -> None:
    token_file = tmp_path / "sigma.token"
    token_file.write_text(GOOD, encoding="ascii")
    token_file.chmod(mode)
    with caplog.at_level(logging.WARNING, logger="netwatch"):
        assert read_token(api(token_file), {}) == GOOD
    assert caplog.records == []


def email(username: str | None = "nw") -> EmailConfig:
    return EmailConfig(host="127.0.0.1", port=25, starttls=False, tls=False, username=username,
                       password_env="NW_TEST_SMTP_PASSWORD",
                       sender="nw@example.invalid", recipients=("noc@example.invalid",), timeout_seconds=1.0,
                       policy=ChannelPolicy(cooldown_seconds=0, send_recovery=True))


@pytest.mark.parametrize("password", ["pass\nword", "pass\rword", "password\n", "pa\x00ss", "pa\x1bss", "pa\x85ss"])
def test_an_smtp_password_with_a_control_character_is_refused(password: str) -> None:
    with pytest.raises(ConfigError) as caught:
        read_password(email(), {"NW_TEST_SMTP_PASSWORD": password})
    assert caught.value.message == ("notifications.email.password_env: the password in NW_TEST_SMTP_PASSWORD "
                                    "contains a control character (a line break?)")


@pytest.mark.parametrize("password", ["pass word", "pässwörd"])
def test_an_smtp_password_may_hold_spaces_and_any_letter(password: str) -> None:
    assert read_password(email(), {"NW_TEST_SMTP_PASSWORD": password}) == password


def test_no_smtp_password_means_no_login_unless_a_username_is_set() -> None:
    assert read_password(email(username=None), {}) is None
    with pytest.raises(ConfigError) as caught:
        read_password(email(), {})
    assert caught.value.message == ("notifications.email.password_env: notifications.email.username is set but "
                                    "NW_TEST_SMTP_PASSWORD is not")


def test_a_token_with_a_newline_stops_a_run_with_78_and_never_shows_it(nwi: InProcess) -> None:
    secret = "line-one-of-the-token\nline-two-of-it"
    nwi.write_config([{"name": "lo", "address": "127.0.0.1"}], sigma={"base_url": "http://127.0.0.1:1"})
    nwi.env["NETWATCH_SIGMA_TOKEN"] = secret

    done = nwi.sweep()

    assert done.returncode == 78, done.stderr
    assert log_lines(done.stderr) == [
        "error: sigma.token_env: the token in NETWATCH_SIGMA_TOKEN contains a line break (a token is 16 to 8192 "
        "printable ASCII characters without spaces)"]
    for part in secret.split("\n"):
        assert part not in done.stderr + done.stdout
    assert nwi.rows("job_runs") == []


def test_a_one_character_token_stops_a_run_before_it_could_mask_that_character(nwi: InProcess) -> None:
    nwi.write_config([{"name": "lo", "address": "127.0.0.1"}], sigma={"base_url": "http://127.0.0.1:1"})
    nwi.env["NETWATCH_SIGMA_TOKEN"] = "e"

    done = nwi.sweep()

    assert done.returncode == 78
    assert "is shorter than 16 characters" in done.stderr
    assert "***" not in done.stderr


def test_an_smtp_password_with_a_newline_stops_a_run_with_78(nwi: InProcess) -> None:
    nwi.write_config([{"name": "lo", "address": "127.0.0.1"}],
                     notifications={"email": {"host": "127.0.0.1", "from": "nw@example.invalid",
                                              "to": "noc@example.invalid"}})
    nwi.env["NETWATCH_SMTP_PASSWORD"] = "s3cret-password\n"

    done = nwi.sweep()

    assert done.returncode == 78, done.stderr
    assert "notifications.email.password_env: the password in NETWATCH_SMTP_PASSWORD contains" in done.stderr
    assert "s3cret-password" not in done.stderr


def test_the_whatsapp_token_can_come_from_a_file_as_the_api_tokens_do(tmp_path: Path) -> None:
    (tmp_path / "whatsapp.token").write_text(GOOD + "\n", encoding="utf-8")
    (tmp_path / "whatsapp.token").chmod(0o600)
    config = parse_config({"notifications": {"whatsapp": {"url": "http://127.0.0.1:1/messages", "to": ["+551100"],
                                                           "token_file": "whatsapp.token"}}}, "test", tmp_path, {})
    whatsapp = config.notifications.whatsapp
    assert whatsapp is not None and whatsapp.api.token_file == tmp_path / "whatsapp.token"
    assert read_token(whatsapp.api, {}) == GOOD
