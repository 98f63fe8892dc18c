"""The operator console over HTTP: pages, sign-in and sessions, CSRF, read-only mode,
escaping, security headers, mounting, and pages added by an application."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

from kernel.admin.console._page import CSP
from kernel.console import ConsoleOptions, ConsolePage, ConsoleRequest, Markup, h
from kernel.console.html import esc, join
from kernel.failures import FailureRecord
from kernel.http import create_admin_app
from tests._console_support import (
    T0,
    TOKEN,
    ConsoleWorld,
    console_world,
    csrf_of,
    form_token_of,
    main_of,
    sign_in,
    tick,
)

pytestmark = pytest.mark.usefixtures("anyio_backend")


async def post(
    world: ConsoleWorld, path: str, data: dict[str, str], **headers: str
) -> tuple[int, str, str]:
    async with world.client.post(path, data=data, headers=headers,
                                 allow_redirects=False) as answer:
        return answer.status, answer.headers.get("Location", ""), await answer.text()


# -- what every page carries -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"),
    [
        pytest.param("/ui", 200, id="jobs"),
        pytest.param("/ui/jobs/tick", 200, id="job"),
        pytest.param("/ui/jobs/tick/remove", 200, id="confirm-remove"),
        pytest.param("/ui/failures", 200, id="failures"),
        pytest.param("/ui/login", 303, id="login-when-signed-in"),
        pytest.param("/ui/nope", 404, id="unknown"),
        pytest.param("/ui/jobs/nope", 404, id="unknown-job"),
    ],
)
async def test_every_page_has_a_strict_policy_and_is_never_stored(path: str, status: int) -> None:
    async with console_world() as world:
        await sign_in(world)
        async with world.client.get(path, allow_redirects=False) as answer:
            assert answer.status == status
            headers = answer.headers
            text = await answer.text()
    assert headers["Content-Security-Policy"] == CSP
    assert "'unsafe-inline'" not in CSP
    assert "http" not in CSP
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"
    if status != 303:
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        # Nothing inline to need the policy relaxed, nothing from elsewhere.
        assert "<script>" not in text
        assert "<style" not in text
        assert " style=" not in text
        assert not re.search(r'(src|href)="(https?:)?//', text)


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        pytest.param("console.css", "text/css", id="css"),
        pytest.param("console.js", "text/javascript", id="js"),
        pytest.param("favicon.svg", "image/svg+xml", id="icon"),
    ],
)
async def test_static_files_ship_in_the_package_and_revalidate(
    name: str, content_type: str
) -> None:
    async with console_world() as world:
        answer = await world.client.get(f"/ui/static/{name}")
        assert answer.status == 200
        assert answer.content_type == content_type
        assert answer.headers["Cache-Control"] == "no-cache"
        assert len(await answer.read()) > 100
        again = await world.client.get(f"/ui/static/{name}",
                                       headers={"If-None-Match": answer.headers["ETag"]})
        assert again.status == 304
        assert (await world.client.get("/ui/static/../http.py")).status == 404
        assert (await world.client.get("/ui/static/other.js")).status == 404


async def test_errors_are_pages_under_ui_and_json_elsewhere() -> None:
    async with console_world() as world:
        missing = await world.client.get("/ui/no/such/page")
        assert (missing.status, missing.content_type) == (404, "text/html")
        assert "There is no console page at /ui/no/such/page" in await missing.text()
        wrong = await world.client.put("/ui/failures")
        assert (wrong.status, wrong.headers["Allow"]) == (405, "GET, HEAD")
        assert wrong.content_type == "text/html"
        api = await world.client.get("/nope")
        assert api.content_type == "application/json"
        assert (await api.json())["error"]["code"] == "not_found"


# -- reading without signing in ------------------------------------------------------------


async def test_jobs_are_listed_in_words_with_times_in_the_zone_and_utc_on_hover() -> None:
    async with console_world() as world:
        status, html = await world.page("/ui")
    assert status == 200
    main = main_of(html)
    # The cron trigger as `cron explain` says it, and its expression.
    assert "at 09:00 and 18:00 every day (Asia/Shanghai)" in main
    assert "0 9,18 * * *" in main
    # 01:00 UTC is 09:00 in Shanghai: the run is now; the hover title is UTC.
    assert (
        '<time datetime="2026-12-01T01:00:00Z" title="2026-12-01 01:00:00 UTC">'
        '<span class="abs">2026-12-01 09:00:00 CST</span>' in main
    )
    assert '<span class="rel">(in 5 min)</span>' in main  # tick, every 5 minutes
    assert main.count('class="badge scheduled"') == 3
    # Not signed in: no forms, a link to sign in.
    assert "<form" not in main
    assert 'href="/ui/login?next=%2Fui"' in main


async def test_without_an_admin_token_the_console_is_read_only_and_says_how() -> None:
    hint = "set MY_TOKEN and restart"
    async with console_world(None, token_hint=hint) as world:
        status, html = await world.page("/ui")
        assert status == 200
        assert "Read-only: no admin token is configured" in html
        assert hint in html
        assert "<form" not in html
        assert "Sign in" not in html
        status, html = await world.page("/ui/failures")
        assert status == 403
        assert hint in html
        status, html = await world.page("/ui/login")
        assert status == 200
        assert "nobody can sign in" in html
        assert "<form" not in html
        status, _, html = await post(world, "/ui/jobs/tick/pause", {"csrf": "x"})
        assert status == 403
        assert "read-only" in html
        status, _, _ = await post(world, "/ui/login", {"token": TOKEN, "csrf": "x"})
        assert status == 200
        assert not world.kernel.get_job("tick").paused
        assert world.client.session.cookie_jar.filter_cookies(
            world.client.make_url("/ui")
        ).get("scheduler_console") is None


@pytest.mark.parametrize(
    "path", ["/ui/failures", "/ui/failures/abc", "/ui/jobs/tick/remove"]
)
async def test_records_and_actions_send_a_visitor_to_sign_in(path: str) -> None:
    async with console_world() as world:
        async with world.client.get(path, allow_redirects=False) as answer:
            assert answer.status == 303
            location = answer.headers["Location"]
    assert location.startswith("/ui/login?next=%2Fui%2F")


async def test_protect_jobs_needs_signing_in_for_the_job_pages_too() -> None:
    async with console_world(protect_jobs=True) as world:
        for path in ("/ui", "/ui/jobs/tick"):
            status, _ = await world.page(path)
            assert status == 303
        await sign_in(world)
        assert (await world.page("/ui/jobs/tick"))[0] == 200


# -- signing in ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "secure"),
    [
        pytest.param({}, False, id="http"),
        pytest.param({"X-Forwarded-Proto": "https"}, True, id="https-behind-a-proxy"),
    ],
)
async def test_signing_in_sets_an_httponly_strict_session_cookie(
    headers: dict[str, str], secure: bool
) -> None:
    async with console_world() as world:
        _, html = await world.page("/ui/login?next=%2Fui%2Ffailures")
        async with world.client.post(
            "/ui/login",
            data={"token": TOKEN, "csrf": form_token_of(html), "next": "/ui/failures"},
            headers=headers, allow_redirects=False,
        ) as answer:
            assert answer.status == 303
            assert answer.headers["Location"] == "/ui/failures"
            cookies = answer.headers.getall("Set-Cookie")
        session = next(c for c in cookies if c.startswith("scheduler_console="))
        assert "HttpOnly" in session
        assert "SameSite=Strict" in session
        assert "Path=/ui" in session
        assert ("Secure" in session) is secure
        assert len(world.console.sessions) == 1
        # A Secure cookie does not come back over plain HTTP, as in a browser.
        assert (await world.page("/ui/failures"))[0] == (303 if secure else 200)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("wrong-token-0123456789abc", id="wrong"),
        pytest.param(TOKEN[:-1], id="a-prefix"),
        pytest.param("", id="empty"),
        pytest.param(TOKEN + "x", id="longer"),
    ],
)
async def test_a_wrong_token_is_refused(
    token: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with console_world() as world:
        _, html = await world.page("/ui/login")
        status, location, page = await post(
            world, "/ui/login", {"token": token, "csrf": form_token_of(html)}
        )
        assert (status, location) == (401, "")
        assert "That is not the admin token." in page
        assert len(world.console.sessions) == 0
        assert (await world.page("/ui/failures"))[0] == 303
    assert "wrong admin token" in caplog.text
    assert TOKEN not in caplog.text
    assert (not token or token not in caplog.text)


async def test_signing_in_needs_the_forms_own_token() -> None:
    async with console_world() as world:
        for form in ({"token": TOKEN}, {"token": TOKEN, "csrf": "0" * 64}):
            status, _, page = await post(world, "/ui/login", form)
            assert status == 403
            assert "sign-in form had expired" in page
        assert len(world.console.sessions) == 0


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/ui",
        "http://evil.example/ui",
        "https://evil.example/",
        "/elsewhere",
        "/uix",
        "/ui\\..\\x",
        "/ui//evil.example",
    ],
)
async def test_after_signing_in_the_browser_never_leaves_the_console(target: str) -> None:
    async with console_world() as world:
        _, html = await world.page("/ui/login")
        status, location, _ = await post(
            world, "/ui/login", {"token": TOKEN, "csrf": form_token_of(html), "next": target}
        )
    assert (status, location) == (303, "/ui")


async def test_a_session_ends_after_idling_and_at_sign_out() -> None:
    async with console_world(console=ConsoleOptions(session_idle=600, refresh=0)) as world:
        csrf = await sign_in(world)
        await world.clock.advance(timedelta(minutes=9))
        assert (await world.page("/ui/failures"))[0] == 200  # used: idle time starts again
        await world.clock.advance(timedelta(minutes=11))
        assert (await world.page("/ui/failures"))[0] == 303
        csrf = await sign_in(world)
        status, location, _ = await post(world, "/ui/logout", {"csrf": csrf})
        assert (status, location) == (303, "/ui/login?signed_out=1")
        assert len(world.console.sessions) == 0
        assert (await world.page("/ui/failures"))[0] == 303


# -- forms and actions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"csrf": ""}, id="empty-token"),
        pytest.param({"csrf": "not-the-token"}, id="wrong-token"),
    ],
)
async def test_a_post_without_the_sessions_csrf_token_changes_nothing(
    form: dict[str, str],
) -> None:
    async with console_world() as world:
        await sign_in(world)
        for path in ("/ui/jobs/tick/pause", "/ui/jobs/tick/remove", "/ui/logout"):
            status, _, page = await post(world, path, form)
            assert status == 403
            assert "security token is missing or out of date" in page
        assert not world.kernel.get_job("tick").paused
        assert len(world.console.sessions) == 1


async def test_a_cross_site_post_is_refused_even_with_the_token() -> None:
    async with console_world() as world:
        csrf = await sign_in(world)
        status, _, _ = await post(world, "/ui/jobs/tick/pause", {"csrf": csrf},
                                  **{"Sec-Fetch-Site": "cross-site"})
        assert status == 403
        assert not world.kernel.get_job("tick").paused


async def test_a_post_without_a_session_goes_to_sign_in() -> None:
    async with console_world() as world:
        status, location, _ = await post(world, "/ui/jobs/tick/pause", {"csrf": "x"})
        assert (status, location) == (303, "/ui/login?next=%2Fui")
        assert not world.kernel.get_job("tick").paused


async def test_pause_resume_run_and_remove_act_and_say_so() -> None:
    async with console_world() as world:
        csrf = await sign_in(world)
        said = []
        for action, back in [("pause", "/ui"), ("resume", "/ui/jobs/tick"), ("run", "/ui")]:
            status, location, _ = await post(
                world, f"/ui/jobs/tick/{action}", {"csrf": csrf, "next": back}
            )
            assert (status, location) == (303, back)
            said.append(re.findall(r'class="flash ok"[^>]*>([^<]*)<',
                                   (await world.page(back))[1]))
            if action == "pause":
                assert world.kernel.get_job("tick").paused
        assert not world.kernel.get_job("tick").paused
        await world.clock.settle()
        assert [e.outcome for e in world.console.history.runs("tick")] == ["succeeded"]
        assert said[0] == ["Paused tick."]
        assert said[1] == ["Resumed tick."]
        assert said[2][0].startswith("Started run ")
        assert said[2][0].endswith(" of tick.")
        status, location, _ = await post(world, "/ui/jobs/tick/remove", {"csrf": csrf})
        assert (status, location) == (303, "/ui")
        assert "tick" not in {job.id for job in world.kernel.get_jobs()}
        # Removed meanwhile: said, nothing raised.
        status, location, _ = await post(world, "/ui/jobs/tick/pause", {"csrf": csrf})
        assert (status, location) == (303, "/ui")
        assert "There is no job tick" in (await world.page("/ui"))[1]


async def test_a_refused_action_is_said_on_the_page() -> None:
    gate = asyncio.Event()

    async def slow() -> None:
        await gate.wait()

    async with console_world() as world:
        csrf = await sign_in(world)
        world.kernel.add_interval_job(slow, hours=1, job_id="slow")
        await post(world, "/ui/jobs/slow/run", {"csrf": csrf})
        await world.clock.settle()
        await post(world, "/ui/jobs/slow/run", {"csrf": csrf})
        html = (await world.page("/ui/jobs/slow"))[1]
        gate.set()
        await world.clock.settle()
    assert "Could not run slow" in html
    assert 'class="badge running"' in html


async def test_a_failure_is_listed_filtered_shown_redacted_and_retried() -> None:
    async with console_world() as world:
        csrf = await sign_in(world)
        await post(world, "/ui/jobs/flaky/run", {"csrf": csrf})
        await post(world, "/ui/jobs/tick/run", {"csrf": csrf})
        await world.clock.settle()
        (record,) = await world.kernel.failure_store.list_failures()
        _, everything = await world.page("/ui/failures")
        _, only_tick = await world.page("/ui/failures?job=tick")
        _, only_flaky = await world.page("/ui/failures?job=flaky")
        assert f'data-failure="{record.id}"' in everything
        assert "No failed runs of tick are recorded." in only_tick
        assert f'data-failure="{record.id}"' in only_flaky
        status, page = await world.page(f"/ui/failures/{record.id}")
        assert status == 200
        body = main_of(page)
        assert "hunter2" not in page
        assert "password=***" in body
        assert "&lt;img src=x onerror=alert(1)&gt;" in body
        assert "<img" not in body
        assert 'class="traceback"' in body
        assert "RuntimeError" in body
        # The job page links the failed run to its record.
        assert f'href="/ui/failures/{record.id}"' in (await world.page("/ui/jobs/flaky"))[1]
        status, location, _ = await post(world, f"/ui/failures/{record.id}/retry",
                                         {"csrf": csrf})
        assert (status, location) == (303, f"/ui/failures/{record.id}")
        await world.clock.settle()
        page = (await world.page(location))[1]
        assert "Retry started: run " in page
        retried = await world.kernel.failure_store.get_failure(record.id)
        assert retried is not None
        assert len(retried.retries) == 1
        assert "1 (last failed)" in (await world.page("/ui/failures"))[1]
        runs = world.console.history.runs("flaky")
        assert [(e.outcome, e.retry_of is not None) for e in runs] == [
            ("failed", False), ("failed", True),
        ]


async def test_an_unknown_failure_and_a_removed_jobs_failure() -> None:
    async with console_world() as world:
        csrf = await sign_in(world)
        assert (await world.page("/ui/failures/nope"))[0] == 404
        await post(world, "/ui/jobs/flaky/run", {"csrf": csrf})
        await world.clock.settle()
        (record,) = await world.kernel.failure_store.list_failures()
        world.kernel.remove_job("flaky")
        page = (await world.page(f"/ui/failures/{record.id}"))[1]
        assert "no longer exists, so it cannot be retried" in page
        await post(world, f"/ui/failures/{record.id}/retry", {"csrf": csrf})
        assert "nothing was retried" in (await world.page(f"/ui/failures/{record.id}"))[1]


# -- escaping and odd ids --------------------------------------------------------------------


async def test_job_ids_names_and_messages_are_escaped_everywhere() -> None:
    evil = '<script>alert("id")</script>&'
    async with console_world() as world:
        csrf = await sign_in(world)
        world.kernel.add_interval_job(tick, hours=1, job_id=evil, name='"><b>name')
        await world.kernel.failure_store.add_failure(FailureRecord(
            id="f1", job_id=evil, run_id="r1", scheduled_at=T0, started_at=T0, duration=1.0,
            exc_type="ValueError", message="<i>msg</i> token=abc123secret",
            traceback="Traceback\n<script>tb()</script>\nValueError",
        ))
        pages = [
            (await world.page(path))[1]
            for path in ("/ui", "/ui/jobs/%3Cscript%3Ealert(%22id%22)%3C%2Fscript%3E%26",
                         "/ui/failures", "/ui/failures/f1")
        ]
        assert csrf
    for page in pages:
        assert "<script>alert" not in page
        assert "<b>name" not in page
        assert "<i>msg" not in page
        assert "<script>tb()" not in page
        assert "abc123secret" not in page
    assert "&lt;script&gt;alert(&quot;id&quot;)&lt;/script&gt;&amp;" in pages[0]
    assert "&quot;&gt;&lt;b&gt;name" in pages[1]
    assert "&lt;script&gt;tb()&lt;/script&gt;" in pages[3]


@pytest.mark.parametrize(
    "job_id",
    ["a/b", "with space", "ünïcødé", "50%", "q?x=1#frag", "..", ".", "~tilde"],
)
async def test_every_job_id_has_a_working_link(job_id: str) -> None:
    async with console_world(jobs=False) as world:
        await sign_in(world)
        world.kernel.add_interval_job(tick, hours=1, job_id=job_id)
        _, html = await world.page("/ui")
        href = re.search(r'<a href="([^"]+)" class="job-id">', html)
        assert href is not None
        status, page = await world.page(href.group(1).replace("&amp;", "&"))
        assert status == 200, page
        assert f"<h1>Job {esc(job_id)}</h1>" in page
        csrf = csrf_of(page)
        action = re.search(r'<form method="post" action="([^"]+/pause)"', page)
        assert action is not None
        async with world.client.post(action.group(1).replace("&amp;", "&"),
                                     data={"csrf": csrf}, allow_redirects=False) as answer:
            assert answer.status == 303
        assert world.kernel.get_job(job_id).paused


# -- runs, chart, lateness -------------------------------------------------------------------


async def test_a_jobs_page_shows_its_recent_runs_chart_and_p99_lateness() -> None:
    async with console_world() as world:
        await world.clock.advance(timedelta(minutes=31))
        status, html = await world.page("/ui/jobs/tick")
        _, listing = await world.page("/ui")
    assert status == 200
    runs = world.console.history.runs("tick")
    assert [e.outcome for e in runs] == ["succeeded"] * 6
    body = main_of(html)
    assert body.count('<tr data-run="') == 6
    # Two panels of bars (duration and lateness), one <title> per bar.
    assert body.count("<rect ") == 12
    assert '<svg viewBox="0 0 600' in body
    assert 'role="img"' in body
    # Virtual time: every run started exactly on time.
    assert 'title="99th percentile of the last 6 scheduled runs">&lt; 1 ms</span>' in listing


async def test_a_job_that_never_ran_says_so() -> None:
    async with console_world() as world:
        _, html = await world.page("/ui/jobs/report")
    assert "No runs recorded since the service started" in html
    assert "keeps the last 50 runs of each job" in html
    assert "<svg" not in html


# -- mounting, options and added pages -------------------------------------------------------


async def test_mounted_under_a_prefix_every_link_and_cookie_follows() -> None:
    async with console_world(prefix="/scheduler") as world:
        csrf = await sign_in(world, base="/scheduler/ui")
        _, html = await world.page("/scheduler/ui")
        assert 'href="/scheduler/ui/jobs/tick"' in html
        assert 'href="/scheduler/ui/static/console.css"' in html
        status, location, _ = await post(world, "/scheduler/ui/jobs/tick/pause",
                                         {"csrf": csrf, "next": "/scheduler/ui"})
        assert (status, location) == (303, "/scheduler/ui")
        assert world.kernel.get_job("tick").paused


async def test_console_false_leaves_it_out() -> None:
    async with console_world(console=False) as world:
        answer = await world.client.get("/ui")
        assert answer.status == 404
        assert answer.content_type == "application/json"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"path": "ui"}, "must start with /", id="relative-path"),
        pytest.param({"path": "/"}, "must start with /", id="root"),
        pytest.param({"session_idle": 1}, "session_idle=1", id="idle-too-short"),
        pytest.param({"session_lifetime": 1e9}, "session_lifetime", id="lifetime-too-long"),
        pytest.param({"refresh": 0.5}, "refresh=0.5", id="refresh-too-fast"),
        pytest.param({"history_size": 0}, "history size 0", id="no-history"),
    ],
)
def test_bad_console_options_name_the_fix(options: dict[str, object], message: str) -> None:
    from kernel import Kernel

    with pytest.raises(ValueError, match=re.escape(message)):
        create_admin_app(Kernel(), token=TOKEN, metrics=None,
                         console=ConsoleOptions(**options))  # type: ignore[arg-type]


async def _hello(ctx: ConsoleRequest) -> Markup:
    return join(h("p", {"id": "hello"}, "hello <world>"), ctx.when(ctx.now))


@pytest.mark.parametrize(
    ("needs_sign_in", "signed_in", "status"),
    [
        pytest.param(False, False, 200, id="open-page"),
        pytest.param(True, False, 303, id="needs-sign-in"),
        pytest.param(True, True, 200, id="signed-in"),
    ],
)
async def test_an_application_adds_pages_of_its_own(
    needs_sign_in: bool, signed_in: bool, status: int
) -> None:
    from kernel.console import add_console_page

    async with console_world() as world:
        if signed_in:
            await sign_in(world)
        # Before start in real use; the page table is read per request, so this works too.
        assert add_console_page(world.app, ConsolePage("hello", "Hello", _hello,
                                                       needs_sign_in=needs_sign_in))
        got, html = await world.page("/ui/hello")
        assert got == status
        if status == 200:
            assert '<p id="hello">hello &lt;world&gt;</p>' in html
            assert '<a href="/ui/hello" aria-current="page">Hello</a>' in html


@pytest.mark.parametrize("path", ["jobs", "static", "login", "a/b", "", "hello", "~x", "..", "Big"])
def test_a_page_cannot_take_the_consoles_own_paths(path: str) -> None:
    from kernel import Kernel
    from kernel.console import CONSOLE

    app = create_admin_app(Kernel(), token=TOKEN, metrics=None)
    console = app[CONSOLE]
    console.add_page(ConsolePage("hello", "Hello", _hello))
    with pytest.raises(ValueError, match="console page"):
        console.add_page(ConsolePage(path, "X", _hello))


def test_add_console_page_without_a_console_says_so() -> None:
    from kernel import Kernel
    from kernel.console import add_console_page

    app = create_admin_app(Kernel(), token=TOKEN, metrics=None, console=False)
    assert add_console_page(app, ConsolePage("hello", "Hello", _hello)) is False


class _Bare:
    """A kernel with only what the admin API needs: no events, no zone, no clock."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        if name in ("add_listener", "timezone", "clock"):
            raise AttributeError(name)
        return getattr(self._inner, name)


