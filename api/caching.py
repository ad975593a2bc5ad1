"""HTTP caching for reads: an ETag on every GET, `If-None-Match` answered with 304, Cache-Control.

The ETag is *strong*: a 128-bit hash (XXH3-128) of the exact body bytes sent, so two
responses share a tag only when they are byte-identical (a different `format=` or `Accept`
gives different bytes, hence a different tag). `If-None-Match` is compared weakly, as
RFC 9110 §13.1.2 asks, so a client that echoes `W/"…"` still gets its 304.

Anonymous reads may sit in a shared cache (a CDN) briefly: `public, max-age=15`. A request
carrying a key (`Authorization` or `X-API-Key`) gets `private, no-cache`: its answer can
depend on the key (rate headers, scopes), so only the caller's own cache may keep it, and
must revalidate, which the ETag makes cheap. Errors get `no-store`. A handler that sets its
own Cache-Control keeps it.

A streamed response (its first body chunk says `more_body`: NDJSON exports, SSE) is passed
through as it goes, with Cache-Control but without an ETag: tagging it would mean holding
the whole result in memory, which streaming exists to avoid.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import cast

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, HTTPResponseStartEvent, HTTPScope, Message, Receive, Scope, Send
from xxhash import xxh3_128_digest

ANONYMOUS_CACHE_CONTROL = "public, max-age=15"
KEYED_CACHE_CONTROL = "private, no-cache"
ERROR_CACHE_CONTROL = "no-store"
# operational answers describe this instant of this process: never cache them
NO_STORE_PATHS = frozenset({"/health", "/ready", "/metrics"})
_CACHEABLE_METHODS = frozenset({"GET", "HEAD"})
_KEY_HEADERS = (b"authorization", b"x-api-key")
# headers a 304 carries (RFC 9110 §15.4.5); the body's own headers are dropped
_NOT_MODIFIED_KEEP = frozenset({b"cache-control", b"content-location", b"date", b"etag", b"expires", b"vary"})

Headers = list[tuple[bytes, bytes]]


def etag_for(body: bytes) -> str:
    # XXH3-128, not a cryptographic hash: a tag only tells versions of one resource apart, and
    # nobody gains from forging a collision with their own cache. It hashes a 79 kB page in
    # ~5 µs against SHA-256's 80 µs (with the CPU's SHA extensions), and every page is hashed.
    digest = xxh3_128_digest(body)
    return '"' + base64.urlsafe_b64encode(digest).rstrip(b"=").decode() + '"'


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def if_none_match_hits(header: str, etag: str) -> bool:
    """Whether an If-None-Match value (`*`, or a list of tags) matches `etag`, weakly compared."""
    if header.strip() == "*":
        return True
    ours = _opaque(etag)
    return any(_opaque(candidate) == ours for candidate in _split_tags(header))


def if_match_hits(header: str, etag: str) -> bool:
    """Whether an If-Match value (`*`, or a list of tags) matches `etag`, strongly compared
    (RFC 9110 §13.1.1): a weak tag never matches."""
    if header.strip() == "*":
        return True
    return any(candidate.strip() == etag for candidate in _split_tags(header))


def _split_tags(header: str) -> Iterable[str]:
    # entity tags are quoted and cannot contain '"', so splitting on commas outside quotes is exact
    tag, quoted = "", False
    for char in header:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            if tag.strip():
                yield tag
            tag = ""
        else:
            tag += char
    if tag.strip():
        yield tag


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _cache_control(scope: Scope, status: int) -> str:
    if status >= 400 or scope["path"] in NO_STORE_PATHS:
        return ERROR_CACHE_CONTROL
    request_headers = scope["headers"]
    if any(_header(request_headers, name) is not None for name in _KEY_HEADERS):
        return KEYED_CACHE_CONTROL
    return ANONYMOUS_CACHE_CONTROL


def _with_vary_accept(headers: Headers) -> Headers:
    vary = _header(headers, b"vary")
    if vary is None:
        return [*headers, (b"vary", b"Accept")]
    if b"accept" in [v.strip().lower() for v in vary.split(b",")]:
        return headers
    rest = [(k, v) for k, v in headers if k.lower() != b"vary"]
    return [*rest, (b"vary", vary + b", Accept")]


class HttpCachingMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if cast("HTTPScope", scope)["method"] not in _CACHEABLE_METHODS:
            await next_app(scope, receive, send)
            return

        start: HTTPResponseStartEvent | None = None
        streaming = False

        async def send_wrapper(message: Message) -> None:
            nonlocal start, streaming
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or streaming:
                await send(message)
                return
            assert start is not None
            status = start["status"]
            headers: Headers = list(start.get("headers", []))
            if _header(headers, b"cache-control") is None:
                headers.append((b"cache-control", _cache_control(scope, status).encode()))
            headers = _with_vary_accept(headers)
            if message.get("more_body", False):
                streaming = True
                await send({**start, "headers": headers})
                await send(message)
                return
            ok = 200 <= status < 300
            if ok and _header(headers, b"etag") is None:
                headers.append((b"etag", etag_for(message.get("body", b"")).encode()))
            if ok and _not_modified(scope, headers):
                kept = [(k, v) for k, v in headers if k.lower() in _NOT_MODIFIED_KEEP]
                await send({"type": "http.response.start", "status": 304, "headers": kept})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send({**start, "headers": headers})
            await send(message)

        await next_app(scope, receive, send_wrapper)


def _not_modified(scope: Scope, headers: Headers) -> bool:
    etag = _header(headers, b"etag")
    condition = _header(scope["headers"], b"if-none-match")
    if etag is None or condition is None:
        return False
    return if_none_match_hits(condition.decode("latin-1"), etag.decode("latin-1"))
