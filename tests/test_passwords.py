"""netwatch.passwords: where the encryption key comes from, and the checks' passwords decrypted or refused.

Every refusal is one ConfigError line naming the check, where it is configured and what is wrong,
never the key, the encrypted value or the password.
"""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

import pytest

from netwatch.config import load_config
from netwatch.encryption import encrypt, generate_key, parse_key
from netwatch.errors import ConfigError, ExitCode, UsageError
from netwatch.passwords import ENV_KEY, ENV_KEY_FILE, read_key, secret_from_input, with_passwords
from netwatch.services import HttpCheckSpec

KEY_TEXT = generate_key()
OTHER_KEY_TEXT = generate_key()
PASSWORD = "Basic-Auth-pw-7731"
VALUE = encrypt(PASSWORD, parse_key(KEY_TEXT))


def refused(call: object, *args: object, **kwargs: object) -> str:
    """The one-line ConfigError of `call`; it shows neither key nor value nor password."""
    with pytest.raises(ConfigError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    message = caught.value.message
    assert caught.value.exit_code == ExitCode.CONFIG
    assert "\n" not in message
    for secret in (KEY_TEXT, OTHER_KEY_TEXT, VALUE, PASSWORD, VALUE[9:30]):
        assert secret not in message
    return message


def check(name: str = "shop-web", value: str | None = VALUE, origin: str = "nw.yaml: http_checks[0]") -> HttpCheckSpec:
    return HttpCheckSpec(name=name, url="https://shop.example.invalid/", username="monitor" if value else None,
                         password_encrypted=value, origin=origin)


def key_file(tmp_path: Path, text: str = KEY_TEXT + "\n", mode: int = 0o600, name: str = "enc.key") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="ascii")
    os.chmod(path, mode)
    return path


# --- the key ----------------------------------------------------------------------------------------


def test_the_key_from_the_environment() -> None:
    assert read_key({ENV_KEY: KEY_TEXT}) == base64.b64decode(KEY_TEXT)


def test_the_key_from_the_file_the_environment_names(tmp_path: Path) -> None:
    assert read_key({ENV_KEY_FILE: str(key_file(tmp_path))}) == base64.b64decode(KEY_TEXT)


def test_a_named_key_file_wins_over_the_environment_and_a_file_over_the_variable(tmp_path: Path) -> None:
    named, from_env = key_file(tmp_path, name="named.key"), key_file(tmp_path, OTHER_KEY_TEXT, name="env.key")
    env = {ENV_KEY_FILE: str(from_env), ENV_KEY: generate_key()}

    assert read_key(env, ("encryption.key_file", named)) == base64.b64decode(KEY_TEXT)
    assert read_key(env) == base64.b64decode(OTHER_KEY_TEXT)


def test_no_key_at_all() -> None:
    assert refused(read_key, {ENV_KEY: "  "}) == (
        "no encryption key is set (NETWATCH_ENCRYPTION_KEY, NETWATCH_ENCRYPTION_KEY_FILE or encryption.key_file)")


@pytest.mark.parametrize(("text", "problem"), [
    ("abc", "is not base64"),
    (base64.b64encode(bytes(24)).decode(), "is 24 bytes, not 32"),
])
def test_a_bad_key_in_the_environment_names_the_variable(text: str, problem: str) -> None:
    assert refused(read_key, {ENV_KEY: text}).startswith(f"NETWATCH_ENCRYPTION_KEY: the key {problem}: ")


def test_a_bad_key_file(tmp_path: Path) -> None:
    short = key_file(tmp_path, base64.b64encode(bytes(16)).decode())
    binary = tmp_path / "binary.key"
    binary.write_bytes(b"\xff" * 44)
    big = key_file(tmp_path, "A" * 5000, name="big.key")

    assert refused(read_key, {ENV_KEY_FILE: str(short)}).startswith(
        f"NETWATCH_ENCRYPTION_KEY_FILE: the key in {short} is 16 bytes, not 32: ")
    assert refused(read_key, {}, ("encryption.key_file", binary)) == (
        f"encryption.key_file: the key in {binary} is not base64 (it holds a non-ASCII byte)")
    assert refused(read_key, {}, ("--key-file", big)) == (
        f"--key-file: cannot read {big}: larger than 4 KiB (the limit for this file)")
    assert refused(read_key, {}, ("--key-file", tmp_path / "missing.key")) == (
        f"--key-file: cannot read {tmp_path / 'missing.key'}: No such file or directory")
    assert refused(read_key, {}, ("--key-file", tmp_path)) == (
        f"--key-file: cannot read {tmp_path}: a directory, not a regular file")


def test_a_key_file_others_can_read_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = key_file(tmp_path, mode=0o644)

    with caplog.at_level(logging.WARNING, logger="netwatch"):
        assert read_key({ENV_KEY_FILE: str(path)}) == base64.b64decode(KEY_TEXT)

    assert [record.getMessage() for record in caplog.records] == [
        f"NETWATCH_ENCRYPTION_KEY_FILE: {path} can be read or written by other users (mode 0644): chmod 600 it"]


