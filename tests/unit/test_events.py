from conveyor import Event


def test_a_single_job_entry_is_one_event() -> None:
    [event] = Event.from_entry("1700000000000-0", {"event": "failed", "id": "7", "error": "boom"})
    assert (event.event, event.job_id, event.fields) == ("failed", "7", {"error": "boom"})
    assert event.timestamp_ms == 1700000000000


def test_a_batched_entry_expands_into_one_event_per_job_with_its_own_result() -> None:
    fields = {
        "event": "completed",
        "ids": '["1","2","a\\"b"]',
        "results": '{"1":{"ok":true},"a\\"b":null}',
    }
    events = Event.from_entry("5-1", fields)
    assert [e.job_id for e in events] == ["1", "2", 'a"b']
    assert events[0].fields == {"result": '{"ok":true}'}
    assert events[1].fields == {}  # a large result is not carried: read it from the job
    assert events[2].fields == {"result": "null"}


def test_a_garbled_batch_entry_yields_nothing_rather_than_raising() -> None:
    assert Event.from_entry("5-1", {"event": "active", "ids": "[not json"}) == []


def test_a_batched_entry_with_large_leaves_out_null_results() -> None:
    # complete.lua carries no null result: every job neither in results nor in large has one
    fields = {
        "event": "completed",
        "ids": '["1","2","3"]',
        "results": '{"1":{"ok":true}}',
        "large": '["3"]',
    }
    events = Event.from_entry("5-1", fields)
    assert [e.fields for e in events] == [{"result": '{"ok":true}'}, {"result": "null"}, {}]


def test_an_unreadable_large_field_takes_no_result_for_null() -> None:
    fields = {"event": "completed", "ids": '["1","2"]', "results": "{}", "large": "[oops"}
    assert [e.fields for e in Event.from_entry("5-1", fields)] == [{}, {}]
