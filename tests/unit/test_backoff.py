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