async def test_a_kernel_without_events_or_zone_still_gets_a_console() -> None:
    from tests.test_http_api import FakeJob, FakeKernel

    kernel = _Bare(FakeKernel(jobs={"a": FakeJob("a")}))
    app = create_admin_app(kernel, token=TOKEN, metrics=None)  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        answer = await client.get("/ui")
        text = await answer.text()
    assert answer.status == 200
    assert "interval[6:00:00]" in text
    assert " UTC" in text


def test_markup_escapes_what_is_not_markup() -> None:
    assert h("a", {"href": '"x"', "hidden": True, "title": None}, "<b>", Markup("<i>i</i>")) == (
        '<a href="&quot;x&quot;" hidden>&lt;b&gt;<i>i</i></a>'
    )
    assert join(None, ["a", ["<"]], 3) == "a&lt;3"
    assert esc(Markup("<br>")) == "<br>"


@pytest.mark.parametrize(
    ("paused", "running", "states"),
    [
        pytest.param(False, 0, ("scheduled",), id="scheduled"),
        pytest.param(True, 0, ("paused",), id="paused"),
        pytest.param(False, 2, ("running",), id="running"),
        pytest.param(True, 1, ("paused", "running"), id="paused-during-a-run"),
    ],
)
def test_a_jobs_state(paused: bool, running: int, states: tuple[str, ...]) -> None:
    from kernel.admin.console._jobs import states_of
    from tests.test_http_api import FakeJob

    assert states_of(FakeJob("j", paused=paused, running=running)) == states
