"""The admin API's OpenAPI 3.1 document, built from the routes themselves.

A route is added with :func:`add_operations`: one :class:`Operation` names the handler, the
query parameters, the request body and every answer with the msgspec type its body is
encoded from. The same object registers the aiohttp route and describes it, so the
document cannot drift from what is served; the schemas come from the models through
:func:`msgspec.json.schema_components` (JSON Schema 2020-12, the dialect of OpenAPI 3.1).
:func:`serve_openapi` adds ``GET /openapi.json``.

An application that adds routes of its own to the admin app (the Lark service adds the
OAuth routes and the token API) adds them the same way, and they are in the document::

    add_operations(app, [Operation("GET", "/things", things, "List things",
                                   {200: Answer("the things", ThingList)})])
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

__all__ = (
    "API_CONTRACT",
    "Answer",
    "ApiContract",
    "Operation",
    "Query",
    "add_operations",
    "api_contract",
    "openapi_document",
    "serve_openapi",
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_REF = "#/components/schemas/{name}"
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Answer:
    """One answer of an operation: what it means and the type its body is encoded from
    (``None``: a body that is not JSON, e.g. a page or the Prometheus text format, of
    ``media_type``; a ``media_type`` of ``None``: no body at all, e.g. a redirect)."""

    description: str
    model: Any = None
    media_type: str | None = "application/json"


@dataclass(frozen=True)
class Query:
    """A query parameter: its name, type (a msgspec-compatible type, e.g.
    ``Annotated[int, msgspec.Meta(ge=1)]``) and meaning."""

    name: str
    type: Any
    description: str
    required: bool = False


@dataclass(frozen=True)
class Operation:
    """One route: ``method`` ``path`` served by ``handler``, and what it answers.

    ``path`` uses aiohttp's ``{name}`` parameters (each a required string).
    ``answers`` maps every status the handler can answer to its :class:`Answer`.
    ``body`` is the JSON body type the handler accepts (``None``: no body);
    ``body_required`` says whether it may be left out. ``bearer``: the route needs
    ``Authorization: Bearer <token>``. ``operation_id`` defaults to the handler's name.
    """

    method: str
    path: str
    handler: Handler
    summary: str
    answers: Mapping[int, Answer]
    query: Sequence[Query] = ()
    body: Any = None
    body_required: bool = False
    bearer: bool = False
    tags: Sequence[str] = ()
    description: str = ""
    operation_id: str = ""
    path_params: Mapping[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.operation_id or getattr(self.handler, "__name__", "") or _slug(self)


def _slug(operation: Operation) -> str:
    return re.sub(r"\W+", "_", f"{operation.method.lower()}{operation.path}").strip("_")


@dataclass
class ApiContract:
    """What the document says about the API as a whole, and the operations added so far."""

    title: str = "Scheduler admin API"
    version: str = "0.1.0"
    description: str = ""
    operations: list[Operation] = field(default_factory=list)


#: Where an application keeps its :class:`ApiContract`.
API_CONTRACT = web.AppKey("openapi_contract", ApiContract)


def api_contract(app: web.Application) -> ApiContract:
    """``app``'s contract, created empty the first time."""
    contract = app.get(API_CONTRACT)
    if contract is None:
        contract = ApiContract()
        app[API_CONTRACT] = contract
    return contract


def add_operations(app: web.Application, operations: Sequence[Operation]) -> None:
    """Register each operation's route on ``app`` (before it starts) and add it to the
    document. A method outside GET/POST/PUT/PATCH/DELETE, a path parameter described but
    not in the path, or an operation id used twice raises :class:`ValueError`."""
    contract = api_contract(app)
    taken = {op.id for op in contract.operations}
    for op in operations:
        if op.method not in _METHODS:
            raise ValueError(f"{op.path}: method {op.method!r} must be one of {sorted(_METHODS)}")
        unknown = set(op.path_params) - set(_PATH_PARAM.findall(op.path))
        if unknown:
            raise ValueError(f"{op.path}: path_params {sorted(unknown)} are not in the path")
        if op.id in taken:
            raise ValueError(f"{op.method} {op.path}: operation id {op.id!r} is already used")
        taken.add(op.id)
        if op.method == "GET":
            app.router.add_get(op.path, op.handler)
        else:
            app.router.add_route(op.method, op.path, op.handler)
        contract.operations.append(op)


def openapi_document(contract: ApiContract, *, server_url: str = "/") -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``contract``'s operations, served under ``server_url``."""
    types: list[Any] = []
    for op in contract.operations:
        types.extend(q.type for q in op.query)
        if op.body is not None:
            types.append(op.body)
        types.extend(a.model for a in op.answers.values() if a.model is not None)
    schemas, components = msgspec.json.schema_components(types, ref_template=_REF)
    schema_of = iter(schemas)
    paths: dict[str, dict[str, Any]] = {}
    bearer = False
    for op in contract.operations:
        item: dict[str, Any] = {"operationId": op.id, "summary": op.summary}
        if op.description:
            item["description"] = op.description
        if op.tags:
            item["tags"] = list(op.tags)
        parameters = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": op.path_params.get(name, name),
                "schema": {"type": "string", "minLength": 1},
            }
            for name in _PATH_PARAM.findall(op.path)
        ]
        parameters.extend(
            {
                "name": q.name,
                "in": "query",
                "required": q.required,
                "description": q.description,
                "schema": next(schema_of),
            }
            for q in op.query
        )
        if parameters:
            item["parameters"] = parameters
        if op.body is not None:
            item["requestBody"] = {
                "required": op.body_required,
                "content": {"application/json": {"schema": next(schema_of)}},
            }
        responses: dict[str, Any] = {}
        for status, answer in sorted(op.answers.items()):
            schema = next(schema_of) if answer.model is not None else {"type": "string"}
            responses[str(status)] = {"description": answer.description}
            if answer.media_type is not None:
                responses[str(status)]["content"] = {answer.media_type: {"schema": schema}}
        item["responses"] = responses
        if op.bearer:
            bearer = True
            item["security"] = [{"bearerAuth": []}]
        paths.setdefault(op.path, {})[op.method.lower()] = item
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": contract.title, "version": contract.version},
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {"schemas": components},
    }
    if contract.description:
        document["info"]["description"] = contract.description
    if bearer:
        document["components"]["securitySchemes"] = {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "the admin token, compared in constant time",
            }
        }
    return document


def serve_openapi(app: web.Application, path: str = "/openapi.json") -> None:
    """Add ``GET path`` answering :func:`openapi_document` of ``app``'s operations (those
    added later too), with the server URL of wherever ``app`` is mounted."""
    encoder = msgspec.json.Encoder()

    async def openapi(request: web.Request) -> web.Response:
        contract = request.app[API_CONTRACT]
        # Mounted with add_subapp("/prefix", app): the routes live under that prefix.
        prefix = request.path[: -len(path)] if request.path.endswith(path) else ""
        document = openapi_document(contract, server_url=prefix or "/")
        return web.Response(body=encoder.encode(document), content_type="application/json")

    add_operations(app, [
        Operation(
            "GET", path, openapi, "This document (OpenAPI 3.1)",
            {200: Answer("the OpenAPI document", dict[str, Any])},
            tags=("meta",),
        )
    ])
