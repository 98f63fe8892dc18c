"""Rate limits the Lark API (or a gateway in front of it) announces: the wait it asks for is
honoured up to the client's cap (``backoff_max``, 30 s), and a longer one fails the call at
once instead of holding the run for as long as the header says (86,400 s was seen)."""

from __future__ import annotations

import pytest

from actors.lark import LarkClient
from actors.lark._backoff import rate_limit_reset_delay
from actors.lark.errors import LarkRateLimitError
from tests.fake_lark import FakeLark
from tests.lark_helpers import ClientFactory, SleepRecorder

DATE = "Sun, 29 Nov 2026 01:00:00 GMT"


@pytest.mark.parametrize(
    ("headers", "delay"),
    [
        pytest.param({"Retry-After": "7"}, 7.0, id="retry-after-seconds"),
        pytest.param({"retry-after": " 2.5 "}, 2.5, id="retry-after-any-case"),
        pytest.param(
            {"Retry-After": "Sun, 29 Nov 2026 01:00:20 GMT", "Date": DATE},
            20.0,
            id="retry-after-date-against-the-answers-date",
        ),
        pytest.param(
            {"Retry-After": "Sun, 29 Nov 2026 00:59:00 GMT", "Date": DATE},
            0.0,
            id="retry-after-date-in-the-past",
        ),
        pytest.param(
            {"Retry-After": "Sun, 29 Nov 2026 01:00:20 GMT"},
            None,
            id="retry-after-date-without-date-header",
        ),
        pytest.param({"Retry-After": "soon", "Date": DATE}, None, id="retry-after-garbage"),
        pytest.param({"Retry-After": "-1"}, None, id="retry-after-negative"),
        pytest.param({"Retry-After": ""}, None, id="retry-after-empty"),
        pytest.param(
            {"x-ogw-ratelimit-reset": "3", "Retry-After": "60"}, 3.0, id="lark-header-first"
        ),
        pytest.param({"x-ogw-ratelimit-reset": "86400"}, 86400.0, id="a-day-is-reported"),
    ],
)
def test_the_wait_the_answer_asks_for(headers: dict[str, str], delay: float | None) -> None:
    assert rate_limit_reset_delay(headers) == delay


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        pytest.param({"reset": 30}, [30.0, 30.0], id="reset-at-the-cap-is-honoured"),
        pytest.param({"reset": None, "retry_after": "7"}, [7.0, 7.0], id="retry-after-honoured"),
    ],
)
async def test_a_wait_within_the_cap_is_honoured(
    lark: LarkClient,
    fake_lark: FakeLark,
    sleeps: SleepRecorder,
    limit: dict[str, object],
    expected: list[float],
) -> None:
    await lark.list_departments()
    fake_lark.rate_limit(2, **limit)  # type: ignore[arg-type]
    assert await lark.list_departments() == []
    assert sleeps.delays == expected


@pytest.mark.parametrize(
    "limit",
    [
        pytest.param({"reset": 86400}, id="lark-reset-a-day"),
        pytest.param({"reset": 31}, id="lark-reset-just-over-the-cap"),
        pytest.param({"reset": None, "retry_after": "86400"}, id="retry-after-a-day"),
    ],
)
async def test_a_wait_over_the_cap_fails_at_once(
    make_client: ClientFactory,
    fake_lark: FakeLark,
    sleeps: SleepRecorder,
    limit: dict[str, object],
) -> None:
    lark = make_client(max_retries=5, backoff_max=30.0)
    await lark.list_departments()
    fake_lark.rate_limit(10, **limit)  # type: ignore[arg-type]
    with pytest.raises(LarkRateLimitError) as caught:
        await lark.list_departments()
    assert sleeps.delays == []
    assert fake_lark.calls["departments"] == 1 + 1
    message = str(caught.value)
    assert "longer than the 30 s this client waits (backoff_max)" in message
    assert "the next run tries again" in message
    assert (caught.value.code, caught.value.http_status) == (99991400, 429)
