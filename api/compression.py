"""Response compression: brotli or gzip for bodies of MIN_BYTES and more, when the client asks.

`Accept-Encoding` picks the coding (br before gzip; `q=0` refuses one); every compressible
answer says `Vary: Accept-Encoding`. Levels are the fastest (gzip 1, brotli 1): on the
Q2 page (50 entries with links, ~74-79 kB) they cost about 0.3-0.4 ms of CPU against about
1 ms for the whole request (bench/RESULTS.md), and shrink it about five times. A compressed
body is kept per process by its ETag and coding (content-addressed, bounded by CACHE_BYTES),
so a page many clients ask for, like the latest entries, is compressed once per change.

ETags stay strong and distinct per coding: a compressed answer's tag is the identity tag
with `.br` or `.gz` inside the quotes (`"abc.gz"`; the identity tags are base64url, which has
no dot). Conditional requests have the suffix removed on the way in, so `If-None-Match`
(304s) and `If-Match` (412s on writes) compare against the identity tag the app computes.

Streamed answers (NDJSON exports, Server-Sent Events: the first body chunk says `more_body`)
are sent as they are: compressing a stream means holding bytes back or flushing each chunk
at a loss, and SSE through compressing proxies is a classic source of stalls.
"""

from __future__ import annotations

import re
import zlib
from collections import OrderedDict

import brotli
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPResponseStartEvent, Message, Receive, Scope, Send

MIN_BYTES = 1024
CACHE_BYTES = 16 * 1024 * 1024
GZIP_LEVEL = 1
BROTLI_QUALITY = 1
CODINGS = ("br", "gzip")
_SUFFIX = {"br": ".br", "gzip": ".gz"}
_SUFFIXED = re.compile(r'\.(?:br|gz)"')
_CONDITIONS = (b"if-none-match", b"if-match")

Headers = list[tuple[bytes, bytes]]


def negotiate(accept_encoding: str | None) -> str | None:
    """The coding to answer with ("br", "gzip") or None for identity, from Accept-Encoding."""
    if not accept_encoding:
        return None
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        weights[name.strip().lower()] = q
    wildcard = weights.get("*", 0.0)
    for coding in CODINGS:
        if weights.get(coding, wildcard if coding == "gzip" else 0.0) > 0:
            return coding
    return None


def compress(body: bytes, coding: str) -> bytes:
    if coding == "br":
        data: bytes = brotli.compress(body, quality=BROTLI_QUALITY)
        return data
    packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: the gzip container
    return packer.compress(body) + packer.flush()


def compressible(content_type: bytes) -> bool:
    kind = content_type.split(b";")[0].strip().lower()
    if kind == b"text/event-stream":
        return False
    return kind.startswith(b"text/") or kind.endswith((b"json", b"javascript", b"xml"))


def strip_suffixes(value: bytes) -> bytes:
    """An If-None-Match / If-Match value with our per-coding suffixes taken off the tags."""
    return _SUFFIXED.sub('"', value.decode("latin-1")).encode("latin-1")


class _Cache:
    """Compressed bodies by (identity ETag, coding), least recently used dropped past `limit` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._items: OrderedDict[tuple[bytes, str], bytes] = OrderedDict()

    def get(self, etag: bytes, coding: str) -> bytes | None:
        found = self._items.get((etag, coding))
        if found is not None:
            self._items.move_to_end((etag, coding))
        return found

    def put(self, etag: bytes, coding: str, data: bytes) -> None:
        if len(data) > self.limit // 4 or (etag, coding) in self._items:
            return
        self._items[(etag, coding)] = data
        self.size += len(data)
        while self.size > self.limit:
            _, dropped = self._items.popitem(last=False)
            self.size -= len(dropped)


def _header(headers: Headers, name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _with_vary(headers: Headers) -> Headers:
    for i, (key, value) in enumerate(headers):
        if key.lower() == b"vary":
            if b"accept-encoding" in value.lower():
                return headers
            return [*headers[:i], (key, value + b", Accept-Encoding"), *headers[i + 1 :]]
    return [*headers, (b"vary", b"Accept-Encoding")]


def _suffixed(etag: bytes, coding: str) -> bytes:
    return etag[:-1] + _SUFFIX[coding].encode() + b'"' if etag.endswith(b'"') else etag


class CompressionMiddleware:
    """An ASGI wrapper compressing whole (not streamed) compressible bodies the client can take."""

    def __init__(self, app: ASGIApp, *, min_bytes: int = MIN_BYTES, cache_bytes: int = CACHE_BYTES) -> None:
        self.app = app
        self.min_bytes = min_bytes
        self.cache = _Cache(cache_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_headers: Headers = list(scope["headers"])
        coding = negotiate((_header(request_headers, b"accept-encoding") or b"").decode("latin-1"))
        asked = _header(request_headers, b"if-none-match") or b""
        if any(_header(request_headers, name) is not None for name in _CONDITIONS):
            scope["headers"] = [(k, strip_suffixes(v) if k.lower() in _CONDITIONS else v) for k, v in request_headers]
        start: HTTPResponseStartEvent | None = None
        passing = False

        async def send_wrapper(message: Message) -> None:
            nonlocal start, passing
            if passing or message["type"] not in ("http.response.start", "http.response.body"):
                await send(message)
                return
            if message["type"] == "http.response.start":
                start = message
                return
            assert start is not None
            passing = True
            headers: Headers = list(start.get("headers", []))
            body: bytes = message.get("body", b"")
            etag = _header(headers, b"etag")
            status: int = start["status"]
            if status == 304:  # no body, nor the body's headers; the tag is the variant the client holds
                if coding is not None and etag is not None and etag not in asked:
                    headers = [(k, _suffixed(v, coding) if k.lower() == b"etag" else v) for k, v in headers]
                await send({**start, "headers": _with_vary(headers)})
                await send(message)
                return
            content_type = _header(headers, b"content-type")
            if (
                message.get("more_body", False)
                or content_type is None
                or not compressible(content_type)
                or _header(headers, b"content-encoding") is not None
            ):
                await send(start)
                await send(message)
                return
            headers = _with_vary(headers)
            if coding is not None and len(body) >= self.min_bytes and status != 204:
                body = self._compressed(body, coding, etag)
                headers = [
                    (k, _suffixed(v, coding) if k.lower() == b"etag" else v)
                    for k, v in headers
                    if k.lower() != b"content-length"
                ]
                headers += [(b"content-encoding", coding.encode()), (b"content-length", str(len(body)).encode())]
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, send_wrapper)

    def _compressed(self, body: bytes, coding: str, etag: bytes | None) -> bytes:
        if etag is None or etag.startswith(b"W/"):
            return compress(body, coding)
        found = self.cache.get(etag, coding)
        if found is None:
            found = compress(body, coding)
            self.cache.put(etag, coding, found)
        return found
