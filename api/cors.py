"""CORS: anonymous reads for any page; keyed and write requests per configured and per-key origins.

Anonymous GET and HEAD (no key) are public data: they answer `Access-Control-Allow-Origin: *`
whatever the Origin (also when there is none, so a shared cache never keeps a copy without
it), and never allow credentials. A preflight asking only for GET/HEAD with headers a browser
sends on such reads (If-None-Match, Last-Event-ID, ...) is answered the same way.

Everything else keeps the stricter rule. A preflight that asks for a key header or another
method is allowed from an origin that is globally allowed (settings.cors_origins) or that
some usable key lists; the real request then must come from one of its key's origins (a
browser key used from elsewhere is refused with 403).
"""

from __future__ import annotations

ALLOW_METHODS = "GET, HEAD, POST, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = (
    "Authorization, X-API-Key, Content-Type, Accept, If-None-Match, If-Match, Idempotency-Key, Last-Event-ID,"
    " Sitrep-Min-Seq"
)
EXPOSE_HEADERS = (
    "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After, Link, ETag, Location, WWW-Authenticate,"
    " Sitrep-Seq"
)
MAX_AGE = "600"
PUBLIC_METHODS = frozenset({"GET", "HEAD"})
# request headers an anonymous browser read may carry beyond the CORS-safelisted ones
PUBLIC_REQUEST_HEADERS = frozenset(
    {
        "accept",
        "accept-language",
        "content-language",
        "if-none-match",
        "last-event-id",
        "cache-control",
        "sitrep-min-seq",
    }
)
_PUBLIC = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", EXPOSE_HEADERS.encode()),
]
_PUBLIC_PREFLIGHT = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"GET, HEAD"),
    (b"access-control-allow-headers", ", ".join(sorted(PUBLIC_REQUEST_HEADERS)).encode()),
    (b"access-control-max-age", MAX_AGE.encode()),
]


def is_preflight(method: str, headers: dict[str, str]) -> bool:
    return method == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers


def public_preflight(headers: dict[str, str]) -> bool:
    """A preflight for an anonymous read: GET or HEAD, and no header beyond PUBLIC_REQUEST_HEADERS."""
    if headers.get("access-control-request-method", "").strip().upper() not in PUBLIC_METHODS:
        return False
    asked = {h.strip().lower() for h in headers.get("access-control-request-headers", "").split(",") if h.strip()}
    return asked <= PUBLIC_REQUEST_HEADERS


def public_headers() -> list[tuple[bytes, bytes]]:
    return list(_PUBLIC)


def public_preflight_headers() -> list[tuple[bytes, bytes]]:
    return list(_PUBLIC_PREFLIGHT)


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
