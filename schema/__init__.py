"""The GraphQL skin: a Strawberry schema over the shared query layer (db/).

Mutations (schema/mutations.py) and subscriptions (schema/subscriptions.py) join the schema
when those modules define `Mutation` and `Subscription`.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.types import ExecutionContext

from schema import limits
from schema.errors import ErrorCodes, log_error
from schema.query import Query
from schema.scalars import SCALAR_OVERRIDES
from schema.types import Actor, Blog, Entry, Location, Source


def _optional(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(f"schema.{module}"), name)
    except (ModuleNotFoundError, AttributeError):
        return None


class _Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # Strawberry's own logs every error, a client's bad id included, at ERROR with a traceback
        for error in errors:
            log_error(error)


@cache
def build() -> strawberry.Schema:
    return _Schema(
        query=Query,
        mutation=_optional("mutations", "Mutation"),
        subscription=_optional("subscriptions", "Subscription"),
        types=[Blog, Entry, Actor, Location, Source],
        scalar_overrides=SCALAR_OVERRIDES,
        extensions=[
            # the HTTP controller checks these before execution; kept here for other transports
            lambda: QueryDepthLimiter(max_depth=limits.MAX_DEPTH),
            lambda: MaxAliasesLimiter(max_alias_count=limits.MAX_ALIASES),
            lambda: MaxTokensLimiter(max_token_count=limits.MAX_TOKENS),
            ErrorCodes,
        ],
    )


def sdl() -> str:
    return build().as_str() + "\n"
