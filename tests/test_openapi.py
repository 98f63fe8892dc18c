"""``/openapi.json``: an OpenAPI 3.1 document generated from the routes and the msgspec models
the handlers encode, covering every route served (the Lark service's OAuth routes and token
API too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
import schemathesis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from actors.jobs.token_states import TokenReport
from kernel import Kernel
from kernel.api_models import ErrorBody, FailureList, JobInfo
from kernel.failures import FailureRecord
from kernel.http import create_admin_app
from kernel.openapi import (
    API_CONTRACT,
    Answer,
    Operation,
    add_operations,
    api_contract,
    openapi_document,
)
from tests._oauth_support import oauth_world
from tests.fake_lark import FakeLark

pytestmark = pytest.mark.usefixtures("anyio_backend")

TOKEN = "openapi-admin-token-0123456789"


def served_routes(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route of ``app`` outside the console (HEAD left out)."""
    routes = set()
    for resource in app.router.resources():
        if isinstance(resource, web.PrefixedSubAppResource):
            continue
        for route in resource:
            if route.method != "HEAD":
                routes.add((route.method, resource.canonical))
    return routes


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
    }


def test_every_route_is_documented_and_nothing_else() -> None:
    app = create_admin_app(Kernel(), token=TOKEN, metrics=None)
    document = openapi_document(app[API_CONTRACT])
    assert documented(document) == served_routes(app)
    assert len(served_routes(app)) == 13
    schemathesis.openapi.from_dict(document).validate()  # a valid OpenAPI 3.1 document


async def test_the_lark_services_routes_are_in_its_document(
    tmp_path: Path, fake_lark: FakeLark
) -> None:
    async with oauth_world("sqlite", tmp_path, fake_lark) as world:
        async with world.http.get(f"{world.base}/openapi.json") as answer:
            assert answer.status == 200
            document = await answer.json()
    app_routes = documented(document)
    assert {
        ("GET", "/tokens"),
        ("GET", "/tokens/{app_id}/{open_id}"),
        ("GET", "/oauth/callback"),
        ("GET", "/oauth/{app_id}/authorize"),
        ("GET", "/jobs"),
    } <= app_routes
    assert len(app_routes) == 17
    assert document["info"]["title"] == "lark-scheduler admin API"
    schemas = document["components"]["schemas"]
    assert schemas["TokenReport"] == component(TokenReport, "TokenReport")
    token_api = document["paths"]["/tokens/{app_id}/{open_id}"]["get"]
    assert token_api["security"] == [{"bearerAuth": []}]
    assert token_api["responses"]["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TokenErrorBody"
    }
    callback = document["paths"]["/oauth/callback"]["get"]
    assert "security" not in callback
    assert set(callback["responses"]["400"]["content"]) == {"text/html"}
    schemathesis.openapi.from_dict(document).validate()


def component(model: Any, name: str) -> Any:
    _, components = msgspec.json.schema_components(
        [model], ref_template="#/components/schemas/{name}"
    )
    return components[name]


@pytest.mark.parametrize(
    ("path", "method", "status", "model"),
    [
        pytest.param("/jobs", "get", "200", "JobList", id="jobs"),
        pytest.param("/jobs/{job_id}", "get", "200", "JobInfo", id="job"),
        pytest.param("/jobs/{job_id}/run", "post", "202", "RunAccepted", id="run"),
        pytest.param("/failures", "get", "200", "FailureList", id="failures"),
        pytest.param("/failures/{failure_id}", "get", "200", "FailureRecord", id="failure"),
        pytest.param("/failures/{failure_id}/retry", "post", "409", "ErrorBody", id="gone"),
        pytest.param("/readyz", "get", "503", "ReadyReport", id="not-ready"),
    ],
)
def test_answers_refer_to_the_handlers_own_models(
    path: str, method: str, status: str, model: str
) -> None:
    document = openapi_document(create_admin_app(Kernel(), token=TOKEN, metrics=None)
                                [API_CONTRACT])
    answer = document["paths"][path][method]["responses"][status]
    assert answer["content"]["application/json"]["schema"] == {
        "$ref": f"#/components/schemas/{model}"
    }
    schemas = document["components"]["schemas"]
    for name, cls in [("JobInfo", JobInfo), ("FailureList", FailureList),
                      ("FailureRecord", FailureRecord), ("ErrorBody", ErrorBody)]:
        assert schemas[name] == component(cls, name)


@pytest.mark.parametrize("protect_jobs", [False, True])
def test_the_token_requirement_is_documented(protect_jobs: bool) -> None:
    app = create_admin_app(Kernel(), token=TOKEN, metrics=None, protect_jobs=protect_jobs)
    paths = openapi_document(app[API_CONTRACT])["paths"]
    secured = {
        (method, path) for path, item in paths.items() for method, op in item.items()
        if "security" in op
    }
    always = {
        ("post", "/jobs/{job_id}/run"), ("post", "/jobs/{job_id}/pause"),
        ("post", "/jobs/{job_id}/resume"), ("delete", "/jobs/{job_id}"),
        ("get", "/failures"), ("get", "/failures/{failure_id}"),
        ("post", "/failures/{failure_id}/retry"),
    }
    jobs = {("get", "/jobs"), ("get", "/jobs/{job_id}")}
    assert secured == (always | jobs if protect_jobs else always)
    for method, path in secured:
        assert {"401", "403"} <= set(paths[path][method]["responses"])
    limit = next(p for p in paths["/failures"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000}


async def test_mounted_under_a_prefix_the_document_says_where() -> None:
    outer = web.Application()
    outer.add_subapp("/scheduler", create_admin_app(Kernel(), token=TOKEN, metrics=None))
    async with TestClient(TestServer(outer)) as client:
        document = await (await client.get("/scheduler/openapi.json")).json()
    assert document["servers"] == [{"url": "/scheduler"}]
    assert document["openapi"] == "3.1.0"


async def _ok(request: web.Request) -> web.Response:
    return web.Response()


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        pytest.param(Operation("TRACE", "/x", _ok, "x", {}), "method 'TRACE'", id="method"),
        pytest.param(Operation("GET", "/x", _ok, "x", {}, path_params={"id": "?"}),
                     "path_params ['id'] are not in the path", id="path-params"),
        pytest.param(Operation("GET", "/y", _ok, "x", {}, operation_id="same"),
                     "operation id 'same' is already used", id="duplicate-id"),
    ],
)
def test_add_operations_refuses_what_the_document_could_not_say(
    operation: Operation, message: str
) -> None:
    app = web.Application()
    add_operations(app, [Operation("GET", "/z", _ok, "z", {200: Answer("ok")},
                                   operation_id="same")])
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        add_operations(app, [operation])
    assert [op.id for op in api_contract(app).operations] == ["same"]
