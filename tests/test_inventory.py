"""Hosts from `hosts:` and from a CSV `hosts_file`: happy paths and errors naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from jobkit import Netwatch
from sqlalchemy.engine import Engine

from netwatch.config import load_config
from netwatch.db import tables
from netwatch.errors import ConfigError, ExitCode
from netwatch.inventory import HostSpec, hosts_from_csv, hosts_from_yaml

HEADER = "name,address,account,partition,zone"


def write_csv(tmp_path: Path, text: str, name: str = "hosts.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def csv_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        list(hosts_from_csv(path))
    assert caught.value.exit_code == ExitCode.CONFIG
    assert "\n" not in caught.value.message
    return caught.value.message


def yaml_error(items: object) -> str:
    with pytest.raises(ConfigError) as caught:
        list(hosts_from_yaml(items, "nw.yaml"))
    return caught.value.message


def test_csv_happy_path_with_optional_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path, (
        "name,address,account,partition,zone,description,enabled\n"
        "router-a,10.0.0.1,1234,01,003,Loja Centro,true\n"
        'router-b,router-b.example.invalid,1234,,,"Depósito, fundos",\n'
        "router-c,127.0.0.3,5678,02,001,,yes\n"
    ))

    hosts = list(hosts_from_csv(path))

    assert hosts == [
        HostSpec("router-a", "10.0.0.1", "1234", "01", "003", "Loja Centro"),
        HostSpec("router-b", "router-b.example.invalid", "1234", None, None, "Depósito, fundos"),
        HostSpec("router-c", "127.0.0.3", "5678", "02", "001", None),
    ]
    assert [h.origin for h in hosts] == [f"{path} line 2", f"{path} line 3", f"{path} line 4"]


def test_csv_header_is_case_and_space_insensitive_and_columns_may_be_reordered(tmp_path: Path) -> None:
    path = write_csv(tmp_path, " Zone , Name,ADDRESS,account,partition\n003,a,127.0.0.1,1,01\n")

    assert list(hosts_from_csv(path)) == [HostSpec("a", "127.0.0.1", "1", "01", "003")]


def test_csv_blank_lines_are_skipped_and_line_numbers_stay_true(tmp_path: Path) -> None:
    path = write_csv(tmp_path, f"{HEADER}\n\na,127.0.0.1,1,1,1\n,,,,\nb,127.0.0.2,1,1,1\n")

    hosts = list(hosts_from_csv(path))

    assert [(h.name, h.origin) for h in hosts] == [("a", f"{path} line 3"), ("b", f"{path} line 5")]


@pytest.mark.parametrize("value", ["false", "FALSE", "no", "0", "n"])
def test_csv_disabled_rows_are_skipped(tmp_path: Path, value: str) -> None:
    path = write_csv(tmp_path, f"{HEADER},enabled\na,127.0.0.1,1,1,1,{value}\nb,127.0.0.2,1,1,1,true\n")

    assert [h.name for h in hosts_from_csv(path)] == ["b"]


def test_csv_utf8_bom_header_accepted(tmp_path: Path) -> None:
    path = write_csv(tmp_path, f"\ufeff{HEADER}\na,127.0.0.1,1,01,001\n")

    assert list(hosts_from_csv(path)) == [HostSpec("a", "127.0.0.1", "1", "01", "001")]


def test_csv_with_windows_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "hosts.csv"
    path.write_bytes(f"{HEADER}\r\na,127.0.0.1,1,1,1\r\n".encode())

    assert [h.name for h in hosts_from_csv(path)] == ["a"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "{path}: empty hosts file"),
        ("name,address,account,partition\n", "{path} line 1: header lacks column 'zone'"),
        (f"{HEADER},colour\n", "{path} line 1: unknown column 'colour'"),
        (f"{HEADER},name\n", "{path} line 1: a column is named twice"),
        (f"{HEADER}\na,127.0.0.1,1,1\n", "{path} line 2: expected 5 fields, found 4"),
        (f"{HEADER}\na,127.0.0.1,1,1,1\nb,127.0.0.2,1,1,1,extra\n", "{path} line 3: expected 5 fields, found 6"),
        (f"{HEADER}\na,127.0.0.1,1,1,1\nb,,1,1,1\n", "{path} line 3: address: is empty (host 'b')"),
        (f"{HEADER}\n,127.0.0.1,1,1,1\n", "{path} line 2: name: is empty"),
        (f"{HEADER}\nbad name,127.0.0.1,1,1,1\n", "{path} line 2: name: invalid host name 'bad name'"),
        (f"{HEADER}\na,fd00::1::2,1,1,1\n", "{path} line 2: address: invalid IPv6 address 'fd00::1::2'"),
        (f"{HEADER}\na,fe80::1%eth0,1,1,1\n", "{path} line 2: address: an IPv6 zone (%...) is not supported"),
        (f"{HEADER}\na,10.0.0.256,1,1,1\n", "{path} line 2: address: invalid IPv4 address '10.0.0.256'"),
        (f"{HEADER}\na,10.0.0,1,1,1\n", "{path} line 2: address: invalid IPv4 address '10.0.0'"),
        (f"{HEADER}\na,http://x,1,1,1\n", "{path} line 2: address: invalid IPv6 address 'http://x'"),
        (f"{HEADER}\na,host_name!,1,1,1\n", "{path} line 2: address: invalid address 'host_name!'"),
        (f"{HEADER},enabled\na,127.0.0.1,1,1,1,maybe\n", "{path} line 2: enabled: must be true or false, got 'maybe'"),
    ],
)
def test_csv_errors_name_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write_csv(tmp_path, text)

    assert csv_error(path).startswith(expected.format(path=path))


def test_csv_not_utf8_names_file_and_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path, f"{HEADER}\na,127.0.0.1,1,1,1\nb,127.0.0.2,São Paulo,1,1\n", encoding="latin-1")

    assert csv_error(path).startswith(f"{path} line ")


def test_csv_missing_file_names_the_config_key(tmp_path: Path) -> None:
    path = tmp_path / "missing.csv"

    assert csv_error(path) == f"hosts_file: cannot read {path}: No such file or directory"


def test_ten_thousand_rows_load(tmp_path: Path) -> None:
    rows = "".join(f"host-{i:05d},10.{i // 65536}.{i // 256 % 256}.{i % 256},{i},01,001\n" for i in range(10_000))
    (tmp_path / "hosts.csv").write_text(f"{HEADER}\n{rows}", encoding="utf-8")
    config_file = tmp_path / "nw.yaml"
    config_file.write_text("hosts_file: hosts.csv\n", encoding="utf-8")

    config = load_config(config_file, {})

    assert len(config.hosts) == 10_000
    assert config.hosts[-1] == HostSpec("host-09999", "10.0.39.15", "9999", "01", "001")
    assert config.hosts[-1].origin == f"{tmp_path / 'hosts.csv'} line 10001"


def test_yaml_hosts_and_csv_hosts_combine(tmp_path: Path) -> None:
    write_csv(tmp_path, f"{HEADER}\ncsv-host,127.0.0.2,1,01,001\n")
    config_file = tmp_path / "nw.yaml"
    config_file.write_text(
        "hosts:\n  - {name: yaml-host, address: 127.0.0.1}\n  - {name: off, address: 127.0.0.9, enabled: false}\n"
        "hosts_file: hosts.csv\n",
        encoding="utf-8",
    )

    assert [h.name for h in load_config(config_file, {}).hosts] == ["yaml-host", "csv-host"]


def test_duplicate_name_within_csv(tmp_path: Path) -> None:
    path = write_csv(tmp_path, f"{HEADER}\na,127.0.0.1,1,1,1\nb,127.0.0.2,1,1,1\na,127.0.0.3,1,1,1\n")
    config_file = tmp_path / "nw.yaml"
    config_file.write_text("hosts_file: hosts.csv\n", encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_config(config_file, {})

    assert caught.value.message == f"{path} line 4: duplicate host name 'a' (first at {path} line 2)"


def test_duplicate_name_across_yaml_and_csv(tmp_path: Path) -> None:
    path = write_csv(tmp_path, f"{HEADER}\nb,127.0.0.2,1,1,1\na,127.0.0.3,1,1,1\n")
    config_file = tmp_path / "nw.yaml"
    config_file.write_text("hosts:\n  - {name: a, address: 127.0.0.1}\nhosts_file: hosts.csv\n", encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_config(config_file, {})

    assert caught.value.message == f"{path} line 3: duplicate host name 'a' (first at {config_file}: hosts[0])"


def test_disabled_duplicate_is_not_a_duplicate(tmp_path: Path) -> None:
    write_csv(tmp_path, f"{HEADER},enabled\na,127.0.0.3,1,1,1,false\n")
    config_file = tmp_path / "nw.yaml"
    config_file.write_text("hosts:\n  - {name: a, address: 127.0.0.1}\nhosts_file: hosts.csv\n", encoding="utf-8")

    assert [h.address for h in load_config(config_file, {}).hosts] == ["127.0.0.1"]


def test_missing_hosts_file_names_config_file_and_key(tmp_path: Path) -> None:
    config_file = tmp_path / "nw.yaml"
    config_file.write_text("hosts_file: nothere.csv\n", encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_config(config_file, {})

    assert caught.value.message.startswith(f"{config_file}: hosts_file: cannot read {tmp_path / 'nothere.csv'}")


def test_yaml_hosts_happy_path() -> None:
    hosts = list(hosts_from_yaml(
        [
            {"name": "a", "address": "127.0.0.1", "account": "1234", "partition": "01", "zone": "003",
             "description": "front", "enabled": True},
            {"name": "b", "address": "localhost", "enabled": False},
            {"name": "c", "address": "127.0.0.3", "enabled": "yes"},
        ],
        "nw.yaml",
    ))

    assert hosts == [HostSpec("a", "127.0.0.1", "1234", "01", "003", "front"), HostSpec("c", "127.0.0.3")]
    assert hosts[0].origin == "nw.yaml: hosts[0]"


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ({"name": "a"}, "nw.yaml: hosts: must be a list of hosts"),
        (["a"], "nw.yaml: hosts[0]: must be a mapping with name and address"),
        ([{"name": "a", "address": "127.0.0.1", "adress": "x"}], "nw.yaml: hosts[0].adress: unknown key"),
        ([{"name": "a"}], "nw.yaml: hosts[0].address: is empty (host 'a')"),
        ([{"address": "127.0.0.1"}], "nw.yaml: hosts[0].name: is empty"),
        ([{"name": "a", "address": "::1%lo"}], "nw.yaml: hosts[0].address: an IPv6 zone (%...) is not supported"),
        ([{"name": "a", "address": ["127.0.0.1"]}], "nw.yaml: hosts[0].address: must be a string"),
        ([{"name": "a", "address": "127.0.0.1", "enabled": "maybe"}], "nw.yaml: hosts[0].enabled: must be true or"),
        ([{"name": "a", "address": "127.0.0.1", "partition": 1}], "nw.yaml: hosts[0].partition: must be a quoted"),
    ],
)
def test_yaml_host_errors_name_the_list_index(items: object, expected: str) -> None:
    assert yaml_error(items).startswith(expected)


def test_unquoted_zero_padded_code_in_yaml_is_an_error(tmp_path: Path) -> None:
    """YAML reads `partition: 010` as the number 8: refuse it instead of monitoring the wrong zone."""
    config_file = tmp_path / "nw.yaml"
    config_file.write_text("hosts:\n  - {name: a, address: 127.0.0.1, partition: 010}\n", encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_config(config_file, {})

    assert caught.value.message == f"{config_file}: hosts[0].partition: must be a quoted string, got the number 8"


# Widths come from the schema, not from netwatch.inventory, so the tests catch the two drifting apart.
COLUMN_WIDTHS = {
    "name": tables.hosts.c.name.type.length,
    "account": tables.hosts.c.account.type.length,
    "partition": tables.hosts.c.partition_code.type.length,
    "zone": tables.hosts.c.zone_code.type.length,
}
DNS_NAME_MAX = 253


def dns_name(length: int, suffix: str = "") -> str:
    """A syntactically valid DNS name of exactly `length` characters (labels of at most 62)."""
    body = ("a" * 61 + "b.") * 5
    body = body[: length - len(suffix)]
    return (body[:-1] + "c" if body.endswith(".") else body) + suffix


def value_of_length(key: str, length: int) -> str:
    return dns_name(length) if key == "address" else "7" * length


def host_with(key: str, length: int) -> dict[str, str]:
    return {"name": "h", "address": "127.0.0.1", **{key: value_of_length(key, length)}}


WIDTHS = [*COLUMN_WIDTHS.items(), ("address", DNS_NAME_MAX)]


def write_yaml_hosts(tmp_path: Path, host: dict[str, str]) -> Path:
    config_file = tmp_path / "nw.yaml"
    config_file.write_text(yaml.safe_dump({"hosts": [host]}), encoding="utf-8")
    return config_file


def write_csv_hosts(tmp_path: Path, host: dict[str, str]) -> tuple[Path, Path]:
    row = {"account": "", "partition": "", "zone": "", **host}
    csv_file = write_csv(tmp_path, f"{HEADER}\n" + ",".join(row[column] for column in HEADER.split(",")) + "\n")
    config_file = tmp_path / "nw.yaml"
    config_file.write_text(f"hosts_file: {csv_file.name}\n", encoding="utf-8")
    return config_file, csv_file


def test_the_longest_dns_name_fits_the_address_column() -> None:
    assert tables.hosts.c.address.type.length >= DNS_NAME_MAX


def test_description_is_not_stored_so_it_has_no_width(tmp_path: Path) -> None:
    host = {"name": "h", "address": "127.0.0.1", "description": "d" * 1000}

    assert load_config(write_yaml_hosts(tmp_path, host), {}).hosts[0].description == "d" * 1000


@pytest.mark.parametrize(("key", "width"), WIDTHS)
def test_yaml_value_of_the_column_width_is_accepted_and_one_more_is_not(
    tmp_path: Path, key: str, width: int
) -> None:
    accepted = load_config(write_yaml_hosts(tmp_path, host_with(key, width)), {}).hosts
    assert getattr(accepted[0], key) == value_of_length(key, width)

    config_file = write_yaml_hosts(tmp_path, host_with(key, width + 1))
    with pytest.raises(ConfigError) as caught:
        load_config(config_file, {})

    assert caught.value.message.startswith(f"{config_file}: hosts[0].{key}: longer than {width} characters (host ")


@pytest.mark.parametrize(("key", "width"), WIDTHS)
def test_csv_value_of_the_column_width_is_accepted_and_one_more_is_not(
    tmp_path: Path, key: str, width: int
) -> None:
    accepted = load_config(write_csv_hosts(tmp_path, host_with(key, width))[0], {}).hosts
    assert getattr(accepted[0], key) == value_of_length(key, width)

    config_file, csv_file = write_csv_hosts(tmp_path, host_with(key, width + 1))
    with pytest.raises(ConfigError) as caught:
        load_config(config_file, {})

    assert caught.value.message.startswith(f"{csv_file} line 2: {key}: longer than {width} characters (host ")


def test_values_of_the_column_widths_are_stored_whole(tmp_path: Path, engine: Engine, db_url: str) -> None:
    """A sweep stores a host with every field at its width (MariaDB refuses a longer value)."""
    host = {
        "name": "n" * COLUMN_WIDTHS["name"],
        "address": dns_name(DNS_NAME_MAX, suffix=".invalid"),
        "account": "1" * COLUMN_WIDTHS["account"],
        "partition": "2" * COLUMN_WIDTHS["partition"],
        "zone": "3" * COLUMN_WIDTHS["zone"],
    }
    nw = Netwatch(tmp_path, db_url, {})
    nw.write_config([host])

    done = nw.sweep()

    assert done.returncode == 0, done.stderr
    stored = [(r["name"], r["address"], r["account"], r["partition_code"], r["zone_code"]) for r in nw.rows("hosts")]
    assert stored == [(host["name"], host["address"], host["account"], host["partition"], host["zone"])]
