"""Retry delays of the Lark client: full-jitter backoff and the rate-limit reset header."""

from __future__ import annotations

import random

import pytest

from actors.lark._backoff import full_jitter_delay, rate_limit_reset_delay
from tests.lark_helpers import CeilingRandom


class FloorRandom(random.Random):
    def random(self) -> float:
        return 0.0


@pytest.mark.parametrize(
    ("retry", "base", "cap", "ceiling"),
    [
        pytest.param(0, 0.5, 30.0, 0.5, id="first-retry"),
        pytest.param(3, 0.5, 30.0, 4.0, id="doubles"),
        pytest.param(6, 0.5, 30.0, 30.0, id="capped"),
        pytest.param(200, 0.5, 30.0, 30.0, id="huge-retry-no-overflow"),
    ],
)
def test_full_jitter_spans_zero_to_the_capped_exponential(
    retry: int, base: float, cap: float, ceiling: float
) -> None:
    assert full_jitter_delay(retry, base=base, cap=cap, rng=CeilingRandom()) == ceiling
    assert full_jitter_delay(retry, base=base, cap=cap, rng=FloorRandom()) == 0.0


def test_negative_retry_is_refused() -> None:
    with pytest.raises(ValueError, match="retry must be >= 0, got -1"):
        full_jitter_delay(-1, base=1.0, cap=2.0, rng=random.Random(0))


@pytest.mark.parametrize(
    ("headers", "delay"),
    [
        pytest.param({"x-ogw-ratelimit-reset": "52"}, 52.0, id="seconds"),
        pytest.param({"x-ogw-ratelimit-reset": " 1.5 "}, 1.5, id="fraction-with-spaces"),
        pytest.param({"x-ogw-ratelimit-reset": "0"}, 0.0, id="zero"),
        pytest.param({}, None, id="absent"),
        pytest.param({"x-ogw-ratelimit-reset": ""}, None, id="empty"),
        pytest.param({"x-ogw-ratelimit-reset": "-3"}, None, id="negative"),
        pytest.param({"x-ogw-ratelimit-reset": "soon"}, None, id="not-a-number"),
        pytest.param({"x-ogw-ratelimit-reset": "nan"}, None, id="nan"),
        pytest.param({"x-ogw-ratelimit-reset": "inf"}, None, id="infinite"),
    ],
)
def test_reset_header_is_read_in_seconds(headers: dict[str, str], delay: float | None) -> None:
    assert rate_limit_reset_delay(headers) == delay
