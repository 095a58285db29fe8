"""Keeps jobs/ (cron, systemd) and k8s/ (kustomize) honest against the real CLI and config loader."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from netwatch.cli import cli
from netwatch.config import load_config
from netwatch.errors import ExitCode
from netwatch.reports import parse_age

ROOT = Path(__file__).resolve().parent.parent
JOBS = ROOT / "jobs"
K8S = ROOT / "k8s"
BASE = K8S / "base"
OVERLAY = K8S / "overlays" / "production"
CRONTAB = JOBS / "netwatch.crontab"
SERVICE = JOBS / "netwatch-ping-sweep.service"
TIMER = JOBS / "netwatch-ping-sweep.timer"
PING_SWEEP = "ping-sweep"
HTTP_CHECK = "http-check"
# Jobs that run every minute: each of the others starts at minutes no other one does.
EVERY_MINUTE = (PING_SWEEP, HTTP_CHECK)
# Every scheduled job and the minutes of the hour it starts at (cron, systemd and Kubernetes alike).
# alert-clear runs two minutes after event-scan so the two never read the Segware API at once.
SCHEDULED = {
    PING_SWEEP: frozenset(range(60)),
    HTTP_CHECK: frozenset(range(60)),
    "event-scan": frozenset(range(0, 60, 5)),
    "alert-clear": frozenset(range(2, 60, 5)),
    # Hourly, at a minute no other job starts a run of its own at; it has its own lease.
    "cleanup": frozenset({33}),
    # Two minutes after alert-clear, so the page shows that run's alerts; never at cleanup's minute.
    "status-page": frozenset(range(4, 60, 5)),
}
# Seconds from one start of a job to its next: every run must end well before it.
PERIODS = {PING_SWEEP: 60, HTTP_CHECK: 60, "event-scan": 300, "alert-clear": 300, "cleanup": 3600, "status-page": 300}
ALARM_JOBS = ("event-scan", "alert-clear")
STATUS_PAGE = "status-page"
# Jobs that need no capability: HTTPS, the database and the status page's files only.
UNPRIVILEGED_JOBS = (HTTP_CHECK, *ALARM_JOBS, "cleanup", STATUS_PAGE)
# Where the status page goes: beside the database in the systemd state directory (cron alike), and
# on the claim a web server mounts too in Kubernetes.
STATUS_OUT = Path("/var/lib/netwatch/status-page")
STATUS_CLAIM = "netwatch-status-page"
# The Secret's keys reach the pods as files of one optional volume, never as variables: every job
# ends by delivering the whole outbox (Sigma events and every notification channel), so each gets
# them all; http-check also the key of the checks' passwords; db-upgrade only the database URL.
SECRETS_MOUNT = Path("/etc/netwatch-secrets")
SECRET_KEYS = {"database-url", "sigma-token", "segware-token", "smtp-password", "whatsapp-token"}
HTTP_CHECK_KEYS = SECRET_KEYS | {"encryption-key"}
BASE_IMAGE = "registry.example.invalid/netwatch"
KUSTOMIZATION = "kustomization.yaml"
COMPONENTS = K8S / "components"
# Env a pod or host gets from its Secret: enough for load_config, never a real credential.
SECRET_ENV = {"NETWATCH_DATABASE_URL": "sqlite:///:memory:"}
# Shell words that end the netwatch argument list on a cron line.
_SHELL_END = re.compile(r"^\d*[<>|&;]|[;|&]$")
_TOKENISH = [
    re.compile(r"(?i)bearer\s+\S"),
    re.compile(r"://[^/\s:@]+:[^/\s@]+@"),  # credentials inside a URL
    re.compile(r"(?i)\b(token|password|passwd|secret|api_?key)\s*[:=]\s*\S"),
    re.compile(r"\b[A-Za-z0-9+/_=-]{32,}\b"),  # long opaque strings
]


# ---------------------------------------------------------------------------- resolving commands


def resolve_command(argv: list[str]) -> click.Command:
    """The netwatch command `argv` (after the program name) invokes; fails if any word is unknown."""
    command: click.Command = cli
    rest = list(argv)
    while isinstance(command, click.Group):
        rest = _consume_options(command, rest)
        if not rest and command.invoke_without_command:
            return command  # e.g. `netwatch alerts --active`: the group itself is the report
        assert rest, f"{argv}: {command.name} needs a subcommand"
        name = rest.pop(0)
        assert name in command.commands, f"{argv}: no command {name!r} under {command.name!r}"
        command = command.commands[name]
    # The leaf parses its own options and arguments exactly as at run time, without running.
    command.make_context(command.name or "", rest)
    return command


def _consume_options(group: click.Group, words: list[str]) -> list[str]:
    rest = list(words)
    while rest and rest[0].startswith("-"):
        word = rest.pop(0)
        name, has_value, value = word.partition("=")
        option = next((p for p in group.params if name in (*p.opts, *p.secondary_opts)), None)
        assert isinstance(option, click.Option), f"{group.name}: unknown option {name}"
        if option.is_flag:
            continue
        if not has_value:
            assert rest, f"{group.name}: {name} needs a value"
            value = rest.pop(0)
        option.type.convert(value, option, None)
    return rest


def _path_of(argv: list[str]) -> str:
    """The subcommand names in `argv`, e.g. "run ping-sweep"."""
    names = []
    command: click.Command = cli
    rest = list(argv)
    while isinstance(command, click.Group):
        rest = _consume_options(command, rest)
        if not rest and command.invoke_without_command:
            break
        command = command.commands[rest.pop(0)]
        names.append(command.name or "")
    return " ".join(names)


def test_resolver_accepts_known_and_rejects_renamed_commands() -> None:
    assert resolve_command(["--log-format", "json", "run", "ping-sweep", "--shard", "1/4"]).name == "ping-sweep"
    assert resolve_command(["db", "upgrade", "--config", "x.yaml"]).name == "upgrade"
    assert resolve_command(["run", "event-scan", "--config", "x.yaml"]).name == "event-scan"
    assert resolve_command(["alerts", "--active", "--since", "24h", "--json"]).name == "alerts"
    assert resolve_command(["alerts", "log", "--since", "7d", "--csv"]).name == "log"
    assert _path_of(["alerts", "--active"]) == "alerts"
    assert _path_of(["alerts", "log"]) == "alerts log"


# Commands shown to operators: the first word of a code line or span, or the word after `--`.
_README_COMMAND = re.compile(r"(?:^|`|\s--\s)((?:\S*/bin/)?netwatch\s[^`#|]*)")


def readme_commands(path: Path) -> list[list[str]]:
    """The netwatch argv of every command line or inline code span of a README."""
    commands = []
    in_block = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_block = not in_block
            continue
        texts = [line.strip()] if in_block else re.findall(r"`([^`]+)`", line)
        for text in texts:
            match = _README_COMMAND.search(text) if in_block else _README_COMMAND.match(text)
            if match:
                commands.append(_netwatch_argv(shlex.split(match.group(1)), line))
    return commands


@pytest.mark.parametrize("readme", [JOBS / "README.md", K8S / "README.md"], ids=["jobs", "k8s"])
def test_readme_commands_exist(readme: Path) -> None:
    commands = readme_commands(readme)
    for argv in commands:
        resolve_command(argv)
        if "--since" in argv:
            # Checked by the command at run time, not by click: parse it the same way here.
            assert parse_age(argv[argv.index("--since") + 1]).total_seconds() > 0
    paths = {_path_of(argv) for argv in commands}
    # The read-only operator reports are documented next to the jobs.
    assert {"alerts", "alerts log"} <= paths
    for bad in (
        ["run", "ping-swept"],
        ["run"],
        ["--log-format", "xml", "run", "ping-sweep"],
        ["run", "ping-sweep", "--no-such-option"],
        ["--bogus", "status"],
        ["run", "event-scan", "--shard", "1/4"],
        ["run", "alert-clear", "--config"],
        ["alerts", "--active", "logs"],
    ):
        with pytest.raises((AssertionError, click.ClickException)):
            resolve_command(bad)


# ---------------------------------------------------------------------------- cron and systemd


def cron_lines() -> list[str]:
    """Every job line of the crontab (no comments, blank lines or variable settings)."""
    lines = []
    for line in CRONTAB.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and not re.match(r"^[A-Z_]+=", stripped):
            lines.append(stripped)
    return lines


def cron_commands() -> Iterator[tuple[str, list[str]]]:
    """(schedule, netwatch argv) of every job line of the crontab."""
    for line in cron_lines():
        fields = line.split(None, 6)
        assert len(fields) == 7, f"cron line needs 5 time fields, a user and a command: {line}"
        yield " ".join(fields[:5]), _netwatch_argv(shlex.split(fields[6]), line)


def cron_minutes(schedule: str) -> frozenset[int]:
    """Minutes of the hour a cron schedule fires at; only every hour of every day is accepted."""
    minute, *rest = schedule.split()
    assert rest == ["*"] * 4, f"{schedule}: netwatch jobs run every hour of every day"
    minutes: set[int] = set()
    for part in minute.split(","):
        span, _, step = part.partition("/")
        first, _, last = ("0-59" if span == "*" else span).partition("-")
        stop = int(last) if last else (59 if step else int(first))
        minutes.update(range(int(first), stop + 1, int(step or 1)))
    return frozenset(minutes)


def calendar_minutes(on_calendar: str) -> frozenset[int]:
    """Minutes of the hour a systemd `*-*-* *:MM:00` OnCalendar= fires at (MM: `*`, `N` or `N/step`)."""
    match = re.fullmatch(r"\*-\*-\* \*:(\*|\d\d)(?:/(\d+))?:00", on_calendar)
    assert match, f"{on_calendar}: expected second 0 of chosen minutes of every hour"
    first, step = match.groups()
    if first == "*":
        return frozenset(range(0, 60, int(step or 1)))
    return frozenset(range(int(first), 60, int(step)) if step else {int(first)})


def test_schedule_parsers() -> None:
    assert cron_minutes("* * * * *") == frozenset(range(60))
    assert cron_minutes("*/5 * * * *") == frozenset(range(0, 60, 5))
    assert cron_minutes("2-59/5 * * * *") == frozenset(range(2, 60, 5))
    assert cron_minutes("7,37 * * * *") == {7, 37}
    assert calendar_minutes("*-*-* *:*:00") == frozenset(range(60))
    assert calendar_minutes("*-*-* *:02/5:00") == frozenset(range(2, 60, 5))
    assert calendar_minutes("*-*-* *:30:00") == {30}
    with pytest.raises(AssertionError):
        cron_minutes("*/5 3 * * *")
    with pytest.raises(AssertionError):
        calendar_minutes("daily")


def _netwatch_argv(words: list[str], line: str) -> list[str]:
    starts = [i for i, word in enumerate(words) if Path(word).name == "netwatch"]
    assert len(starts) == 1, f"expected one netwatch invocation in: {line}"
    argv = []
    for word in words[starts[0] + 1 :]:
        if _SHELL_END.search(word):
            break
        argv.append(word)
    return argv


def unit_file(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser


def test_crontab_lines_run_existing_commands_on_schedule() -> None:
    scheduled = {}
    for schedule, argv in cron_commands():
        resolve_command(argv)
        path = _path_of(argv)
        assert path.startswith("run "), f"only jobs are scheduled, not {path}"
        assert path[4:] not in scheduled, f"{path} scheduled twice"
        scheduled[path[4:]] = cron_minutes(schedule)
        assert argv[:2] == ["--log-format", "json"]
        assert "--config" in argv
    assert scheduled == SCHEDULED


def test_crontab_runs_as_unprivileged_user_and_logs_to_syslog() -> None:
    lines = cron_lines()
    assert len(lines) == len(SCHEDULED)
    for line, (_, argv) in zip(lines, cron_commands(), strict=True):
        job = _path_of(argv).removeprefix("run ")
        assert line.split()[5] == "netwatch"
        assert ". /etc/netwatch/env" in line
        assert f"| logger -t netwatch-{job} " in line
        # SIGTERM (exit 143) well before the next run is due, SIGKILL 30 s later.
        timeout = re.search(r"\btimeout -k 30 (\d+) ", line)
        assert timeout, line
        assert 0 < int(timeout.group(1)) < PERIODS[job]


def test_jobs_that_do_not_run_every_minute_start_at_minutes_of_their_own() -> None:
    others = [job for job in SCHEDULED if job not in EVERY_MINUTE]
    for index, job in enumerate(others):
        for other in others[index + 1 :]:
            assert not SCHEDULED[job] & SCHEDULED[other], f"{job} and {other} start at the same minute"


def _out_of(argv: list[str]) -> Path:
    return Path(argv[argv.index("--out") + 1])


def test_crontab_writes_the_status_page_where_a_web_server_can_read_it() -> None:
    [(line, argv)] = [(line, argv) for line, (_, argv) in zip(cron_lines(), cron_commands(), strict=True)
                      if _path_of(argv) == f"run {STATUS_PAGE}"]
    assert _out_of(argv) == STATUS_OUT
    # cron's umask is the daemon's: set it, so the page's files are readable by others whatever it is.
    assert line.index("umask 022;") < line.index("/bin/netwatch ")


def test_systemd_writes_the_status_page_in_its_state_directory_readable_by_others() -> None:
    service = unit_file(JOBS / f"netwatch-{STATUS_PAGE}.service")["Service"]
    out = _out_of(shlex.split(service["ExecStart"])[1:])
    assert out == STATUS_OUT
    # Writable under ProtectSystem=strict: DIR's folder (the generations go beside DIR) is the state directory.
    assert out.parent == Path("/var/lib") / service["StateDirectory"]
    # Files 0644, folders 0755: no read or search bit masked for group or others.
    assert int(service["UMask"], 8) & 0o055 == 0


def test_every_unit_file_belongs_to_a_scheduled_job() -> None:
    units = {p.name for p in JOBS.glob("netwatch-*.*")}
    assert units == {f"netwatch-{job}.{kind}" for job in SCHEDULED for kind in ("service", "timer")}


@pytest.mark.parametrize("job", list(SCHEDULED))
def test_systemd_service_execstart_runs_an_existing_command(job: str) -> None:
    service = unit_file(JOBS / f"netwatch-{job}.service")["Service"]
    words = shlex.split(service["ExecStart"].lstrip("-@:+!"))
    assert Path(words[0]).name == "netwatch"
    assert _path_of(words[1:]) == f"run {job}"
    resolve_command(words[1:])
    assert service["SyslogIdentifier"] == f"netwatch-{job}"


def test_systemd_service_settings() -> None:
    service = unit_file(SERVICE)["Service"]
    assert service["Type"] == "oneshot"
    assert service["User"] != "root"
    assert str(int(ExitCode.LEASE_HELD)) in service["SuccessExitStatus"].split()
    assert str(int(ExitCode.CONFIG)) not in service["SuccessExitStatus"].split()
    assert service["AmbientCapabilities"] == "CAP_NET_RAW"
    assert service["CapabilityBoundingSet"] == "CAP_NET_RAW"
    assert service["TimeoutStopSec"] == "30"
    assert service["EnvironmentFile"] == "/etc/netwatch/env"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"


@pytest.mark.parametrize("job", UNPRIVILEGED_JOBS)
def test_systemd_unprivileged_job_services_hold_no_capability(job: str) -> None:
    ping = unit_file(SERVICE)["Service"]
    service = unit_file(JOBS / f"netwatch-{job}.service")["Service"]
    assert service["Type"] == "oneshot"
    assert service["User"] == service["Group"] == "netwatch"
    assert service["SuccessExitStatus"].split() == [str(int(ExitCode.LEASE_HELD)), str(int(ExitCode.STOPPED))]
    assert "AmbientCapabilities" not in service
    assert service["CapabilityBoundingSet"] == ""  # empty: no capability at all
    assert 0 < int(service["TimeoutStartSec"]) < PERIODS[job]
    # status-page's files are for a web server (another user) to read; every other job keeps 0077.
    assert service["UMask"] == ("0022" if job == STATUS_PAGE else ping["UMask"])
    # The same hardening as ping-sweep, key for key, apart from the capabilities, the timeout and the umask.
    differing = {"AmbientCapabilities", "CapabilityBoundingSet", "ExecStart", "SyslogIdentifier", "TimeoutStartSec",
                 "UMask"}
    assert {k: v for k, v in service.items() if k not in differing} == {
        k: v for k, v in ping.items() if k not in differing
    }


@pytest.mark.parametrize("job", list(SCHEDULED))
def test_systemd_timers_match_the_crontab(job: str) -> None:
    timer = unit_file(JOBS / f"netwatch-{job}.timer")
    assert calendar_minutes(timer["Timer"]["OnCalendar"]) == SCHEDULED[job]
    assert timer["Timer"]["AccuracySec"] == "1s"
    assert timer["Timer"]["Unit"] == f"netwatch-{job}.service"
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_systemd_timer_fires_every_minute_on_the_service() -> None:
    timer = unit_file(TIMER)
    assert timer["Timer"]["OnCalendar"] == "*-*-* *:*:00"
    assert timer["Timer"]["AccuracySec"] == "1s"
    assert timer["Timer"]["Unit"] == SERVICE.name
    assert timer["Install"]["WantedBy"] == "timers.target"


# ---------------------------------------------------------------------------- Kubernetes


def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.rglob("*.yaml")):
        with path.open(encoding="utf-8") as handle:
            docs.extend((path, doc) for doc in yaml.safe_load_all(handle) if doc is not None)
    return docs


def manifests() -> list[tuple[Path, dict[str, Any]]]:
    """Every Kubernetes object (not kustomizations, not the overlay's netwatch.yaml config, not the
    components' patches, which are partial objects: tested on their own below)."""
    return [(path, doc) for path, doc in k8s_documents()
            if "kind" in doc and path.name != KUSTOMIZATION and COMPONENTS not in path.parents]


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in manifests() if doc["kind"] == kind]


