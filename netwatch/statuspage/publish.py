"""Writing the page's files so that a server reading DIR never sees a half-written file or a mix of runs.

DIR is a symbolic link to a generation folder beside it (`.DIR.<stamp>`). A run writes a whole new
generation, makes a new link to it under a temporary name and renames that link over DIR: the
rename is atomic, so DIR names either the complete old generation or the complete new one, and
every file a reader opens through it belongs to one run. The previous generation is kept (a
request that resolved DIR just before the swap still finds its files); older ones are removed.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from netwatch.errors import UsageError


@dataclass(frozen=True)
class Published:
    generation: Path
    files: int
    bytes: int
    largest: tuple[str, int]


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


def publish(out: Path, files: Iterable[tuple[str, bytes]], stamp: str) -> Published:
    """Writes `files` (relative POSIX paths) as a new generation and swaps DIR to it."""
    out = prepare_out(out)
    generation = out.parent / f".{out.name}.{stamp}"
    try:
        return _publish(out, generation, files)
    except OSError as exc:
        shutil.rmtree(generation, ignore_errors=True)
        raise UsageError(f"--out {out}: cannot write {exc.filename or generation}: {exc.strerror}") from None


def _publish(out: Path, generation: Path, files: Iterable[tuple[str, bytes]]) -> Published:
    previous = os.readlink(out) if out.is_symlink() else None
    generation.mkdir(mode=0o755)
    folders = {generation}
    count = total = 0
    largest = ("", -1)
    for name, data in files:
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise ValueError(f"file name outside the page: {name!r}")
        path = generation.joinpath(*relative.parts)
        if path.parent not in folders:
            path.parent.mkdir(parents=True, exist_ok=True)
            folders.add(path.parent)
        path.write_bytes(data)
        count += 1
        total += len(data)
        if len(data) > largest[1]:
            largest = (name, len(data))
    link = generation.with_name(generation.name + ".link")
    # Relative, so DIR and its generations can be moved together.
    os.symlink(generation.name, link)
    os.replace(link, out)
    _remove_old(out, keep={generation.name, previous})
    return Published(generation, count, total, largest)


def _remove_old(out: Path, keep: set[str | None]) -> None:
    pattern = _generations(out)
    for entry in out.parent.iterdir():
        if pattern.match(entry.name) and entry.name not in keep:
            if entry.is_symlink() or entry.is_file():
                entry.unlink()
            else:
                shutil.rmtree(entry, ignore_errors=True)
