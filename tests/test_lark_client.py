"""LarkClient against the fake Lark server: tokens, retries, backoff, errors, secrecy."""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import Awaitable, Callable
from datetime import timedelta

import anyio
import pytest

from actors.lark import (
    LarkAuthError,
    LarkClient,
    LarkError,
    LarkProtocolError,
    LarkRateLimitError,
    LarkTokenInvalidError,
    LarkUnavailableError,
)
from tests.fake_lark import FAKE_APP_ID, FAKE_APP_SECRET, FakeLark
from tests.lark_helpers import START, ClientFactory, ManualClock, SleepRecorder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- tenant token ---------------------------------------------------------------------


async def test_tenant_token_is_fetched_once_and_reused(
    lark: LarkClient, fake_lark: FakeLark
) -> None:
    await lark.list_departments()
    await lark.list_departments()
    assert fake_lark.calls["tenant_token"] == 1
    assert fake_lark.calls["departments"] == 2
    assert lark.tenant_token_expires_at == START + timedelta(seconds=7200)


@pytest.mark.parametrize(
    ("lifetime", "elapsed", "fetches"),
    [
        pytest.param(7200, 0, 1, id="fresh"),
        pytest.param(7200, 6899, 1, id="1s-before-the-5-minute-margin"),
        pytest.param(7200, 6900, 2, id="at-the-5-minute-margin"),
        pytest.param(7200, 7300, 2, id="after-expiry"),
        pytest.param(400, 199, 1, id="short-lived-before-halfway"),
        pytest.param(400, 200, 2, id="short-lived-at-halfway"),
    ],
)
async def test_tenant_token_is_refreshed_before_it_expires(
    lark: LarkClient,
    fake_lark: FakeLark,
    clock: ManualClock,
    lifetime: int,
    elapsed: int,
    fetches: int,
) -> None:
    fake_lark.token_lifetime = lifetime
    await lark.list_departments()
    clock.advance(elapsed)
    fake_lark.advance(elapsed)
    await lark.list_departments()
    assert fake_lark.calls["tenant_token"] == fetches
    assert fake_lark.calls["departments"] == 2


async def test_concurrent_callers_share_one_refresh(
    lark: LarkClient, fake_lark: FakeLark, clock: ManualClock
) -> None:
    async def call() -> None:
        await lark.list_departments()

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(call)
    assert fake_lark.calls["tenant_token"] == 1

    clock.advance(7000)
    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(call)
    assert fake_lark.calls["tenant_token"] == 2
    assert fake_lark.calls["departments"] == 40


@pytest.mark.parametrize("code", [99991661, 99991663], ids=["missing-token", "invalid-token"])
async def test_refused_token_is_refreshed_once_and_the_call_retried(
    lark: LarkClient, fake_lark: FakeLark, sleeps: SleepRecorder, code: int
) -> None:
    fake_lark.add_department("od-a")
    await lark.list_departments()
    fake_lark.fail("departments", status=400, code=code)
    assert [d.open_department_id for d in await lark.list_departments()] == ["od-a"]
    assert fake_lark.calls["tenant_token"] == 2
    assert fake_lark.calls["departments"] == 3
    assert sleeps.delays == []


async def test_concurrent_callers_refused_together_still_share_one_refresh(
    lark: LarkClient, fake_lark: FakeLark
) -> None:
    await lark.list_departments()
    fake_lark.invalidate_tokens()
    # Half of the refusals arrive after the first refreshed token is cached: they must
    # not throw it away.
    fake_lark.stall("departments", seconds=0.05, times=5)

    async def call() -> None:
        await lark.list_departments()

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(call)
    assert fake_lark.calls["tenant_token"] == 2
    assert fake_lark.calls["departments"] == 1 + 10 + 10


async def test_token_refused_again_after_refresh_raises(
    lark: LarkClient, fake_lark: FakeLark
) -> None:
    def refuse_every_token(endpoint: str, _: int) -> None:
        if endpoint == "departments":
            fake_lark.invalidate_tokens()

    fake_lark.hooks.append(refuse_every_token)
    with pytest.raises(LarkTokenInvalidError) as caught:
        await lark.list_departments()
    assert (caught.value.code, caught.value.http_status) == (99991663, 400)
    assert caught.value.log_id == "fake-log-99991663"
    assert fake_lark.calls["tenant_token"] == 2
    assert fake_lark.calls["departments"] == 2


