"""HTTP and TCP checks in the config: `http_checks:`, `tcp_checks:`, their CSV files, `http:`, the Sigma codes.

Each bad value is one ConfigError line naming the key path (`http_checks[0].url`) or the file and line
(`checks.csv line 3: url`); a header's value, a URL's user part and an encrypted password are never shown.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_project_files import EXAMPLE, SOURCE, documented_example

from netwatch.config import EncryptionConfig, HttpConfig, load_config, parse_config
from netwatch.encryption import encrypt, generate_key, parse_key
from netwatch.errors import ConfigError, ExitCode
from netwatch.service_inventory import (
    HTTP_OPTIONAL_COLUMNS,
    HTTP_REQUIRED_COLUMNS,
    TCP_OPTIONAL_COLUMNS,
    TCP_REQUIRED_COLUMNS,
    parse_expected_status,
)
from netwatch.services import HttpCheckSpec, TcpCheckSpec

VALUE = encrypt("Basic-Auth-pw-7731", parse_key(generate_key()))
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
WEB = {"name": "web", "url": "https://web.example.invalid/health"}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, **sections: Any) -> Any:
    return load_config(write(tmp_path / "netwatch.yaml", yaml.safe_dump(sections, sort_keys=False)), {})


def refusal(tmp_path: Path, **sections: Any) -> str:
    """The ConfigError of a config of `sections`, after the config file's name."""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, **sections)
    assert caught.value.exit_code == ExitCode.CONFIG
    message = caught.value.message
    assert "\n" not in message
    assert VALUE not in message and VALUE[9:40] not in message
    prefix = f"{tmp_path / 'netwatch.yaml'}: "
    return message.removeprefix(prefix)


def csv_refusal(tmp_path: Path, text: str, key: str = "http_checks_file") -> str:
    """The ConfigError of a CSV checks file holding `text`, with its path shown as CSV."""
    path = write(tmp_path / "checks.csv", text)
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, **{key: "checks.csv"})
    message = caught.value.message
    assert "\n" not in message and VALUE not in message
    return message.replace(str(path), "CSV")


# --- YAML: what is read ------------------------------------------------------------------------------


def test_an_http_check_with_only_name_and_url_has_the_defaults(tmp_path: Path) -> None:
    [check] = load(tmp_path, http_checks=[WEB]).http_checks

    assert check == HttpCheckSpec(name="web", url="https://web.example.invalid/health")
    assert (check.method, check.expected_status, check.timeout_seconds, check.follow_redirects, check.verify_tls) == (
        "GET", ((200, 399),), 10.0, True, True)
    assert check.origin == f"{tmp_path / 'netwatch.yaml'}: http_checks[0]"


def test_every_http_field_is_read(tmp_path: Path) -> None:
    write(tmp_path / "ca.pem", PEM)
    [check] = load(tmp_path, http_checks=[{
        "name": "api", "url": "http://127.0.0.1:8080/v1/ping?x=1", "method": "post", "body": '{"ping": true}',
        "client": "Acme Seguranca", "account": "1234", "expected_status": [200, "202-204", "301,302"],
        "timeout_seconds": 2.5, "follow_redirects": False, "body_contains": "pong", "body_matches": r"^\{.*\}$",
        "headers": {"X-Probe": "netwatch", "X-Count": 3}, "degraded_after_ms": 800, "verify_tls": True,
        "ca_file": "ca.pem", "cert_expiry_warning_days": 14, "username": "monitor", "password_encrypted": VALUE,
    }]).http_checks

    assert (check.method, check.body, check.client, check.account) == ("POST", '{"ping": true}', "Acme Seguranca",
                                                                       "1234")
    assert check.expected_status == ((200, 200), (202, 204), (301, 301), (302, 302))
    assert (check.timeout_seconds, check.follow_redirects, check.body_contains) == (2.5, False, "pong")
    assert check.body_matches is not None and check.body_matches.pattern == r"^\{.*\}$"
    assert check.headers == (("X-Probe", "netwatch"), ("X-Count", "3"))
    assert (check.degraded_after_ms, check.ca_file, check.cert_expiry_warning_days) == (800.0, tmp_path / "ca.pem", 14)
    assert (check.username, check.password_encrypted, check.password) == ("monitor", VALUE, None)


