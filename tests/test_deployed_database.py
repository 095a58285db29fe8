"""The shipped deployment names its database, and a job warns about a netwatch.db it leaves behind.

A relative SQLite path, the default `sqlite:///netwatch.db` included, is taken from the config
file's folder. The systemd units and the crontab run with `--config /etc/netwatch/netwatch.yaml`
from /var/lib/netwatch, where the database used to be: unnamed, it would now be
/etc/netwatch/netwatch.db (read-only under ProtectSystem=strict, exit 78; under cron a new, empty
database). So they name it in full, and a job that opens another SQLite file while a netwatch.db
lies in its current directory says so, naming both.
"""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

import pytest
from inproc import InProcess
from jobkit import log_lines

from netwatch.cli import run
from netwatch.config import load_config

ROOT = Path(__file__).resolve().parent.parent
JOBS = ROOT / "jobs"
JOB_NAMES = tuple(sorted(run.commands))  # every job ships a unit and a crontab line
VARIABLE = "NETWATCH_DATABASE_URL"
HOSTS = [{"name": "lo", "address": "127.0.0.1"}]


def assignments(text: str) -> list[tuple[str, str]]:
    """The `KEY=value` settings of a unit's [Service] lines or a crontab, in file order."""
    found = []
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z]+)=(.*)$", line.strip())
        if match:
            found.append((match.group(1), match.group(2)))
    return found


def sqlite_file(url: str) -> Path:
    assert url.startswith("sqlite:////"), f"{url}: not an absolute SQLite path"
    return Path(url.removeprefix("sqlite:///"))


@pytest.mark.parametrize("job", JOB_NAMES)
def test_each_unit_names_an_absolute_database_in_its_state_directory_before_the_env_file(job: str) -> None:
    text = (JOBS / f"netwatch-{job}.service").read_text(encoding="utf-8")
    settings = assignments(text)
    service = configparser.RawConfigParser(strict=False, interpolation=None)
    service.optionxform = str  # type: ignore[assignment,method-assign]
    service.read_string(text)

    keys = [key for key, _ in settings]
    [(name, url)] = [value.split("=", 1) for key, value in settings if key == "Environment"]
    database = sqlite_file(url)
    assert name == VARIABLE
    # Before EnvironmentFile=, which overrides Environment= (systemd.exec(5)): a MySQL URL there wins.
    assert keys.index("Environment") < keys.index("EnvironmentFile")
    assert database.parent == Path("/var/lib") / service["Service"]["StateDirectory"]
    assert database.parent == Path(service["Service"]["WorkingDirectory"])
    # The config file's folder would be read-only under the unit's ProtectSystem=strict.
    words = shlex.split(service["Service"]["ExecStart"])
    config = Path(words[words.index("--config") + 1])
    assert database.parent != config.parent and service["Service"]["ProtectSystem"] == "strict"


def test_the_crontab_names_the_same_database_before_its_lines_read_the_env_file() -> None:
    text = (JOBS / "netwatch.crontab").read_text(encoding="utf-8")
    unit = dict(assignments((JOBS / "netwatch-ping-sweep.service").read_text(encoding="utf-8")))
    lines = text.splitlines()

    [setting] = [n for n, line in enumerate(lines) if line.startswith(f"{VARIABLE}=")]
    jobs = [n for n, line in enumerate(lines) if "/bin/netwatch " in line and not line.startswith("#")]
    assert lines[setting] == unit["Environment"]
    assert len(jobs) == len(JOB_NAMES) and all(setting < n for n in jobs)
    # Each line reads the env file before netwatch starts, so a NETWATCH_DATABASE_URL there wins.
    assert all(lines[n].index(". /etc/netwatch/env") < lines[n].index("/bin/netwatch ") for n in jobs)


def test_the_shell_recipes_of_the_jobs_readme_set_the_same_database_first() -> None:
    unit = dict(assignments((JOBS / "netwatch-ping-sweep.service").read_text(encoding="utf-8")))
    readme = (JOBS / "README.md").read_text(encoding="utf-8")

    recipes = [line for line in readme.splitlines() if line.startswith("set -a;")]
    assert recipes
    assert all(line == f"set -a; {unit['Environment']}; . /etc/netwatch/env; set +a" for line in recipes)


def test_the_unit_url_loads_as_the_database_a_run_uses(tmp_path: Path) -> None:
    url = dict(assignments((JOBS / "netwatch-ping-sweep.service").read_text(encoding="utf-8")))["Environment"]
    config = tmp_path / "netwatch.yaml"
    config.write_text("hosts: []\n", encoding="utf-8")

    loaded = load_config(config, {VARIABLE: url.split("=", 1)[1]})

    assert loaded.database_url == "sqlite:////var/lib/netwatch/netwatch.db"


def test_a_job_beside_another_netwatch_db_names_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An upgraded cron set-up: the old database stays in the job's directory, the run opens another."""
    old_home = tmp_path / "var-lib-netwatch"
    old_home.mkdir()
    (old_home / "netwatch.db").write_bytes(b"")
    site = tmp_path / "etc-netwatch"
    site.mkdir()
    # No database.url: the default, sqlite:///netwatch.db, beside the config file.
    (site / "netwatch.yaml").write_text("hosts: [{name: lo, address: 127.0.0.1}]\n", encoding="utf-8")
    monkeypatch.chdir(old_home)

    done = InProcess(site, "sqlite:///netwatch.db", {}).run("run", "ping-sweep")

    assert done.returncode == 0, done.stderr
    assert log_lines(done.stderr)[0] == (
        f"warning: the database is {site / 'netwatch.db'}, but the current directory holds another netwatch.db, "
        f"{old_home / 'netwatch.db'}: relative SQLite paths (the default sqlite:///netwatch.db too) are taken "
        f"from the config file's folder; to use that one, set NETWATCH_DATABASE_URL or database.url to "
        f"sqlite:///{old_home / 'netwatch.db'}")


def test_a_job_whose_database_is_the_netwatch_db_beside_it_says_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = tmp_path / "here"
    here.mkdir()
    nw = InProcess(tmp_path, f"sqlite:///{here / 'netwatch.db'}", {})
    nw.write_config(HOSTS)
    monkeypatch.chdir(here)

    first, second = nw.sweep(), nw.sweep()

    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert [line for line in log_lines(second.stderr) if line.startswith("warning")] == []
