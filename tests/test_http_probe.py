"""HTTP(S) service checks against real loopback servers (tests/serviceserver.py, tests/slowhttp.py).

Certificates are made here with trustme: a good one, an expired one, one expiring in three days and
one for another host name. Elapsed times are bounded from above only, with generous slack: other
test runs share this machine.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from serviceserver import BIG_ERROR_LINE, OK_BODY, PASSWORD, USER, ServiceServer
from slowhttp import ScriptedServer, dripping

from netwatch.core.checks import CheckStatus
from netwatch.errors import Stopped
from netwatch.limits import ERROR_TEXT
from netwatch.probes.http import REDIRECT_LIMIT, check_http
from netwatch.probes.pool import ProbeSettings
from netwatch.running.stopflag import StopFlag
from netwatch.services import HttpCheckSpec, ServiceResult

OK, DEGRADED, FAILED = CheckStatus.OK, CheckStatus.DEGRADED, CheckStatus.FAILED
NOW = datetime.now(UTC)
DRIPS = {
    "status line": (b"", b"HTTP/1.1 200 ", b"O"),
    "headers": (b"HTTP/1.1 200 OK\r\n", b"X-Drip: ", b"a"),
    "body": (b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", b"", b"a"),
}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def server() -> Iterator[ServiceServer]:
    with ServiceServer() as running:
        yield running


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[ServiceServer]:
    with ServiceServer(ca.issue_cert("127.0.0.1", "localhost")) as running:
        yield running


def cert(ca: trustme.CA, *names: str, days_left: float = 365) -> trustme.LeafCert:
    return ca.issue_cert(*(names or ("127.0.0.1",)), not_before=NOW - timedelta(days=30),
                         not_after=NOW + timedelta(days=days_left))


def run(specs: Sequence[HttpCheckSpec], *, deadline_s: float = 60, concurrency: int = 50,
        max_body_bytes: int = 1024 * 1024, check_stop: Callable[[], None] = lambda: None) -> dict[str, ServiceResult]:
    settings = ProbeSettings(deadline_at=time.monotonic() + deadline_s, concurrency=concurrency,
                             max_body_bytes=max_body_bytes)
    return check_http(specs, settings, now=NOW, check_stop=check_stop)


def one(spec: HttpCheckSpec, *, deadline_s: float = 60, max_body_bytes: int = 1024 * 1024) -> ServiceResult:
    return run([spec], deadline_s=deadline_s, max_body_bytes=max_body_bytes)[spec.name]


def test_a_working_page_is_ok_with_its_status_size_and_time(server: ServiceServer) -> None:
    result = one(HttpCheckSpec("web", server.url + "/ok"))

    assert (result.status, result.reason, result.status_code, result.size_bytes) == (OK, None, 200, len(OK_BODY))
    assert result.elapsed_ms is not None and 0 < result.elapsed_ms < 5000
    assert result.excerpt is None
    assert server.seen[0].headers["User-Agent"].startswith("netwatch/")


def test_a_500_fails_with_its_status_and_an_excerpt_of_the_body(server: ServiceServer) -> None:
    result = one(HttpCheckSpec("web", server.url + "/status/500"))

    assert (result.status, result.reason, result.status_code) == (FAILED, "status 500 (expected 200-399)", 500)
    assert result.excerpt == "status 500 from the server second line"


def test_expected_status_ranges_decide(server: ServiceServer) -> None:
    results = run([
        HttpCheckSpec("teapot-wanted", server.url + "/status/418", expected_status=((200, 299), (418, 418))),
        HttpCheckSpec("ok-refused", server.url + "/ok", expected_status=((500, 599),)),
    ])

    assert results["teapot-wanted"].status is OK
    assert results["ok-refused"].reason == "status 200 (expected 500-599)"


def test_an_excerpt_is_one_bounded_line_and_only_of_a_failed_answer(server: ServiceServer) -> None:
    result = one(HttpCheckSpec("web", server.url + "/big-error"))

    assert result.status is FAILED
    assert result.excerpt is not None and len(result.excerpt) <= 200
    assert "\n" not in result.excerpt and "\t" not in result.excerpt and "\x07" not in result.excerpt
    assert result.excerpt.startswith("Traceback line with")
    assert len(BIG_ERROR_LINE * 400) > 10_000


def test_no_excerpt_when_the_check_sent_anything_a_server_could_echo(server: ServiceServer) -> None:
    results = run([
        HttpCheckSpec("auth", server.url + "/status/500", username=USER, password=PASSWORD),
        HttpCheckSpec("header", server.url + "/status/500", headers=(("X-Api-Key", "k3y-value-1234"),)),
        HttpCheckSpec("body", server.url + "/status/500", method="POST", body="token=abc"),
        HttpCheckSpec("query", server.url + "/status/500?token=abc"),
        HttpCheckSpec("plain", server.url + "/status/500"),
    ])

    assert {name: result.excerpt is None for name, result in results.items()} == {
        "auth": True, "header": True, "body": True, "query": True, "plain": False}


def test_a_slow_answer_is_degraded_with_the_time_it_took(server: ServiceServer) -> None:
    result = one(HttpCheckSpec("web", server.url + "/slow/300", degraded_after_ms=100))

    assert result.status is DEGRADED
    assert result.reason is not None and re.fullmatch(r"slow: \d+ ms >= 100 ms", result.reason)
    assert result.elapsed_ms is not None and result.elapsed_ms >= 300
    assert result.excerpt is None
    assert one(HttpCheckSpec("web", server.url + "/ok", degraded_after_ms=5000)).status is OK


def test_a_server_slower_than_the_timeout_fails_at_the_timeout(server: ServiceServer) -> None:
    started = time.monotonic()
    result = one(HttpCheckSpec("web", server.url + "/hang", timeout_seconds=0.5))

    assert (result.status, result.reason) == (FAILED, "timeout after 0.5 s")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("stage", list(DRIPS))
def test_a_dripping_server_cannot_stretch_the_timeout(stage: str) -> None:
    with ScriptedServer(dripping(*DRIPS[stage], interval_s=0.05, total_s=20)) as server:
        started = time.monotonic()
        result = one(HttpCheckSpec("drip", server.url + "/", timeout_seconds=0.8))

        assert (result.status, result.reason) == (FAILED, "timeout after 0.8 s")
        assert time.monotonic() - started < 5
        server.wait_for_hang_up()


def test_redirects_are_followed_to_the_answer(server: ServiceServer) -> None:
    result = one(HttpCheckSpec("web", server.url + "/redirect/redirect/ok"))

    assert (result.status, result.status_code) == (OK, 200)
    assert server.paths() == ["/redirect/redirect/ok", "/redirect/ok", "/ok"]


def test_a_redirect_loop_fails(server: ServiceServer) -> None:
    result = one(HttpCheckSpec("web", server.url + "/loop"))

    assert (result.status, result.reason, result.status_code) == (FAILED, "redirect loop after 1 redirects", 302)
    assert server.paths() == ["/loop"]


def test_too_many_redirects_fail_after_the_limit(server: ServiceServer) -> None:
    result = one(HttpCheckSpec("web", server.url + "/chain/0"))

    assert (result.status, result.reason) == (FAILED, f"too many redirects (more than {REDIRECT_LIMIT})")
    assert len(server.seen) == REDIRECT_LIMIT + 1


def test_without_following_a_redirect_is_judged_by_expected_status(server: ServiceServer) -> None:
    results = run([
        HttpCheckSpec("any-3xx", server.url + "/loop", follow_redirects=False),
        HttpCheckSpec("only-200", server.url + "/loop", follow_redirects=False, expected_status=((200, 200),)),
    ])

    assert (results["any-3xx"].status, results["any-3xx"].status_code) == (OK, 302)
    assert results["only-200"].reason == "status 302 (expected 200)"
    assert server.paths() == ["/loop", "/loop"]


@pytest.mark.parametrize(("method", "path", "then"), [
    ("POST", "/see-other", "GET"), ("POST", "/redirect/echo", "GET"), ("HEAD", "/see-other", "HEAD"),
])
def test_a_redirect_turns_a_post_into_a_get_without_its_body(server: ServiceServer, method: str, path: str,
                                                              then: str) -> None:
    body = "a=1" if method == "POST" else None
    result = one(HttpCheckSpec("form", server.url + path, method=method, body=body,
                               headers=(("Content-Type", "application/x-www-form-urlencoded"),)))

    assert result.status is OK
    assert [(seen.method, seen.body) for seen in server.seen] == [(method, (body or "").encode()), (then, b"")]
    assert server.seen[1].path == "/echo"
    assert ("Content-Type" in server.seen[1].headers) is (then == "HEAD")


def test_a_redirect_to_an_invalid_url_fails_without_quoting_it(server: ServiceServer) -> None:
    result = one(HttpCheckSpec("web", server.url + "/away?to=ftp://files.example.invalid/secret-path"))

    assert (result.status, result.status_code) == (FAILED, 302)
    assert result.reason == "redirect to an invalid URL: not an http or https URL with a host"


def test_credentials_do_not_follow_a_redirect_to_another_origin(server: ServiceServer) -> None:
    with ServiceServer() as other:
        result = one(HttpCheckSpec("web", f"{server.url}/away?to={other.url}/echo", username=USER,
                                   password=PASSWORD, headers=(("Cookie", "session=1"), ("X-Trace", "t-1"))))

        assert result.status is OK
        assert "Authorization" in server.seen[0].headers and "Cookie" in server.seen[0].headers
        assert "Authorization" not in other.seen[0].headers and "Cookie" not in other.seen[0].headers
        assert other.seen[0].headers["X-Trace"] == "t-1"


def test_basic_auth_with_the_right_password_passes_and_with_a_wrong_one_fails(server: ServiceServer) -> None:
    results = run([
        HttpCheckSpec("right", server.url + "/auth", username=USER, password=PASSWORD),
        HttpCheckSpec("wrong", server.url + "/auth", username=USER, password="not-the-password"),
    ])

    assert results["right"].status is OK
    assert (results["wrong"].status, results["wrong"].status_code) == (FAILED, 401)


def test_the_password_is_never_in_a_result_or_a_log(server: ServiceServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    spec = HttpCheckSpec("wrong", server.url + "/auth", username=USER, password="the-wrong-secret-99",
                         headers=(("X-Api-Key", "header-secret-42"),))
    result = one(spec)

    credential = base64.b64encode(f"{USER}:the-wrong-secret-99".encode()).decode()
    assert server.seen[0].headers["Authorization"] == f"Basic {credential}"  # the server echoed it in its body
    for secret in ("the-wrong-secret-99", credential, "header-secret-42"):
        assert secret not in repr(result)
        assert secret not in caplog.text
        assert secret not in repr(spec)
        assert secret not in repr(dataclasses.replace(spec, body=secret))


@pytest.mark.parametrize(("contains", "matches", "status", "reason"), [
    ("systems go", None, OK, None),
    ("systems down", None, FAILED, "body mismatch: body_contains not found"),
    (None, r"all \w+ go", OK, None),
    (None, r"^go", FAILED, "body mismatch: body_matches not matched"),
])
def test_the_body_must_contain_or_match(server: ServiceServer, contains: str | None, matches: str | None,
                                        status: CheckStatus, reason: str | None) -> None:
    result = one(HttpCheckSpec("web", server.url + "/ok", body_contains=contains,
                               body_matches=re.compile(matches) if matches else None))

    assert (result.status, result.reason) == (status, reason)


def test_head_post_with_a_body_and_headers_reach_the_server(server: ServiceServer) -> None:
    results = run([
        HttpCheckSpec("head", server.url + "/ok", method="HEAD"),
        HttpCheckSpec("post", server.url + "/ok?kind=post", method="POST", body='{"ping": "é"}',
                      headers=(("Content-Type", "application/json"), ("X-Check", "netwatch"),
                               ("user-agent", "probe/1"))),
    ])

    assert results["head"].status is OK and results["head"].size_bytes == 0
    assert results["post"].status is OK
    seen = {item.method: item for item in server.seen}
    assert seen["HEAD"].path == "/ok"
    assert seen["POST"].body == '{"ping": "é"}'.encode()
    assert seen["POST"].headers["X-Check"] == "netwatch"
    assert seen["POST"].headers["Content-Type"] == "application/json"
    assert seen["POST"].headers["user-agent"] == "probe/1", "a configured header replaces ours, whatever its case"
    assert [name.lower() for name in seen["POST"].names].count("user-agent") == 1


def test_a_huge_body_is_read_only_up_to_max_body_bytes(server: ServiceServer) -> None:
    started = time.monotonic()
    result = one(HttpCheckSpec("huge", server.url + "/huge", body_contains="never there"), max_body_bytes=65536)

    assert (result.status, result.reason, result.size_bytes) == (FAILED, "body mismatch: body_contains not found",
                                                                 65536)
    assert time.monotonic() - started < 10
    assert server.sent_bytes < 64 * 1024 * 1024, "the client stopped reading far before the announced gigabyte"


def test_the_body_is_matched_in_its_first_max_body_bytes_only(server: ServiceServer) -> None:
    spec = HttpCheckSpec("tail", server.url + "/tail/100000", body_contains="needle")

    assert one(spec, max_body_bytes=65536).reason == "body mismatch: body_contains not found"
    assert one(spec, max_body_bytes=200000).status is OK


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "http://", "http://[::zz]/", "not a url at all"])
def test_an_invalid_url_fails_without_quoting_it(url: str) -> None:
    result = one(HttpCheckSpec("bad", url))

    assert result.status is FAILED
    assert result.reason is not None and result.reason.startswith("invalid URL")
    assert url not in result.reason


def test_a_name_that_does_not_resolve_fails_with_a_dns_error() -> None:
    result = one(HttpCheckSpec("dns", "http://nothing-here.invalid/"))

    assert (result.status, result.reason) == (FAILED, "DNS error: name does not resolve")


def test_a_refused_port_fails() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound but not listening: the port stays ours, and connects are refused
        result = one(HttpCheckSpec("down", f"http://127.0.0.1:{sock.getsockname()[1]}/ok"))

    assert (result.status, result.reason) == (FAILED, "connection refused")


def test_a_garbled_answer_fails_as_not_http() -> None:
    with ScriptedServer(lambda closing: iter([b"SSH-2.0-OpenSSH_9.6\r\n"])) as server:
        assert one(HttpCheckSpec("ssh", server.url + "/")).reason == "not a valid HTTP answer"


def test_an_answer_that_breaks_off_fails_with_what_broke() -> None:
    answers = {
        "nothing": lambda closing: iter([]),
        "short body": lambda closing: iter([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b"]),
        "bad gzip": lambda closing: iter([b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 9\r\n\r\n"
                                          b"not gzip!"]),
    }
    reasons = {}
    for name, answer in answers.items():
        with ScriptedServer(answer) as server:
            reasons[name] = one(HttpCheckSpec(name, server.url + "/")).reason

    assert reasons == {"nothing": "connection closed without an answer",
                       "short body": "connection closed during the answer",
                       "bad gzip": "body not decodable (Content-Encoding)"}


def test_a_ca_file_that_is_no_certificate_fails_the_checks_that_use_it(server: ServiceServer, tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n", encoding="utf-8")
    results = run([HttpCheckSpec("bogus", server.url + "/ok", ca_file=bogus),
                   HttpCheckSpec("missing", server.url + "/ok", ca_file=tmp_path / "missing.pem"),
                   HttpCheckSpec("default", server.url + "/ok")])

    assert (results["bogus"].reason or "").startswith("TLS error: ca_file not loaded: ")
    assert results["missing"].reason == "TLS error: ca_file not loaded: no such file or directory"
    assert results["default"].status is OK
    assert server.paths() == ["/ok"]


def test_https_with_the_check_ca_file_is_ok(tls_server: ServiceServer, ca_file: Path) -> None:
    result = one(HttpCheckSpec("tls", tls_server.url + "/ok", ca_file=ca_file, cert_expiry_warning_days=14))

    assert (result.status, result.status_code) == (OK, 200)


def test_an_untrusted_certificate_fails_unless_verification_is_off(tls_server: ServiceServer) -> None:
    results = run([HttpCheckSpec("verified", tls_server.url + "/ok"),
                   HttpCheckSpec("unverified", tls_server.url + "/ok", verify_tls=False)])

    assert results["verified"].status is FAILED
    assert results["verified"].reason == "TLS error: unable to get local issuer certificate"
    assert results["unverified"].status is OK


def test_checks_in_one_pass_each_verify_with_their_own_settings(tls_server: ServiceServer, ca_file: Path,
                                                              tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    specs = [HttpCheckSpec(f"{kind}-{n}", tls_server.url + "/ok", **settings)  # interleaved: one context each
             for n in range(3)
             for kind, settings in (("ours", {"ca_file": ca_file}), ("other", {"ca_file": other_ca}),
                                    ("default", {}), ("off", {"verify_tls": False}))]
    results = run(specs, concurrency=4)

    reasons = {name: (result.status, result.reason) for name, result in results.items()}
    for n in range(3):
        assert reasons[f"ours-{n}"] == (OK, None)
        assert reasons[f"other-{n}"] == (FAILED, "TLS error: unable to get local issuer certificate")
        assert reasons[f"default-{n}"] == (FAILED, "TLS error: unable to get local issuer certificate")
        assert reasons[f"off-{n}"] == (OK, None)


def test_an_expired_certificate_fails(ca: trustme.CA, ca_file: Path) -> None:
    with ServiceServer(cert(ca, days_left=-1)) as server:
        result = one(HttpCheckSpec("tls", server.url + "/ok", ca_file=ca_file))

    assert (result.status, result.reason) == (FAILED, "TLS error: certificate has expired")


def test_a_certificate_for_another_name_fails(ca: trustme.CA, ca_file: Path) -> None:
    with ServiceServer(cert(ca, "other.example")) as server:
        result = one(HttpCheckSpec("tls", server.url + "/ok", ca_file=ca_file))

    assert result.status is FAILED
    assert result.reason == "TLS error: IP address mismatch, certificate is not valid for '127.0.0.1'."


def test_a_certificate_expiring_within_the_warning_days_is_degraded(ca: trustme.CA, ca_file: Path) -> None:
    with ServiceServer(cert(ca, days_left=3.5)) as server:
        results = run([
            HttpCheckSpec("warned", server.url + "/ok", ca_file=ca_file, cert_expiry_warning_days=14),
            HttpCheckSpec("not-yet", server.url + "/ok", ca_file=ca_file, cert_expiry_warning_days=3),
            HttpCheckSpec("slow-too", server.url + "/slow/200", ca_file=ca_file, cert_expiry_warning_days=14,
                          degraded_after_ms=50),
        ])

    assert (results["warned"].status, results["warned"].reason) == (DEGRADED, "certificate expires in 3 days")
    assert results["not-yet"].status is OK
    assert results["slow-too"].reason is not None
    assert re.fullmatch(r"slow: \d+ ms >= 50 ms; certificate expires in 3 days", results["slow-too"].reason)


def test_https_on_a_plain_http_port_is_a_tls_error(server: ServiceServer) -> None:
    result = one(HttpCheckSpec("tls", server.url.replace("http://", "https://") + "/ok"))

    assert result.status is FAILED
    assert result.reason is not None and result.reason.startswith("TLS error: ")


def test_at_most_concurrency_checks_run_at_once(server: ServiceServer) -> None:
    specs = [HttpCheckSpec(f"c{n}", server.url + "/slow/200") for n in range(12)]
    results = run(specs, concurrency=3)

    assert [result.status for result in results.values()] == [OK] * 12
    assert server.max_in_flight == 3


def test_the_run_deadline_ends_a_pass_of_hanging_checks(server: ServiceServer) -> None:
    specs = [HttpCheckSpec(f"h{n}", server.url + "/hang", timeout_seconds=30) for n in range(5)]
    started = time.monotonic()
    results = run(specs, deadline_s=1.5, concurrency=2)

    assert time.monotonic() - started < 5
    assert list(results) == [spec.name for spec in specs]
    reasons = [result.reason or "" for result in results.values()]
    assert all(result.status is FAILED for result in results.values())
    assert [r.startswith("timeout: the run's deadline came after 1.") for r in reasons] == [True] * 2 + [False] * 3
    assert reasons[2:] == ["not checked: the run's deadline was used up"] * 3


def test_a_check_is_not_started_with_too_little_time_left(server: ServiceServer) -> None:
    result = one(HttpCheckSpec("late", server.url + "/ok"), deadline_s=0.3)

    assert result.status is FAILED
    assert result.reason is not None
    assert re.fullmatch(r"not checked: 0\.[0-3]\ds left before the run's deadline \(a request needs 1s\)",
                        result.reason)
    assert server.seen == []


def test_a_stop_ends_the_pass_promptly(server: ServiceServer) -> None:
    stop = StopFlag()

    def stop_once_requested() -> None:
        server.wait_for_requests(2)
        stop.set()

    threading.Thread(target=stop_once_requested, daemon=True).start()
    specs = [HttpCheckSpec(f"h{n}", server.url + "/hang", timeout_seconds=30) for n in range(4)]
    started = time.monotonic()
    with pytest.raises(Stopped):
        run(specs, concurrency=2, check_stop=stop.check)
    assert time.monotonic() - started < 5


def test_every_reason_fits_its_column(server: ServiceServer) -> None:
    results = run([HttpCheckSpec(f"s{code}", f"{server.url}/status/{code}",
                                 expected_status=tuple((n, n) for n in range(100, 200)))
                   for code in (500, 404)])

    for result in results.values():
        assert result.reason is not None and len(result.reason) <= ERROR_TEXT
        assert result.reason.startswith(f"status {result.status_code} (expected 100, 101")


def test_check_names_must_be_unique(server: ServiceServer) -> None:
    with pytest.raises(ValueError, match="unique"):
        run([HttpCheckSpec("same", server.url + "/ok"), HttpCheckSpec("same", server.url + "/ok")])
