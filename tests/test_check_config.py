"""`netwatch check-config`: every check a job makes before its work, no server contacted, a line per job.

It used to pass configs the jobs then refused: a token variable not set, a token_file that cannot be
read, event-scan without event_scan.codes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from inproc import InProcess
from jobkit import TOKEN, log_lines

from netwatch.cli import run as run_group
from netwatch.config import load_config
from netwatch.db.engine import safe_url
from netwatch.readiness import JOBS, check_readiness

CLOSED = "http://127.0.0.1:1"  # nothing listens: a check that contacted it would fail or hang
SEGWARE = {"base_url": CLOSED}
CODES = {"codes": {"E130": 5}}
HOSTS = [{"name": "lo", "address": "127.0.0.1"}]
OVERLAY = Path(__file__).resolve().parent.parent / "k8s" / "overlays" / "production"


def report(done: object) -> dict[str, object]:
    return json.loads(done.stdout)  # type: ignore[attr-defined]


def test_a_complete_config_is_ready_for_every_job(nwi: InProcess) -> None:
    config = nwi.write_config(HOSTS, segware=SEGWARE, sigma={"base_url": CLOSED}, event_scan=CODES)

    done = nwi.run("check-config", "--job", "ping-sweep", "--job", "event-scan", "--job", "alert-clear",
                   "--job", "cleanup", "--job", "status-page")

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{config}: ok (1 host)", f"database: {safe_url(nwi.db_url)}",
                                        "ping-sweep: ready", "event-scan: ready", "alert-clear: ready",
                                        "cleanup: ready", "status-page: ready", "http-check: ready"]
    assert done.stderr == ""


def test_a_token_variable_that_is_not_set_is_a_problem_for_every_job(nwi: InProcess) -> None:
    config = nwi.write_config(HOSTS, sigma={"base_url": CLOSED})
    del nwi.env["NETWATCH_SIGMA_TOKEN"]

    done = nwi.run("check-config")

    problem = "sigma.token_env: environment variable NETWATCH_SIGMA_TOKEN is not set (or set sigma.token_file)"
    assert done.returncode == 78
    lines = done.stdout.splitlines()
    assert lines[0] == f"{config}: not valid"
    assert lines[2] == f"ping-sweep: not ready: {problem}"
    assert log_lines(done.stderr) == [f"error: {config}: {problem}"]


def test_every_token_problem_is_listed_not_only_the_first(nwi: InProcess, tmp_path: Path) -> None:
    nwi.write_config(HOSTS, sigma={"base_url": CLOSED, "token_file": "missing.token"},
                     segware={**SEGWARE, "token_env": "NW_TEST_SEGWARE_TOKEN"},
                     notifications={"whatsapp": {"url": CLOSED, "to": "+5511999990000"}})
    nwi.env["NW_TEST_SEGWARE_TOKEN"] = "tiny-tok"

    done = nwi.run("check-config", "--json")

    assert done.returncode == 78
    sigma, segware, whatsapp = report(done)["problems"]
    assert sigma == f"sigma.token_file: cannot read {tmp_path / 'missing.token'}: No such file or directory"
    assert segware == ("segware.token_env: the token in NW_TEST_SEGWARE_TOKEN is shorter than 16 characters "
                       "(a token is 16 to 8192 printable ASCII characters without spaces)")
    assert whatsapp.startswith("notifications.whatsapp.token_env: environment variable NETWATCH_WHATSAPP_TOKEN "
                               "is not set")
    assert "tiny-tok" not in done.stdout + done.stderr


def test_an_unreadable_token_file_is_a_problem(nwi: InProcess, tmp_path: Path) -> None:
    (tmp_path / "sigma.token").mkdir()
    nwi.write_config(HOSTS, sigma={"base_url": CLOSED, "token_file": "sigma.token"})

    done = nwi.run("check-config", "--json")

    assert done.returncode == 78
    assert report(done)["problems"] == [
        f"sigma.token_file: cannot read {tmp_path / 'sigma.token'}: a directory, not a regular file"]


def test_event_scan_without_codes_is_not_ready_while_ping_sweep_is(nwi: InProcess) -> None:
    nwi.write_config(HOSTS, segware=SEGWARE)

    plain = nwi.run("check-config")
    for_ping_sweep = nwi.run("check-config", "--job", "ping-sweep")
    for_event_scan = nwi.run("check-config", "--job", "ping-sweep", "--job", "event-scan")

    reason = "event_scan.codes: no alarm codes configured to watch"
    assert plain.returncode == 0 and for_ping_sweep.returncode == 0
    assert plain.stdout.splitlines()[2:] == ["ping-sweep: ready", f"event-scan: not ready: {reason}",
                                             "alert-clear: ready", "cleanup: ready", "status-page: ready",
                                             "http-check: ready"]
    assert for_event_scan.returncode == 78
    assert log_lines(for_event_scan.stderr)[-1].endswith(f": not ready for event-scan: {reason}")


def test_a_job_refuses_with_the_reason_check_config_gives(nwi: InProcess) -> None:
    config = nwi.write_config(HOSTS)

    checked = report(nwi.run("check-config", "--json"))
    scan, clear = nwi.run("run", "event-scan"), nwi.run("run", "alert-clear")

    jobs = checked["jobs"]
    assert isinstance(jobs, dict)
    assert scan.returncode == clear.returncode == 78
    assert log_lines(scan.stderr)[-1] == f"error: {config}: {jobs['event-scan']['reasons'][0]}"
    assert log_lines(clear.stderr)[-1] == f"error: {config}: {jobs['alert-clear']['reasons'][0]}"
    assert jobs["alert-clear"]["reasons"] == ["segware.base_url: alert-clear reads events from the Segware API; set it"]


def test_json_report(nwi: InProcess) -> None:
    config = nwi.write_config(HOSTS, segware=SEGWARE)
    nwi.env["NETWATCH_DATABASE_URL"] = "mysql+pymysql://nw:hunter2-db@127.0.0.1:1/netwatch?connect_timeout=1"

    done = nwi.run("check-config", "--json")

    assert done.returncode == 0, done.stderr  # port 1 is closed: the database was not contacted
    assert report(done) == {
        "config": str(config), "valid": True, "hosts": 1, "http_checks": 0, "tcp_checks": 0,
        "database": "mysql+pymysql://nw:***@127.0.0.1:1/netwatch?connect_timeout=1",
        "problems": [],
        "jobs": {
            "ping-sweep": {"ready": True, "reasons": []},
            "event-scan": {"ready": False, "reasons": ["event_scan.codes: no alarm codes configured to watch"]},
            "alert-clear": {"ready": True, "reasons": []},
            "cleanup": {"ready": True, "reasons": []},
            "status-page": {"ready": True, "reasons": []},
            "http-check": {"ready": True, "reasons": []},
        },
    }
    assert "hunter2-db" not in done.stdout + done.stderr


def test_a_bad_database_url_is_a_problem_for_every_job(nwi: InProcess) -> None:
    nwi.write_config(HOSTS)
    nwi.env["NETWATCH_DATABASE_URL"] = "mysql+pymysql://nw:hunter2-db@127.0.0.1:1/netwatch?read_timeout=-1"

    done = nwi.run("check-config", "--json")

    assert done.returncode == 78
    [problem] = report(done)["problems"]
    assert problem.startswith("NETWATCH_DATABASE_URL: read_timeout must be a whole number of seconds")
    assert all(not job["ready"] for job in report(done)["jobs"].values())


def test_a_config_that_does_not_load_is_still_one_json_object(nwi: InProcess, tmp_path: Path) -> None:
    config = tmp_path / "netwatch.yaml"
    config.write_text("ping: {count: lots}\n", encoding="utf-8")

    done = nwi.run("check-config", "--json")

    problem = f"{config}: ping.count: must be a whole number, got 'lots'"
    assert done.returncode == 78
    assert report(done) == {"config": str(config), "valid": False, "hosts": None, "http_checks": None,
                            "tcp_checks": None, "database": None, "problems": [problem],
                            "jobs": {job: {"ready": False, "reasons": [problem]} for job in JOBS}}
    assert log_lines(done.stderr) == [f"error: {problem}"]


def test_an_unknown_job_is_a_usage_error(nwi: InProcess) -> None:
    nwi.write_config(HOSTS)
    done = nwi.run("check-config", "--job", "ping-swep")
    assert done.returncode == 64


def test_the_jobs_reported_are_the_run_commands() -> None:
    assert sorted(JOBS) == sorted(run_group.commands)


def test_the_production_overlay_is_ready_for_every_job_with_its_secrets(tmp_path: Path) -> None:
    # The Secret's files as the pods mount them, here in a folder of the test's own.
    secrets = tmp_path / "netwatch-secrets"
    secrets.mkdir()
    files = {"database-url": "mysql+pymysql://netwatch:db-password@mysql.example.invalid/netwatch\n",
             "segware-token": TOKEN + "\n", "sigma-token": TOKEN + "\n"}
    for key, text in files.items():
        (secrets / key).write_text(text, encoding="utf-8")
        os.chmod(secrets / key, 0o440)
    for name in ("netwatch.yaml", "hosts.csv"):
        text = (OVERLAY / name).read_text(encoding="utf-8").replace("/etc/netwatch-secrets", str(secrets))
        (tmp_path / name).write_text(text, encoding="utf-8")
    env = {"NETWATCH_DATABASE_URL_FILE": str(secrets / "database-url")}

    readiness = check_readiness(load_config(tmp_path / "netwatch.yaml", env), env)

    assert readiness.problems == ()
    assert all(readiness.reasons(job) == () for job in JOBS)


@pytest.mark.parametrize("mode", [0o644, 0o600])
def test_a_token_file_others_can_read_is_warned_about_but_ready(nwi: InProcess, tmp_path: Path, mode: int) -> None:
    token_file = tmp_path / "sigma.token"
    token_file.write_text(TOKEN + "\n", encoding="ascii")
    os.chmod(token_file, mode)
    nwi.write_config(HOSTS, sigma={"base_url": CLOSED, "token_file": "sigma.token"})

    done = nwi.run("check-config", "--job", "ping-sweep")

    assert done.returncode == 0, done.stderr
    warning = f"warning: sigma.token_file: {token_file} can be read or written by other users (mode 0644): chmod 600 it"
    assert log_lines(done.stderr) == ([warning] if mode == 0o644 else [])


def test_an_smtp_username_without_its_password_is_a_problem(nwi: InProcess) -> None:
    nwi.write_config(HOSTS, notifications={"email": {"host": "127.0.0.1", "from": "nw@example.invalid",
                                                     "to": "noc@example.invalid", "username": "nw"}})

    done = nwi.run("check-config", "--json")

    assert done.returncode == 78
    assert report(done)["problems"] == ["notifications.email.password_env: notifications.email.username is set but "
                                        "NETWATCH_SMTP_PASSWORD is not"]