def test_a_tcp_check(tmp_path: Path) -> None:
    checks = load(tmp_path, tcp_checks=[
        {"name": "db", "host": "127.0.0.1", "port": 3306},
        {"name": "v6", "host": "::1", "port": 22, "timeout_seconds": 1, "degraded_after_ms": 250,
         "client": "Acme", "account": "0042"},
        {"name": "named", "host": "db.shop.example.invalid.", "port": 65535},
    ]).tcp_checks

    assert checks[0] == TcpCheckSpec(name="db", host="127.0.0.1", port=3306)
    assert checks[0].timeout_seconds == 5.0
    assert (checks[1].host, checks[1].timeout_seconds, checks[1].degraded_after_ms, checks[1].account) == (
        "::1", 1.0, 250.0, "0042")
    assert checks[2].port == 65535


def test_the_http_section_and_the_sigma_codes(tmp_path: Path) -> None:
    defaults = load(tmp_path)
    config = load(tmp_path, http={"concurrency": 5, "max_body_bytes": 4096, "run_deadline_seconds": 20},
                  sigma={"http_down_code": "E901", "http_up_code": "R901"})

    assert defaults.http == HttpConfig(concurrency=50, max_body_bytes=1024 * 1024, run_deadline_seconds=45.0)
    assert (defaults.sigma.http_down_code, defaults.sigma.http_up_code) == ("E357", "R357")
    assert defaults.encryption == EncryptionConfig(key_file=None)
    assert (defaults.http_checks, defaults.tcp_checks) == ((), ())
    assert config.http == HttpConfig(concurrency=5, max_body_bytes=4096, run_deadline_seconds=20.0)
    assert (config.sigma.http_down_code, config.sigma.http_up_code) == ("E901", "R901")


@pytest.mark.parametrize(("text", "ranges"), [
    ("200-299,301", ((200, 299), (301, 301))),
    (" 200 - 204 , 418 ", ((200, 204), (418, 418))),
    (204, ((204, 204),)),
    ([200, "300-302"], ((200, 200), (300, 302))),
    ("100-599", ((100, 599),)),
])
def test_expected_status_forms(text: object, ranges: object) -> None:
    assert parse_expected_status(text) == ranges


# --- YAML: what is refused ---------------------------------------------------------------------------


def http(**fields: Any) -> dict[str, Any]:
    return {"http_checks": [{**WEB, **fields}]}


