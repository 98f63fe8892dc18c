"""RetryPolicy: validation with clear errors, and the backoff schedule as a table."""

from __future__ import annotations

import random

import msgspec
import pytest

from kernel.retry import RetryPolicy


class FixedRandom:
    """A random source that always answers ``value``."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


MID = FixedRandom(0.5)  # jitter factor exactly 1.0


@pytest.mark.parametrize(
    ("policy", "attempt", "rng", "expected"),
    [
        pytest.param(RetryPolicy(jitter=0), 1, MID, 1.0, id="first-wait-is-backoff"),
        pytest.param(RetryPolicy(jitter=0), 2, MID, 2.0, id="second-doubles"),
        pytest.param(RetryPolicy(jitter=0), 5, MID, 16.0, id="fifth"),
        pytest.param(RetryPolicy(jitter=0), 9, MID, 256.0, id="just-below-cap"),
        pytest.param(RetryPolicy(jitter=0), 10, MID, 300.0, id="capped"),
        pytest.param(RetryPolicy(jitter=0), 10_000, MID, 300.0, id="huge-attempt-no-overflow"),
        pytest.param(RetryPolicy(backoff=0.5, jitter=0.0), 3, MID, 2.0, id="half-second-base"),
        pytest.param(RetryPolicy(backoff=0.0, jitter=0.5), 4, MID, 0.0, id="zero-backoff"),
        pytest.param(RetryPolicy(jitter=0.1), 1, MID, 1.0, id="jitter-centre"),
        pytest.param(RetryPolicy(jitter=0.1), 1, FixedRandom(0.0), 0.9, id="jitter-low-edge"),
        pytest.param(RetryPolicy(jitter=0.1), 2, FixedRandom(0.75), 2.1, id="jitter-up"),
        pytest.param(RetryPolicy(jitter=0.5), 3, FixedRandom(0.0), 2.0, id="jitter-half-down"),
        pytest.param(
            RetryPolicy(jitter=0.2), 10, FixedRandom(0.999), 300.0, id="jitter-never-passes-cap"
        ),
        pytest.param(RetryPolicy(jitter=0.2), 10, FixedRandom(0.0), 240.0, id="jitter-below-cap"),
        pytest.param(
            RetryPolicy(backoff=2, max_backoff=2, jitter=0), 7, MID, 2.0, id="cap-equals-base"
        ),
    ],
)
def test_delay_table(policy: RetryPolicy, attempt: int, rng: FixedRandom, expected: float) -> None:
    assert policy.delay(attempt, rng) == pytest.approx(expected, abs=1e-12)


def test_delay_stays_within_bounds_with_real_random() -> None:
    policy = RetryPolicy(backoff=1, max_backoff=60, jitter=0.3)
    rng = random.Random(1234)
    for attempt in range(1, 40):
        base = min(60.0, 2.0 ** (attempt - 1))
        d = policy.delay(attempt, rng)
        assert base * 0.7 <= d <= min(60.0, base * 1.3)


@pytest.mark.parametrize(
    ("max_attempts", "attempt", "expected"),
    [
        pytest.param(1, 1, False, id="one-attempt-never-retries"),
        pytest.param(3, 1, True, id="first-failure-retries"),
        pytest.param(3, 2, True, id="second-failure-retries"),
        pytest.param(3, 3, False, id="third-failure-is-last"),
    ],
)
def test_should_retry(max_attempts: int, attempt: int, expected: bool) -> None:
    assert RetryPolicy(max_attempts=max_attempts).should_retry(attempt) is expected


def test_defaults() -> None:
    assert RetryPolicy() == RetryPolicy(max_attempts=3, backoff=1.0, max_backoff=300.0, jitter=0.1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        pytest.param(
            {"max_attempts": 0}, ValueError, r"max_attempts must be at least 1", id="zero"
        ),
        pytest.param({"max_attempts": 2.5}, TypeError, r"max_attempts must be an integer", id="f"),
        pytest.param({"max_attempts": True}, TypeError, r"max_attempts must be an integer", id="b"),
        pytest.param(
            {"backoff": -1}, ValueError, r"backoff must be >= 0 seconds, got -1", id="neg"
        ),
        pytest.param({"backoff": "1"}, TypeError, r"backoff must be a number", id="str"),
        pytest.param({"backoff": float("nan")}, ValueError, r"backoff must be finite", id="nan"),
        pytest.param(
            {"max_backoff": float("inf")}, ValueError, r"max_backoff must be finite", id="inf"
        ),
        pytest.param(
            {"backoff": 10, "max_backoff": 5},
            ValueError,
            r"max_backoff \(5.0\) must be >= backoff \(10.0\)",
            id="cap-below-base",
        ),
        pytest.param(
            {"jitter": 1.5}, ValueError, r"jitter must be a fraction between 0 and 1", id="j"
        ),
        pytest.param({"jitter": -0.1}, ValueError, r"jitter must be a fraction", id="neg-jitter"),
    ],
)
def test_validation(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("attempt", [0, -1, 1.0, True], ids=["zero", "negative", "float", "bool"])
def test_delay_refuses_bad_attempt(attempt: object) -> None:
    with pytest.raises(ValueError, match=r"attempt must be an integer >= 1"):
        RetryPolicy().delay(attempt, MID)  # type: ignore[arg-type]


def test_round_trips_through_json_and_validates_on_decode() -> None:
    policy = RetryPolicy(max_attempts=5, backoff=0.25, max_backoff=30, jitter=0)
    data = msgspec.json.encode(policy)
    assert data == b'{"max_attempts":5,"backoff":0.25,"max_backoff":30,"jitter":0}'
    assert msgspec.json.decode(data, type=RetryPolicy) == policy
    with pytest.raises(msgspec.ValidationError, match=r"jitter must be a fraction"):
        msgspec.json.decode(b'{"jitter": 2}', type=RetryPolicy)


def test_is_frozen() -> None:
    with pytest.raises(AttributeError):
        RetryPolicy().max_attempts = 4  # type: ignore[misc]
