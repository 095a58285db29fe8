"""`python -m netwatch`: the same entry point as the `netwatch` console script."""

from __future__ import annotations

from netwatch.cli import main

main()