@pytest.mark.parametrize(("sections", "expected"), [
    ({"http_checks": {"name": "web"}}, "http_checks: must be a list of checks"),
    ({"http_checks": ["web"]}, "http_checks[0]: must be a mapping with a name"),
    (http(urls="x"), "http_checks[0].urls: unknown key"),
    (http(password="hunter2-plain"), "http_checks[0].password: unknown key: a password is never kept in plain "
                                     "text: put the value `netwatch secret encrypt` prints in password_encrypted"),
    (http(name=""), "http_checks[0].name: must be a non-empty string, got ''"),
    ({"http_checks": [{"url": "https://a.invalid/"}]}, "http_checks[0].name: is empty (every HTTP check has a "
                                                       "unique name)"),
    (http(name="bad name"), "http_checks[0].name: invalid name 'bad name' (letters, digits and ._:@/- only)"),
    (http(name="n" * 191), "http_checks[0].name: longer than 190 characters"),
    ({"http_checks": [{"name": "web"}]}, "http_checks[0].url: is empty"),
    (http(url=""), "http_checks[0].url: must be a non-empty string"),
    (http(url="ftp://web.example.invalid/"), "http_checks[0].url: must start with http:// or https://, got "
                                             "'ftp://web.example.invalid/'"),
    (http(url="web.example.invalid/health"), "http_checks[0].url: must start with http:// or https://"),
    (http(url="https:///health"), "http_checks[0].url: names no host: 'https:///health'"),
    (http(url="https://web.example.invalid:99999/"), "http_checks[0].url: has an invalid port or address"),
    (http(url="http://[::1/"), "http_checks[0].url: is not a valid URL (a bracketed IPv6 address not closed?)"),
    (http(url="https://web.example.invalid/a b"), "http_checks[0].url: contains a space or a control character"),
    (http(url="https://web.example.invalid/" + "a" * 2048), "http_checks[0].url: longer than 2048 characters"),
    (http(method="PUT"), "http_checks[0].method: must be one of GET, HEAD, POST, got 'PUT'"),
    (http(method=1), "http_checks[0].method: must be one of GET, HEAD, POST, got 1"),
    (http(body="x"), "http_checks[0].body: only a POST sends a body (method is GET)"),
    (http(expected_status="200-"), "http_checks[0].expected_status: '200-' is not a status code (100-599) or a "
                                   "range such as 200-299"),
    (http(expected_status="ok"), "http_checks[0].expected_status: 'ok' is not a status code"),
    (http(expected_status=[]), "http_checks[0].expected_status: lists no status code"),
    (http(expected_status="099"), "http_checks[0].expected_status: '099': status codes are 100 to 599"),
    (http(expected_status="200-600"), "http_checks[0].expected_status: '200-600': status codes are 100 to 599"),
    (http(expected_status="299-200"), "http_checks[0].expected_status: '299-200': the range ends below its start"),
    (http(expected_status=True), "http_checks[0].expected_status: must be codes and ranges"),
    (http(expected_status=[{"a": 1}]), "http_checks[0].expected_status: must be codes and ranges"),
    (http(timeout_seconds=0), "http_checks[0].timeout_seconds: must be more than 0 and at most 300, got 0"),
    (http(timeout_seconds=-1), "http_checks[0].timeout_seconds: must be more than 0 and at most 300, got -1"),
    (http(timeout_seconds=301), "http_checks[0].timeout_seconds: must be more than 0 and at most 300, got 301"),
    (http(timeout_seconds="5"), "http_checks[0].timeout_seconds: must be a number, got '5'"),
    (http(timeout_seconds=float("nan")), "http_checks[0].timeout_seconds: must be a number, got nan"),
    (http(follow_redirects="yes"), "http_checks[0].follow_redirects: must be true or false, got the string 'yes'"),
    (http(verify_tls=1), "http_checks[0].verify_tls: must be true or false, got 1"),
    (http(body_matches="(unclosed"), "http_checks[0].body_matches: is not a regular expression: missing ), "
                                     "unterminated subpattern at position 0"),
    (http(body_contains=""), "http_checks[0].body_contains: must be a non-empty string"),
    (http(method="HEAD", body_contains="ok"), "http_checks[0].body_contains: the answer to a HEAD request has no "
                                              "body to look at"),
    (http(method="HEAD", body_matches="ok"), "http_checks[0].body_matches: the answer to a HEAD request has no body"),
    (http(headers=["X-A: 1"]), "http_checks[0].headers: must map header names to values"),
    (http(headers={"Bad Name": "1"}), "http_checks[0].headers: 'Bad Name' is not a header name"),
    (http(headers={"X-A": ["1"]}), "http_checks[0].headers.X-A: the value must be a string"),
    (http(headers={"X-A": "1\r\nX-Injected: 2"}), "http_checks[0].headers.X-A: the value contains a control "
                                                 "character (a line break?)"),
    (http(headers={"X-A": "1", "x-a": "2"}), "http_checks[0].headers.x-a: named twice (header names are "
                                            "case-insensitive)"),
    (http(headers={"Authorization": "Bearer abc"}), "http_checks[0].headers.Authorization: not accepted: a "
                                                    "credential in plain text: use username and password_encrypted"),
    (http(headers={"proxy-authorization": "Basic x"}), "http_checks[0].headers.proxy-authorization: not accepted"),
    (http(headers={"Content-Length": "3"}), "http_checks[0].headers.Content-Length: not accepted: netwatch sets it"),
    (http(headers={f"X-{n}": "1" for n in range(51)}), "http_checks[0].headers: more than 50 headers"),
    (http(degraded_after_ms=0), "http_checks[0].degraded_after_ms: must be more than 0"),
    (http(degraded_after_ms=10_000), "http_checks[0].degraded_after_ms: must be below the timeout (10000 ms), got "
                                     "10000: a slower answer is a timeout"),
    (http(cert_expiry_warning_days=0), "http_checks[0].cert_expiry_warning_days: must be 1 to 3650, got 0"),
    (http(cert_expiry_warning_days=1.5), "http_checks[0].cert_expiry_warning_days: must be a whole number, got 1.5"),
    (http(ca_file="missing.pem"), "http_checks[0].ca_file: cannot read {tmp}/missing.pem: No such file or "
                                  "directory"),
    (http(ca_file="."), "http_checks[0].ca_file: cannot read {tmp}: a directory, not a regular file"),
    (http(ca_file="not-pem.txt"), "http_checks[0].ca_file: {tmp}/not-pem.txt holds no PEM certificate (a "
                                  "-----BEGIN CERTIFICATE----- line)"),
    (http(ca_file="ca.pem", verify_tls=False), "http_checks[0].ca_file: needs verify_tls: true"),
    (http(username="monitor"), "http_checks[0].username: needs password_encrypted (the Basic-Auth password, "
                               "encrypted with `netwatch secret encrypt`)"),
    (http(password_encrypted=VALUE), "http_checks[0].password_encrypted: needs username (Basic-Auth sends both)"),
    (http(username="a:b", password_encrypted=VALUE), "http_checks[0].username: a Basic-Auth user name cannot "
                                                     "hold ':'"),
    (http(username="monitor", password_encrypted="hunter2-plain-text"),
     "http_checks[0].password_encrypted: is not an encrypted value (one starts with nwenc:v1:; `netwatch secret "
     "encrypt` makes it)"),
    (http(username="monitor", password_encrypted=12345678), "http_checks[0].password_encrypted: must be a quoted "
                                                           "string, got the number"),
    (http(username="monitor", password_encrypted="nwenc:v1:" + "A" * 38),
     "http_checks[0].password_encrypted: is too short to hold a secret (was it cut?)"),
    (http(account=1234), "http_checks[0].account: must be a quoted string, got the number 1234"),
    (http(account="a" * 65), "http_checks[0].account: longer than 64 characters"),
    (http(client="c" * 191), "http_checks[0].client: longer than 190 characters"),
    (http(url="https://user:hunter2-pw@web.example.invalid/"),
     "http_checks[0].url: holds a user part (user:password@): a credential in plain text; use username and "
     "password_encrypted"),
])
def test_each_bad_http_value_names_its_key(tmp_path: Path, sections: dict[str, Any], expected: str) -> None:
    write(tmp_path / "not-pem.txt", "hello\n")
    write(tmp_path / "ca.pem", PEM)
    message = refusal(tmp_path, **sections)

    assert message.startswith(expected.replace("{tmp}", str(tmp_path))), message
    assert "hunter2" not in message


