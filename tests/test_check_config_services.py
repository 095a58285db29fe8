"""`netwatch check-config` with HTTP and TCP checks: their counts, and whether their passwords decrypt.

Only the http-check job reads the encryption key: without it check-config says the HTTP checks are
not ready (naming the check), while every other job stays ready and runs. The key, the encrypted
values and the passwords appear in no output.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from inproc import InProcess, run_command
from jobkit import log_lines

from netwatch.encryption import encrypt, generate_key, parse_key

KEY = generate_key()
PASSWORD = "Shop-Basic-Auth-pw-4417"
VALUE = encrypt(PASSWORD, parse_key(KEY))
WEB = {"name": "web", "url": "https://web.example.invalid/", "username": "monitor", "password_encrypted": VALUE}
API = {"name": "api", "url": "http://127.0.0.1:1/"}
DB = {"name": "db", "host": "127.0.0.1", "port": 1}


def clean_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("NETWATCH_")}, **extra}


def write_config(tmp_path: Path, **sections: Any) -> Path:
    config = {"database": {"url": f"sqlite:///{tmp_path / 'nw.db'}"}, "hosts": [{"name": "lo", "address": "127.0.0.1"}],
              **sections}
    path = tmp_path / "netwatch.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def check_config(path: Path, *args: str, **env: str) -> Any:
    done = run_command(["--log-level", "debug", "check-config", "--config", str(path), *args], clean_env(**env))
    for text in (done.stdout, done.stderr):
        assert KEY not in text and PASSWORD not in text and VALUE not in text and VALUE[9:40] not in text
    return done


def test_the_checks_are_counted_and_ready_with_the_key(tmp_path: Path) -> None:
    config = write_config(tmp_path, http_checks=[WEB, API], tcp_checks=[DB])

    done = check_config(config, NETWATCH_ENCRYPTION_KEY=KEY)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"{config}: ok (1 host, 2 HTTP checks, 1 TCP check)"
    assert lines[2] == "ping-sweep: ready"
    assert lines[-1] == "http-check: ready"
    assert len(lines) == 8  # the head, the database and the six jobs


def test_one_check_of_each_kind_is_counted_in_good_english(tmp_path: Path) -> None:
    config = write_config(tmp_path, http_checks=[API], tcp_checks=[DB])

    assert check_config(config).stdout.splitlines()[0] == f"{config}: ok (1 host, 1 HTTP check, 1 TCP check)"


def test_the_json_report_counts_the_checks(tmp_path: Path) -> None:
    config = write_config(tmp_path, http_checks=[WEB], tcp_checks=[DB, {**DB, "name": "db-2"}])

    report = json.loads(check_config(config, "--json", NETWATCH_ENCRYPTION_KEY=KEY).stdout)

    assert (report["hosts"], report["http_checks"], report["tcp_checks"]) == (1, 1, 2)
    assert report["jobs"]["http-check"] == {"ready": True, "reasons": []}


def test_without_the_key_http_check_is_not_ready_but_every_other_job_is(tmp_path: Path) -> None:
    config = write_config(tmp_path, http_checks=[API, WEB])
    problem = (f"{config}: http_checks[1]: HTTP check 'web': password_encrypted needs the encryption key: no "
               "encryption key is set (NETWATCH_ENCRYPTION_KEY, NETWATCH_ENCRYPTION_KEY_FILE or encryption.key_file)")

    done = check_config(config, "--job", "ping-sweep", "--job", "cleanup")
    report = json.loads(check_config(config, "--json").stdout)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"http-check: not ready: {problem}"
    assert "ping-sweep: ready" in done.stdout.splitlines()
    assert report["valid"] is True and report["jobs"]["http-check"] == {"ready": False, "reasons": [problem]}
    assert check_config(config, "--job", "http-check").returncode == 78


def test_a_wrong_key_names_the_check(tmp_path: Path) -> None:
    config = write_config(tmp_path, http_checks=[WEB])

    done = check_config(config, NETWATCH_ENCRYPTION_KEY=generate_key())

    assert done.stdout.splitlines()[-1] == (
        f"http-check: not ready: {config}: http_checks[0]: HTTP check 'web': password_encrypted does not decrypt "
        "with this key: the key is not the one it was encrypted with, or the value was changed or cut")


def test_the_key_file_of_the_config_is_read(tmp_path: Path) -> None:
    (tmp_path / "enc.key").write_text(KEY + "\n", encoding="ascii")
    (tmp_path / "enc.key").chmod(0o600)
    config = write_config(tmp_path, http_checks=[WEB], encryption={"key_file": "enc.key"})

    done = check_config(config, NETWATCH_ENCRYPTION_KEY=generate_key())

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "http-check: ready"
    assert log_lines(done.stderr) == []


def test_a_bad_check_stops_the_config_with_its_key_path(tmp_path: Path) -> None:
    config = write_config(tmp_path, http_checks=[{**API, "expected_status": "2xx"}])

    done = check_config(config)

    assert done.returncode == 78
    assert log_lines(done.stderr) == [f"error: {config}: http_checks[0].expected_status: '2xx' is not a status code "
                                      "(100-599) or a range such as 200-299"]


def test_ping_sweep_runs_without_the_key(nwi: InProcess) -> None:
    path = nwi.write_config([{"name": "lo", "address": "127.0.0.1"}])
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump({**config, "http_checks": [WEB], "tcp_checks": [DB]}), encoding="utf-8")
    nwi.env.pop("NETWATCH_ENCRYPTION_KEY", None)

    done = nwi.sweep()

    assert done.returncode == 0, done.stderr
    assert KEY not in done.stderr and PASSWORD not in done.stderr
