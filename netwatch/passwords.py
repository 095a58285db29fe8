"""The HTTP checks' Basic-Auth passwords: the encryption key, and each `password_encrypted` decrypted.

Loading a config checks only the form of an encrypted value; the key is read by what sends the
passwords (the http-check job) or proves that they decrypt (`netwatch check-config`), so the pods of
the other jobs need no key however many checks their shared config lists. The key comes from a key
file named where it is used (`encryption.key_file` in the config, `--key-file` of `netwatch secret
encrypt`), else the file NETWATCH_ENCRYPTION_KEY_FILE names, else NETWATCH_ENCRYPTION_KEY: a file
wins over the variable, as a token_file over its token_env. No message here shows a key, an
encrypted value or a password.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from netwatch import files, limits
from netwatch.encryption import EncryptionError, decrypt, parse_key
from netwatch.errors import ConfigError, UsageError
from netwatch.excerpt import clip, excerpt
from netwatch.services import HttpCheckSpec

ENV_KEY = "NETWATCH_ENCRYPTION_KEY"
ENV_KEY_FILE = "NETWATCH_ENCRYPTION_KEY_FILE"
KEY_FILE_MAX_BYTES = 4096
SECRET_MAX_CHARS = 1024


def read_key(env: Mapping[str, str], key_file: tuple[str, Path] | None = None) -> bytes:
    """The encryption key; `key_file` is (where it was named, path) of a key file that wins over the environment.

    ConfigError naming the variable or file when no key is set or the one given is not a key.
    """
    if key_file is not None:
        return _key_from_file(*key_file)
    path = env.get(ENV_KEY_FILE, "").strip()
    if path:
        return _key_from_file(ENV_KEY_FILE, Path(path))
    text = env.get(ENV_KEY, "")
    if not text.strip():
        raise ConfigError(f"no encryption key is set ({ENV_KEY}, {ENV_KEY_FILE} or encryption.key_file)")
    try:
        return parse_key(text)
    except EncryptionError as exc:
        raise ConfigError(f"{ENV_KEY}: the key {exc.reason}") from None


def _key_from_file(where: str, path: Path) -> bytes:
    shown = clip(str(path))
    data = files.read_secret_file(where, path, KEY_FILE_MAX_BYTES)
    try:
        return parse_key(data.decode("ascii"))
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: the key in {shown} is not base64 (it holds a non-ASCII byte)") from None
    except EncryptionError as exc:
        raise ConfigError(f"{where}: the key in {shown} {exc.reason}") from None


def with_passwords(checks: Sequence[HttpCheckSpec], env: Mapping[str, str],
                   key_file: Path | None = None) -> tuple[HttpCheckSpec, ...]:
    """`checks` with each `password_encrypted` decrypted into `password`; `key_file`: encryption.key_file.

    The key is read only when a check has a password. ConfigError naming the check and its origin:
    no key or a bad one, a value that does not decrypt (a wrong key, changed or cut), a bad password.
    """
    needing = [check for check in checks if check.password_encrypted is not None]
    if not needing:
        return tuple(checks)
    try:
        key = read_key(env, ("encryption.key_file", key_file) if key_file is not None else None)
    except ConfigError as exc:
        raise ConfigError(f"{_named(needing[0])} needs the encryption key: {exc.message}") from None
    return tuple(_decrypted(check, key) if check.password_encrypted is not None else check for check in checks)


def _decrypted(check: HttpCheckSpec, key: bytes) -> HttpCheckSpec:
    try:
        password = decrypt(check.password_encrypted or "", key)
    except EncryptionError as exc:
        raise ConfigError(f"{_named(check)} {exc.reason}") from None
    problem = password_problem(password)
    if problem is not None:
        raise ConfigError(f"{_named(check)} decrypts to a password that {problem}")
    return replace(check, password=password)


def _named(check: HttpCheckSpec) -> str:
    return f"{check.origin}: HTTP check {excerpt(check.name)}: password_encrypted"


def password_problem(password: str) -> str | None:
    """What makes `password` unusable, in words that never show it (None: usable).

    At least limits.PASSWORD_MIN_CHARS: a password is masked in every log line, where a short one
    would mask ordinary text.
    """
    if any(unicodedata.category(char) == "Cc" for char in password):
        return "contains a control character (a line break, a tab)"
    if len(password) < limits.PASSWORD_MIN_CHARS:
        return f"is shorter than {limits.PASSWORD_MIN_CHARS} characters"
    if len(password) > SECRET_MAX_CHARS:
        return f"is longer than {SECRET_MAX_CHARS} characters"
    return None


def secret_from_input(text: str) -> str:
    """The password on the one line of `text` (what stdin held), its line end dropped; UsageError when
    there is none, more than a line, or no usable password (password_problem)."""
    line, _end, rest = text.partition("\n")
    line = line.removesuffix("\r")
    if rest.strip():
        raise UsageError("stdin: give the secret on one line (more lines followed it)")
    if not line:
        raise UsageError("stdin: no secret given (the line is empty)")
    problem = password_problem(line)
    if problem is not None:
        raise UsageError(f"stdin: the secret {problem}")
    return line