def tcp(**fields: Any) -> dict[str, Any]:
    return {"tcp_checks": [{"name": "db", "host": "127.0.0.1", "port": 3306, **fields}]}


@pytest.mark.parametrize(("sections", "expected"), [
    ({"tcp_checks": "db"}, "tcp_checks: must be a list of checks"),
    (tcp(url="x"), "tcp_checks[0].url: unknown key"),
    (tcp(port=0), "tcp_checks[0].port: must be 1 to 65535, got 0"),
    (tcp(port=65536), "tcp_checks[0].port: must be 1 to 65535, got 65536"),
    (tcp(port="3306"), "tcp_checks[0].port: must be a whole number, got '3306'"),
    (tcp(port=None), "tcp_checks[0].port: is empty (TCP check 'db')"),
    (tcp(host=None), "tcp_checks[0].host: is empty"),
    (tcp(host="999.1.1.1"), "tcp_checks[0].host: invalid IPv4 address '999.1.1.1'"),
    (tcp(host="::g"), "tcp_checks[0].host: invalid IPv6 address '::g'"),
    (tcp(host="bad_host!"), "tcp_checks[0].host: invalid host name 'bad_host!'"),
    (tcp(host="a" * 254), "tcp_checks[0].host: longer than 253 characters"),
    (tcp(timeout_seconds=0), "tcp_checks[0].timeout_seconds: must be more than 0 and at most 300, got 0"),
    (tcp(degraded_after_ms=5000), "tcp_checks[0].degraded_after_ms: must be below the timeout (5000 ms)"),
    (tcp(name="x y"), "tcp_checks[0].name: invalid name 'x y'"),
    ({"http": {"concurrency": 0}}, "http.concurrency: must be at least 1, got 0"),
    ({"http": {"concurrency": 1001}}, "http.concurrency: must be at most 1000, got 1001"),
    ({"http": {"max_body_bytes": 0}}, "http.max_body_bytes: must be at least 1, got 0"),
    ({"http": {"max_body_bytes": 16 * 1024 * 1024 + 1}}, "http.max_body_bytes: must be at most 16777216"),
    ({"http": {"run_deadline_seconds": 0.5}}, "http.run_deadline_seconds: must be at least 1, got 0.5"),
    ({"http": {"retries": 2}}, "http.retries: unknown key"),
    ({"encryption": {"key": "abc"}}, "encryption.key: unknown key"),
    ({"sigma": {"http_down_code": ""}}, "sigma.http_down_code: must be a non-empty string"),
])
def test_each_bad_tcp_or_run_value_names_its_key(tmp_path: Path, sections: dict[str, Any], expected: str) -> None:
    assert refusal(tmp_path, **sections).startswith(expected)


