"""Retry delays: capped exponential backoff with full jitter, and Lark's reset header.

Pure functions, no event loop: the transport asks them how long to wait and then
awaits its injected ``sleep``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

__all__ = ("RATE_LIMIT_RESET_HEADER", "full_jitter_delay", "rate_limit_reset_delay")

#: Seconds until Lark lifts the rate limit, sent with 99991400 / HTTP 429 answers.
RATE_LIMIT_RESET_HEADER = "x-ogw-ratelimit-reset"


def full_jitter_delay(retry: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before retry number ``retry`` (0 for the first retry).

    Uniform in ``[0, min(cap, base * 2**retry)]`` ("full jitter"): concurrent clients
    that failed together spread their retries out instead of failing together again.
    """
    if retry < 0:
        raise ValueError(f"retry must be >= 0, got {retry}")
    # 2**retry overflows float for huge retry counts; the cap wins long before that.
    ceiling = cap if retry >= 64 else min(cap, base * 2.0**retry)
    return rng.uniform(0.0, ceiling)


def rate_limit_reset_delay(headers: Mapping[str, str]) -> float | None:
    """Seconds Lark asked us to wait (``x-ogw-ratelimit-reset``), or ``None``.

    ``None`` when the header is absent, empty, negative or not a finite number, so the
    caller falls back to backoff instead of trusting a malformed value.
    """
    raw = headers.get(RATE_LIMIT_RESET_HEADER)
    if raw is None:
        return None
    try:
        seconds = float(raw.strip())
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds
