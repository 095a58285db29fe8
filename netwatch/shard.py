"""Splitting the host inventory between several runs of the same job: `--shard INDEX/COUNT`."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from netwatch.errors import UsageError

_SHARD = re.compile(r"^(\d+)/(\d+)$")


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, name: str) -> bool:
        """Stable across runs and machines: the CRC32 of the host name modulo the shard count."""
        return self.count == 1 or zlib.crc32(name.encode("utf-8")) % self.count == self.index


def parse_shard(text: str) -> Shard:
    """Parses "INDEX/COUNT" (0-based index), e.g. "0/1" (everything) or "2/4"."""
    match = _SHARD.match(text.strip())
    if not match:
        raise UsageError(f"--shard: expected INDEX/COUNT such as 0/4, got {text!r}")
    index, count = int(match[1]), int(match[2])
    if count < 1:
        raise UsageError(f"--shard: the count must be at least 1, got {text!r}")
    if index >= count:
        raise UsageError(f"--shard: index must be below the count (0..{count - 1}), got {text!r}")
    return Shard(index, count)