def test_header_values_are_never_shown(tmp_path: Path) -> None:
    message = refusal(tmp_path, **http(headers={"X-Api-Key": "sk-live-0123456789\n"}))

    assert "sk-live" not in message


def test_a_ca_file_is_taken_from_the_config_files_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "conf").mkdir()
    write(tmp_path / "conf" / "ca.pem", PEM)
    monkeypatch.chdir(tmp_path)
    config = load_config(write(tmp_path / "conf" / "nw.yaml", yaml.safe_dump(http(ca_file="ca.pem"))), {})

    assert config.http_checks[0].ca_file == tmp_path / "conf" / "ca.pem"


# --- names across hosts and checks -------------------------------------------------------------------


def test_names_are_unique_across_hosts_http_and_tcp_checks(tmp_path: Path) -> None:
    source = tmp_path / "netwatch.yaml"
    host = [{"name": "web", "address": "127.0.0.1"}]

    assert refusal(tmp_path, hosts=host, **http()) == (
        f"http_checks[0]: duplicate name 'web': the host at {source}: hosts[0] has it (hosts, HTTP and TCP checks "
        "share their names)")
    assert refusal(tmp_path, http_checks=[WEB], tcp_checks=[{"name": "web", "host": "::1", "port": 1}]) == (
        f"tcp_checks[0]: duplicate name 'web': the HTTP check at {source}: http_checks[0] has it (hosts, HTTP and "
        "TCP checks share their names)")
    assert refusal(tmp_path, http_checks=[WEB, WEB]) == (
        f"http_checks[1]: duplicate HTTP check name 'web' (first at {source}: http_checks[0])")


