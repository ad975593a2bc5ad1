"""One GraphQL request, transport aside: parse, validate, check limits, then execute.

Parsing, validation and compilation are done once per document (schema/plans.py, by the
document's SHA-256). A query the compiled path takes (schema/compiled.py: entry lists, REST's
statements, straight to bytes) runs there; else one the fast path (schema/fast.py) understands
runs there; everything else (introspection, mutations, anything unusual) runs on Strawberry's
executor. All three answer the same JSON (tests/schema/test_fast.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from graphql import GraphQLError, OperationType
from graphql.execution.values import get_variable_values

from schema import build, compiled, fast, plans
from schema.context import GraphContext
from schema.errors import ApiError, coded


class Outcome:
    """A request's answer: the body as a dict, or (the compiled path) as JSON bytes already."""

    __slots__ = ("_body", "_encoded", "cost", "operation", "path")

    def __init__(
        self,
        body: dict[str, Any] | None = None,
        *,
        encoded: bytes | None = None,
        operation: str | None = None,  # "query", "mutation", "subscription"
        cost: int = 0,  # what to charge to the caller's rate: the estimate of a query that ran, else 0
        path: str = "none",  # "compiled", "fast", "plain" or "none" (refused before execution)
    ) -> None:
        assert (body is None) != (encoded is None)
        self._body = body
        self._encoded = encoded
        self.operation = operation
        self.cost = cost
        self.path = path

    @property
    def body(self) -> dict[str, Any]:
        if self._body is None:
            assert self._encoded is not None
            self._body = msgspec.json.decode(self._encoded)
        return self._body

    def json(self) -> bytes:
        """The body as JSON: the bytes the compiled path wrote, or the dict encoded."""
        if self._encoded is None:
            self._encoded = msgspec.json.encode(self._body)
        return self._encoded

    @property
    def has_errors(self) -> bool:
        return self._body is not None and "errors" in self._body


def _errors(errors: list[GraphQLError]) -> dict[str, Any]:
    return {"errors": [coded(e).formatted for e in errors]}


async def execute(
    ctx: GraphContext,
    query: str,
    variables: dict[str, Any] | None = None,
    operation_name: str | None = None,
    *,
    allow_mutations: bool = True,
    use_fast: bool = True,
    use_compiled: bool = True,
    sha: str | None = None,
    charge: Callable[[int], Awaitable[ApiError | None]] | None = None,
) -> Outcome:
    """Run one request; `charge` (the rate limiter's) sees the cost estimate before execution
    and may refuse it with an error. `sha`: the document's SHA-256 when the caller has it (APQ).
    `use_fast` / `use_compiled` off: the slower paths answer (tests compare them)."""
    schema = build()._schema
    plan = plans.PLANS.get(schema, query, sha)
    if plan.document is None:
        return Outcome(_errors(plan.errors))
    found = plan.operation(operation_name)
    if isinstance(found, GraphQLError):
        return Outcome(_errors([found]))
    operation, fragments = found.operation, plan.fragments
    kind = operation.operation
    if kind == OperationType.SUBSCRIPTION:
        return Outcome(_errors([GraphQLError("Subscriptions run over WebSocket (graphql-transport-ws)")]))
    if kind == OperationType.MUTATION and not allow_mutations:
        return Outcome(_errors([GraphQLError("Mutations need POST")]), operation="mutation")
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
    if isinstance(coerced, list):
        return Outcome(_errors(coerced), operation=kind.value)
    cost, limit_errors = found.estimate(schema, coerced)
    ctx.cost = cost
    if limit_errors:  # refused work costs nothing beyond the request's one unit
        return Outcome(_errors(limit_errors), operation=kind.value)
    if charge is not None and (refused := await charge(cost)) is not None:
        error = GraphQLError(refused.message, operation, original_error=refused)
        return Outcome(_errors([error]), operation=kind.value)
    ctx.db.reading = kind == OperationType.QUERY  # a query may read a replica (api/routing.py)
    if use_fast and kind == OperationType.QUERY:
        program = found.program(schema, coerced) if use_compiled else None
        if program is not None:
            encoded = await compiled.execute(schema, program, coerced, ctx)
            if encoded is not None:
                return Outcome(encoded=encoded, operation=kind.value, cost=cost, path="compiled")
        body = await fast.execute(schema, operation, fragments, coerced, ctx)
        if body is not None:
            return Outcome(body, operation=kind.value, cost=cost, path="fast")
    result = await build().execute(query, variables, context_value=ctx, operation_name=operation_name)
    body = {"data": result.data}
    if result.errors:
        body["errors"] = [coded(e).formatted for e in result.errors]
    return Outcome(body, operation=kind.value, cost=cost, path="plain")
