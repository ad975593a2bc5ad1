"""The one table that turns failures into RFC 9457 problem details (application/problem+json).

Domain errors from the data layer, bad query parameters, Litestar's own HTTP errors and an
unreachable database each become a problem with `type`, `title`, `status`, `detail` and, for
bad parameters, `errors: [{"name", "reason"}]`. Anything else is logged and answered with a
generic 500 problem: never a traceback.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import asyncpg
import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from db.errors import UNAVAILABLE, Conflict, DomainError, InvalidInput, NotFound, Unavailable

log = logging.getLogger("sitrep.api")

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = "5"
# WebSocket close code for "the database is unavailable, reconnect later": RFC 6455's 1013 Try
# Again Later (graphql-transport-ws keeps 4400-4499 for its own errors and defines no retryable one)
CLOSE_TRY_AGAIN = 1013

# domain error -> HTTP status (the first matching class wins)
STATUS: list[tuple[type[DomainError], int]] = [
    (NotFound, 404),
    (Conflict, 409),
    (InvalidInput, 400),
    (Unavailable, 503),
]


class Problem(msgspec.Struct, omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None


class ParamError(Exception):
    """One or more bad query parameters, each named with its reason."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{n}: {r}" for n, r in errors))
        self.errors = errors


def problem(
    status: int,
    detail: str,
    errors: list[tuple[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    body = Problem(
        type="about:blank",
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        errors=[{"name": n, "reason": r} for n, r in errors] if errors else None,
    )
    if status == 503:
        headers = {"Retry-After": RETRY_AFTER_SECONDS, **(headers or {})}
    return Response(msgspec.json.encode(body), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def domain_problem(exc: DomainError) -> Response[bytes]:
    status = next((s for cls, s in STATUS if isinstance(exc, cls)), 400)
    return problem(status, exc.detail, [(exc.field, exc.detail)] if exc.field and status != 503 else None)


def _domain(_: Request[Any, Any, Any], exc: DomainError) -> Response[bytes]:
    return domain_problem(exc)


def _params(_: Request[Any, Any, Any], exc: ParamError) -> Response[bytes]:
    names = ", ".join(dict.fromkeys(n for n, _ in exc.errors))
    return problem(400, f"bad query parameters: {names}", exc.errors)


def _validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[bytes]:
    # Litestar's own parameter validation: extra is [{"key", "message", "source"}]
    extra = exc.extra if isinstance(exc.extra, list) else []
    errors = [(str(e.get("key", "")), str(e.get("message", "invalid"))) for e in extra if isinstance(e, dict)]
    return problem(400, "bad request: " + (", ".join(n for n, _ in errors) or str(exc.detail)), errors or None)


def _http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    return problem(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))


def clip(value: object, limit: int = 200) -> str:
    """User-supplied text as it may go into a log line: at most `limit` characters, control
    characters (NUL, newlines, escapes) escaped, so a request can neither flood nor forge the log."""
    text = str(value)
    shown = text[:limit].encode("unicode_escape").decode("ascii")
    return shown + (f"...(+{len(text) - limit} characters)" if len(text) > limit else "")


def unavailable_status(exc: Exception, where: str) -> int:
    """503 for a database-unavailable failure (logged as a warning), else 500 (logged with its
    traceback): for code outside Litestar's handlers (the auth middleware, sockets)."""
    if isinstance(exc, UNAVAILABLE):
        log.warning("database unavailable (%s): %r", where, exc)
        return 503
    log.error("unexpected error (%s)", where, exc_info=exc)
    return 500


def _unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    unavailable_status(exc, f"{request.method} {clip(request.url.path)}")
    return problem(503, "the database is unavailable; retry shortly")


def _bad_data(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    # class 22 (data exception): a value PostgreSQL cannot take, which parameter parsing let through
    log.warning("data exception on %s %s: %s", request.method, clip(request.url.path), clip(repr(exc)))
    return problem(400, "a parameter holds a value the database cannot use")


def _group(request: Request[Any, Any, Any], exc: ExceptionGroup[Exception]) -> Response[bytes]:
    """Litestar raises a group when a dependency's cleanup fails too (a pooled connection whose
    server went away fails both the query and its release): judge it by what it holds."""
    leaves: list[Exception] = []
    pending: list[Exception] = [exc]
    while pending:
        item = pending.pop()
        if isinstance(item, ExceptionGroup):
            pending.extend(item.exceptions)
        else:
            leaves.append(item)
    if leaves and all(isinstance(e, UNAVAILABLE) for e in leaves):
        return _unavailable(request, leaves[0])
    domain = [e for e in leaves if isinstance(e, DomainError)]
    if domain:
        return domain_problem(domain[0])
    return _anything(request, exc)


def _anything(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.error("unhandled error on %s %s", request.method, clip(request.url.path), exc_info=exc)
    return problem(500, "an unexpected error occurred; it has been logged")


def exception_handlers() -> ExceptionHandlersMap:
    """For Litestar(exception_handlers=...): the most specific class wins."""
    handlers: ExceptionHandlersMap = {
        DomainError: _domain,
        ParamError: _params,
        ValidationException: _validation,
        HTTPException: _http,
        ExceptionGroup: _group,
        Exception: _anything,
    }
    for cls in UNAVAILABLE:
        if cls is not Unavailable:  # a DomainError: _domain renders it with its own detail
            handlers[cls] = _unavailable
    handlers[asyncpg.exceptions.DataError] = _bad_data
    return handlers
