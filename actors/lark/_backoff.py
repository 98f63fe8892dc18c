"""Retry delays: capped exponential backoff with full jitter, and the server's own wait
(Lark's reset header or ``Retry-After``).

Pure functions, no event loop: the transport asks them how long to wait and then
awaits its injected ``sleep``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

__all__ = (
    "RATE_LIMIT_RESET_HEADER",
    "RETRY_AFTER_HEADER",
    "full_jitter_delay",
    "rate_limit_reset_delay",
)

#: Seconds until Lark lifts the rate limit, sent with 99991400 / HTTP 429 answers.
RATE_LIMIT_RESET_HEADER = "x-ogw-ratelimit-reset"
#: The standard header (RFC 9110) a gateway in front of Lark may send instead.
RETRY_AFTER_HEADER = "Retry-After"


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
    """Seconds the server asked us to wait, or ``None`` when it did not say.

    Lark's ``x-ogw-ratelimit-reset`` (seconds) first, else the standard ``Retry-After``:
    seconds, or an HTTP date, measured against the answer's own ``Date`` header (so the
    local clock is never involved). ``None`` when the header is absent, empty, negative or
    not a finite number, so the caller falls back to backoff instead of trusting a malformed
    value. The caller caps what it is willing to wait.
    """
    seconds = _seconds(_header(headers, RATE_LIMIT_RESET_HEADER))
    if seconds is not None:
        return seconds
    raw = _header(headers, RETRY_AFTER_HEADER)
    if raw is None:
        return None
    seconds = _seconds(raw)
    if seconds is not None or not raw.strip():
        return seconds
    try:
        retry_at = parsedate_to_datetime(raw.strip())
        sent_at = parsedate_to_datetime(_header(headers, "date") or "")
    except (TypeError, ValueError, IndexError):
        return None
    if retry_at.tzinfo is None or sent_at.tzinfo is None:
        return None
    return max(0.0, (retry_at - sent_at).total_seconds())


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()  # a plain dict is case-sensitive; HTTP header names are not
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def _seconds(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        seconds = float(raw.strip())
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds
