"""Everything a producer can get wrong is refused before it reaches Redis, with a clear error."""

import datetime as dt

import pytest

from conveyor import Settings
from conveyor.errors import (
    ConfigurationError,
    InvalidQueueName,
    PayloadNotSerializable,
    PayloadTooLarge,
)
from conveyor.options import build_spec, spec_from_mapping
from conveyor.storage.keys import QueueKeys, validate_queue_name

SETTINGS = Settings(max_payload_bytes=1024)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("a b", "' '"),
        ("{a}", "starts with '{'"),
        ("a{b}", "'{'"),
        ("a*", "'*'"),
        ("a?", "'?'"),
        ("a[1]", "'['"),
        ("a\nb", "'\\n'"),
        ("a\x00", "'\\x00'"),
        ("x" * 129, "129 characters"),
        ("-a", "starts with '-'"),
        ("é", "starts with 'é'"),
        ("aé", "'é'"),
    ],
)
def test_hostile_queue_names_are_refused_with_the_reason(name: str, reason: str) -> None:
    with pytest.raises(InvalidQueueName) as info:
        validate_queue_name(name)
    assert reason in str(info.value)


def test_queue_name_must_be_a_string() -> None:
    with pytest.raises(InvalidQueueName, match="must be a string"):
        validate_queue_name(5)


@pytest.mark.parametrize("name", ["email", "a", "Reports.v2", "tenant:42:jobs", "x" * 128])
def test_good_queue_names_pass(name: str) -> None:
    assert validate_queue_name(name) == name


def test_all_keys_of_a_queue_share_one_hash_tag() -> None:
    keys = QueueKeys("conveyor", "email")
    for key in (*keys.script_keys, keys.job("1"), keys.logs("1"), keys.errors("1")):
        assert key.startswith("conveyor:{email}:")


def test_job_keys_cannot_collide_with_another_jobs_log() -> None:
    keys = QueueKeys("conveyor", "q")
    assert keys.job("x:logs") != keys.logs("x")


def test_oversized_payload_is_refused() -> None:
    with pytest.raises(PayloadTooLarge, match=r"over the limit of 1024 bytes"):
        build_spec(SETTINGS, "send", {"blob": "x" * 2000})


def test_non_json_payload_is_refused() -> None:
    with pytest.raises(PayloadNotSerializable, match="not JSON-serialisable"):
        build_spec(SETTINGS, "send", {"when": object()})
    with pytest.raises(PayloadNotSerializable):
        build_spec(SETTINGS, "send", {1: "non-string key"})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"attempts": 0}, "attempts must be an integer from 1"),
        ({"attempts": True}, "attempts"),
        ({"priority": 5000}, "priority must be between"),
        ({"priority": 1.5}, "priority must be an integer"),
        ({"delay": -1}, "delay must be positive"),
        ({"delay": "soon"}, "delay must be a finite number"),
        ({"delay": float("inf")}, "delay must be a finite number"),
        ({"delay": 1e308}, "delay must be at most"),
        ({"run_at": float("inf")}, "run_at .* must be a finite number"),
        ({"delay": 1, "run_at": 5}, "either delay or run_at"),
        ({"run_at": dt.datetime(2030, 1, 1)}, "timezone-aware"),
        ({"timeout": 0}, "timeout must be positive"),
        ({"ttl": float("nan")}, "ttl must be a finite number"),
        ({"job_id": ""}, "job_id must be a non-empty string"),
        ({"job_id": "a\nb"}, "control characters"),
        ({"backoff": 5}, "backoff must be a Backoff"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build_spec(SETTINGS, "send", {}, **options)  # type: ignore[arg-type]


def test_bad_job_names_are_refused() -> None:
    for name in ("", "x" * 300, "a\tb"):
        with pytest.raises(ConfigurationError):
            build_spec(SETTINGS, name)


def test_bulk_entries_accept_flat_or_nested_options() -> None:
    flat = spec_from_mapping(SETTINGS, {"name": "a", "data": 1, "priority": 3})
    nested = spec_from_mapping(SETTINGS, {"name": "a", "data": 1, "options": {"priority": 3}})
    assert flat == nested
    with pytest.raises(ConfigurationError, match="unknown job options"):
        spec_from_mapping(SETTINGS, {"name": "a", "colour": "red"})
    with pytest.raises(ConfigurationError, match="must be a mapping with a 'name'"):
        spec_from_mapping(SETTINGS, {"data": 1})


def test_settings_validate_and_read_the_environment() -> None:
    with pytest.raises(ConfigurationError, match="prefix"):
        Settings(prefix="bad prefix")
    settings = Settings.from_env(
        {"REDIS_URL": "redis://h:1/2", "CONVEYOR_CONCURRENCY": "7", "CONVEYOR_PREFIX": "p"}
    )
    assert (settings.url, settings.concurrency, settings.prefix) == ("redis://h:1/2", 7, "p")
    with pytest.raises(ConfigurationError, match="CONVEYOR_CONCURRENCY='many'"):
        Settings.from_env({"CONVEYOR_CONCURRENCY": "many"})
    assert Settings(url="redis://u:secret@h:1/0").redacted_url() == "redis://u:***@h:1/0"