@pytest.mark.parametrize(
    ("secret", "app_id", "code"),
    [
        pytest.param("wrong-secret", FAKE_APP_ID, 10014, id="wrong-secret"),
        pytest.param(FAKE_APP_SECRET, "cli_unknown", 10003, id="unknown-app"),
    ],
)
async def test_refused_credentials_raise_auth_error(
    make_client: ClientFactory, fake_lark: FakeLark, secret: str, app_id: str, code: int
) -> None:
    lark = make_client(app_id=app_id, app_secret=secret)
    with pytest.raises(LarkAuthError) as caught:
        await lark.list_departments()
    assert caught.value.code == code
    assert "check app_id and app_secret" in str(caught.value)
    assert fake_lark.calls["departments"] == 0


# -- rate limits and transient failures -----------------------------------------------


@pytest.mark.parametrize(
    ("reset", "expected"),
    [
        pytest.param(7, [7.0, 7.0, 7.0], id="reset-header-honoured"),
        pytest.param(0, [0.0, 0.0, 0.0], id="reset-header-zero"),
        pytest.param(None, [0.5, 1.0, 2.0], id="no-header-exponential-backoff"),
    ],
)
async def test_rate_limit_waits_then_succeeds(
    lark: LarkClient,
    fake_lark: FakeLark,
    sleeps: SleepRecorder,
    reset: int | None,
    expected: list[float],
) -> None:
    await lark.list_departments()
    fake_lark.rate_limit(3, reset=reset)
    assert await lark.list_departments() == []
    assert sleeps.delays == expected
    assert fake_lark.calls["departments"] == 1 + 4


async def test_rate_limit_with_http_400_is_a_rate_limit_too(
    lark: LarkClient, fake_lark: FakeLark, sleeps: SleepRecorder
) -> None:
    await lark.list_departments()
    fake_lark.fail("departments", status=400, code=99991400, times=2)
    await lark.list_departments()
    assert sleeps.delays == [0.5, 1.0]


async def test_rate_limit_that_outlasts_the_retries_raises(
    make_client: ClientFactory, fake_lark: FakeLark, sleeps: SleepRecorder
) -> None:
    lark = make_client(max_retries=3)
    await lark.list_departments()
    fake_lark.rate_limit(10, reset=2)
    with pytest.raises(LarkRateLimitError) as caught:
        await lark.list_departments()
    assert (caught.value.code, caught.value.http_status) == (99991400, 429)
    assert sleeps.delays == [2.0, 2.0, 2.0]
    assert fake_lark.calls["departments"] == 1 + 4


@pytest.mark.parametrize("code", [None, 1], ids=["gateway-text-page", "lark-json-envelope"])
async def test_5xx_backs_off_exponentially_up_to_the_cap_then_raises(
    make_client: ClientFactory, fake_lark: FakeLark, sleeps: SleepRecorder, code: int | None
) -> None:
    lark = make_client(backoff_base=1.0, backoff_max=5.0, max_retries=5)
    fake_lark.fail("departments", status=503, code=code, times=None)
    with pytest.raises(LarkUnavailableError) as caught:
        await lark.list_departments()
    assert caught.value.http_status == 503
    assert sleeps.delays == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert fake_lark.calls["departments"] == 6


async def test_5xx_backoff_uses_full_jitter(
    make_client: ClientFactory, fake_lark: FakeLark, sleeps: SleepRecorder
) -> None:
    lark = make_client(rng=random.Random(42), max_retries=4, backoff_base=1.0, backoff_max=3.0)
    fake_lark.fail("departments", status=500, times=None)
    with pytest.raises(LarkUnavailableError):
        await lark.list_departments()
    twin = random.Random(42)
    assert sleeps.delays == [twin.uniform(0.0, ceiling) for ceiling in (1.0, 2.0, 3.0, 3.0)]


async def test_transient_5xx_is_retried_transparently(
    lark: LarkClient, fake_lark: FakeLark, sleeps: SleepRecorder
) -> None:
    fake_lark.add_department("od-a")
    fake_lark.fail("departments", status=502, times=2)
    assert len(await lark.list_departments()) == 1
    assert sleeps.delays == [0.5, 1.0]


async def test_timeout_is_retried(
    make_client: ClientFactory, fake_lark: FakeLark, sleeps: SleepRecorder
) -> None:
    lark = make_client(timeout=0.1)
    await lark.list_departments()
    fake_lark.stall("departments", seconds=10.0, times=1)
    assert await lark.list_departments() == []
    assert sleeps.delays == [0.5]


