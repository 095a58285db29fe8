"""API tokens and the SMTP password, from the environment or a token_file, checked when they are read.

A token goes into an HTTP header and into the redactor that masks it in every log line: a line
break would break the header (and the failure's traceback would print the token), and a token of
a few characters would mask those characters everywhere. No message here shows a token.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from pathlib import Path

from netwatch import files, limits
from netwatch.config import ApiConfig, Config, EmailConfig
from netwatch.errors import ConfigError
from netwatch.excerpt import clip

TOKEN_MIN_CHARS = 16
TOKEN_MAX_CHARS = 8192
_RULE = f"a token is {TOKEN_MIN_CHARS} to {TOKEN_MAX_CHARS} printable ASCII characters without spaces"


def token_apis(config: Config) -> list[ApiConfig]:
    """The APIs whose token a run reads: Sigma and Segware when their base_url is set, WhatsApp when on."""
    apis = [api for api in (config.sigma.api, config.segware.api) if api.base_url]
    if config.notifications.whatsapp is not None:
        apis.append(config.notifications.whatsapp.api)
    return apis


def read_token(api: ApiConfig, env: Mapping[str, str]) -> str:
    """The bearer token of `api`, from its file if one is configured, else from its env variable.

    Whitespace around it (a file's last newline) is dropped; ConfigError when it is missing or unusable.
    """
    if api.token_file is not None:
        return _token_from_file(f"{api.section}.token_file", api.token_file)
    token = env.get(api.token_env, "").strip()
    if not token:
        raise ConfigError(
            f"{api.section}.token_env: environment variable {api.token_env} is not set "
            f"(or set {api.section}.token_file)"
        )
    problem = token_problem(token)
    if problem is not None:
        raise ConfigError(f"{api.section}.token_env: the token in {api.token_env} {problem} ({_RULE})")
    return token


def _token_from_file(where: str, token_file: Path) -> str:
    path = clip(str(token_file))
    data = files.read_secret_file(where, token_file, files.TOKEN_FILE_MAX_BYTES)
    try:
        token = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: the token in {path} contains a non-ASCII character ({_RULE})") from None
    if not token:
        raise ConfigError(f"{where}: {path} is empty")
    problem = token_problem(token)
    if problem is not None:
        raise ConfigError(f"{where}: the token in {path} {problem} ({_RULE})")
    return token


def _password_from_file(where: str, path: Path) -> str:
    """A password file's text without its trailing line break (any other character is the password's)."""
    data = files.read_secret_file(where, path, files.TOKEN_FILE_MAX_BYTES)
    try:
        password = data.decode("utf-8").removesuffix("\n").removesuffix("\r")
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: {clip(str(path))} is not UTF-8 text") from None
    if not password:
        raise ConfigError(f"{where}: {clip(str(path))} is empty")
    return password


def token_problem(token: str) -> str | None:
    """What makes `token` unusable, in words that never show it; None for a usable one."""
    for char in token:
        if char in "\r\n":
            return "contains a line break"
        if char == " ":
            return "contains a space"
        if unicodedata.category(char) == "Cc":
            return "contains a control character"
        if not char.isascii():
            return "contains a non-ASCII character"
    if len(token) < TOKEN_MIN_CHARS:
        return f"is shorter than {TOKEN_MIN_CHARS} characters"
    if len(token) > TOKEN_MAX_CHARS:
        return f"is longer than {TOKEN_MAX_CHARS} characters"
    return None


def read_password(email: EmailConfig, env: Mapping[str, str]) -> str | None:
    """The SMTP password from password_file, else from the variable named by password_env: no control
    character, at least limits.PASSWORD_MIN_CHARS long.

    None (no login) when the variable is unset; a config error then if a username is configured.
    """
    if email.password_file is not None:
        key = "notifications.email.password_file"
        password: str | None = _password_from_file(key, email.password_file)
        source = clip(str(email.password_file))
    else:
        key, source = "notifications.email.password_env", email.password_env
        password = env.get(email.password_env) or None
    if password is None and email.username:
        raise ConfigError(f"{key}: notifications.email.username is set but {source} is not")
    if password is not None and any(unicodedata.category(char) == "Cc" for char in password):
        raise ConfigError(f"{key}: the password in {source} contains a control character (a line break?)")
    if password is not None and len(password) < limits.PASSWORD_MIN_CHARS:
        raise ConfigError(f"{key}: the password in {source} is shorter than {limits.PASSWORD_MIN_CHARS} characters "
                          "(netwatch masks it in every log line and stored error, where a short one would hide "
                          "ordinary text)")
    return password