def pod_specs() -> list[dict[str, Any]]:
    specs = [job["spec"]["template"]["spec"] for job in by_kind("Job")]
    specs += [cron["spec"]["jobTemplate"]["spec"]["template"]["spec"] for cron in by_kind("CronJob")]
    return specs


def containers() -> list[dict[str, Any]]:
    return [c for spec in pod_specs() for c in (*spec.get("initContainers", []), *spec["containers"])]


def cronjob(job: str) -> dict[str, Any]:
    """The CronJob that runs `netwatch run <job>`."""
    (cron,) = [cron for cron in by_kind("CronJob") if cron["metadata"]["name"] == f"netwatch-{job}"]
    return cron


def ping_sweep_cronjob() -> dict[str, Any]:
    return cronjob(PING_SWEEP)


def job_pod(job: str) -> dict[str, Any]:
    return cronjob(job)["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_every_yaml_parses_and_every_manifest_is_named() -> None:
    docs = k8s_documents()
    assert len(docs) >= 8
    for path, doc in manifests():
        assert isinstance(doc.get("apiVersion"), str), path
        assert doc["metadata"]["name"], path


def test_kustomizations_list_files_that_exist_and_every_manifest_is_listed() -> None:
    for kustomization in K8S.rglob(KUSTOMIZATION):
        data = yaml.safe_load(kustomization.read_text(encoding="utf-8"))
        assert data["kind"] == ("Component" if COMPONENTS in kustomization.parents else "Kustomization")
        for resource in data.get("resources", []):
            assert (kustomization.parent / resource).exists(), f"{kustomization}: missing {resource}"
        for patch in data.get("patches", []):
            assert (kustomization.parent / patch["path"]).exists(), f"{kustomization}: missing {patch['path']}"
        for generator in data.get("configMapGenerator", []):
            for name in generator.get("files", []):
                assert (kustomization.parent / name.split("=")[-1]).exists(), f"{kustomization}: missing {name}"
    base = yaml.safe_load((BASE / KUSTOMIZATION).read_text(encoding="utf-8"))
    listed = set(base["resources"])
    assert listed == {p.name for p in BASE.glob("*.yaml") if p.name != KUSTOMIZATION}


def test_overlay_overrides_the_image_the_base_uses() -> None:
    overlay = yaml.safe_load((OVERLAY / KUSTOMIZATION).read_text(encoding="utf-8"))
    assert "../../base" in overlay["resources"]
    assert overlay["namespace"]
    assert [image["name"] for image in overlay["images"]] == [BASE_IMAGE]
    for container in containers():
        assert container["image"].rpartition(":")[0] == BASE_IMAGE


def test_container_commands_are_existing_netwatch_commands() -> None:
    paths = set()
    for container in containers():
        assert container["command"] == ["netwatch"]
        resolve_command(container["args"])
        paths.add(_path_of(container["args"]))
    assert paths == {f"run {job}" for job in SCHEDULED} | {"db upgrade"}
    assert len(by_kind("CronJob")) == len(SCHEDULED)
    for name in SCHEDULED:
        (container,) = job_pod(name)["containers"]
        assert _path_of(container["args"]) == f"run {name}"
        assert container["name"] == name


@pytest.mark.parametrize("name", list(SCHEDULED))
def test_cronjob_schedule_and_failure_handling(name: str) -> None:
    cron = cronjob(name)["spec"]
    job = cron["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    period = PERIODS[name]
    assert cron_minutes(cron["schedule"]) == SCHEDULED[name]
    assert cron["timeZone"] == "Etc/UTC"
    assert cron["concurrencyPolicy"] == "Forbid"
    assert 0 < cron["startingDeadlineSeconds"] < period
    assert cron["successfulJobsHistoryLimit"] >= 1
    assert cron["failedJobsHistoryLimit"] >= 1
    assert job["backoffLimit"] == 0
    assert 0 < job["activeDeadlineSeconds"] < period
    assert pod["restartPolicy"] == "Never"
    assert pod["terminationGracePeriodSeconds"] == 30
    # Exit 75 must not be "Ignore": that starts a replacement pod that meets the same lease.
    lease_rules = [
        rule for rule in job["podFailurePolicy"]["rules"]
        if int(ExitCode.LEASE_HELD) in rule.get("onExitCodes", {}).get("values", [])
    ]
    assert [rule["action"] for rule in lease_rules] == ["FailJob"]
    assert lease_rules[0]["onExitCodes"]["containerName"] == pod["containers"][0]["name"]


def test_ping_sweep_gets_icmp_from_its_sysctl_not_from_a_capability() -> None:
    pod = ping_sweep_cronjob()["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    context = pod["securityContext"]
    # Datagram ICMP sockets for the pod's own group, in the pod's own network namespace.
    [sysctl] = context["sysctls"]
    low, high = (int(part) for part in sysctl["value"].split())
    assert sysctl["name"] == "net.ipv4.ping_group_range" and low <= context["runAsGroup"] <= high
    assert context["runAsUser"] > 0 and context["runAsNonRoot"] is True
    (configmap,) = by_kind("ConfigMap")
    assert yaml.safe_load(configmap["data"]["netwatch.yaml"])["ping"]["socket"] == "datagram"
    assert yaml.safe_load((OVERLAY / "netwatch.yaml").read_text(encoding="utf-8"))["ping"]["socket"] == "datagram"


def test_the_namespace_enforces_pod_security_restricted() -> None:
    [namespace] = [doc for _, doc in k8s_documents() if doc.get("kind") == "Namespace"]
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_no_container_adds_a_capability() -> None:
    assert len(containers()) == len(UNPRIVILEGED_JOBS) + 2  # and ping-sweep and db-upgrade
    for container in containers():
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_status_page_pod_writes_to_the_shared_claim_and_keeps_a_read_only_root() -> None:
    pod = job_pod(STATUS_PAGE)
    (container,) = pod["containers"]
    out = _out_of(container["args"])
    # DIR's folder must be writable (the generations go beside DIR): it is the claim's mount, read-write.
    [mount] = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == out.parent]
    assert mount.get("readOnly", False) is False
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["persistentVolumeClaim"] == {"claimName": STATUS_CLAIM}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # The claim's files belong to the pod's group, where the volume type supports it.
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
    # A web server pod on another node mounts the same claim read-only.
    [claim] = [c for c in by_kind("PersistentVolumeClaim") if c["metadata"]["name"] == STATUS_CLAIM]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


def secret_volume(spec: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    """The Secret volume a container reads its secrets from, checked to be mounted read-only where they are."""
    [mount] = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == SECRETS_MOUNT]
    assert mount["readOnly"] is True
    [volume] = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    return dict(volume["secret"])


def test_only_the_http_check_pod_gets_and_reads_the_encryption_key() -> None:
    for spec in pod_specs():
        (container,) = spec["containers"]
        env = {item["name"]: item for item in container.get("env", [])}
        keys = {item["key"] for item in secret_volume(spec, container)["items"]}
        if _path_of(container["args"]) != f"run {HTTP_CHECK}":
            assert not {"NETWATCH_ENCRYPTION_KEY", "NETWATCH_ENCRYPTION_KEY_FILE"} & set(env), container["name"]
            assert "encryption-key" not in keys, container["name"]
            continue
        assert "NETWATCH_ENCRYPTION_KEY" not in env, "the key comes as a file, not as a variable"
        assert Path(env["NETWATCH_ENCRYPTION_KEY_FILE"]["value"]) == SECRETS_MOUNT / "encryption-key"
        assert "encryption-key" in keys


def test_no_pod_runs_as_root() -> None:
    for spec in pod_specs():
        (container,) = spec["containers"]
        context = {**spec.get("securityContext", {}), **container.get("securityContext", {})}
        assert context["runAsNonRoot"] is True, container["name"]
        # Numeric, so the kubelet can check runAsNonRoot whatever USER the image names.
        assert isinstance(context["runAsUser"], int), container["name"]
        assert context["runAsUser"] > 0, container["name"]
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}


@pytest.mark.parametrize("job", ["ping-sweep", *UNPRIVILEGED_JOBS])
def test_every_job_reads_its_secrets_from_files_of_one_optional_secret_volume(job: str) -> None:
    spec = job_pod(job)
    (container,) = spec["containers"]
    env = {item["name"]: item for item in container["env"]}
    assert Path(env["NETWATCH_DATABASE_URL_FILE"]["value"]) == SECRETS_MOUNT / "database-url"
    secret = secret_volume(spec, container)
    assert secret["secretName"] == "netwatch-secrets"
    # Optional: a missing key is netwatch's one-line error (78) naming its file, not a pod that never starts.
    assert secret["optional"] is True
    assert {(item["key"], item["path"]) for item in secret["items"]} == {
        (key, key) for key in (HTTP_CHECK_KEYS if job == HTTP_CHECK else SECRET_KEYS)}
    # Owner and group only (netwatch warns of a secret file others may read); the pod's user is in the
    # files' group (fsGroup).
    assert secret["defaultMode"] == 0o440
    context = spec["securityContext"]
    assert context["fsGroup"] == context["runAsGroup"]


def test_no_secret_reaches_a_pod_as_an_environment_variable() -> None:
    for spec in pod_specs():
        (container,) = spec["containers"]
        for item in container.get("env", []):
            assert "valueFrom" not in item, f"{item['name']}: secrets come as files, not secretKeyRef"
            assert not re.search(r"TOKEN|PASSWORD|SECRET|DATABASE_URL$", item["name"]), item["name"]
            if item["name"].endswith("_FILE"):
                assert SECRETS_MOUNT in Path(item["value"]).parents, item
    [upgrade] = [spec for spec in pod_specs() if _path_of(spec["containers"][0]["args"]) == "db upgrade"]
    assert [item["key"] for item in secret_volume(upgrade, upgrade["containers"][0])["items"]] == ["database-url"]
    assert not by_kind("Secret"), "Secrets are created out of band, never committed"


def configmap_files() -> Iterator[tuple[str, str]]:
    """(where, text) of every file a ConfigMap can carry: base data and the overlay's generator files."""
    for configmap in by_kind("ConfigMap"):
        for key, value in configmap.get("data", {}).items():
            yield f"{configmap['metadata']['name']}/{key}", value
    for name in ("netwatch.yaml", "hosts.csv"):
        yield str(OVERLAY / name), (OVERLAY / name).read_text(encoding="utf-8")


def test_configmaps_hold_no_token_looking_values() -> None:
    files = list(configmap_files())
    assert len(files) >= 4
    for where, text in files:
        for line in text.splitlines():
            # A reference to a file of the Secret volume is where a secret is, not one.
            line = re.sub(rf"{SECRETS_MOUNT}/[a-z-]+", "", line)
            for pattern in _TOKENISH:
                assert not pattern.search(line), f"{where}: looks like a secret: {line.strip()}"


def test_token_pattern_catches_a_token() -> None:
    planted = ["  token: abc", "url: mysql+pymysql://u:pw@db/x", "Authorization: Bearer x", "k: " + "a1B2" * 10]
    for line in planted:
        assert any(pattern.search(line) for pattern in _TOKENISH), line


@pytest.mark.parametrize("source", ["base", "production"])
def test_configmap_config_loads_with_the_real_loader(source: str, tmp_path: Path) -> None:
    if source == "base":
        (configmap,) = by_kind("ConfigMap")
        files = configmap["data"]
    else:
        files = {name: (OVERLAY / name).read_text(encoding="utf-8") for name in ("netwatch.yaml", "hosts.csv")}
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    config = load_config(tmp_path / "netwatch.yaml", SECRET_ENV)
    raw = yaml.safe_load(files["netwatch.yaml"])
    assert "database" not in raw, "the database URL belongs in the Secret"
    assert config.database_url == SECRET_ENV["NETWATCH_DATABASE_URL"]
    assert config.hosts
    assert config.segware.api.token_file == SECRETS_MOUNT / "segware-token"
    assert config.sigma.api.token_file == SECRETS_MOUNT / "sigma-token"
    # The event-scan / alert-clear CronJobs would exit 78 on a config that watches no code.
    assert config.event_scan.codes
    assert all(threshold >= 1 for threshold in config.event_scan.codes.values())
    # Notification channels stay off in the shipped examples: their secrets are not set up by default.
    assert config.notifications.policies() == {}
    deadline = min(cronjob(job)["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] for job in SCHEDULED)
    assert config.run.deadline_seconds < deadline
    # http-check's pass of checks ends before its pod's deadline, with time left for its writes.
    checks_deadline = cronjob(HTTP_CHECK)["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
    assert config.http.run_deadline_seconds <= checks_deadline - 20


def test_configmap_mount_matches_the_config_option() -> None:
    for spec in pod_specs():
        (container,) = spec["containers"]
        config_file = container["args"][container["args"].index("--config") + 1]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        volume = next(v for v in spec["volumes"] if "configMap" in v)
        assert volume["configMap"]["name"] == "netwatch-config"
        assert config_file == f"{mounts[volume['name']]}/netwatch.yaml"
        assert spec["automountServiceAccountToken"] is False


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with built-in kustomize) not installed")
def test_overlay_renders_with_kustomize() -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(OVERLAY)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    namespaced = [doc for doc in rendered if doc["kind"] != "Namespace"]
    assert {doc["metadata"]["namespace"] for doc in namespaced} == {"netwatch"}
    jobs = [doc["spec"] for doc in rendered if doc["kind"] == "Job"]
    jobs += [doc["spec"]["jobTemplate"]["spec"] for doc in rendered if doc["kind"] == "CronJob"]
    images = {c["image"] for job in jobs for c in job["template"]["spec"]["containers"]}
    assert images == {"registry.example.invalid/netwatch:0.1.0"}
    # As deployed: no secret as a variable anywhere, every pod reads its secrets from the Secret volume.
    assert "secretKeyRef" not in result.stdout
    for job in jobs:
        pod = job["template"]["spec"]
        assert secret_volume(pod, pod["containers"][0])["secretName"] == "netwatch-secrets"
    cron_names = {doc["metadata"]["name"] for doc in rendered if doc["kind"] == "CronJob"}
    assert cron_names == {f"netwatch-{job}" for job in SCHEDULED}


COMPONENT = COMPONENTS / "indexed-shards"
SHARDED_JOBS = (PING_SWEEP, HTTP_CHECK)


def test_the_indexed_shards_component_agrees_with_itself_and_the_base() -> None:
    component = yaml.safe_load((COMPONENT / KUSTOMIZATION).read_text(encoding="utf-8"))
    assert component["kind"] == "Component"
    patches = [yaml.safe_load((COMPONENT / patch["path"]).read_text(encoding="utf-8"))
               for patch in component["patches"]]
    assert sorted(patch["metadata"]["name"] for patch in patches) == sorted(f"netwatch-{job}" for job in SHARDED_JOBS)
    for patch in patches:
        job = patch["metadata"]["name"].removeprefix("netwatch-")
        spec = patch["spec"]["jobTemplate"]["spec"]
        [container] = spec["template"]["spec"]["containers"]
        # The container is the base's (merged by name), and the count is the same in all three places.
        assert container["name"] == job_pod(job)["containers"][0]["name"]
        [shards] = [int(item["value"]) for item in container["env"] if item["name"] == "NETWATCH_SHARDS"]
        assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", shards, shards)
        assert shards > 1
        # One shard's overlap (75) ends that index, not the Job; the Job-wide retry budget is removed.
        assert spec["backoffLimitPerIndex"] == 0 and spec["backoffLimit"] is None
        [lease] = [rule for rule in spec["podFailurePolicy"]["rules"] if "onExitCodes" in rule]
        assert (lease["action"], lease["onExitCodes"]["values"], lease["onExitCodes"]["containerName"]) == (
            "FailIndex", [int(ExitCode.LEASE_HELD)], job)
        # The base never names a shard: the index comes from the Indexed Job.
        assert "--shard" not in job_pod(job)["containers"][0]["args"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with built-in kustomize) not installed")
def test_the_indexed_shards_component_renders_onto_the_base(tmp_path: Path) -> None:
    overlay = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
               "resources": [os.path.relpath(BASE, tmp_path)], "components": [os.path.relpath(COMPONENT, tmp_path)]}
    (tmp_path / KUSTOMIZATION).write_text(yaml.safe_dump(overlay), encoding="utf-8")
    result = subprocess.run(["kubectl", "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(tmp_path)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    crons = {doc["metadata"]["name"]: doc["spec"]["jobTemplate"]["spec"]
             for doc in yaml.safe_load_all(result.stdout) if doc and doc["kind"] == "CronJob"}
    for name, spec in crons.items():
        sharded = name.removeprefix("netwatch-") in SHARDED_JOBS
        assert (spec.get("completionMode") == "Indexed") is sharded, name
        env = {item["name"] for item in spec["template"]["spec"]["containers"][0]["env"]}
        # The patch adds its variable and keeps every one of the base's.
        assert ("NETWATCH_SHARDS" in env) is sharded and "NETWATCH_DATABASE_URL_FILE" in env, name
        if sharded:
            assert "backoffLimit" not in spec and spec["parallelism"] == spec["completions"] == 4
