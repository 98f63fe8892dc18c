"""kernel.schedule.policy: the one decision for due times, manual runs and retries, as tables."""

from __future__ import annotations

import random

import pytest

from kernel.retry import RetryPolicy
from kernel.schedule.policy import decide, decide_one, retry_at


@pytest.mark.parametrize(
    ("lateness", "grace", "max_instances", "running", "expected"),
    [
        pytest.param(0.0, 60, 1, 0, "run", id="on-time"),
        pytest.param(60.0, 60, 1, 0, "run", id="exactly-grace-runs"),
        pytest.param(60.001, 60, 1, 0, "missed", id="past-grace-missed"),
        pytest.param(1e9, None, 1, 0, "run", id="no-grace-runs-however-late"),
        pytest.param(0.001, 0, 1, 0, "missed", id="zero-grace-any-lateness-missed"),
        pytest.param(0.0, 60, 1, 1, "max_instances", id="at-the-limit-skipped"),
        pytest.param(0.0, 60, 3, 2, "run", id="below-the-limit-runs"),
        pytest.param(90.0, 60, 1, 1, "missed", id="missed-before-the-limit-is-asked"),
        pytest.param(0.0, 60, None, 50, "run", id="limit-left-to-the-claim"),
    ],
)
def test_one_due_time(
    lateness: float, grace: float | None, max_instances: int | None, running: int, expected: str
) -> None:
    assert decide_one(lateness, grace=grace, max_instances=max_instances,
                      running=running) == expected


@pytest.mark.parametrize(
    ("lateness", "coalesce", "grace", "max_instances", "running", "expected"),
    [
        pytest.param([210, 150, 90, 30], True, 90, 1, 0,
                     ["coalesced", "coalesced", "coalesced", "run"], id="coalesce-runs-latest"),
        pytest.param([150, 90, 70], True, 10, 1, 0,
                     ["coalesced", "coalesced", "missed"], id="coalesce-latest-past-grace"),
        pytest.param([210, 150, 90, 30], False, 90, 1, 0,
                     ["missed", "missed", "run", "max_instances"],
                     id="no-coalesce-each-within-grace-then-the-limit"),
        pytest.param([120, 60, 0], False, None, 5, 0, ["run", "run", "run"],
                     id="no-coalesce-room-for-all"),
        pytest.param([20, 10], False, 60, 3, 2, ["run", "max_instances"],
                     id="runs-decided-here-count-against-the-limit"),
        pytest.param([20, 10], False, 60, None, 9, ["run", "run"], id="limit-left-to-the-claim"),
        pytest.param([5.0], True, 60, 1, 1, ["max_instances"], id="one-due-time-at-the-limit"),
    ],
)
def test_several_due_times(
    lateness: list[float], coalesce: bool, grace: float | None, max_instances: int | None,
    running: int, expected: list[str],
) -> None:
    got = decide(lateness, coalesce=coalesce, grace=grace, max_instances=max_instances,
                 running=running)
    assert got == expected


@pytest.mark.parametrize(
    ("policy", "attempt", "expected"),
    [
        pytest.param(None, 1, None, id="no-policy-no-retry"),
        pytest.param(RetryPolicy(max_attempts=1), 1, None, id="one-attempt-no-retry"),
        pytest.param(RetryPolicy(max_attempts=3, backoff=10, jitter=0), 1, 110.0,
                     id="first-retry-after-backoff"),
        pytest.param(RetryPolicy(max_attempts=3, backoff=10, jitter=0), 2, 120.0,
                     id="second-retry-doubles"),
        pytest.param(RetryPolicy(max_attempts=3, backoff=10, jitter=0), 3, None,
                     id="attempts-used-up"),
        pytest.param(RetryPolicy(max_attempts=2, backoff=0.0, jitter=0), 1, 100.0,
                     id="zero-backoff-at-once"),
    ],
)
def test_retry_at(policy: RetryPolicy | None, attempt: int, expected: float | None) -> None:
    assert retry_at(policy, attempt, 100.0, random.Random(1)) == expected