def test_a_duplicate_between_yaml_and_csv_names_both_places(tmp_path: Path) -> None:
    path = write(tmp_path / "checks.csv", "name,url,client,account\nweb,https://b.example.invalid/,,\n")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, http_checks=[WEB], http_checks_file="checks.csv")

    assert caught.value.message == (
        f"{path} line 2: duplicate HTTP check name 'web' (first at {tmp_path / 'netwatch.yaml'}: http_checks[0])")


def test_a_disabled_host_does_not_take_a_name(tmp_path: Path) -> None:
    config = load(tmp_path, hosts=[{"name": "web", "address": "127.0.0.1", "enabled": False}], **http())

    assert [check.name for check in config.http_checks] == ["web"]


# --- CSV ----------------------------------------------------------------------------------------------

HTTP_HEADER = "name,url,client,account"


def test_csv_http_checks_with_every_column(tmp_path: Path) -> None:
    write(tmp_path / "ca.pem", PEM)
    columns = ",".join((*HTTP_REQUIRED_COLUMNS, *HTTP_OPTIONAL_COLUMNS))
    row = ('api,https://api.example.invalid/v1,Acme,0042,post,"{""ping"": 1}","200-204,301",2.5,no,pong,'
           f'"^p.*g$","{{""X-Probe"": ""nw""}}",500,YES,ca.pem,30,monitor,{VALUE}')
    plain = "web,http://127.0.0.1:8080/,,,,,,,,,,,,,,,,"
    write(tmp_path / "checks.csv", f"{columns}\n{row}\n\n{plain}\n")

    api, web = load(tmp_path, http_checks_file="checks.csv").http_checks

    assert (api.name, api.url, api.client, api.account, api.method, api.body) == (
        "api", "https://api.example.invalid/v1", "Acme", "0042", "POST", '{"ping": 1}')
    assert (api.expected_status, api.timeout_seconds, api.follow_redirects, api.body_contains) == (
        ((200, 204), (301, 301)), 2.5, False, "pong")
    assert api.body_matches is not None and api.body_matches.pattern == "^p.*g$"
    assert (api.headers, api.degraded_after_ms, api.verify_tls, api.ca_file) == (
        (("X-Probe", "nw"),), 500.0, True, tmp_path / "ca.pem")
    assert (api.cert_expiry_warning_days, api.username, api.password_encrypted) == (30, "monitor", VALUE)
    assert api.origin == f"{tmp_path / 'checks.csv'} line 2"
    assert web == HttpCheckSpec(name="web", url="http://127.0.0.1:8080/")
    assert web.origin == f"{tmp_path / 'checks.csv'} line 4"  # the blank line is counted, not read


def test_csv_tcp_checks(tmp_path: Path) -> None:
    columns = ",".join((*TCP_REQUIRED_COLUMNS, *TCP_OPTIONAL_COLUMNS))
    write(tmp_path / "tcp.csv", f"\ufeff{columns}\r\ndb,127.0.0.1,3306,Acme,0042,2,100\r\nssh,::1,22,,,,\r\n")

    db, ssh = load(tmp_path, tcp_checks_file="tcp.csv").tcp_checks

    assert db == TcpCheckSpec(name="db", host="127.0.0.1", port=3306, timeout_seconds=2.0, client="Acme",
                              account="0042", degraded_after_ms=100.0)
    assert (ssh.host, ssh.port, ssh.timeout_seconds) == ("::1", 22, 5.0)
    assert ssh.origin == f"{tmp_path / 'tcp.csv'} line 3"


def test_yaml_and_csv_checks_combine(tmp_path: Path) -> None:
    write(tmp_path / "checks.csv", f"{HTTP_HEADER}\nfile-web,https://f.example.invalid/,,\n")

    config = load(tmp_path, http_checks=[WEB], http_checks_file="checks.csv")

    assert [check.name for check in config.http_checks] == ["web", "file-web"]


