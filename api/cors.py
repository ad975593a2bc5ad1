"""CORS: origins allowed for everyone (settings.cors_origins) and per browser key.

A preflight carries no credentials, so it is allowed from any origin that is globally allowed
or that some usable key lists; the real request then must come from one of its key's origins
(a browser key used from elsewhere is refused with 403).
"""

from __future__ import annotations

ALLOW_METHODS = "GET, HEAD, POST, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = (
    "Authorization, X-API-Key, Content-Type, Accept, If-None-Match, If-Match, Idempotency-Key, Last-Event-ID"
)
EXPOSE_HEADERS = (
    "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After, Link, ETag, Location, WWW-Authenticate"
)
MAX_AGE = "600"


def is_preflight(method: str, headers: dict[str, str]) -> bool:
    return method == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers


def globally_allowed(origin: str, global_origins: tuple[str, ...]) -> bool:
    return "*" in global_origins or origin in global_origins


def response_headers(origin: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-expose-headers", EXPOSE_HEADERS.encode()),
        (b"vary", b"Origin"),
    ]


def preflight_headers(origin: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-methods", ALLOW_METHODS.encode()),
        (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
        (b"access-control-max-age", MAX_AGE.encode()),
        (b"vary", b"Origin"),
    ]
