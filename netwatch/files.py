"""Reading the files an operator points netwatch at: regular files only, never more than a limit.

A FIFO would block a plain open() until a writer comes, and /dev/zero would be read until memory
runs out: each file is opened without blocking, checked with fstat, and read up to its limit.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from netwatch.errors import ConfigError
from netwatch.excerpt import clip

log = logging.getLogger(__name__)

_MIB = 1024 * 1024
CONFIG_MAX_BYTES = 16 * _MIB
HOSTS_FILE_MAX_BYTES = 64 * _MIB
TOKEN_FILE_MAX_BYTES = 64 * 1024

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
_CHUNK = 1024 * 1024


class UnreadableFile(Exception):
    """Why a file was not read, to follow "cannot read PATH: "; never any of its content."""

    def __init__(self, reason: str, missing: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.missing = missing


@dataclass(frozen=True)
class FileData:
    data: bytes
    mode: int  # st_mode of the file that was read


def _describe_limit(limit: int) -> str:
    """A limit in bytes as people write it: 16 MiB, 64 KiB."""
    return f"{limit // _MIB} MiB" if limit % _MIB == 0 else f"{limit // 1024} KiB"


def read_file(path: Path, limit: int) -> FileData:
    """The whole content of regular file `path`; UnreadableFile when it is not one or exceeds `limit` bytes."""
    fd, mode = _open_regular(path)
    try:
        return FileData(_read_capped(fd, limit), mode)
    finally:
        os.close(fd)


def read_start(path: Path, size: int) -> bytes:
    """At most the first `size` bytes of regular file `path` (a header, or proof that it can be read)."""
    fd, _mode = _open_regular(path)
    try:
        return _read(fd, size)
    finally:
        os.close(fd)


def _open_regular(path: Path) -> tuple[int, int]:
    """An open descriptor of `path` and its mode; a FIFO is opened without waiting for a writer."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise UnreadableFile(exc.strerror or type(exc).__name__, missing=isinstance(exc, FileNotFoundError)) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = next((name for test, name in _KINDS if test(mode)), "something else")
        raise UnreadableFile(f"{kind}, not a regular file")
    return fd, mode


def _read(fd: int, size: int) -> bytes:
    try:
        return os.read(fd, size)
    except OSError as exc:
        raise UnreadableFile(exc.strerror or type(exc).__name__) from None


def _read_capped(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = _read(fd, min(_CHUNK, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise UnreadableFile(f"larger than {_describe_limit(limit)} (the limit for this file)")
        chunks.append(chunk)


# Read or write permission for users outside the file's owner and group.
_OTHERS = 0o006


def read_secret_file(where: str, path: Path, limit: int) -> bytes:
    """The bytes of a file holding a secret (a token, a key) that the config key `where` names.

    One that users outside its owner and group can read or write is used, with a warning; one that
    cannot be read is a ConfigError naming `where` and the file.
    """
    shown = clip(str(path))
    try:
        read = read_file(path, limit)
    except UnreadableFile as exc:
        raise ConfigError(f"{where}: cannot read {shown}: {exc.reason}") from None
    if read.mode & _OTHERS:
        log.warning("%s: %s can be read or written by other users (mode %04o): chmod 600 it", where, shown,
                    read.mode & 0o777)
    return read.data