async def test_unreachable_host_raises_unavailable_after_retries(
    make_client: ClientFactory, sleeps: SleepRecorder
) -> None:
    lark = make_client(base_url=f"http://127.0.0.1:{_free_port()}", max_retries=2)
    with pytest.raises(LarkUnavailableError, match="check that Lark"):
        await lark.list_departments()
    assert sleeps.delays == [0.5, 1.0]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        pytest.param(400, 40003, id="http-400"),
        pytest.param(200, 99991672, id="http-200-no-permission"),
    ],
)
async def test_other_codes_raise_lark_error_without_retry(
    lark: LarkClient, fake_lark: FakeLark, sleeps: SleepRecorder, status: int, code: int
) -> None:
    fake_lark.fail("departments", status=status, code=code)
    with pytest.raises(LarkError) as caught:
        await lark.list_departments()
    assert type(caught.value) is LarkError
    assert (caught.value.code, caught.value.http_status) == (code, status)
    assert caught.value.log_id == f"fake-log-{code}"
    assert sleeps.delays == []
    assert fake_lark.calls["departments"] == 1


async def test_answer_that_is_not_json_raises_protocol_error(
    lark: LarkClient, fake_lark: FakeLark, sleeps: SleepRecorder
) -> None:
    fake_lark.fail("departments", status=404)
    with pytest.raises(LarkProtocolError) as caught:
        await lark.list_departments()
    assert caught.value.http_status == 404
    assert sleeps.delays == []


# -- ping -----------------------------------------------------------------------------


async def test_ping_measures_a_fresh_token_request(
    make_client: ClientFactory, fake_lark: FakeLark
) -> None:
    ticks = iter([100.0, 100.25, 200.0, 200.5])
    lark = make_client(monotonic=lambda: next(ticks))
    assert await lark.ping() == 0.25
    assert await lark.ping() == 0.5
    assert fake_lark.calls["tenant_token"] == 2
    assert lark.tenant_token_expires_at is None


async def test_ping_does_not_retry(
    lark: LarkClient, fake_lark: FakeLark, sleeps: SleepRecorder
) -> None:
    fake_lark.fail("tenant_token", status=500)
    with pytest.raises(LarkUnavailableError):
        await lark.ping()
    assert sleeps.delays == []
    assert fake_lark.calls["tenant_token"] == 1


# -- configuration and secrecy --------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"app_id": ""}, "app_id is empty", id="empty-app-id"),
        pytest.param({"app_secret": ""}, "app_secret of app", id="empty-secret"),
        pytest.param({"base_url": "open.feishu.cn"}, "must start with http", id="bare-host"),
        pytest.param({"timeout": 0}, "timeout 0 must be > 0", id="zero-timeout"),
        pytest.param({"max_retries": -1}, "max_retries -1 must be >= 0", id="negative-retries"),
        pytest.param(
            {"backoff_base": 5, "backoff_max": 1}, "backoff_base <= backoff_max", id="base>max"
        ),
    ],
)
def test_bad_configuration_is_refused_with_the_fix(
    overrides: dict[str, object], message: str
) -> None:
    options: dict[str, object] = {"app_id": FAKE_APP_ID, "app_secret": FAKE_APP_SECRET}
    options.update(overrides)
    app_id, app_secret = options.pop("app_id"), options.pop("app_secret")
    with pytest.raises(ValueError, match=message):
        LarkClient(str(app_id), str(app_secret), **options)  # type: ignore[arg-type]


async def test_secrets_and_tokens_never_reach_logs_reprs_or_errors(
    lark: LarkClient,
    fake_lark: FakeLark,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = [repr(lark), str(lark)]
    fake_lark.add_users(3)
    await lark.list_all_users()
    fake_lark.invalidate_tokens()
    fake_lark.rate_limit(1, reset=0)
    await lark.send_text("ou_00000001", "hello")
    first_refresh_token = fake_lark.grant_user_token()
    grant = await lark.refresh_user_token(first_refresh_token)
    seen += [repr(grant), str(grant)]
    fake_lark.fail("departments", status=500, times=None)
    failing: list[Callable[[], Awaitable[object]]] = [
        lark.list_departments,
        lambda: lark.refresh_user_token(first_refresh_token),
        lambda: lark.refresh_user_token(grant.refresh_token + "x"),
        lambda: lark.refresh_user_token(fake_lark.grant_user_token(lifetime=0)),
    ]
    for call in failing:
        with pytest.raises(LarkError) as caught:
            await call()
        seen.append(str(caught.value))
    text = caplog.text + "\n".join(seen)
    assert "retry 1 of 5" in text
    assert "token refused" in text
    assert FAKE_APP_SECRET not in text
    assert len(fake_lark.issued_tokens) >= 6
    assert [t for t in fake_lark.issued_tokens if t in text] == []
