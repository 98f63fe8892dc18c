"""The admin HTTP API: auth, every endpoint, and bad input answered with JSON errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kernel.api_models import ReadyCheck, ReadyReport
from kernel.errors import JobLookupError, KernelNotRunningError
from kernel.failures import FailureRecord, MemoryFailureStore
from kernel.http import AdminServer, create_admin_app
from kernel.metrics import SchedulerMetrics

# Parametrised async tests must ask for anyio_backend themselves: anyio's plugin rebuilds
# (and so un-parametrises) async items that the conftest marks only after collection.
pytestmark = pytest.mark.usefixtures("anyio_backend")

TOKEN = "s3cret-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)


@dataclass
class FakeJob:
    id: str
    name: str = "a job"
    trigger: str = "interval[6:00:00]"
    next_run_time: datetime | None = T0
    paused: bool = False
    func_ref: str = "actors.sync:sync_user_info"
    args: tuple[Any, ...] = ("app_secret=hunter2",)
    kwargs: dict[str, Any] = field(default_factory=dict)
    coalesce: bool = True
    max_instances: int = 1
    misfire_grace_time: float | None = 60
    timeout: float | None = None
    running: int = 0


@dataclass
class FakeKernel:
    """Stands in for kernel.Kernel: the admin API only uses this surface."""

    running: bool = True
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    failure_store: MemoryFailureStore = field(default_factory=MemoryFailureStore)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def get_jobs(self) -> list[FakeJob]:
        return list(self.jobs.values())

    def add_listener(self, callback: Callable[[object], None]) -> Callable[[], None]:
        return lambda: None

    def get_job(self, job_id: str) -> FakeJob:
        if job_id not in self.jobs:
            raise JobLookupError(job_id)
        return self.jobs[job_id]

    def run_job(self, job_id: str) -> str:
        self.get_job(job_id)
        if not self.running:
            raise KernelNotRunningError("start the kernel first")
        self.calls.append(("run", job_id))
        return f"run-{len(self.calls)}"

    def pause_job(self, job_id: str) -> None:
        self.jobs[job_id] = replace(self.get_job(job_id), paused=True, next_run_time=None)

    def resume_job(self, job_id: str) -> None:
        self.jobs[job_id] = replace(self.get_job(job_id), paused=False, next_run_time=T0)

    def remove_job(self, job_id: str) -> None:
        self.get_job(job_id)
        del self.jobs[job_id]

    async def retry_failure(self, failure_id: str) -> str:
        record = await self.failure_store.get_failure(failure_id)
        assert record is not None
        self.get_job(record.job_id)
        self.calls.append(("retry", failure_id))
        return f"run-{len(self.calls)}"


def failure(fid: str, job_id: str = "sync_user_info", **kw: Any) -> FailureRecord:
    fields: dict[str, Any] = {
        "id": fid,
        "job_id": job_id,
        "run_id": f"run-of-{fid}",
        "scheduled_at": T0,
        "started_at": T0,
        "duration": 0.5,
        "exc_type": "RuntimeError",
        "message": "boom",
        "traceback": "Traceback ...\nRuntimeError: boom\n",
    }
    fields.update(kw)
    return FailureRecord(**fields)


@pytest.fixture
def kernel() -> FakeKernel:
    return FakeKernel(jobs={"sync_user_info": FakeJob("sync_user_info"), "b": FakeJob("b")})


MakeClient = Callable[..., Any]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[TestClient[web.Request, web.Application]] = []

    async def make(app: web.Application) -> TestClient[web.Request, web.Application]:
        client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(
    kernel: FakeKernel, make_client: MakeClient
) -> TestClient[web.Request, web.Application]:
    metrics = SchedulerMetrics(version="1.0")
    return await make_client(create_admin_app(kernel, token=TOKEN, metrics=metrics))  # type: ignore[no-any-return]


async def error_of(resp: aiohttp.ClientResponse) -> tuple[int, str, str]:
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    return resp.status, body["error"]["code"], body["error"]["message"]


# -- health, readiness, metrics ----------------------------------------------------------


async def test_healthz(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("running", "extra", "status", "checks"),
    [
        pytest.param(True, None, 200, [("kernel", True)], id="running"),
        pytest.param(False, None, 503, [("kernel", False)], id="stopped"),
        pytest.param(
            True,
            ReadyReport(ready=True, checks=(ReadyCheck(name="db", ok=True),)),
            200,
            [("kernel", True), ("db", True)],
            id="extra-ok",
        ),
        pytest.param(
            True,
            ReadyReport(ready=False, checks=(ReadyCheck(name="db", ok=False, detail="down"),)),
            503,
            [("kernel", True), ("db", False)],
            id="extra-not-ready",
        ),
        pytest.param(
            True, RuntimeError("db"), 503, [("kernel", True), ("readiness", False)], id="raises"
        ),
    ],
)
async def test_readyz(
    kernel: FakeKernel,
    make_client: MakeClient,
    running: bool,
    extra: ReadyReport | Exception | None,
    status: int,
    checks: list[tuple[str, bool]],
) -> None:
    kernel.running = running

    async def readiness() -> ReadyReport:
        if isinstance(extra, Exception):
            raise extra
        assert extra is not None
        return extra

    app = create_admin_app(
        kernel, token=None, metrics=None, readiness=None if extra is None else readiness
    )
    resp = await (await make_client(app)).get("/readyz")
    assert resp.status == status
    body = await resp.json()
    assert body["ready"] is (status == 200)
    assert [(c["name"], c["ok"]) for c in body["checks"]] == checks


async def test_metrics_endpoint(kernel: FakeKernel, make_client: MakeClient) -> None:
    metrics = SchedulerMetrics(version="1.0")
    metrics.attach(kernel)  # type: ignore[arg-type]
    client = await make_client(create_admin_app(kernel, token=None, metrics=metrics))
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = await resp.text()
    assert 'scheduled_task_executions_total{status="failure",task_name="b"} 0\n' in text
    assert "scheduler_up 1\n" in text


async def test_metrics_disabled(kernel: FakeKernel, make_client: MakeClient) -> None:
    client = await make_client(create_admin_app(kernel, token=None, metrics=None))
    status, code, message = await error_of(await client.get("/metrics"))
    assert (status, code) == (404, "metrics_disabled")
    assert "pass metrics=SchedulerMetrics()" in message


# -- jobs --------------------------------------------------------------------------------


async def test_list_and_get_jobs_without_token_and_without_args(
    client: TestClient[web.Request, web.Application],
) -> None:
    resp = await client.get("/jobs")
    assert resp.status == 200
    body = await resp.json()
    assert [j["id"] for j in body["jobs"]] == ["sync_user_info", "b"]
    resp = await client.get("/jobs/sync_user_info")
    assert await resp.json() == {
        "id": "sync_user_info",
        "name": "a job",
        "trigger": "interval[6:00:00]",
        "next_run_time": "2026-11-29T01:00:00Z",
        "paused": False,
        "func_ref": "actors.sync:sync_user_info",
        "coalesce": True,
        "max_instances": 1,
        "misfire_grace_time": 60,
        "timeout": None,
        "running": 0,
    }
    assert "hunter2" not in await (await client.get("/jobs")).text()


async def test_protect_jobs_requires_the_token_for_listings(
    kernel: FakeKernel, make_client: MakeClient
) -> None:
    client = await make_client(
        create_admin_app(kernel, token=TOKEN, metrics=None, protect_jobs=True)
    )
    assert (await client.get("/jobs")).status == 401
    assert (await client.get("/jobs/b")).status == 401
    assert (await client.get("/jobs", headers=AUTH)).status == 200


async def test_unknown_job(client: TestClient[web.Request, web.Application]) -> None:
    for method, path in [
        ("GET", "/jobs/nope"),
        ("POST", "/jobs/nope/run"),
        ("POST", "/jobs/nope/pause"),
        ("POST", "/jobs/nope/resume"),
        ("DELETE", "/jobs/nope"),
    ]:
        status, code, message = await error_of(await client.request(method, path, headers=AUTH))
        assert (status, code, message) == (
            404,
            "unknown_job",
            "no job with id 'nope'; GET /jobs lists the jobs",
        ), (method, path)


async def test_run_pause_resume_remove(
    kernel: FakeKernel, client: TestClient[web.Request, web.Application]
) -> None:
    resp = await client.post("/jobs/b/run", headers=AUTH)
    assert resp.status == 202
    assert await resp.json() == {"job_id": "b", "run_id": "run-1"}
    assert kernel.calls == [("run", "b")]

    resp = await client.post("/jobs/b/pause", headers=AUTH)
    assert resp.status == 200
    assert {k: v for k, v in (await resp.json()).items() if k in ("paused", "next_run_time")} == {
        "paused": True,
        "next_run_time": None,
    }
    resp = await client.post("/jobs/b/resume", headers=AUTH, json={})
    assert (await resp.json())["paused"] is False

    resp = await client.delete("/jobs/b", headers=AUTH)
    assert resp.status == 200
    assert await resp.json() == {"job_id": "b", "removed": True}
    assert "b" not in kernel.jobs
    assert (await client.get("/jobs/b")).status == 404


async def test_run_when_kernel_stopped_is_a_conflict(
    kernel: FakeKernel, client: TestClient[web.Request, web.Application]
) -> None:
    kernel.running = False
    status, code, message = await error_of(await client.post("/jobs/b/run", headers=AUTH))
    assert (status, code) == (409, "kernel_not_running")
    assert message == "the kernel is not running: start the kernel first"


# -- auth --------------------------------------------------------------------------------

PROTECTED = [
    ("POST", "/jobs/b/run"),
    ("POST", "/jobs/b/pause"),
    ("POST", "/jobs/b/resume"),
    ("DELETE", "/jobs/b"),
    ("GET", "/failures"),
    ("GET", "/failures/f1"),
    ("POST", "/failures/f1/retry"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        pytest.param({}, 401, "missing_token", id="no-header"),
        pytest.param(
            {"Authorization": "Bearer wrong-token-0123456789"}, 401, "invalid_token", id="wrong"
        ),
        pytest.param({"Authorization": f"Bearer {TOKEN}x"}, 401, "invalid_token", id="longer"),
        pytest.param({"Authorization": f"Basic {TOKEN}"}, 401, "invalid_token", id="scheme"),
        pytest.param({"Authorization": "Bearer ünïcødé"}, 401, "invalid_token", id="non-ascii"),
        pytest.param({"Authorization": f"bearer {TOKEN}"}, None, None, id="right-any-case"),
    ],
)
async def test_auth(
    kernel: FakeKernel,
    client: TestClient[web.Request, web.Application],
    method: str,
    path: str,
    headers: dict[str, str],
    status: int | None,
    code: str | None,
) -> None:
    await kernel.failure_store.add_failure(failure("f1", job_id="b"))
    resp = await client.request(method, path, headers=headers)
    if status is None:
        assert resp.status in (200, 202)
        return
    got = await error_of(resp)
    assert got[:2] == (status, code)
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="scheduler-admin"'
    assert TOKEN not in got[2]
    assert kernel.calls == []


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
async def test_no_token_configured_refuses_with_how_to(
    kernel: FakeKernel, make_client: MakeClient, method: str, path: str
) -> None:
    client = await make_client(create_admin_app(kernel, token=None, metrics=None))
    status, code, message = await error_of(await client.request(method, path, headers=AUTH))
    assert (status, code) == (403, "admin_token_not_configured")
    assert f"{method} {path} needs an admin token, and none is configured" in message
    assert "token=..." in message
    assert kernel.calls == []


@pytest.mark.parametrize(
    "token", ["", "short", " padded-token-0123456789 "], ids=["empty", "short", "spaces"]
)
def test_weak_tokens_are_refused(kernel: FakeKernel, token: str) -> None:
    with pytest.raises(ValueError, match=r"at least 16 characters .* secrets.token_urlsafe\(32\)"):
        create_admin_app(kernel, token=token, metrics=None)


# -- failures ----------------------------------------------------------------------------


async def test_failures_list_filter_limit_and_redaction(
    kernel: FakeKernel, client: TestClient[web.Request, web.Application]
) -> None:
    store = kernel.failure_store
    await store.add_failure(failure("f1"))
    await store.add_failure(failure("f2", job_id="b"))
    await store.add_failure(
        failure("f3", message="401 for app_secret=hunter2", traceback="Bearer abcdefghijklmnop\n")
    )
    body = await (await client.get("/failures", headers=AUTH)).json()
    assert [f["id"] for f in body["failures"]] == ["f3", "f2", "f1"]
    assert body["failures"][0]["message"] == "401 for app_secret=***"
    assert body["failures"][0]["traceback"] == "Bearer ***\n"
    assert set(body["failures"][2]) == {
        "id", "job_id", "run_id", "scheduled_at", "started_at", "duration", "exc_type",
        "message", "traceback", "timed_out", "attempt", "retry_of", "retries",
    }  # fmt: skip
    body = await (await client.get("/failures?job_id=sync_user_info&limit=1", headers=AUTH)).json()
    assert [f["id"] for f in body["failures"]] == ["f3"]
    resp = await client.get("/failures/f3", headers=AUTH)
    assert (await resp.json())["message"] == "401 for app_secret=***"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        pytest.param(
            "limit=abc", "limit must be a whole number from 1 to 1000, got 'abc'", id="nan"
        ),
        pytest.param("limit=0", "limit must be a whole number from 1 to 1000, got '0'", id="zero"),
        pytest.param(
            "limit=1001", "limit must be a whole number from 1 to 1000, got '1001'", id="big"
        ),
        pytest.param("limit=-1", "limit must be a whole number from 1 to 1000, got '-1'", id="neg"),
        pytest.param("limit=1&limit=2", "give the query parameter limit at most once", id="twice"),
        pytest.param(
            "job=x",
            "unknown query parameter(s) job; /failures takes job_id and limit",
            id="unknown",
        ),
        pytest.param(
            "job_id=", "job_id must not be empty; leave it out for all jobs", id="empty-job-id"
        ),
    ],
)
async def test_failures_bad_query(
    client: TestClient[web.Request, web.Application], query: str, message: str
) -> None:
    got = await error_of(await client.get(f"/failures?{query}", headers=AUTH))
    assert got == (400, "invalid_query", message)


async def test_query_on_an_endpoint_without_parameters(
    client: TestClient[web.Request, web.Application],
) -> None:
    got = await error_of(await client.get("/jobs?page=2"))
    assert got == (400, "invalid_query", "this endpoint takes no query parameters, got: page")


async def test_unknown_failure(client: TestClient[web.Request, web.Application]) -> None:
    for method, path in [("GET", "/failures/nope"), ("POST", "/failures/nope/retry")]:
        status, code, message = await error_of(await client.request(method, path, headers=AUTH))
        assert (status, code) == (404, "unknown_failure")
        assert message.startswith("no failure record with id 'nope'; GET /failures lists them")


async def test_retry_a_failure(
    kernel: FakeKernel, client: TestClient[web.Request, web.Application]
) -> None:
    await kernel.failure_store.add_failure(failure("f1", job_id="b"))
    resp = await client.post("/failures/f1/retry", headers=AUTH)
    assert resp.status == 202
    assert await resp.json() == {"failure_id": "f1", "job_id": "b", "run_id": "run-1"}
    assert kernel.calls == [("retry", "f1")]
    del kernel.jobs["b"]
    got = await error_of(await client.post("/failures/f1/retry", headers=AUTH))
    assert got == (409, "job_gone", "failure 'f1' belongs to job 'b', which no longer exists")


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        pytest.param("PUT", "/jobs", "GET, HEAD", id="put-jobs"),
        pytest.param("GET", "/jobs/b/run", "POST", id="get-run"),
        pytest.param("POST", "/jobs/b", "DELETE, GET, HEAD", id="post-job"),
        pytest.param("POST", "/healthz", "GET, HEAD", id="post-healthz"),
        pytest.param("DELETE", "/failures/f1", "GET, HEAD", id="delete-failure"),
        pytest.param("PATCH", "/failures/f1/retry", "POST", id="patch-retry"),
    ],
)
async def test_wrong_method(
    client: TestClient[web.Request, web.Application], method: str, path: str, allowed: str
) -> None:
    resp = await client.request(method, path, headers=AUTH)
    status, code, message = await error_of(resp)
    assert (status, code) == (405, "method_not_allowed")
    assert resp.headers["Allow"] == allowed
    assert message.startswith(f"{method} is not allowed on {path}; use ")


async def test_unknown_route(client: TestClient[web.Request, web.Application]) -> None:
    status, code, message = await error_of(await client.get("/nope"))
    assert (status, code) == (404, "not_found")
    assert message.startswith("no route GET /nope; the admin API serves /healthz")


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        pytest.param(b"{not json", "malformed_json", "the body is not valid JSON: ", id="broken"),
        pytest.param(b'{"a": 1}', "invalid_body", "this endpoint takes no options", id="field"),
        pytest.param(b"[1, 2]", "invalid_body", "this endpoint takes no options", id="array"),
        pytest.param(b'"x"', "invalid_body", "this endpoint takes no options", id="string"),
        pytest.param(b"\xff\xfe", "malformed_json", "the body is not valid JSON: ", id="binary"),
    ],
)
async def test_bad_body(
    kernel: FakeKernel,
    client: TestClient[web.Request, web.Application],
    body: bytes,
    code: str,
    message: str,
) -> None:
    resp = await client.post(
        "/jobs/b/run", data=body, headers=AUTH | {"Content-Type": "application/json"}
    )
    got = await error_of(resp)
    assert got[:2] == (400, code)
    assert got[2].startswith(message)
    assert kernel.calls == []


@pytest.mark.parametrize("body", [b"", b"{}", b"  {} \n"], ids=["empty", "object", "spaces"])
async def test_empty_options_are_accepted(
    client: TestClient[web.Request, web.Application], body: bytes
) -> None:
    assert (await client.post("/jobs/b/run", data=body, headers=AUTH)).status == 202


async def test_oversized_body(kernel: FakeKernel, make_client: MakeClient) -> None:
    client = await make_client(create_admin_app(kernel, token=TOKEN, metrics=None, max_body=1024))
    big = b'{"x": "' + b"a" * 2000 + b'"}'
    got = await error_of(await client.post("/jobs/b/run", data=big, headers=AUTH))
    assert got == (
        413,
        "body_too_large",
        "the body (2009 bytes) is larger than the 1024 bytes this API accepts",
    )

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(4):
            yield b" " * 400

    got = await error_of(await client.post("/jobs/b/run", data=chunks(), headers=AUTH))
    assert got == (413, "body_too_large", "the body is larger than the 1024 bytes this API accepts")
    assert kernel.calls == []


async def test_a_bug_answers_500_without_details(
    kernel: FakeKernel, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> list[FakeJob]:
        raise RuntimeError("app_secret=hunter2 leaked into an exception")

    kernel.get_jobs = broken  # type: ignore[method-assign]
    client = await make_client(create_admin_app(kernel, token=None, metrics=None))
    got = await error_of(await client.get("/jobs"))
    assert got == (500, "internal_error", "internal error; the scheduler's log has the details")
    assert "admin API: GET /jobs failed" in caplog.text


# -- mounting and serving ----------------------------------------------------------------


async def test_mounts_in_an_embedders_app(kernel: FakeKernel, make_client: MakeClient) -> None:
    outer = web.Application()
    outer.add_subapp("/scheduler", create_admin_app(kernel, token=TOKEN, metrics=None))
    client = await make_client(outer)
    assert (await client.get("/scheduler/healthz")).status == 200
    assert (await client.post("/scheduler/jobs/b/run", headers=AUTH)).status == 202
    got = await error_of(await client.get("/scheduler/jobs/nope"))
    assert got[:2] == (404, "unknown_job")
    got = await error_of(await client.put("/scheduler/jobs"))
    assert got[:2] == (405, "method_not_allowed")


async def test_admin_server_binds_loopback_and_serves(kernel: FakeKernel) -> None:
    server = AdminServer(kernel, port=0, token=TOKEN)
    assert server.host == "127.0.0.1"
    async with server:
        assert server.port != 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.url}/healthz") as resp:
                assert resp.status == 200
                assert json.loads(await resp.text()) == {"status": "ok"}
            async with session.post(f"{server.url}/jobs/b/run", headers=AUTH) as resp:
                assert resp.status == 202
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session:
            await session.get(f"{server.url}/healthz")


# -- against the real kernel, on a virtual clock ------------------------------------------


async def test_retry_a_failed_run_by_api_and_see_its_outcome(make_client: MakeClient) -> None:
    from kernel import Kernel
    from kernel.testing import VirtualClock

    clock = VirtualClock(T0)
    kernel = Kernel(timezone="UTC", clock=clock)
    metrics = SchedulerMetrics()
    metrics.attach(kernel)
    calls: list[str] = []

    async def flaky(label: str) -> None:
        calls.append(label)
        if len(calls) == 1:
            raise RuntimeError("upstream answered 503 for app_secret=hunter2")

    kernel.add_interval_job(flaky, hours=6, job_id="sync_user_info", args=("same-args",))
    client = await make_client(create_admin_app(kernel, token=TOKEN, metrics=metrics))
    async with kernel:
        await clock.advance(timedelta(hours=6))
        body = await (await client.get("/failures", headers=AUTH)).json()
        (record,) = body["failures"]
        assert (record["job_id"], record["exc_type"], record["retries"]) == (
            "sync_user_info",
            "RuntimeError",
            [],
        )
        assert record["message"] == "upstream answered 503 for app_secret=***"
        assert "hunter2" not in record["traceback"]

        resp = await client.post(f"/failures/{record['id']}/retry", headers=AUTH)
        assert resp.status == 202
        accepted = await resp.json()
        assert accepted["failure_id"] == record["id"]
        await clock.advance(0)

        after = await (await client.get(f"/failures/{record['id']}", headers=AUTH)).json()
        assert [(r["run_id"], r["outcome"], r["manual"]) for r in after["retries"]] == [
            (accepted["run_id"], "succeeded", True)
        ]
        assert calls == ["same-args", "same-args"]  # re-run with the same arguments
        text = await (await client.get("/metrics")).text()
        assert 'scheduled_task_retries_total{task_name="sync_user_info"} 1\n' in text
        assert (
            'scheduled_task_executions_total{status="success",task_name="sync_user_info"} 1\n'
            in text
        )


async def test_every_job_endpoint_on_the_real_kernel(make_client: MakeClient) -> None:
    from kernel import Kernel
    from kernel.testing import VirtualClock

    clock = VirtualClock(T0)
    kernel = Kernel(timezone="UTC", clock=clock)

    async def wait() -> None:
        await clock.sleep(60)

    kernel.add_interval_job(wait, hours=6, job_id="sync_user_info", kwargs={"app_secret": "x"})
    client = await make_client(create_admin_app(kernel, token=TOKEN, metrics=None))
    got = await error_of(await client.post("/jobs/sync_user_info/run", headers=AUTH))
    assert got[:2] == (409, "kernel_not_running")
    async with kernel:
        job = await (await client.get("/jobs/sync_user_info")).json()
        assert job["next_run_time"] == "2026-11-29T07:00:00Z"
        assert job["trigger"] == str(kernel.get_job("sync_user_info").trigger)
        assert "app_secret" not in json.dumps(job)

        resp = await client.post("/jobs/sync_user_info/run", headers=AUTH)
        assert resp.status == 202
        await clock.advance(0)
        assert (await (await client.get("/jobs/sync_user_info")).json())["running"] == 1
        got = await error_of(await client.post("/jobs/sync_user_info/run", headers=AUTH))
        assert got[:2] == (409, "refused")  # max_instances=1 and a run is going
        assert "max_instances" in got[2]

        paused = await (await client.post("/jobs/sync_user_info/pause", headers=AUTH)).json()
        assert (paused["paused"], paused["next_run_time"]) == (True, None)
        resumed = await (await client.post("/jobs/sync_user_info/resume", headers=AUTH)).json()
        assert resumed["paused"] is False
        assert resumed["next_run_time"] is not None

        resp = await client.delete("/jobs/sync_user_info", headers=AUTH)
        assert resp.status == 200
        assert kernel.get_jobs() == []
        assert (await client.get("/jobs")).status == 200
        assert await (await client.get("/jobs")).json() == {"jobs": []}
