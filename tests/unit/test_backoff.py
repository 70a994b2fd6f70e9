import json
import random

import pytest

from conveyor import Backoff
from conveyor.errors import ConfigurationError


def test_fixed_is_constant() -> None:
    policy = Backoff.fixed(60)
    assert [policy.seconds(n) for n in (1, 2, 10)] == [60, 60, 60]


def test_exponential_doubles_and_is_capped() -> None:
    policy = Backoff.exponential(1.0, max_delay=10)
    assert [policy.seconds(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_jitter_stays_within_its_band() -> None:
    policy = Backoff.exponential(10.0, jitter=0.5, max_delay=None)
    rng = random.Random(7)
    delays = [policy.seconds(1, rng=rng) for _ in range(200)]
    assert all(5.0 <= d <= 10.0 for d in delays)
    assert max(delays) - min(delays) > 2.0  # jitter really spreads the delays


def test_custom_strategy_is_looked_up_by_name() -> None:
    policy = Backoff.custom("linear")
    strategies = {"linear": lambda attempt, error: attempt * 3.0}
    assert policy.seconds(4, ValueError(), strategies) == 12.0
    with pytest.raises(ConfigurationError, match="no backoff strategy named 'linear'"):
        policy.seconds(1)


def test_round_trips_through_a_dict() -> None:
    policy = Backoff.exponential(2.0, max_delay=30, jitter=0.1)
    assert Backoff.from_dict(policy.to_dict()) == policy


@pytest.mark.parametrize(
    "make",
    [
        lambda: Backoff.fixed(-1),
        lambda: Backoff.exponential(1, jitter=2),
        lambda: Backoff.custom("fixed"),
        lambda: Backoff.from_dict({"delay": 1}),
    ],
)
def test_invalid_policies_are_refused(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigurationError):
        make()


@pytest.mark.parametrize(
    "policy",
    [
        Backoff.fixed(0),
        Backoff.fixed(2.5, jitter=0.3),
        Backoff.exponential(),
        Backoff.exponential(2.0, max_delay=None),
        Backoff.exponential(2.0, max_delay=30, jitter=0.1),
        Backoff.custom("linear"),
    ],
)
def test_round_trips_through_its_stored_form(policy: Backoff) -> None:
    stored = policy.to_stored()
    assert Backoff.from_stored(stored) == policy
    assert Backoff.from_stored(json.loads(json.dumps(stored))) == policy


def test_the_stored_form_is_short_and_keeps_the_job_hash_compact() -> None:
    assert Backoff.fixed(0).to_stored() == ["fixed"]
    assert Backoff.exponential().to_stored() == ["exponential", 1.0, 3600.0]
    # Redis keeps a hash compact while each value is at most 64 bytes (hash-max-listpack-value);
    # the dict form took the options of a job with a backoff and a timeout past that
    for policy in (Backoff.fixed(60), Backoff.exponential(), Backoff.exponential(5, jitter=0.2)):
        opts = {"backoff": policy.to_stored(), "timeout": 300.0}
        assert len(json.dumps(opts, separators=(",", ":"))) <= 64
        assert len(json.dumps({**opts, "backoff": policy.to_dict()}, separators=(",", ":"))) > 64


def test_reads_the_dict_earlier_versions_stored() -> None:
    policy = Backoff.exponential(2.0, max_delay=30, jitter=0.1)
    assert Backoff.from_stored(policy.to_dict()) == policy
    assert Backoff.from_stored({"kind": "fixed", "delay": 2}) == Backoff.fixed(2)


def test_a_stored_policy_is_built_once() -> None:
    assert Backoff.from_stored(["fixed", 7.0]) is Backoff.from_stored(["fixed", 7.0])


@pytest.mark.parametrize(
    "raw", [[], ["fixed", "soon"], ["fixed", 1, None, 0, 9], [["x"]], "fixed", 5]
)
def test_a_malformed_stored_policy_is_a_configuration_error(raw: object) -> None:
    with pytest.raises(ConfigurationError, match="invalid backoff"):
        Backoff.from_stored(raw)
