"""load_config / read_token: defaults, every kind of bad value, env overrides, token sources."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

from netwatch.config import (
    DEFAULT_DATABASE_URL,
    ApiConfig,
    PingConfig,
    RunConfig,
    config_path,
    load_config,
)
from netwatch.core.hoststate import Thresholds
from netwatch.errors import ConfigError, ExitCode
from netwatch.tokens import read_token

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.yaml"
TOKEN = "tok-9f8e7d6c5b4a-secret"


def write(tmp_path: Path, text: str, name: str = "netwatch.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env or {})
    assert caught.value.exit_code == ExitCode.CONFIG
    message = caught.value.message
    assert "\n" not in message
    return message


def test_example_config_parses_with_documented_defaults() -> None:
    config = load_config(EXAMPLE, {})

    assert config.database_url == f"sqlite:///{EXAMPLE.parent / 'netwatch.db'}"
    assert config.run == RunConfig()
    assert config.ping == PingConfig()
    assert config.thresholds == Thresholds(down_after=3, up_after=2, min_transition_seconds=300.0)
    assert [(h.name, h.address, h.account, h.partition, h.zone) for h in config.hosts] == [
        ("loopback-1", "127.0.0.1", "1234", "01", "001"),
        ("loopback-2", "127.0.0.2", "1234", "01", "002"),
        ("localhost-name", "localhost", "1234", None, None),
    ]
    assert config.sigma.api.base_url is None
    assert config.sigma.api.token_env == "NETWATCH_SIGMA_TOKEN"
    assert config.sigma.api.token_file is None
    assert config.sigma.api.timeout_seconds == 10.0
    assert (config.sigma.offline_code, config.sigma.online_code) == ("E356", "R356")
    assert (config.sigma.max_attempts, config.sigma.retry_backoff_seconds) == (10, 60.0)
    assert config.segware.api.base_url is None
    assert config.segware.api.token_env == "NETWATCH_SEGWARE_TOKEN"
    assert config.segware.cache_ttl_seconds == 3600


def test_empty_file_gives_all_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), {})

    assert DEFAULT_DATABASE_URL == "sqlite:///netwatch.db"
    assert config.database_url == f"sqlite:///{tmp_path / 'netwatch.db'}"  # beside the config file
    assert config.ping == PingConfig()
    assert config.hosts == ()


def test_repo_example_is_the_packaged_example() -> None:
    """`netwatch init-config` writes the packaged file; the repo root must show that same file."""
    packaged = files("netwatch").joinpath("config.example.yaml").read_text(encoding="utf-8")

    assert EXAMPLE.read_text(encoding="utf-8") == packaged


def test_values_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, """
database: {url: "sqlite:////var/lib/netwatch/nw.db"}
run: {deadline_seconds: 60, lease_seconds: 30}
ping: {count: 5, timeout_seconds: 2, interval_ms: 0, rate_limit_pps: 50, retries: 0,
       loss_degraded_percent: 50, latency_degraded_ms: 250.5, resolve_concurrency: 4, socket: datagram}
thresholds: {down_after: 1, up_after: 1, min_transition_seconds: 0, notify_initial: true}
sigma: {base_url: "https://sigma.example.invalid/", token_env: MY_SIGMA, timeout_seconds: 3,
        offline_code: X1, online_code: X2, max_attempts: 2, retry_backoff_seconds: 0}
