"""The pieces of worker liveness that need no Redis: connection names and CLIENT LIST replies,
and the timings derived from one setting."""

from __future__ import annotations

import pytest

from conveyor import Settings
from conveyor.errors import ConfigurationError
from conveyor.storage.ops import client_names
from conveyor.storage.protocol import LivenessBeat
from conveyor.worker.liveness import connection_name, connection_names, has_connection


def test_a_plain_worker_id_names_its_connection_as_is() -> None:
    assert connection_name("host:123:abcdef") == "conveyor:w:host:123:abcdef"


@pytest.mark.parametrize("worker_id", ["has space", "naïve", "tab\there", ""])
def test_an_id_redis_would_refuse_as_a_name_is_named_by_its_digest(worker_id: str) -> None:
    name = connection_name(worker_id)
    assert name.startswith("conveyor:w:sha1:")
    assert all("!" <= c <= "~" for c in name)  # what CLIENT SETNAME accepts
    assert name != connection_name(worker_id + "x")


def test_client_names_are_read_from_client_list_text_and_parsed_forms() -> None:
    text = (
        "id=3 addr=127.0.0.1:5000 laddr=127.0.0.1:6379 fd=8 name=conveyor:w:a age=1 cmd=client\n"
        "id=4 addr=127.0.0.1:5001 laddr=127.0.0.1:6379 fd=9 name= age=2 cmd=evalsha\n"
    )
    parse = client_names().parse
    assert parse([text]) == {"conveyor:w:a", ""}
    assert parse([[{"id": "3", "name": "conveyor:w:b"}, {"id": "4"}]]) == {"conveyor:w:b", ""}


def test_the_beat_and_the_grace_follow_the_liveness_period() -> None:
    settings = Settings(liveness_seconds=4.0)
    assert settings.liveness_beat_seconds == 0.5
    assert settings.liveness_grace_ms == 1000
    assert settings.liveness_ms == 4000
    with pytest.raises(ConfigurationError, match="liveness_seconds"):
        Settings(liveness_seconds=0)


def test_every_connection_of_a_worker_has_a_name_of_its_own() -> None:
    names = connection_names("h:1:ab")
    assert names == ("conveyor:w:h:1:ab", "conveyor:w-jobs:h:1:ab", "conveyor:w-wait:h:1:ab")
    assert connection_name("h:1:ab", "w-wait") == names[2]
    with pytest.raises(ValueError, match="role"):
        connection_name("h:1:ab", "other")


def test_a_worker_is_connected_while_any_of_its_connections_is() -> None:
    assert has_connection("h:1:ab", {"conveyor:w-wait:h:1:ab", ""})
    assert not has_connection("h:1:ab", {"conveyor:w:h:1:abc", "conveyor:w-jobs:h:2:ab"})


def test_a_beat_reports_the_gap_since_the_callers_own_previous_beat() -> None:
    assert LivenessBeat.parse([0, ["a", 1500], 480]) == LivenessBeat(False, [("a", 1500)], 480)
    assert LivenessBeat.parse([1, [], None]).gap_ms is None