@pytest.mark.parametrize(("text", "expected"), [
    ("", "CSV: empty HTTP checks file (needs a header: name,url,client,account)"),
    ("name,url,client\n", "CSV line 1: header lacks column 'account'"),
    (f"{HTTP_HEADER},colour\n", "CSV line 1: unknown column 'colour'"),
    (f"{HTTP_HEADER},password\n", "CSV line 1: column 'password' is not accepted: a password is never kept in plain "
                                  "text: put the value `netwatch secret encrypt` prints in password_encrypted"),
    (f"{HTTP_HEADER},url\n", "CSV line 1: a column is named twice"),
    (f"{HTTP_HEADER}\nweb,https://a.invalid/,,\nweb,https://b.invalid/,,\n",
     "CSV line 3: duplicate HTTP check name 'web' (first at CSV line 2)"),
    (f"{HTTP_HEADER}\nweb,,,\n", "CSV line 2: url: is empty"),
    (f"{HTTP_HEADER}\n,https://a.invalid/,,\n", "CSV line 2: name: is empty (every HTTP check has a unique name)"),
    (f"{HTTP_HEADER}\nweb,https://a.invalid/,,,extra\n", "CSV line 2: expected 4 fields, found 5"),
    (f"{HTTP_HEADER}\nweb,gopher://a.invalid/,,\n", "CSV line 2: url: must start with http:// or https://"),
    (f'{HTTP_HEADER}\nweb,"https://a.invalid/x\ny",x,1\n', "CSV line 2: url: contains a space or a control character"),
    (f'{HTTP_HEADER}\nok,https://a.invalid/,"two\nlines",1\nbad name,https://a.invalid/,,\n',
     "CSV line 4: name: invalid name 'bad name'"),
    (f"{HTTP_HEADER},timeout_seconds\nweb,https://a.invalid/,,,fast\n",
     "CSV line 2: timeout_seconds: must be a number, got 'fast'"),
    (f"{HTTP_HEADER},follow_redirects\nweb,https://a.invalid/,,,maybe\n",
     "CSV line 2: follow_redirects: must be true or false, got 'maybe'"),
    (f"{HTTP_HEADER},cert_expiry_warning_days\nweb,https://a.invalid/,,,-3\n",
     "CSV line 2: cert_expiry_warning_days: must be a whole number, got '-3'"),
    (f"{HTTP_HEADER},headers\nweb,https://a.invalid/,,,X-A: 1\n",
     'CSV line 2: headers: must be a JSON object of header names and values, e.g. {"X-Probe": "1"}'),
    (f'{HTTP_HEADER},headers\nweb,https://a.invalid/,,,"{{""Authorization"": ""Basic eA==""}}"\n',
     "CSV line 2: headers: Authorization: not accepted: a credential in plain text"),
    (f"{HTTP_HEADER},username\nweb,https://a.invalid/,,,monitor\n", "CSV line 2: username: needs password_encrypted"),
    (f"{HTTP_HEADER},username,password_encrypted\nweb,https://a.invalid/,,,monitor,{VALUE[:-30]}\n",
     "CSV line 2: password_encrypted: is "),
    (f"{HTTP_HEADER},expected_status\nweb,https://a.invalid/,,,200-1000\n",
     "CSV line 2: expected_status: '200-1000' is not a status code (100-599) or a range such as 200-299"),
    (f"{HTTP_HEADER}\nweb,https://a.invalid/,,{'9' * 65}\n", "CSV line 2: account: longer than 64 characters"),
    (f"{HTTP_HEADER}\nweb,https://a.invalid/,,1," + "d" * 140_000 + "\n",
     "CSV line 2: malformed row: field larger than field limit (131072)"),
])
def test_csv_http_errors_name_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    assert csv_refusal(tmp_path, text).startswith(expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("name,host,port,client\n", "CSV line 1: header lacks column 'account'"),
    ("name,host,port,client,account\ndb,127.0.0.1,,,\n", "CSV line 2: port: is empty (TCP check 'db')"),
    ("name,host,port,client,account\ndb,127.0.0.1,ssh,,\n", "CSV line 2: port: must be a whole number, got 'ssh'"),
    ("name,host,port,client,account\ndb,127.0.0.1,70000,,\n", "CSV line 2: port: must be 1 to 65535, got 70000"),
    ("name,host,port,client,account\ndb,,22,,\n", "CSV line 2: host: is empty"),
    ("name,host,port,client,account\ndb,h,22,,\ndb,h,23,,\n", "CSV line 3: duplicate TCP check name 'db' (first "
                                                               "at CSV line 2)"),
])
def test_csv_tcp_errors_name_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    assert csv_refusal(tmp_path, text, key="tcp_checks_file").startswith(expected)


