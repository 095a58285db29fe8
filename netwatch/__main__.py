"""`python -m netwatch`: the same entry point as the `netwatch` console script."""

from __future__ import annotations

from netwatch.entry import main

main()
