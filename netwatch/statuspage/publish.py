"""Writing the page's files so that a server reading DIR never sees a half-written file or a mix of runs.

DIR is a symbolic link to a generation folder beside it (`.DIR.<stamp>`). A run writes a whole new
generation, makes it durable, makes a new link to it under a temporary name and renames that link
over DIR: the rename is atomic, so DIR names either the complete old generation or the complete new
one, and every file a reader opens through it belongs to one run; after a crash DIR names a
generation whose files were on disk before it was linked. The previous generation is kept (a
request that resolved DIR just before the swap still finds its files); older ones are removed.

A file with the same bytes as the previous generation's at the same path (a badge of a host whose
state and uptime did not change) is a hard link to that file instead of a new one: the same inode,
already on disk, and nothing to free when the older generation goes.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from netwatch.errors import UsageError

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Published:
    generation: Path
    files: int
    bytes: int
    largest: tuple[str, int]
    reused: int  # files linked from the previous generation


def _generations(out: Path) -> re.Pattern[str]:
    return re.compile(rf"^\.{re.escape(out.name)}\.(\d{{8}}T\d{{6}}Z-\d+)(\.link)?$")


def prepare_out(out: Path) -> Path:
    """DIR as an absolute path, checked: its folder exists, and DIR is absent, empty or netwatch's link.

    An empty folder (made for us by hand) is removed so the link can take its place.
    """
    out = Path(os.path.abspath(out))
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: its folder {out.parent} does not exist")
    if out.is_symlink() or not out.exists():
        return out
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
        return out
    raise UsageError(f"--out {out}: exists and is not a status page netwatch wrote (a link to .{out.name}.*): "
                     "remove it or name another")


def publish(out: Path, files: Iterable[tuple[str, bytes]], stamp: str,
            sync: Callable[[], None] = os.sync) -> Published:
    """Writes `files` (relative POSIX paths) as a new generation, syncs it and swaps DIR to it.

    `sync` makes everything written so far durable: one sync of the whole generation, as a sync per
    file would cost a journal commit per file (11,000 at 10,000 hosts).
    """
    out = prepare_out(out)
    generation = out.parent / f".{out.name}.{stamp}"
    try:
        return _publish(out, generation, files, sync)
    except OSError as exc:
        shutil.rmtree(generation, ignore_errors=True)
        if exc.errno is None:
            # Not the file system: an OSError of the renderer (Jinja2's TemplateNotFound is one), a bug.
            raise
        raise UsageError(f"--out {out}: cannot write {exc.filename or generation}: {exc.strerror}") from None


def _publish(out: Path, generation: Path, files: Iterable[tuple[str, bytes]], sync: Callable[[], None]) -> Published:
    previous = os.readlink(out) if out.is_symlink() else None
    # Links are made only from a generation of ours beside DIR: on the same file system, holding what we wrote.
    before = str(out.parent / previous) if previous and _generations(out).match(previous) else None
    generation.mkdir(mode=0o755)
    folders = {""}
    count = total = reused = 0
    largest = ("", -1)
    for name, data in files:
        if name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"file name outside the page: {name!r}")
        folder = name.rpartition("/")[0]
        if folder not in folders:
            os.makedirs(generation / folder, exist_ok=True)
            folders.add(folder)
        path = f"{generation}/{name}"
        if before is not None and _same_file(f"{before}/{name}", data):
            os.link(f"{before}/{name}", path, follow_symlinks=False)
            reused += 1
        else:
            _write(path, data)
        count += 1
        total += len(data)
        if len(data) > largest[1]:
            largest = (name, len(data))
    sync()
    link = generation.with_name(generation.name + ".link")
    # Relative, so DIR and its generations can be moved together.
    os.symlink(generation.name, link)
    os.replace(link, out)
    _remove_old(out, keep={generation.name, previous})
    return Published(generation, count, total, largest, reused)


def _write(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _same_file(path: str, data: bytes) -> bool:
    """Whether `path` is a regular file holding exactly `data` (read until the first difference)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode) or found.st_size != len(data):
            return False
        view = memoryview(data)
        offset = 0
        while offset < len(data):
            chunk = os.read(fd, min(_CHUNK, len(data) - offset))
            if not chunk or chunk != view[offset : offset + len(chunk)]:
                return False
            offset += len(chunk)
        return True
    finally:
        os.close(fd)


def _remove_old(out: Path, keep: set[str | None]) -> None:
    pattern = _generations(out)
    for entry in out.parent.iterdir():
        if pattern.match(entry.name) and entry.name not in keep:
            if entry.is_symlink() or entry.is_file():
                entry.unlink()
            else:
                shutil.rmtree(entry, ignore_errors=True)