segware: {base_url: "http://127.0.0.1:8080/api", token_file: secrets/segware, cache_ttl_seconds: 0}
""")
    config = load_config(path, {})

    assert config.database_url == "sqlite:////var/lib/netwatch/nw.db"
    assert config.run == RunConfig(deadline_seconds=60, lease_seconds=30)
    assert config.ping == PingConfig(5, 2.0, 0, 50, 0, 50.0, 250.5, 4, "datagram")
    assert config.thresholds == Thresholds(1, 1, 0.0, True)
    assert config.sigma.api.base_url == "https://sigma.example.invalid"
    assert config.sigma.api.token_env == "MY_SIGMA"
    assert (config.sigma.offline_code, config.sigma.online_code, config.sigma.max_attempts) == ("X1", "X2", 2)
    assert config.segware.api.token_file == tmp_path / "secrets" / "segware"
    assert config.segware.cache_ttl_seconds == 0


@pytest.mark.parametrize(
    ("yaml_text", "key_path", "problem"),
    [
        ("ping:\n  count: three\n", "ping.count", "whole number"),
        ("ping:\n  count: 2.5\n", "ping.count", "whole number"),
        ("ping:\n  count: true\n", "ping.count", "whole number"),
        ("ping:\n  count: 0\n", "ping.count", "at least 1"),
        ("ping:\n  count: 101\n", "ping.count", "at most 100"),
        ("ping:\n  timeout_seconds: fast\n", "ping.timeout_seconds", "must be a number"),
        ("ping:\n  timeout_seconds: .nan\n", "ping.timeout_seconds", "must be a number"),
        ("run:\n  deadline_seconds: .inf\n", "run.deadline_seconds", "must be a number"),
        ("ping:\n  loss_degraded_percent: 101\n", "ping.loss_degraded_percent", "at most 100"),
        ("ping:\n  socket: [raw]\n", "ping.socket", "must be one of auto, raw, datagram"),
        ("ping:\n  socket: true\n", "ping.socket", "must be one of auto, raw, datagram"),
        ("run:\n  lease_seconds: 5\n", "run.lease_seconds", "at least 10"),
        ("thresholds:\n  down_after: -1\n", "thresholds.down_after", "at least 1"),
        ("thresholds:\n  notify_initial: maybe\n", "thresholds.notify_initial", "true or false"),
        ("database:\n  url: 5\n", "database.url", "non-empty string"),
        ("database:\n  url: ''\n", "database.url", "non-empty string"),
        ("sigma:\n  offline_code: 356\n", "sigma.offline_code", "non-empty string"),
        ("sigma:\n  max_attempts: 0\n", "sigma.max_attempts", "at least 1"),
        ("segware:\n  timeout_seconds: 0\n", "segware.timeout_seconds", "at least 0.1"),
        ("hosts_file: ''\n", "hosts_file", "non-empty string"),
    ],
)
def test_bad_value_names_file_and_key_path(tmp_path: Path, yaml_text: str, key_path: str, problem: str) -> None:
    path = write(tmp_path, yaml_text)

    message = config_error(path)

    assert message.startswith(f"{path}: {key_path}: ")
    assert problem in message


@pytest.mark.parametrize("socket", ["auto", "raw", "datagram"])
def test_ping_socket_takes_auto_raw_or_datagram(tmp_path: Path, socket: str) -> None:
    assert load_config(write(tmp_path, f"ping: {{socket: {socket}}}\n"), {}).ping.socket == socket


def test_unknown_ping_socket_is_one_line_naming_the_choices(tmp_path: Path) -> None:
    path = write(tmp_path, "ping:\n  socket: RAW\n")

    assert config_error(path) == f"{path}: ping.socket: must be one of auto, raw, datagram, got 'RAW'"


@pytest.mark.parametrize(("written", "family"), [("auto", "auto"), ("4", "4"), ("6", "6"), ("'6'", "6")])
def test_ping_address_family_takes_auto_4_or_6(tmp_path: Path, written: str, family: str) -> None:
    assert load_config(write(tmp_path, f"ping: {{address_family: {written}}}\n"), {}).ping.address_family == family


def test_ping_address_family_defaults_to_auto(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "ping: {count: 2}\n"), {}).ping.address_family == "auto"


@pytest.mark.parametrize("written", ["ipv6", "46", "true", "[4]", "4.0"])
def test_unknown_ping_address_family_is_one_line_naming_the_key_and_choices(tmp_path: Path, written: str) -> None:
    path = write(tmp_path, f"ping:\n  address_family: {written}\n")

    assert config_error(path).startswith(f"{path}: ping.address_family: must be one of auto, 4, 6, got ")


@pytest.mark.parametrize(("family", "address", "version"), [("4", "::1", 6), ("6", "127.0.0.1", 4)])
def test_an_ip_literal_of_the_excluded_family_is_a_config_error(
    tmp_path: Path, family: str, address: str, version: int
) -> None:
    path = write(tmp_path, f"ping: {{address_family: {family}}}\nhosts:\n  - {{name: a, address: '{address}'}}\n")

    assert config_error(path) == (f"{path}: hosts[0]: address '{address}' is an IPv{version} address, but "
                                  f"ping.address_family is {family} (host 'a')")


def test_names_and_both_families_of_literals_load_with_auto(tmp_path: Path) -> None:
    path = write(tmp_path, "hosts:\n  - {name: a, address: '::1'}\n  - {name: b, address: 127.0.0.1}\n"
                           "  - {name: c, address: fd00::7}\n  - {name: d, address: router.invalid}\n")

    assert [host.address for host in load_config(path, {}).hosts] == ["::1", "127.0.0.1", "fd00::7", "router.invalid"]


@pytest.mark.parametrize(
    ("yaml_text", "key_path"),
    [
        ("pings:\n  count: 3\n", "pings"),
        ("ping:\n  cuont: 3\n", "ping.cuont"),
        ("database:\n  uri: sqlite:///x.db\n", "database.uri"),
        ("thresholds:\n  down_after: 3\n  downafter: 3\n", "thresholds.downafter"),
        ("sigma:\n  token: abc\n", "sigma.token"),
        ("segware:\n  base_url: http://127.0.0.1:1\n  extra: 1\n", "segware.extra"),
    ],
)
def test_unknown_key_is_an_error(tmp_path: Path, yaml_text: str, key_path: str) -> None:
    path = write(tmp_path, yaml_text)

    assert config_error(path) == f"{path}: {key_path}: unknown key"


def test_unknown_key_error_never_echoes_its_value(tmp_path: Path) -> None:
    path = write(tmp_path, f"sigma:\n  token: {TOKEN}\n")

    assert TOKEN not in config_error(path)


@pytest.mark.parametrize(
    ("yaml_text", "where"),
    [
        ("ping: [1, 2]\n", "ping"),
        ("ping: 3\n", "ping"),
        ("sigma: yes\n", "sigma"),
        ("- 1\n- 2\n", "top level"),
        ("just text\n", "top level"),
    ],
)
def test_section_that_is_not_a_mapping(tmp_path: Path, yaml_text: str, where: str) -> None:
    path = write(tmp_path, yaml_text)

    assert config_error(path) == f"{path}: {where}: must be a mapping"


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "database:\n  url: sqlite:///x.db\nping:\n  count: [1,\n")

    message = config_error(path)

    assert message.startswith(f"{path}: line 5: invalid YAML")


def test_tab_indentation_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "ping:\n\tcount: 3\n")

    message = config_error(path)

    assert message.startswith(f"{path}: line 2: invalid YAML")


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "ping:\n  count: 1\n  timeout_seconds: 2\n  count: 5\n")

    message = config_error(path)

    assert message.startswith(f"{path}: line 4: invalid YAML")
    assert "duplicate key 'count'" in message


def test_yaml_merge_keys_still_work(tmp_path: Path) -> None:
    path = write(tmp_path, "x-defaults: &d {count: 7}\nping:\n  <<: *d\n  retries: 0\n")

    message = config_error(path)  # the anchor holder itself is an unknown key, merging is fine

    assert message == f"{path}: x-defaults: unknown key"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"

    message = config_error(path)

    assert message.startswith(f"{path}: config file not found")
    assert "init-config" in message


def test_directory_instead_of_file(tmp_path: Path) -> None:
    assert config_error(tmp_path).startswith(f"{tmp_path}: cannot read config file")


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("ping:\n  count: 3 # três\n".encode("latin-1"))

    assert config_error(path).startswith(f"{path}: config file is not UTF-8")


def test_env_database_url_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "database:\n  url: sqlite:///from-file.db\n")

    from_file = f"sqlite:///{tmp_path / 'from-file.db'}"
    assert load_config(path, {}).database_url == from_file
    from_env = load_config(path, {"NETWATCH_DATABASE_URL": "sqlite:///from-env.db"})
    assert (from_env.database_url, from_env.database_key) == (f"sqlite:///{Path.cwd() / 'from-env.db'}",
                                                              "NETWATCH_DATABASE_URL")
    assert load_config(path, {"NETWATCH_DATABASE_URL": ""}).database_url == from_file


def test_env_database_url_overrides_the_default(tmp_path: Path) -> None:
    url = "mysql+pymysql://nw:pw@127.0.0.1/nw"

    assert load_config(write(tmp_path, ""), {"NETWATCH_DATABASE_URL": url}).database_url == url


def test_config_path_order() -> None:
    assert config_path("a.yaml", {"NETWATCH_CONFIG": "b.yaml"}) == Path("a.yaml")
    assert config_path(None, {"NETWATCH_CONFIG": "b.yaml"}) == Path("b.yaml")
    assert config_path(None, {}) == Path("netwatch.yaml")


@pytest.mark.parametrize("url", ["ftp://sigma.example.invalid", "sigma.example.invalid", "file:///etc/passwd"])
def test_base_url_must_be_http(tmp_path: Path, url: str) -> None:
    path = write(tmp_path, f"sigma:\n  base_url: '{url}'\n")

    message = config_error(path)

    assert message.startswith(f"{path}: sigma.base_url: must start with http:// or https://")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "https://sigma.example.invalid/api/"])
def test_base_url_http_and_https_accepted_without_trailing_slash(tmp_path: Path, url: str) -> None:
    path = write(tmp_path, f"segware:\n  base_url: '{url}'\n")

    assert load_config(path, {}).segware.api.base_url == url.rstrip("/")


def test_token_env_that_looks_like_a_token_is_rejected_without_echo(tmp_path: Path) -> None:
    path = write(tmp_path, f"sigma:\n  token_env: {TOKEN}\n")

    message = config_error(path)

    assert message.startswith(f"{path}: sigma.token_env: must be the NAME of an environment variable")
    assert TOKEN not in message


def api(token_file: Path | None = None) -> ApiConfig:
    return ApiConfig(
        section="sigma",
        base_url="http://127.0.0.1:1",
        token_env="NW_TEST_SIGMA_TOKEN",
        token_file=token_file,
        timeout_seconds=1.0,
    )


def test_read_token_from_env(tmp_path: Path) -> None:
    assert read_token(api(), {"NW_TEST_SIGMA_TOKEN": f" {TOKEN}\n"}) == TOKEN


def test_read_token_from_file_wins_over_env(tmp_path: Path) -> None:
    token_file = tmp_path / "sigma.token"
    token_file.write_text(f"{TOKEN}\n", encoding="utf-8")

    assert read_token(api(token_file), {"NW_TEST_SIGMA_TOKEN": "other"}) == TOKEN


def test_token_file_from_config_is_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "sigma.token").write_text(TOKEN, encoding="utf-8")
    path = write(tmp_path, "sigma:\n  base_url: http://127.0.0.1:1\n  token_file: sigma.token\n")

    assert read_token(load_config(path, {}).sigma.api, {}) == TOKEN


@pytest.mark.parametrize("env", [{}, {"NW_TEST_SIGMA_TOKEN": "   "}, {"OTHER": TOKEN}])
def test_missing_token_names_the_env_var_and_no_value(tmp_path: Path, env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        read_token(api(), env)

    assert caught.value.exit_code == ExitCode.CONFIG
    assert caught.value.message.startswith("sigma.token_env: environment variable NW_TEST_SIGMA_TOKEN is not set")
    assert TOKEN not in caught.value.message


def test_missing_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "missing.token"

    with pytest.raises(ConfigError) as caught:
        read_token(api(token_file), {"NW_TEST_SIGMA_TOKEN": TOKEN})

    assert caught.value.message.startswith(f"sigma.token_file: cannot read {token_file}")
    assert TOKEN not in caught.value.message


def test_empty_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "empty.token"
    token_file.write_text("\n", encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        read_token(api(token_file), {})

    assert caught.value.message == f"sigma.token_file: {token_file} is empty"
