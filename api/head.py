"""HEAD on every GET route: the GET runs and its status and headers go out, its body does not.

RFC 9110 §9.3.2: HEAD answers exactly what GET would, without content. Declaring a HEAD
handler beside every GET would double the routes and let the two drift, so `HeadMiddleware`
sits outside routing and hands the request on as a GET. Whatever the GET sets (ETag,
Cache-Control, Content-Type, Content-Length of the body it would send, RateLimit-*, a 304
under If-None-Match, a problem's status) reaches the client unchanged; the body is replaced
by an empty one.

A streamed GET (NDJSON exports, Server-Sent Events) would not end by itself: its headers go
out, the response ends there, and the stream is then told the client has gone
(`http.disconnect`), which stops it and frees its database connection.
"""

from __future__ import annotations

from typing import cast

import anyio
from litestar import Litestar
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, HTTPDisconnectEvent, Message, Receive, ReceiveMessage, Scope, Send


class HeadMiddleware:
    """An ASGI wrapper answering HEAD with the GET's status and headers and no body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        as_get = cast("Scope", {**scope, "method": "GET"})
        ended = anyio.Event()

        async def send_headers_only(message: Message) -> None:
            if ended.is_set():  # the rest of a streamed body
                return
            if message["type"] == "http.response.body":
                ended.set()
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        async def receive_until_ended() -> ReceiveMessage:
            gone: HTTPDisconnectEvent = {"type": "http.disconnect"}
            if ended.is_set():
                return gone
            received: ReceiveMessage = gone
            async with anyio.create_task_group() as tasks:

                async def from_client() -> None:
                    nonlocal received
                    received = await receive()
                    tasks.cancel_scope.cancel()

                tasks.start_soon(from_client)
                await ended.wait()
                tasks.cancel_scope.cancel()
            return received

        try:
            await self.app(as_get, receive_until_ended, send_headers_only)
        finally:
            # routing happened on the copy: let the layers outside (metrics) see which route answered
            if "path_template" in as_get:
                scope["path_template"] = as_get["path_template"]


def allow_every_method(app: Litestar) -> None:
    """OPTIONS answers `Allow` with every method of the path, HEAD included where GET is.

    Litestar builds a path's OPTIONS handler with the first handlers registered on the path and
    keeps it when more are merged in (the writes share paths with the reads), so its own `Allow`
    lists only some methods; the complete list is set on the way out instead."""
    allowed: dict[str, str] = {}
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            methods = set(route.methods) | ({"HEAD"} if "GET" in route.methods else set())
            allowed[route.path_format] = ", ".join(sorted(methods))

    async def set_allow(message: Message, scope: Scope) -> None:
        if message["type"] == "http.response.start" and scope.get("method") == "OPTIONS":
            allow = allowed.get(scope.get("path_template", ""))
            if allow is not None and message["status"] == 204:
                MutableScopeHeaders.from_message(message)["Allow"] = allow

    app.before_send.append(set_allow)
