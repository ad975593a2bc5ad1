"""GET /v1/entries as a JSON page, answered without Litestar's per-request machinery.

The hottest route spent about a quarter of an uncached page's server CPU in the framework,
spread thin (bench/RESULTS.md: routing, the signature model of its 16 query parameters, the
dependency and response pipeline, the exception middleware). This ASGI app sits where
Litestar's own handler does, inside the key, rate-limit and CORS check, the metrics, the
replica routing, HEAD and compression (api/app.py), and answers a `GET /v1/entries` that asks
for a JSON page itself, with the route's own code: `api.params.Query` for the parameters, the
connection of api/connection.py, `api.controllers.entries.json_page` for the body (entry cache
included), `next_link` for the Link header, and the caching middleware (ETag, 304,
Cache-Control, Vary) around it. The bytes and headers are the route's: tests/api/test_fast_entries.py
asks both for a corpus of URLs and compares them.

Everything else goes to Litestar untouched, before anything is read: another path, method or
format, `all=`, a parameter with a mistake (Litestar's answer names it), a bad Host header.
An exception while reading (the database unreachable, a statement timeout) is answered by the
route's own exception handlers, as Litestar would answer it. `SITREP_REST_FAST=false` turns the
fast path off.
"""

from __future__ import annotations

from typing import Any, cast

from litestar import Litestar, Request
from litestar._asgi.utils import is_valid_host
from litestar.enums import ScopeType
from litestar.handlers import HTTPRouteHandler
from litestar.middleware._internal.exceptions.middleware import get_exception_handler
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api import formats
from api import params as p
from api.caching import HttpCachingMiddleware
from api.connection import connection
from api.controllers.entries import json_page
from api.controllers.listing import cursors, next_link
from db import where
from db.entries import SORT_KEY_TYPE

PATH = "/v1/entries"
_JSON = (b"content-type", b"application/json")


def route_handler(app: Litestar, path: str, method: str) -> HTTPRouteHandler:
    """The handler Litestar registered for `method` on `path` (its parameters are what the route declares)."""
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path == path and method in route.route_handler_map:
            return route.route_handler_map[method][0]  # type: ignore[index]
    raise LookupError(f"no {method} {path} route")


class FastEntryPages:
    def __init__(self, app: ASGIApp, litestar: Litestar) -> None:
        self.app = app
        self.handler = route_handler(litestar, PATH, "GET")
        self.caching = HttpCachingMiddleware()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != ScopeType.HTTP
            or scope["path"] != PATH
            or scope["method"] != "GET"
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"host" and not is_valid_host(value):
                await self.app(scope, receive, send)  # Litestar refuses it
                return
        scope.setdefault("path_params", {})
        scope["route_handler"] = self.handler
        scope["path_template"] = PATH  # the metrics' route label, as Litestar's router sets it
        request: Request[Any, Any, Any] = Request(scope, receive, send)
        query = p.Query(request)
        flt, order = query.entry_filter(), query.entry_sort()
        page = query.page(cursors(request), sort=order, filter=flt, value_type=SORT_KEY_TYPE)
        fmt = None
        if not query.errors and query.one("all") is None:
            try:
                fmt = formats.negotiate(request.headers.get("accept"), request.query_params.get("format"))
            except Exception:
                fmt = None
        if fmt is not formats.Format.JSON or query.errors:
            await self.app(scope, receive, send)
            return
        try:
            async with connection(request, custom_plan=where.needs_custom_plan(flt)) as conn:
                body, info = await json_page(request, conn, flt, order, page)
        except Exception as exc:
            handler = get_exception_handler(self.handler.resolve_exception_handlers(), exc)
            if handler is None:
                raise
            response = handler(request, exc)
            answer = response.to_asgi_response(app=None, request=request)
            await self.caching.handle(scope, receive, send, answer)
            return
        headers = [_JSON, (b"content-length", str(len(body)).encode())]
        link = next_link(request, info)
        if link is not None:
            headers.append((b"link", link.encode("latin-1")))

        async def page_app(_scope: Scope, _receive: Receive, send: Send) -> None:
            await send(cast(Message, {"type": "http.response.start", "status": 200, "headers": headers}))
            await send(cast(Message, {"type": "http.response.body", "body": body, "more_body": False}))

        await self.caching.handle(scope, receive, send, page_app)