# --- the checks' passwords --------------------------------------------------------------------------


def test_passwords_are_decrypted_into_the_checks() -> None:
    plain = check("plain", value=None)
    checks = with_passwords([check(), plain], {ENV_KEY: KEY_TEXT})

    assert [(c.name, c.password) for c in checks] == [("shop-web", PASSWORD), ("plain", None)]
    assert checks[0].password_encrypted == VALUE
    assert PASSWORD not in repr(checks[0]) and VALUE not in repr(checks[0])


def test_the_key_is_read_only_when_a_check_has_a_password() -> None:
    checks = [check("plain", value=None)]

    assert with_passwords(checks, {ENV_KEY: "not a key"}) == tuple(checks)


def test_the_config_key_file_is_used(tmp_path: Path) -> None:
    [decrypted] = with_passwords([check()], {ENV_KEY: OTHER_KEY_TEXT}, key_file(tmp_path))
    assert decrypted.password == PASSWORD


def test_a_missing_key_names_the_first_check_with_a_password() -> None:
    checks = [check("plain", value=None), check("shop-web", origin="checks.csv line 3")]

    assert refused(with_passwords, checks, {}) == (
        "checks.csv line 3: HTTP check 'shop-web': password_encrypted needs the encryption key: no encryption key "
        "is set (NETWATCH_ENCRYPTION_KEY, NETWATCH_ENCRYPTION_KEY_FILE or encryption.key_file)")


def test_a_bad_key_names_the_check_and_the_variable() -> None:
    message = refused(with_passwords, [check()], {ENV_KEY: base64.b64encode(bytes(31)).decode()})

    assert message.startswith("nw.yaml: http_checks[0]: HTTP check 'shop-web': password_encrypted needs the "
                              "encryption key: NETWATCH_ENCRYPTION_KEY: the key is 31 bytes, not 32")


def test_a_wrong_key_names_the_check() -> None:
    assert refused(with_passwords, [check()], {ENV_KEY: OTHER_KEY_TEXT}) == (
        "nw.yaml: http_checks[0]: HTTP check 'shop-web': password_encrypted does not decrypt with this key: the key "
        "is not the one it was encrypted with, or the value was changed or cut")


def test_a_tampered_value_names_the_check() -> None:
    changed = VALUE[:20] + ("A" if VALUE[20] != "A" else "B") + VALUE[21:]

    assert "password_encrypted does not decrypt with this key" in refused(
        with_passwords, [check(value=changed)], {ENV_KEY: KEY_TEXT})


def test_a_truncated_value_names_the_check() -> None:
    message = refused(with_passwords, [check(value=VALUE[:-6])], {ENV_KEY: KEY_TEXT})

    assert message.startswith("nw.yaml: http_checks[0]: HTTP check 'shop-web': password_encrypted ")


def test_a_value_that_decrypts_to_a_short_password_is_refused() -> None:
    short = encrypt("pw", parse_key(KEY_TEXT))

    assert refused(with_passwords, [check(value=short)], {ENV_KEY: KEY_TEXT}) == (
        "nw.yaml: http_checks[0]: HTTP check 'shop-web': password_encrypted decrypts to a password that is shorter "
        "than 8 characters")


def test_a_config_with_passwords_loads_without_the_key(tmp_path: Path) -> None:
    """Only what sends the passwords reads the key: every other job loads the same config without it."""
    config_file = tmp_path / "netwatch.yaml"
    config_file.write_text(f"http_checks:\n  - {{name: web, url: 'https://web.example.invalid/', username: monitor,"
                           f" password_encrypted: '{VALUE}'}}\nencryption: {{key_file: keys/enc.key}}\n",
                           encoding="utf-8")
    (tmp_path / "keys").mkdir()

    config = load_config(config_file, {})

    assert config.http_checks[0].password is None
    assert config.encryption.key_file == tmp_path / "keys" / "enc.key"
    key_file(tmp_path / "keys")
    [decrypted] = with_passwords(config.http_checks, {}, config.encryption.key_file)
    assert decrypted.password == PASSWORD


# --- the secret on stdin ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "secret"), [
    ("pass-word-1\n", "pass-word-1"), ("pass-word-1", "pass-word-1"), ("pass-word-1\r\n", "pass-word-1"),
    ("  spaced out  \n", "  spaced out  "), ("pass-word-1\n\n", "pass-word-1"),
])
def test_the_secret_is_the_one_line_given(text: str, secret: str) -> None:
    assert secret_from_input(text) == secret


@pytest.mark.parametrize(("text", "message"), [
    ("", "stdin: no secret given (the line is empty)"),
    ("\n", "stdin: no secret given (the line is empty)"),
    ("pass-word-1\nsecond line\n", "stdin: give the secret on one line (more lines followed it)"),
    ("short\n", "stdin: the secret is shorter than 8 characters"),
    ("tab\tinside-it\n", "stdin: the secret contains a control character (a line break, a tab)"),
    ("x" * 1025, "stdin: the secret is longer than 1024 characters"),
])
def test_what_is_no_secret_is_a_usage_error(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        secret_from_input(text)
    assert caught.value.message == message
