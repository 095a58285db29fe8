"""The in-process harness runs the real CLI: a smoke test of the seam itself."""

from __future__ import annotations

from inproc import InProcess


def test_an_in_process_sweep_records_planned_results(nwi: InProcess) -> None:
    nwi.write_config([{"name": "lo-1", "address": "127.0.0.1"}, {"name": "lo-9", "address": "127.0.0.9"}])
    nwi.sweep_plan.set_down("lo-9")
    done = nwi.sweep()
    assert done.returncode == 0, done.stderr
    assert "ping-sweep finished" in done.stderr and "hosts=2" in done.stderr
    assert {h["name"]: h["status"] for h in nwi.rows("hosts")} == {"lo-1": "online", "lo-9": "offline"}
    assert nwi.cli("--version").stdout.startswith("netwatch, version")
