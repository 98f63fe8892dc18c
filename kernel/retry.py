"""Automatic retry of failed runs: how many attempts, and how long to wait between them.

A :class:`RetryPolicy` is plain data; :meth:`RetryPolicy.delay` is a pure function of the
attempt number and a random source, so the backoff schedule is tested with a table.
Retries are off unless a job is given a policy.
"""

from __future__ import annotations

import math
from typing import Protocol

import msgspec

__all__ = ("RetryPolicy", "SupportsRandom")

# 2.0 ** 1024 overflows a float; far past any sane cap anyway.
_MAX_EXPONENT = 1000


class SupportsRandom(Protocol):
    """A random source: ``random.Random`` or anything with ``random() -> [0, 1)``."""

    def random(self) -> float: ...


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"RetryPolicy.{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"RetryPolicy.{name} must be finite, got {value!r}")
    return float(value)


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Retry a failed run up to ``max_attempts`` times in all, with capped exponential backoff.

    * ``max_attempts``: the most times one scheduled call runs, *counting the first run*;
      ``1`` means never retry.
    * ``backoff``: seconds to wait after the first failure; each later wait doubles.
    * ``max_backoff``: no wait is longer than this many seconds.
    * ``jitter``: the fraction by which a wait is randomly stretched or shrunk
      (``0.1`` = up to ±10 %), so many jobs failing together do not retry in lockstep.
    """

    max_attempts: int = 3
    backoff: float = 1.0
    max_backoff: float = 300.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        attempts = self.max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int):
            raise TypeError(f"RetryPolicy.max_attempts must be an integer, got {attempts!r}")
        if attempts < 1:
            raise ValueError(
                f"RetryPolicy.max_attempts must be at least 1 (1 = no retries), got {attempts}"
            )
        backoff = _number("backoff", self.backoff)
        if backoff < 0:
            raise ValueError(f"RetryPolicy.backoff must be >= 0 seconds, got {backoff}")
        max_backoff = _number("max_backoff", self.max_backoff)
        if max_backoff < backoff:
            raise ValueError(
                f"RetryPolicy.max_backoff ({max_backoff}) must be >= backoff ({backoff}); "
                "raise max_backoff or lower backoff"
            )
        jitter = _number("jitter", self.jitter)
        if not 0.0 <= jitter <= 1.0:
            raise ValueError(
                f"RetryPolicy.jitter must be a fraction between 0 and 1 (0.1 = ±10 %), got {jitter}"
            )

    def should_retry(self, attempt: int) -> bool:
        """Whether another attempt follows the failed attempt number ``attempt`` (1-based)."""
        return attempt < self.max_attempts

    def delay(self, attempt: int, rng: SupportsRandom) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based) before the next.

        ``backoff * 2 ** (attempt - 1)``, capped at ``max_backoff``, then scaled by a random
        factor in ``[1 - jitter, 1 + jitter)`` and capped again, so the result always lies in
        ``[0, max_backoff]``.
        """
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
            raise ValueError(
                f"attempt must be an integer >= 1 (the failed attempt), got {attempt!r}"
            )
        base = min(self.max_backoff, self.backoff * 2.0 ** min(attempt - 1, _MAX_EXPONENT))
        if self.jitter:
            base *= 1.0 + self.jitter * (2.0 * rng.random() - 1.0)
        return min(self.max_backoff, max(0.0, base))
