"""The `event_scan` and `notifications` config sections: defaults, every kind of bad value, key paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from netwatch.config import (
    ChannelPolicy,
    Config,
    EventScanConfig,
    NotificationsConfig,
    parse_config,
)
from netwatch.errors import ConfigError, ExitCode

EXAMPLE = Path(__file__).resolve().parent.parent / "netwatch" / "config.example.yaml"
SEGWARE = {"base_url": "http://127.0.0.1:1/api"}
EMAIL = {"host": "smtp.example.invalid", "from": "netwatch@example.invalid", "to": "noc@example.invalid"}
WEBHOOK = {"url": "http://127.0.0.1:1/hook"}
WHATSAPP = {"url": "http://127.0.0.1:1/v19.0/1/messages", "to": ["+5511999990000"]}


def parse(data: dict[str, Any], tmp_path: Path, env: dict[str, str] | None = None) -> Config:
    return parse_config(data, "test.yaml", tmp_path, env or {})


def error_of(data: dict[str, Any], tmp_path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(data, tmp_path)
    assert caught.value.exit_code == ExitCode.CONFIG
    message = caught.value.message
    assert message.startswith("test.yaml: ")
    assert "\n" not in message
    return message


def notifications(tmp_path: Path, **section: Any) -> NotificationsConfig:
    return parse({"segware": SEGWARE, "notifications": section}, tmp_path).notifications


# --- event_scan -----------------------------------------------------------------------------------


def test_event_scan_defaults(tmp_path: Path) -> None:
    assert parse({}, tmp_path).event_scan == EventScanConfig()
    assert parse({"event_scan": None}, tmp_path).event_scan == EventScanConfig(
        codes={}, window_minutes=120, default_threshold=50, page_size=500, clear_below_percent=100.0,
        expire_minutes=60.0, min_slice_seconds=60, record_floor=10,
    )


def test_example_file_sections_are_the_defaults(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    config = parse(data, tmp_path)
    assert config.event_scan == EventScanConfig()
    assert config.notifications == NotificationsConfig()


def test_example_file_commented_channels_parse_as_documented(tmp_path: Path) -> None:
    # The channel examples are comments (every channel is off by default); uncommented, they must parse.
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    start = lines.index("  # email:")
    block = [line.removeprefix("  # ") for line in lines[start:] if line.startswith("  # ")]
    channels = yaml.safe_load("\n".join(block))
    config = notifications(tmp_path, **channels)
    assert config.email is not None and config.webhook is not None and config.whatsapp is not None
    assert config.email.recipients == ("noc@example.invalid", "oncall@example.invalid")
    assert (config.email.starttls, config.email.tls, config.email.port) == (True, False, 587)
    assert config.whatsapp.recipients == ("+5511999990000",)
    assert config.whatsapp.api.token_env == "NETWATCH_WHATSAPP_TOKEN"
    assert config.segware_alarm is None  # enabled: false in the example
    assert config.policies() == {name: ChannelPolicy(300.0, True) for name in ("email", "webhook", "whatsapp")}


def test_event_scan_codes_with_null_take_the_default_threshold(tmp_path: Path) -> None:
    config = parse({"event_scan": {"default_threshold": 7, "codes": {"E130": 50, "E131": None, " R130 ": 1}}},
                   tmp_path).event_scan
    assert dict(config.codes) == {"E130": 50, "E131": 7, "R130": 1}
    assert config.default_threshold == 7


def test_event_scan_null_codes_mean_none_watched(tmp_path: Path) -> None:
    assert parse({"event_scan": {"codes": None}}, tmp_path).event_scan.codes == {}


def test_event_scan_codes_from_yaml_text_with_unquoted_number_key(tmp_path: Path) -> None:
    data = yaml.safe_load("event_scan:\n  codes:\n    130: 5\n")
    message = error_of(data, tmp_path)
    assert "event_scan.codes:" in message
    assert "quoted" in message


@pytest.mark.parametrize("codes", [{130: 5}, {"": 5}, {"  ": 5}, {None: 5}])
def test_event_scan_bad_code_key_names_codes(tmp_path: Path, codes: dict[Any, Any]) -> None:
    assert "event_scan.codes: alarm codes must be quoted strings" in error_of({"event_scan": {"codes": codes}},
                                                                                 tmp_path)


@pytest.mark.parametrize("threshold", [0, -1, "x", True, False, 2.5, [5]])
def test_event_scan_bad_threshold_names_the_code(tmp_path: Path, threshold: Any) -> None:
    message = error_of({"event_scan": {"codes": {"E130": 10, "E131": threshold}}}, tmp_path)
    assert "event_scan.codes.E131:" in message
    assert repr(threshold) in message


@pytest.mark.parametrize("codes", [["E130"], "E130", 5])
def test_event_scan_codes_must_be_a_mapping(tmp_path: Path, codes: Any) -> None:
    assert "event_scan.codes: must be a mapping" in error_of({"event_scan": {"codes": codes}}, tmp_path)


@pytest.mark.parametrize(
    ("key", "good", "bad"),
    [
        ("page_size", [1, 500], [0, 501, 2.0, "10"]),
        ("clear_below_percent", [0.01, 50, 100, 99.5], [0, -1, 100.01, 101, "50", True]),
        ("window_minutes", [1, 10080], [0, 10081, 1.5]),
        ("default_threshold", [1], [0, None, "x"]),
        ("expire_minutes", [1, 2.5], [0, 0.5]),
        ("min_slice_seconds", [1], [0]),
        ("record_floor", [1], [0]),
    ],
)
def test_event_scan_ranges(tmp_path: Path, key: str, good: list[Any], bad: list[Any]) -> None:
    for value in good:
        assert getattr(parse({"event_scan": {key: value}}, tmp_path).event_scan, key) == value
    for value in bad:
        assert f"event_scan.{key}:" in error_of({"event_scan": {key: value}}, tmp_path)


def test_event_scan_unknown_key(tmp_path: Path) -> None:
    message = error_of({"event_scan": {"window_minute": 5}}, tmp_path)
    assert message == "test.yaml: event_scan.window_minute: unknown key"


def test_event_scan_must_be_a_mapping(tmp_path: Path) -> None:
    assert "event_scan: must be a mapping" in error_of({"event_scan": ["codes"]}, tmp_path)


# --- notifications: general -----------------------------------------------------------------------


def test_notifications_defaults_have_no_channel(tmp_path: Path) -> None:
    config = parse({}, tmp_path).notifications
    assert config == NotificationsConfig()
    assert (config.max_attempts, config.retry_backoff_seconds, dict(config.templates)) == (10, 60.0, {})
    assert config.policies() == {}


@pytest.mark.parametrize(("key", "value"), [("max_attempts", 0), ("max_attempts", "3"), ("retry_backoff_seconds", -1)])
def test_notifications_retry_settings_are_checked(tmp_path: Path, key: str, value: Any) -> None:
    assert f"notifications.{key}:" in error_of({"notifications": {key: value}}, tmp_path)


def test_notifications_unknown_key(tmp_path: Path) -> None:
    assert error_of({"notifications": {"slack": {}}}, tmp_path) == "test.yaml: notifications.slack: unknown key"


@pytest.mark.parametrize(
    ("channel", "section"),
    [("email", EMAIL), ("webhook", WEBHOOK), ("whatsapp", WHATSAPP),
     ("segware_alarm", {"enabled": True, "code": "E9"})],
)
def test_unknown_key_in_each_channel_section(tmp_path: Path, channel: str, section: dict[str, Any]) -> None:
    data = {"segware": SEGWARE, "notifications": {channel: {**section, "cooldown_secs": 5}}}
    assert error_of(data, tmp_path) == f"test.yaml: notifications.{channel}.cooldown_secs: unknown key"


@pytest.mark.parametrize("channel", ["email", "webhook", "whatsapp", "segware_alarm"])
def test_null_channel_section_is_off(tmp_path: Path, channel: str) -> None:
    config = notifications(tmp_path, **{channel: None})
    assert getattr(config, channel) is None
    assert config.policies() == {}


@pytest.mark.parametrize("channel", ["email", "webhook", "whatsapp", "segware_alarm"])
def test_channel_section_must_be_a_mapping(tmp_path: Path, channel: str) -> None:
    data = {"segware": SEGWARE, "notifications": {channel: "on"}}
    assert f"notifications.{channel}: must be a mapping" in error_of(data, tmp_path)


# --- email ----------------------------------------------------------------------------------------


def test_email_defaults(tmp_path: Path) -> None:
    email = notifications(tmp_path, email=EMAIL).email
    assert email is not None
    assert (email.host, email.port, email.starttls, email.tls) == ("smtp.example.invalid", 587, True, False)
    assert (email.username, email.password_env) == (None, "NETWATCH_SMTP_PASSWORD")
    assert (email.sender, email.recipients) == ("netwatch@example.invalid", ("noc@example.invalid",))
    assert email.timeout_seconds == 10.0
    assert email.policy == ChannelPolicy(cooldown_seconds=300.0, send_recovery=True)


def test_email_to_as_a_list_and_settings(tmp_path: Path) -> None:
    email = notifications(tmp_path, email={
        **EMAIL, "to": [" a@example.invalid", "b@example.invalid "], "port": 25, "starttls": False,
        "username": "netwatch", "password_env": "MY_SMTP_PASS", "timeout_seconds": 3, "cooldown_seconds": 0,
        "send_recovery": False,
    }).email
    assert email is not None
    assert email.recipients == ("a@example.invalid", "b@example.invalid")
    assert (email.port, email.starttls, email.tls, email.username, email.password_env) == (
        25, False, False, "netwatch", "MY_SMTP_PASS")
    assert email.policy == ChannelPolicy(cooldown_seconds=0.0, send_recovery=False)


@pytest.mark.parametrize("key", ["host", "from", "to"])
def test_email_required_keys(tmp_path: Path, key: str) -> None:
    section = {k: v for k, v in EMAIL.items() if k != key}
    assert f"notifications.email.{key}:" in error_of({"notifications": {"email": section}}, tmp_path)


@pytest.mark.parametrize("to", [[], "", ["ok@example.invalid", ""], [1], {"a": "b"}])
def test_email_bad_recipients(tmp_path: Path, to: Any) -> None:
    assert "notifications.email.to:" in error_of({"notifications": {"email": {**EMAIL, "to": to}}}, tmp_path)


def test_email_tls_and_starttls_together_are_refused(tmp_path: Path) -> None:
    data = {"notifications": {"email": {**EMAIL, "tls": True, "starttls": True, "port": 465}}}
    message = error_of(data, tmp_path)
    assert "notifications.email.starttls:" in message
    assert "tls" in message


def test_email_implicit_tls_with_starttls_off(tmp_path: Path) -> None:
    email = notifications(tmp_path, email={**EMAIL, "tls": True, "starttls": False, "port": 465}).email
    assert email is not None
    assert (email.tls, email.starttls, email.port) == (True, False, 465)


def test_email_tls_alone_means_implicit_tls(tmp_path: Path) -> None:
    # The example says "or tls: true for implicit TLS (then port defaults to 465, starttls to false)":
    # writing only `tls: true` must select implicit TLS, not collide with the starttls default.
    email = notifications(tmp_path, email={**EMAIL, "tls": True}).email
    assert email is not None
    assert (email.tls, email.starttls, email.port) == (True, False, 465)


@pytest.mark.parametrize("port", [0, 65536, "587"])
def test_email_port_range(tmp_path: Path, port: Any) -> None:
    assert "notifications.email.port:" in error_of({"notifications": {"email": {**EMAIL, "port": port}}}, tmp_path)


@pytest.mark.parametrize("secret", ["hunter2-S3cret!", "pa ss word", "lowercase_name", "1NOT_A_NAME"])
def test_email_password_env_must_be_a_name_and_is_not_echoed(tmp_path: Path, secret: str) -> None:
    message = error_of({"notifications": {"email": {**EMAIL, "password_env": secret}}}, tmp_path)
    assert "notifications.email.password_env:" in message
    assert secret.strip() not in message


def test_email_numeric_password_env_is_not_echoed(tmp_path: Path) -> None:
    # An operator who pastes a numeric password here gets a YAML integer, not a string.
    message = error_of({"notifications": {"email": {**EMAIL, "password_env": 84736251}}}, tmp_path)
    assert "notifications.email.password_env:" in message
    assert "84736251" not in message


# --- webhook --------------------------------------------------------------------------------------


def test_webhook_defaults(tmp_path: Path) -> None:
    webhook = notifications(tmp_path, webhook=WEBHOOK).webhook
    assert webhook is not None
    assert webhook.api.base_url == "http://127.0.0.1:1/hook"
    assert webhook.api.section == "notifications.webhook"
    assert webhook.api.timeout_seconds == 10.0
    assert webhook.policy == ChannelPolicy(300.0, True)


@pytest.mark.parametrize(("url", "problem"), [(None, "is required"), ("ftp://x.invalid/", "http://"),
                                               ("hooks.example.invalid", "http://"), ("", "non-empty")])
def test_webhook_url(tmp_path: Path, url: Any, problem: str) -> None:
    section = {} if url is None else {"url": url}
    message = error_of({"notifications": {"webhook": section}}, tmp_path)
    assert "notifications.webhook.url:" in message
    assert problem in message


# --- whatsapp -------------------------------------------------------------------------------------


def test_whatsapp_defaults_and_to_as_a_string(tmp_path: Path) -> None:
    whatsapp = notifications(tmp_path, whatsapp={**WHATSAPP, "to": "+5511999990000"}).whatsapp
    assert whatsapp is not None
    assert whatsapp.recipients == ("+5511999990000",)
    assert whatsapp.api.token_env == "NETWATCH_WHATSAPP_TOKEN"
    assert whatsapp.api.base_url == WHATSAPP["url"]
    assert whatsapp.policy == ChannelPolicy(300.0, True)


@pytest.mark.parametrize("key", ["url", "to"])
def test_whatsapp_required_keys(tmp_path: Path, key: str) -> None:
    section = {k: v for k, v in WHATSAPP.items() if k != key}
    assert f"notifications.whatsapp.{key}:" in error_of({"notifications": {"whatsapp": section}}, tmp_path)


def test_whatsapp_token_env_name(tmp_path: Path) -> None:
    whatsapp = notifications(tmp_path, whatsapp={**WHATSAPP, "token_env": "WA_TOKEN"}).whatsapp
    assert whatsapp is not None and whatsapp.api.token_env == "WA_TOKEN"
    secret = "EAAGm0PX4ZCpsBA-secret-token"
    message = error_of({"notifications": {"whatsapp": {**WHATSAPP, "token_env": secret}}}, tmp_path)
    assert "notifications.whatsapp.token_env:" in message
    assert secret not in message


def test_whatsapp_numeric_token_env_is_not_echoed(tmp_path: Path) -> None:
    message = error_of({"notifications": {"whatsapp": {**WHATSAPP, "token_env": 5511999990000}}}, tmp_path)
    assert "notifications.whatsapp.token_env:" in message
    assert "5511999990000" not in message


# --- segware_alarm --------------------------------------------------------------------------------


def test_segware_alarm_enabled(tmp_path: Path) -> None:
    alarm = notifications(tmp_path, segware_alarm={"enabled": True, "code": "E900"}).segware_alarm
    assert alarm is not None
    assert alarm.code == "E900"
    assert alarm.policy == ChannelPolicy(cooldown_seconds=300.0, send_recovery=False)


def test_segware_alarm_disabled_is_off_even_when_complete(tmp_path: Path) -> None:
    config = notifications(tmp_path, segware_alarm={"enabled": False, "code": "E900", "send_recovery": True})
    assert config.segware_alarm is None
    assert config.policies() == {}
    assert notifications(tmp_path, segware_alarm={}).segware_alarm is None


def test_segware_alarm_disabled_still_rejects_bad_values(tmp_path: Path) -> None:
    data = {"notifications": {"segware_alarm": {"enabled": False, "cooldown_seconds": -5}}}
    assert "notifications.segware_alarm.cooldown_seconds:" in error_of(data, tmp_path)


def test_segware_alarm_enabled_needs_a_code(tmp_path: Path) -> None:
    data = {"segware": SEGWARE, "notifications": {"segware_alarm": {"enabled": True}}}
    message = error_of(data, tmp_path)
    assert "notifications.segware_alarm.code:" in message
    assert "required" in message


def test_segware_alarm_recovery_needs_a_restore_code(tmp_path: Path) -> None:
    data = {"segware": SEGWARE, "notifications": {"segware_alarm": {"enabled": True, "code": "E900",
                                                                    "send_recovery": True}}}
    assert "notifications.segware_alarm.recovery_code:" in error_of(data, tmp_path)
    alarm = notifications(tmp_path, segware_alarm={"enabled": True, "code": "E900", "send_recovery": True,
                                                   "recovery_code": "R900"}).segware_alarm
    assert alarm is not None and (alarm.code, alarm.recovery_code, alarm.policy.send_recovery) == (
        "E900", "R900", True)


def test_segware_alarm_enabled_needs_segware_base_url(tmp_path: Path) -> None:
    data = {"notifications": {"segware_alarm": {"enabled": True, "code": "E900"}}}
    message = error_of(data, tmp_path)
    assert "notifications.segware_alarm.enabled:" in message
    assert "segware.base_url" in message


@pytest.mark.parametrize("enabled", ["yes", 1, None])
def test_segware_alarm_enabled_must_be_a_boolean(tmp_path: Path, enabled: Any) -> None:
    data = {"segware": SEGWARE, "notifications": {"segware_alarm": {"enabled": enabled, "code": "E900"}}}
    assert "notifications.segware_alarm.enabled:" in error_of(data, tmp_path)


# --- templates ------------------------------------------------------------------------------------


def test_templates_are_kept(tmp_path: Path) -> None:
    templates = {"alert_raised": {"title": "ALARM $code x$count at $account_name ($cuc)"},
                 "host_offline": {"body": "down: ${host} costs $$5"}}
    assert notifications(tmp_path, templates=templates).templates == templates


@pytest.mark.parametrize(
    ("templates", "problem"),
    [
        ({"host_down": {"title": "x"}}, "unknown template kind 'host_down'"),
        ({"host_offline": {"subject": "x"}}, "unknown template part 'subject'"),
        ({"host_offline": {"title": "$host at $cuc"}}, "host_offline.title: unknown placeholder $cuc"),
        ({"alert_cleared": {"body": "${nope}"}}, "alert_cleared.body: unknown placeholder $nope"),
        ({"alert_raised": {"body": "costs $5"}}, "alert_raised.body: bad '$'"),
        ({"alert_raised": "ALARM"}, "must map a message kind"),
        ({"alert_raised": {"title": 5}}, "must map a message kind"),
        ({"alert_raised": {"title": None}}, "must map a message kind"),
        (["alert_raised"], "must map a message kind"),
    ],
)
def test_bad_templates_name_notifications_templates(tmp_path: Path, templates: Any, problem: str) -> None:
    message = error_of({"notifications": {"templates": templates}}, tmp_path)
    assert message.startswith("test.yaml: notifications.templates: ")
    assert problem in message


def test_recovery_only_placeholders_are_refused_for_raised(tmp_path: Path) -> None:
    assert notifications(tmp_path, templates={"alert_cleared": {"title": "$duration $reason $last_count"}}).templates
    message = error_of({"notifications": {"templates": {"alert_raised": {"title": "$duration"}}}}, tmp_path)
    assert "unknown placeholder $duration" in message


# --- policies -------------------------------------------------------------------------------------


def test_policies_list_only_configured_channels(tmp_path: Path) -> None:
    config = notifications(
        tmp_path,
        webhook={**WEBHOOK, "cooldown_seconds": 60, "send_recovery": False},
        whatsapp={**WHATSAPP, "cooldown_seconds": 0.5},
        segware_alarm={"enabled": True, "code": "E900"},
    )
    assert config.policies() == {
        "webhook": ChannelPolicy(cooldown_seconds=60.0, send_recovery=False),
        "whatsapp": ChannelPolicy(cooldown_seconds=0.5, send_recovery=True),
        "segware_alarm": ChannelPolicy(cooldown_seconds=300.0, send_recovery=False),
    }
    assert config.email is None


def test_segware_alarm_send_recovery_can_be_turned_on(tmp_path: Path) -> None:
    config = notifications(tmp_path, email=EMAIL,
                           segware_alarm={"enabled": True, "code": "E900", "send_recovery": True,
                                          "recovery_code": "R900", "cooldown_seconds": 0})
    assert config.policies() == {"email": ChannelPolicy(300.0, True), "segware_alarm": ChannelPolicy(0.0, True)}


@pytest.mark.parametrize(("key", "value"), [("cooldown_seconds", -1), ("cooldown_seconds", "5m"),
                                            ("send_recovery", "no"), ("send_recovery", 0)])
def test_policy_values_are_checked(tmp_path: Path, key: str, value: Any) -> None:
    data = {"notifications": {"webhook": {**WEBHOOK, key: value}}}
    assert f"notifications.webhook.{key}:" in error_of(data, tmp_path)
