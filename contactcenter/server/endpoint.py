"""One declaration per endpoint: its route, owner role, input models and OpenAPI entry.

    @api.route("GET", "/customers/{customer_id}", role=Role.AGENT, summary="Read a customer")
    async def read_customer(call: Call) -> dict: ...

The wrapper authenticates, checks the role, validates the JSON body and query string with the
declared pydantic models (422 with the failing fields) and turns the return value into JSON.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from contactcenter.domain import Role
from contactcenter.errors import BadRequest
from contactcenter.runtime import Runtime
from contactcenter.server.auth import authenticate
from contactcenter.server.keys import RUNTIME
from contactcenter.storage.models import User
from contactcenter.wire import dumps, loads

Handler = Callable[["Call"], Awaitable[Any]]
_PARAM = re.compile(r"\{(\w+)\}")


@dataclass
class Call:
    request: web.Request
    rt: Runtime
    user: User | None
    body: Any = None
    query: Any = None
    params: dict[str, int] = field(default_factory=dict)

    @property
    def actor(self) -> User:
        assert self.user is not None, "endpoint declared without a role"
        return self.user


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Handler
    role: Role | None
    summary: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    status: int
    tag: str


class Api:
    def __init__(self, prefix: str = "/api/v1") -> None:
        self.prefix = prefix
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        role: Role | None,
        summary: str,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        status: int = 200,
        tag: str = "",
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method,
                    path,
                    handler,
                    role,
                    summary,
                    body,
                    query,
                    status,
                    tag or path.strip("/").split("/")[0],
                )
            )
            return handler

        return register

    def mount(self, app: web.Application) -> None:
        for ep in self.endpoints:
            # Path ids are integers; the pattern makes "/customers/abc" a 404, not a 500.
            aio_path = _PARAM.sub(lambda m: "{" + m.group(1) + r":\d+}", ep.path)
            app.router.add_route(ep.method, self.prefix + aio_path, _wrap(ep))
        app.router.add_get(self.prefix + "/openapi.json", self._serve_openapi)

    async def _serve_openapi(self, request: web.Request) -> web.Response:
        return web.json_response(self.openapi())

    def openapi(self) -> dict[str, Any]:
        paths: dict[str, Any] = {}
        schemas: dict[str, Any] = {}
        for ep in self.endpoints:
            op: dict[str, Any] = {
                "summary": ep.summary,
                "tags": [ep.tag],
                "operationId": ep.handler.__name__,
                "responses": {
                    str(ep.status): {"description": "OK"},
                    "4XX": {
                        "description": "Error",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                        },
                    },
                },
            }
            if ep.role is not None:
                op["security"] = [{"bearer": []}]
                op["description"] = f"Role: {ep.role.value} or above."
            params = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}
                for name in _PARAM.findall(ep.path)
            ]
            if ep.query is not None:
                schema = ep.query.model_json_schema()
                for name, prop in schema.get("properties", {}).items():
                    params.append(
                        {
                            "name": name,
                            "in": "query",
                            "required": name in schema.get("required", []),
                            "schema": prop,
                        }
                    )
            if params:
                op["parameters"] = params
            if ep.body is not None:
                schema = ep.body.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(schema.pop("$defs", {}))
                schemas[ep.body.__name__] = schema
                op["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{ep.body.__name__}"}
                        }
                    },
                }
            paths.setdefault(self.prefix + ep.path, {})[ep.method.lower()] = op
        schemas["Error"] = {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {},
                    },
                }
            },
        }
        return {
            "openapi": "3.1.0",
            "info": {"title": "contactcenter", "version": "1"},
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            },
        }


def _wrap(ep: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        rt = request.app[RUNTIME]
        user = await authenticate(rt, request, ep.role) if ep.role is not None else None
        call = Call(request, rt, user, params={k: int(v) for k, v in request.match_info.items()})
        if ep.query is not None:
            call.query = ep.query.model_validate(dict(request.query))
        if ep.body is not None:
            raw = await request.read()
            try:
                data = loads(raw) if raw else None
            except (ValueError, UnicodeDecodeError):
                raise BadRequest("the request body is not valid JSON") from None
            if not isinstance(data, dict):
                raise BadRequest("the request body must be a JSON object")
            call.body = ep.body.model_validate(data)
        result = await ep.handler(call)
        if isinstance(result, web.StreamResponse):
            return result
        return web.json_response(result, status=ep.status, dumps=dumps)

    handle.__name__ = ep.handler.__name__
    return handle

