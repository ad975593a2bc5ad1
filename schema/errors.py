"""GraphQL errors and the one table that gives every error its `extensions.code`.

Resolvers raise domain errors (db/errors.py) or the `ApiError`s below; `coded` turns any
error graphql-core collected into one the client may see. Anything unexpected is masked:
its message would leak internals.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import asyncpg
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from db import errors as db_errors

log = logging.getLogger("sitrep.graphql")

BAD_USER_INPUT = "BAD_USER_INPUT"
NOT_FOUND = "NOT_FOUND"
UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
RATE_LIMITED = "RATE_LIMITED"
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
# Not in the contract's list: a bug of ours, masked; the client can only report it.
INTERNAL = "INTERNAL_SERVER_ERROR"
MASKED_MESSAGE = "Unexpected error."


class ApiError(Exception):
    code = INTERNAL

    def __init__(self, message: str, *, field: str | None = None, extensions: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extensions or {}


class BadInput(ApiError):
    code = BAD_USER_INPUT


class TooComplex(ApiError):
    code = QUERY_TOO_COMPLEX


class Unauthenticated(ApiError):
    code = UNAUTHENTICATED


class Forbidden(ApiError):
    code = FORBIDDEN


class RateLimited(ApiError):
    code = RATE_LIMITED


# domain error -> code: the GraphQL half of the skins' mapping tables
_DOMAIN: list[tuple[type[Exception], str]] = [
    (db_errors.NotFound, NOT_FOUND),
    (db_errors.InvalidInput, BAD_USER_INPUT),
    (db_errors.Conflict, BAD_USER_INPUT),
    (db_errors.Unavailable, SERVICE_UNAVAILABLE),
    # class 22 (a value PostgreSQL cannot take, which input checks let through): as REST's 400
    (asyncpg.exceptions.DataError, BAD_USER_INPUT),
]


def code_of(exc: BaseException | None) -> tuple[str, str | None]:
    """(code, message to show or None to keep the error's own) for an original error."""
    if exc is None:
        return BAD_USER_INPUT, None  # a parse, validation or argument coercion error
    if isinstance(exc, ApiError):
        return exc.code, exc.message
    for cls, code in _DOMAIN:
        if isinstance(exc, cls):
            return code, str(getattr(exc, "detail", exc))
    if isinstance(exc, db_errors.UNAVAILABLE):
        return SERVICE_UNAVAILABLE, "The database is unavailable; retry shortly."
    if isinstance(exc, GraphQLError):  # raised by graphql-core while coercing input
        return code_of(exc.original_error) if exc.original_error else (BAD_USER_INPUT, exc.message)
    return INTERNAL, MASKED_MESSAGE


def coded(error: GraphQLError) -> GraphQLError:
    """The error as the client sees it: a known code, and no internals."""
    if error.extensions and "code" in error.extensions:
        return error
    code, message = code_of(error.original_error)
    if code == INTERNAL:
        log.error("unexpected error in GraphQL execution", exc_info=error.original_error)
    extensions = {"code": code}
    if isinstance(error.original_error, ApiError):
        extensions.update(error.original_error.extra)
    return GraphQLError(
        message if message is not None else error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


def log_error(error: GraphQLError) -> None:
    """How an error Strawberry collected is logged: a client's mistake (any contract code) at INFO,
    one line, its text clipped (api.errors.clip); a bug of ours is logged with its traceback by
    `coded`, which every error passes through."""
    from api.errors import clip

    code, _ = code_of(error.original_error)
    if code != INTERNAL:
        log.info("GraphQL %s: %s", code, clip(error.message))


def error_dict(error: GraphQLError) -> dict[str, Any]:
    return coded(error).formatted  # type: ignore[return-value]


class ErrorCodes(SchemaExtension):
    """Gives every error Strawberry returns its code (also for transports we do not own)."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            result.errors = [coded(e) for e in errors]