def test_a_bad_byte_in_a_checks_file_is_reported_on_its_line(tmp_path: Path) -> None:
    rows = "".join(f"web-{n},https://w{n}.example.invalid/,,\n" for n in range(60))
    path = tmp_path / "checks.csv"
    path.write_bytes(f"{HTTP_HEADER}\n{rows}".encode() + b"caf\xe9,https://c.invalid/,,\n")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, http_checks_file="checks.csv")
    assert caught.value.message == f"{path} line 62: not UTF-8 text (byte 0xe9 at column 4)"


@pytest.mark.parametrize("key", ["http_checks_file", "tcp_checks_file"])
def test_a_missing_checks_file_names_the_config_key(tmp_path: Path, key: str) -> None:
    message = refusal(tmp_path, **{key: "missing.csv"})

    assert message == f"{key}: cannot read {tmp_path / 'missing.csv'}: No such file or directory"


def test_a_checks_file_that_is_a_fifo_is_not_waited_on(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "checks.csv")

    assert refusal(tmp_path, tcp_checks_file="checks.csv") == (
        f"tcp_checks_file: cannot read {tmp_path / 'checks.csv'}: a FIFO, not a regular file")


def test_ten_thousand_csv_checks_load(tmp_path: Path) -> None:
    rows = "".join(f"web-{n},https://w{n}.example.invalid/health,Client {n % 7},{n % 100:04d}\n"
                   for n in range(10_000))
    write(tmp_path / "checks.csv", f"{HTTP_HEADER}\n{rows}")

    checks = load(tmp_path, http_checks_file="checks.csv").http_checks

    assert len(checks) == 10_000 and checks[-1].name == "web-9999" and checks[-1].account == "0099"


# --- the example ------------------------------------------------------------------------------------


def test_the_example_documents_checks_that_parse() -> None:
    config = parse_config(documented_example(), SOURCE, EXAMPLE.parent, {})

    web, api = config.http_checks
    [db] = config.tcp_checks
    assert (web.name, web.username, web.expected_status, web.degraded_after_ms) == (
        "shop-web", "monitor", ((200, 399),), 2000.0)
    assert web.password_encrypted is not None and web.password_encrypted.startswith("nwenc:v1:")
    assert (api.method, api.body, api.expected_status) == ("POST", '{"ping": true}', ((200, 200), (202, 202)))
    assert (db.name, db.port) == ("shop-db", 5432)
    assert config.http == HttpConfig()


def test_the_example_csv_columns_are_the_parsers() -> None:
    text = re.sub(r"\n# ?", "", EXAMPLE.read_text(encoding="utf-8"))

    assert ",".join(HTTP_REQUIRED_COLUMNS) in text and ",".join(HTTP_OPTIONAL_COLUMNS) in text
    assert ",".join(TCP_REQUIRED_COLUMNS) in text and ",".join(TCP_OPTIONAL_COLUMNS) in text
