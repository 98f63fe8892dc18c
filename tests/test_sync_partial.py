"""One department that cannot be listed (e.g. the root, for an app whose contact scope does
not include all members) no longer fails its app's sync: it is skipped, logged, counted, and
the sync is reported ``partial``, with nobody deactivated."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from actors.lark import LarkClient, LarkError
from tests._service_support import ServiceBackend, add_apps, running_service
from tests.fake_lark import FakeLark
from tests.lark_helpers import SleepRecorder

pytestmark = pytest.mark.anyio

NO_SCOPE = 40004  # Lark: "no dept authority" (the department is outside the contact scope)


def directory(fake: FakeLark) -> None:
    """Root: 2 users; od-a: 3 users (one also in od-b); od-b: 1 more."""
    fake.add_department("od-a")
    fake.add_department("od-b", parent="od-a")
    fake.add_users(2)
    fake.add_users(2, "od-a")
    fake.add_user("ou_both", departments=("od-a", "od-b"))
    fake.add_users(1, "od-b")


@pytest.mark.parametrize(
    ("department", "missing"),
    [pytest.param("0", 2, id="root-outside-the-scope"), pytest.param("od-b", 1, id="a-child")],
)
async def test_the_directory_skips_a_department_that_fails(
    lark: LarkClient, fake_lark: FakeLark, department: str, missing: int
) -> None:
    directory(fake_lark)
    fake_lark.fail("users", department=department, status=400, code=NO_SCOPE, times=None)
    listing = await lark.list_directory()
    assert len(listing.users) == 6 - missing
    assert listing.departments == 3
    assert [f.department_id for f in listing.failed] == [department]
    assert listing.failed[0].error.startswith("LarkError: GET /open-apis/contact/v3/users")
    assert "code=40004" in listing.failed[0].error
    assert not listing.complete
    with pytest.raises(LarkError):  # the strict listing still refuses a partial directory
        await lark.list_all_users()


async def test_the_directory_fails_when_no_department_lists(
    lark: LarkClient, fake_lark: FakeLark
) -> None:
    directory(fake_lark)
    fake_lark.fail("users", status=400, code=NO_SCOPE, times=None)
    with pytest.raises(LarkError, match="code=40004"):
        await lark.list_directory()


async def test_a_complete_directory(lark: LarkClient, fake_lark: FakeLark) -> None:
    directory(fake_lark)
    listing = await lark.list_directory()
    assert (len(listing.users), listing.departments, listing.failed) == (6, 3, ())
    assert listing.complete


async def test_a_partial_sync_writes_what_it_listed_and_deactivates_nobody(
    tmp_path: Path, fake_lark: FakeLark, caplog: pytest.LogCaptureFixture
) -> None:
    directory(fake_lark)
    backend = ServiceBackend("sqlite", tmp_path)
    async with running_service(backend.config(fake_lark), sleeps=SleepRecorder()) as service:
        await add_apps(service, fake_lark, "cli_a")
        first = await service.sync_user_info()
        assert [(a.status, a.users) for a in first.apps] == [("ok", 6)]
        root_users = {u["open_id"] for u in fake_lark.users if u["department_ids"] == ["0"]}
        # Someone new in od-a, then the root drops out of the app's contact scope.
        fake_lark.add_user("ou_new", departments=("od-a",))
        fake_lark.fail("users", department="0", status=400, code=NO_SCOPE, times=None)
        with caplog.at_level(logging.WARNING):
            report = await service.sync_user_info()  # the run succeeds
        (app,) = report.apps
        assert (app.status, app.users, app.added, app.deactivated) == ("partial", 5, 1, 0)
        assert app.departments_failed == ("0",)
        assert app.error is not None
        assert app.error.startswith("1 of 3 departments could not be listed and were skipped (0: ")
        assert report.partial == (app,)
        assert report.failed == ()
        stored = {u.open_id: u.active for u in await service.store.list_users("cli_a")}
        assert all(stored[open_id] for open_id in root_users)  # not deactivated
        assert stored["ou_new"]
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(
            line.startswith("synced app cli_a partially: 5 users (1 added, 0 updated), none "
                            "deactivated because 1 of 3 departments could not be listed")
            for line in warnings
        ), warnings  # fmt: skip
        counted = {
            tuple(labels.items()): value
            for labels, value in service.registry.get("lark_sync_departments_failed_total")
            .get_all()
        }
        assert counted == {(("app_id", "cli_a"),): 1}

