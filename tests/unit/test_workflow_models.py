"""The pure parts of workflows: FlowJob checks, chain and chord shapes, and the order of a
flow's add calls (every job after its parent, one call per queue and depth)."""

from __future__ import annotations

import orjson
import pytest

from conveyor import FlowJob, Settings
from conveyor.errors import ConfigurationError, InvalidQueueName
from conveyor.workflows import Callback, chain, chord
from conveyor.workflows.adding import callback_specs, flow_calls


def test_flowjob_checks_its_input() -> None:
    with pytest.raises(ConfigurationError, match="on_failure"):
        FlowJob("a", on_failure="skip")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="children"):
        FlowJob("a", children=FlowJob("b"))  # type: ignore[arg-type]
    job = FlowJob("a", {"x": 1}, queue="q", attempts=3, children=[FlowJob("b")])
    assert job.options == {"attempts": 3} and job.children[0].name == "b"


def test_chain_nests_each_step_under_the_next() -> None:
    last = chain(FlowJob("a"), FlowJob("b"), FlowJob("c"))
    assert last.name == "c"
    [b] = last.children
    [a] = b.children
    assert (b.name, a.name, a.children) == ("b", "a", ())
    with pytest.raises(ConfigurationError):
        chain()


def test_chord_puts_the_header_under_the_callback() -> None:
    fan = chord([FlowJob("x", {"i": i}) for i in range(3)], FlowJob("sum", queue="s"))
    assert fan.name == "sum" and fan.queue == "s"
    assert [c.data for c in fan.children] == [{"i": 0}, {"i": 1}, {"i": 2}]
    with pytest.raises(ConfigurationError):
        chord([], FlowJob("sum"))


def _where(calls: list[tuple[str, list[dict[str, object]]]]) -> dict[str, tuple[int, str]]:
    """job id -> (index of its call, queue)."""
    out = {}
    for index, (queue, jobs) in enumerate(calls):
        for job in jobs:
            out[str(job["a"][0])] = (index, queue)  # type: ignore[index]
    return out


def test_a_flow_is_added_top_down_one_call_per_queue_and_depth() -> None:
    flow = FlowJob(
        "root",
        job_id="r",
        children=[
            FlowJob("a", job_id="a", children=[FlowJob("a1", job_id="a1")]),
            FlowJob("b", queue="other", job_id="b", children=[FlowJob("b1", job_id="b1")]),
            FlowJob(
                "c", queue="other", job_id="c", children=[FlowJob("c1", queue="q", job_id="c1")]
            ),
        ],
    )
    root, calls = flow_calls(Settings(), "q", flow)
    where = _where(calls)
    assert root == "r" and calls[0][0] == "q"
    assert where["r"] == where["a"] == where["a1"] == (0, "q")  # the same queue: one call
    assert where["b"] == where["c"] == where["b1"] and where["b"][1] == "other"  # parent's queue
    assert where["c1"][1] == "q" and where["c1"][0] > where["c"][0]  # after its parent
    entries = {str(j["a"][0]): j for _q, jobs in calls for j in jobs}  # type: ignore[index]
    assert entries["r"]["k"] == ["q|a", "other|b", "other|c"] and "wf" not in entries["r"]
    assert orjson.loads(entries["c1"]["wf"]) == {"p": ["other", "c"], "f": "fail"}  # type: ignore[arg-type]
    opts = orjson.loads(entries["c1"]["a"][3])  # type: ignore[index]
    assert opts["parent"] == {"queue": "other", "id": "c"}


def test_a_bad_job_anywhere_in_a_flow_is_refused_before_anything_is_sent() -> None:
    deep = FlowJob("r", children=[FlowJob("a", children=[FlowJob("b", priority="high")])])
    with pytest.raises(ConfigurationError):
        flow_calls(Settings(), "q", deep)
    with pytest.raises(InvalidQueueName):
        flow_calls(Settings(), "q", FlowJob("r", children=[FlowJob("a", queue="bad name")]))


def test_callbacks_are_checked_when_the_batch_is_added() -> None:
    with pytest.raises(ConfigurationError, match="job id"):
        callback_specs(Settings(), "q", {"on_complete": Callback("x", options={"job_id": "j"})})
    with pytest.raises(ConfigurationError):
        callback_specs(Settings(), "q", {"on_complete": Callback("x", options={"attempts": 0})})
    specs = callback_specs(Settings(), "q", {"on_success": Callback("x", {"a": 1}, queue="n")})
    assert specs == {"success": ["n", "x", '{"a":1}', {}]}
