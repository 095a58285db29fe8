"""Splitting the host inventory between several runs of the same job: `--shard INDEX/COUNT`."""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from netwatch.errors import ConfigError, UsageError
from netwatch.excerpt import excerpt

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


# A Kubernetes Indexed Job gives each pod its index; the shard count comes with the manifest.
ENV_INDEX = "JOB_COMPLETION_INDEX"
ENV_COUNT = "NETWATCH_SHARDS"


def shard_from(option: str | None, env: Mapping[str, str]) -> Shard:
    """The shard a run handles: `--shard`, else JOB_COMPLETION_INDEX of NETWATCH_SHARDS, else all (0/1).

    One of the two variables without the other is a configuration error naming both: a pod of an
    Indexed Job that does not know the count would check a wrong share of the hosts.
    """
    if option is not None:
        return parse_shard(option)
    index, count = env.get(ENV_INDEX), env.get(ENV_COUNT)
    if index is None and count is None:
        return Shard()
    if index is None or count is None:
        present, missing = (ENV_INDEX, ENV_COUNT) if count is None else (ENV_COUNT, ENV_INDEX)
        raise ConfigError(f"{present} is set but {missing} is not: an Indexed Job sets {ENV_INDEX}, its manifest "
                          f"sets {ENV_COUNT} to its completions (or give --shard INDEX/COUNT)")
    if not (index.strip().isdigit() and count.strip().isdigit()):
        raise ConfigError(f"{ENV_INDEX} and {ENV_COUNT} must be whole numbers, got {excerpt(index)} and "
                          f"{excerpt(count)}")
    shard = Shard(int(index), int(count))
    if shard.count < 1 or shard.index >= shard.count:
        raise ConfigError(f"{ENV_INDEX} ({shard.index}) must be below {ENV_COUNT} ({shard.count}), which must be "
                          "at least 1")
    return shard


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
