"""LarkClient endpoints against the fake: listings, messages, user-token refresh."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from actors.lark import (
    Department,
    LarkClient,
    LarkError,
    LarkRefreshTokenError,
    LarkUnavailableError,
    LarkUser,
    MessageReceipt,
    ReceiveIdType,
    UserStatus,
)
from tests.fake_lark import FAKE_APP_ID, FakeLark, SentMessage
from tests.lark_helpers import START, ManualClock, SleepRecorder


def _directory(fake: FakeLark) -> set[str]:
    """Root with 7 users; od-a (230 users: 5 pages of 50) > od-b (3); od-c empty.

    One user sits in both od-a and od-b. Answers the set of every open_id.
    """
    fake.add_department("od-a", "Alpha")
    fake.add_department("od-b", "Beta", parent="od-a")
    fake.add_department("od-c", "Gamma")
    fake.add_users(7)
    fake.add_users(230, "od-a")
    fake.add_users(3, "od-b")
    fake.add_user("ou_both", departments=("od-a", "od-b"))
    return {u["open_id"] for u in fake.users}


# -- listings -------------------------------------------------------------------------


async def test_department_users_are_read_page_by_page(
    lark: LarkClient, fake_lark: FakeLark
) -> None:
    fake_lark.add_users(45)
    users = [u async for u in lark.iter_department_users("0", page_size=10)]
    assert [u.open_id for u in users] == [f"ou_{n:08d}" for n in range(1, 46)]
    assert fake_lark.calls["users"] == 5


async def test_user_fields_are_decoded(lark: LarkClient, fake_lark: FakeLark) -> None:
    fake_lark.add_department("od-a")
    fake_lark.add_user("ou_x", departments=("0", "od-a"), name="张三", status={"is_frozen": True})
    assert [u async for u in lark.iter_department_users()] == [
        LarkUser(
            open_id="ou_x",
            union_id="on_x",
            user_id="u1",
            name="张三",
            en_name="User 1",
            email="user1@example.com",
            mobile="+8613000000001",
            department_ids=("0", "od-a"),
            status=UserStatus(is_frozen=True, is_activated=True),
        )
    ]


@pytest.mark.parametrize(
    ("status", "active"),
    [
        pytest.param({}, True, id="activated"),
        pytest.param({"is_frozen": True}, False, id="frozen"),
        pytest.param({"is_resigned": True}, False, id="resigned"),
        pytest.param({"is_exited": True}, False, id="exited"),
        pytest.param({"is_activated": False}, False, id="not-activated"),
    ],
)
async def test_user_is_active_only_when_activated_and_not_gone(
    lark: LarkClient, fake_lark: FakeLark, status: dict[str, bool], active: bool
) -> None:
    fake_lark.add_user(status=status)
    assert [u.is_active async for u in lark.iter_department_users()] == [active]


@pytest.mark.parametrize("page_size", [0, 51], ids=["zero", "above-lark-max"])
async def test_page_size_outside_lark_range_is_refused(lark: LarkClient, page_size: int) -> None:
    with pytest.raises(ValueError, match=f"page_size {page_size} is out of range 1-50"):
        _ = [u async for u in lark.iter_department_users(page_size=page_size)]


async def test_departments_are_listed_recursively_over_pages(
    lark: LarkClient, fake_lark: FakeLark
) -> None:
    for n in range(60):
        fake_lark.add_department(f"od-{n:02d}", parent="0" if n < 30 else f"od-{n - 30:02d}")
    departments = await lark.list_departments()
    assert [d.open_department_id for d in departments] == [f"od-{n:02d}" for n in range(60)]
    assert departments[30] == Department(
        open_department_id="od-30", department_id="D31", name="od-30", parent_department_id="od-00"
    )
    assert fake_lark.calls["departments"] == 2
    assert len(await lark.list_departments(fetch_child=False)) == 30
    assert [d.open_department_id for d in await lark.list_departments("od-05")] == ["od-35"]


async def test_all_users_cover_every_page_of_every_department_once(
    lark: LarkClient, fake_lark: FakeLark
) -> None:
    everyone = _directory(fake_lark)
    users = await lark.list_all_users()
    assert len(users) == len(everyone) == 241
    assert {u.open_id for u in users} == everyone
    # root 1 page, od-a 5 pages (230 + ou_both), od-b 1, od-c 1
    assert fake_lark.calls["users"] == 8


@pytest.mark.parametrize(
    ("times", "expect_users", "delays"),
    [
        pytest.param(2, True, [0.5, 1.0], id="transient-recovers"),
        pytest.param(None, False, [0.5, 1.0, 2.0, 4.0, 8.0], id="persistent-raises"),
    ],
)
async def test_failure_on_page_3_of_5(
    lark: LarkClient,
    fake_lark: FakeLark,
    sleeps: SleepRecorder,
    times: int | None,
    expect_users: bool,
    delays: list[float],
) -> None:
    everyone = _directory(fake_lark)
    fake_lark.fail("users", page=3, department="od-a", times=times)
    if expect_users:
        assert {u.open_id for u in await lark.list_all_users()} == everyone
    else:
        with pytest.raises(LarkUnavailableError, match="HTTP 500 after 6 attempt"):
            await lark.list_all_users()
        # root, then od-a pages 1-2 and six tries of page 3; nothing after it.
        assert fake_lark.calls["users"] == 1 + 2 + 6
    assert sleeps.delays == delays


async def test_non_retryable_failure_on_page_3_raises_at_once(
    lark: LarkClient, fake_lark: FakeLark, sleeps: SleepRecorder
) -> None:
    _directory(fake_lark)
    fake_lark.fail("users", page=3, department="od-a", status=400, code=40004)
    with pytest.raises(LarkError) as caught:
        await lark.list_all_users()
    assert caught.value.code == 40004
    assert fake_lark.calls["users"] == 1 + 3
    assert sleeps.delays == []


@pytest.mark.parametrize(
    ("client_notices", "users_calls"),
    [
        pytest.param(False, 8 + 1, id="lark-refuses-then-client-refreshes"),
        pytest.param(True, 8, id="client-refreshes-before-lark-refuses"),
    ],
)
async def test_token_expiring_mid_listing_is_refreshed_transparently(
    lark: LarkClient,
    fake_lark: FakeLark,
    clock: ManualClock,
    sleeps: SleepRecorder,
    client_notices: bool,
    users_calls: int,
) -> None:
    everyone = _directory(fake_lark)

    def expire_before_fourth_page(endpoint: str, n: int) -> None:
        if endpoint == "users" and n == 3:
            # Inside the 5-minute margin, not yet expired.
            fake_lark.advance(6950)
            if client_notices:
                clock.advance(6950)
        if endpoint == "users" and n == 4:
            fake_lark.advance(300)

    fake_lark.hooks.append(expire_before_fourth_page)
    assert {u.open_id for u in await lark.list_all_users()} == everyone
    assert fake_lark.calls["tenant_token"] == 2
    assert fake_lark.calls["users"] == users_calls
    assert sleeps.delays == []


# -- messages -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("receive_id_type", "receive_id"),
    [
        pytest.param("open_id", "ou_00000001", id="open_id"),
        pytest.param("chat_id", "oc_admins", id="chat_id"),
        pytest.param("email", "admin@example.com", id="email"),
    ],
)
async def test_send_text_posts_lark_text_message(
    lark: LarkClient, fake_lark: FakeLark, receive_id_type: ReceiveIdType, receive_id: str
) -> None:
    receipt = await lark.send_text(
        receive_id,
        "令牌将在 3 天后过期",
        receive_id_type,
        idempotency_key="k1",
    )
    assert fake_lark.sent == [
        SentMessage(
            app_id=FAKE_APP_ID,
            receive_id_type=receive_id_type,
            receive_id=receive_id,
            msg_type="text",
            content={"text": "令牌将在 3 天后过期"},
            uuid="k1",
            message_id=receipt.message_id,
        )
    ]
    assert receipt == MessageReceipt(message_id=fake_lark.sent[0].message_id)


async def test_send_card_posts_interactive_message(lark: LarkClient, fake_lark: FakeLark) -> None:
    card = {
        "header": {"title": {"tag": "plain_text", "content": "Token expiring"}, "template": "red"},
        "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": "**app** cli_x"}}],
    }
    receipt = await lark.send_card("ou_admin", card)
    [sent] = fake_lark.sent
    assert (sent.msg_type, sent.receive_id_type, sent.receive_id) == (
        "interactive",
        "open_id",
        "ou_admin",
    )
    assert sent.content == card
    assert sent.message_id == receipt.message_id
    assert sent.uuid is not None
    assert uuid.UUID(sent.uuid).version == 4


async def test_send_retried_after_a_lost_answer_posts_once(
    lark: LarkClient, fake_lark: FakeLark, sleeps: SleepRecorder
) -> None:
    fake_lark.fail("messages", status=500, after_effect=True)
    receipt = await lark.send_text("ou_admin", "hello")
    assert [m.message_id for m in fake_lark.sent] == [receipt.message_id]
    assert fake_lark.calls["messages"] == 2
    assert sleeps.delays == [0.5]


async def test_send_refused_by_lark_raises_without_retry(
    lark: LarkClient, fake_lark: FakeLark, sleeps: SleepRecorder
) -> None:
    fake_lark.fail("messages", status=400, code=230002)
    with pytest.raises(LarkError) as caught:
        await lark.send_text("oc_elsewhere", "hi", "chat_id")
    assert caught.value.code == 230002
    assert fake_lark.sent == []
    assert sleeps.delays == []


@pytest.mark.parametrize(
    ("receive_id", "receive_id_type", "message"),
    [
        pytest.param("ou_x", "phone", "receive_id_type 'phone' is not one of", id="bad-type"),
        pytest.param("", "open_id", "receive_id is empty", id="empty-id"),
    ],
)
async def test_send_with_bad_recipient_is_refused_before_any_call(
    lark: LarkClient, fake_lark: FakeLark, receive_id: str, receive_id_type: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await lark.send_text(receive_id, "hi", receive_id_type)  # type: ignore[arg-type]
    assert fake_lark.calls["messages"] == 0


# -- user tokens ----------------------------------------------------------------------


async def test_refresh_user_token_answers_the_new_grant(
    lark: LarkClient, fake_lark: FakeLark
) -> None:
    old = fake_lark.grant_user_token()
    grant = await lark.refresh_user_token(old)
    assert grant.refresh_token == fake_lark.issued_tokens[-2]
    assert grant.access_token == fake_lark.issued_tokens[-1]
    assert grant.refresh_token != old
    assert grant.access_expires_at == START + timedelta(hours=2)
    assert grant.refresh_expires_at == START + timedelta(days=30)
    assert grant.scope == "auth:user.id:read"
    assert (fake_lark.calls["app_token"], fake_lark.calls["tenant_token"]) == (1, 0)


@pytest.mark.parametrize(
    ("spoil", "reason", "code"),
    [
        pytest.param("unknown", "invalid", 20026, id="unknown-token"),
        pytest.param("expire", "expired", 20037, id="marked-expired"),
        pytest.param("outlive", "expired", 20037, id="past-its-lifetime"),
        pytest.param("revoke", "revoked", 20064, id="revoked"),
        pytest.param("spend", "revoked", 20064, id="already-rotated"),
    ],
)
async def test_unusable_refresh_token_raises_with_reason(
    lark: LarkClient, fake_lark: FakeLark, spoil: str, reason: str, code: int
) -> None:
    token = fake_lark.grant_user_token()
    if spoil == "unknown":
        token = "ur-never-issued"
    elif spoil == "expire":
        fake_lark.expire_refresh_token(token)
    elif spoil == "outlive":
        fake_lark.advance(30 * 86400)
    elif spoil == "revoke":
        fake_lark.revoke_refresh_token(token)
    else:
        await lark.refresh_user_token(token)
    with pytest.raises(LarkRefreshTokenError) as caught:
        await lark.refresh_user_token(token)
    assert (caught.value.reason, caught.value.code) == (reason, code)
    assert caught.value.msg.startswith("refresh token")
    assert "authorise the app again" in str(caught.value)
