"""One GraphQL request, transport aside: parse, validate, check limits, then execute.

Parsing and validation are cached per query text. Queries the fast path (schema/fast.py)
understands run there; everything else (introspection, mutations, anything unusual) runs
on Strawberry's executor. Both answer the same JSON (tests/schema/test_fast.py).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values

from schema import build, fast, limits
from schema.context import GraphContext
from schema.errors import BAD_USER_INPUT, QUERY_TOO_COMPLEX, ApiError, coded

_CACHE_SIZE = 512
_CACHE_MAX_QUERY = 20_000  # characters: the cache's memory stays bounded whatever clients send


class Outcome(msgspec.Struct, kw_only=True):
    body: dict[str, Any]
    operation: str | None = None  # "query", "mutation", "subscription"
    cost: int = 0  # what to charge to the caller's rate: the estimate of a query that ran, else 0
    path: str = "none"  # "fast", "plain" or "none" (refused before execution)


class _Parsed(msgspec.Struct):
    document: DocumentNode | None
    errors: list[GraphQLError]


_parsed: OrderedDict[str, _Parsed] = OrderedDict()


def _parse_and_validate(query: str) -> _Parsed:
    hit = _parsed.get(query)
    if hit is not None:
        _parsed.move_to_end(query)
        return hit
    schema = build()._schema
    try:
        document = parse(query, max_tokens=limits.MAX_TOKENS)
    except GraphQLError as error:
        code = QUERY_TOO_COMPLEX if limits.is_token_limit(error) else BAD_USER_INPUT
        result = _Parsed(
            None, [GraphQLError(error.message, error.nodes, error.source, error.positions, extensions={"code": code})]
        )
    else:
        # the limits walk the document assuming it is valid (an undefined fragment would crash them)
        errors = validate(schema, document, _specified_rules()) or validate(schema, document, limits.VALIDATION_RULES)
        result = _Parsed(document if not errors else None, [coded(e) for e in errors])
    if len(query) <= _CACHE_MAX_QUERY:
        _parsed[query] = result
        if len(_parsed) > _CACHE_SIZE:
            _parsed.popitem(last=False)
    return result


def _specified_rules() -> Any:
    from graphql.validation import specified_rules

    return specified_rules


def _errors(errors: list[GraphQLError]) -> dict[str, Any]:
    return {"errors": [coded(e).formatted for e in errors]}


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | GraphQLError:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        if len(operations) == 1:
            return operations[0]
        return GraphQLError("Must provide operation name if query contains multiple operations.")
    for op in operations:
        if op.name and op.name.value == name:
            return op
    return GraphQLError(f"Unknown operation named '{name}'.")


async def execute(
    ctx: GraphContext,
    query: str,
    variables: dict[str, Any] | None = None,
    operation_name: str | None = None,
    *,
    allow_mutations: bool = True,
    use_fast: bool = True,
    charge: Callable[[int], Awaitable[ApiError | None]] | None = None,
) -> Outcome:
    """Run one request; `charge` (the rate limiter's) sees the cost estimate before execution
    and may refuse it with an error."""
    parsed = _parse_and_validate(query)
    if parsed.document is None:
        return Outcome(body=_errors(parsed.errors))
    document = parsed.document
    operation = _operation(document, operation_name)
    if isinstance(operation, GraphQLError):
        return Outcome(body=_errors([operation]))
    kind = operation.operation
    if kind == OperationType.SUBSCRIPTION:
        return Outcome(body=_errors([GraphQLError("Subscriptions run over WebSocket (graphql-transport-ws)")]))
    if kind == OperationType.MUTATION and not allow_mutations:
        return Outcome(body=_errors([GraphQLError("Mutations need POST")]), operation="mutation")
    schema = build()._schema
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
    if isinstance(coerced, list):
        return Outcome(body=_errors(coerced), operation=kind.value)
    cost, limit_errors = limits.estimate(schema, operation, fragments, coerced)
    ctx.cost = cost
    if limit_errors:  # refused work costs nothing beyond the request's one unit
        return Outcome(body=_errors(limit_errors), operation=kind.value)
    if charge is not None and (refused := await charge(cost)) is not None:
        error = GraphQLError(refused.message, operation, original_error=refused)
        return Outcome(body=_errors([error]), operation=kind.value)
    ctx.db.reading = kind == OperationType.QUERY  # a query may read a replica (api/routing.py)
    if use_fast and kind == OperationType.QUERY:
        body = await fast.execute(schema, operation, fragments, coerced, ctx)
        if body is not None:
            return Outcome(body=body, operation=kind.value, cost=cost, path="fast")
    result = await build().execute(query, variables, context_value=ctx, operation_name=operation_name)
    body = {"data": result.data}
    if result.errors:
        body["errors"] = [coded(e).formatted for e in result.errors]
    return Outcome(body=body, operation=kind.value, cost=cost, path="plain")
