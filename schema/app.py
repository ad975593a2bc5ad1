"""The GraphQL endpoint: POST and GET on /graphql, Automatic Persisted Queries, GraphiQL.

HTTP caching of GET answers (ETag, 304, Cache-Control) is the app's caching middleware's
job (api/caching.py); this controller only marks answers with errors as not to be stored.
"""

from __future__ import annotations

import importlib
from typing import Any

import msgspec
from litestar import MediaType, Request, Response, get, post
from litestar.handlers import BaseRouteHandler

from api import routing
from api.web import graphiql_html
from db import changes
from schema.context import GraphContext, graph_context
from schema.errors import BAD_USER_INPUT, ApiError, RateLimited
from schema.execute import Outcome, execute
from schema.persisted import PersistedQueries, document_hash

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"  # Apollo's APQ protocol expects this code
_JSON = "application/json"


class GraphRequest(msgspec.Struct, kw_only=True):
    query: str | None = None
    variables: dict[str, Any] | None = None
    operationName: str | None = None
    extensions: dict[str, Any] | None = None


def _error(message: str, code: str = BAD_USER_INPUT) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def _respond(body: dict[str, Any], status: int = 200, *, cacheable: bool = False) -> Response[bytes]:
    headers = {} if cacheable and "errors" not in body else {"Cache-Control": "no-store"}
    return Response(msgspec.json.encode(body), status_code=status, media_type=_JSON, headers=headers)


def _persisted(request: Request[Any, Any, Any]) -> PersistedQueries:
    state = request.app.state
    found: PersistedQueries | None = state.get("graphql_apq")
    if found is None:  # an app without schema.persisted's lifespan: documents in process only
        found = state.graphql_apq = PersistedQueries()
    return found


async def _resolve_query(given: GraphRequest, apq: PersistedQueries) -> str | dict[str, Any]:
    """The query text, or the error body to answer (APQ: not found, hash mismatch)."""
    persisted = (given.extensions or {}).get("persistedQuery")
    if not isinstance(persisted, dict):
        return given.query if given.query else _error("The request has no query")
    sha = persisted.get("sha256Hash")
    if persisted.get("version") != 1 or not isinstance(sha, str):
        return _error("persistedQuery: only version 1 with a sha256Hash is supported")
    if given.query is None:
        found = await apq.get(sha)
        if found is None:
            return _error("PersistedQueryNotFound", PERSISTED_QUERY_NOT_FOUND)
        return found
    if document_hash(given.query) != sha:
        return _error("persistedQuery: sha256Hash does not match the query")
    await apq.put(sha, given.query)
    return given.query


async def _run(request: Request[Any, Any, Any], given: GraphRequest, *, get_method: bool) -> Response[bytes]:
    query = await _resolve_query(given, _persisted(request))
    if isinstance(query, dict):
        return _respond(query)
    async with graph_context(request) as ctx:
        return await _answer(request, ctx, query, given, get_method=get_method)


async def _answer(
    request: Request[Any, Any, Any], ctx: GraphContext, query: str, given: GraphRequest, *, get_method: bool
) -> Response[bytes]:

    async def charge(cost: int) -> ApiError | None:
        """Charge the estimated cost to the caller's rate (api/ratelimit.py) before running."""
        if "auth" not in request.app.state:
            return None
        from api.ratelimit import charge_connection

        decision = await charge_connection(request, cost)
        if decision.allowed:
            return None
        return RateLimited(
            f"This query's estimated cost ({cost}) is over what is left of your rate; retry in {decision.retry_after} s",
            extensions={"cost": cost, "retryAfter": decision.retry_after},
        )

    outcome: Outcome = await execute(
        ctx, query, given.variables, given.operationName, allow_mutations=not get_method, charge=charge
    )
    request.state.graphql_cost = outcome.cost
    if outcome.operation == "mutation" and outcome.body.get("data") is not None:
        await _answer_seq(ctx, outcome.body)
    if get_method and outcome.operation == "mutation":
        return Response(outcome.json(), status_code=405, media_type=_JSON, headers={"Allow": "POST"})
    headers = {} if get_method and not outcome.has_errors else {"Cache-Control": "no-store"}
    response = Response(outcome.json(), status_code=200, media_type=_JSON, headers=headers)
    if ctx.replayed:
        response.headers["Idempotent-Replayed"] = "true"  # as REST says it
    return response


async def _answer_seq(ctx: GraphContext, body: dict[str, Any]) -> None:
    """A mutation answers the change seq its commit reached (`extensions.seq` and the Sitrep-Seq
    header): a later read sending it back sees the mutation, replica or not (api/routing.py)."""
    seq = await ctx.db.run(changes.last_seq)
    extensions = body.get("extensions")
    body["extensions"] = {**(extensions if isinstance(extensions, dict) else {}), "seq": seq}
    route = routing.current()
    if route is not None:
        route.seq = seq


def _json_param(request: Request[Any, Any, Any], name: str) -> Any:
    raw = request.query_params.get(name)
    return None if raw is None else msgspec.json.decode(raw)


@get(
    "/graphql",
    operation_id="graphqlGet",
    tags=["graphql"],
    summary="GraphQL query in the URL; GraphiQL in a browser",
    include_in_schema=False,
)
async def graphql_get(request: Request[Any, Any, Any]) -> Response[Any]:
    if "query" not in request.query_params and "extensions" not in request.query_params:
        if "text/html" in request.headers.get("accept", ""):
            return Response(graphiql_html(), media_type=MediaType.HTML)
        return _respond(_error("The request has no query"), 400)
    try:
        given = GraphRequest(
            query=request.query_params.get("query"),
            variables=_json_param(request, "variables"),
            operationName=request.query_params.get("operationName"),
            extensions=_json_param(request, "extensions"),
        )
    except msgspec.DecodeError:
        return _respond(_error("variables and extensions must be JSON objects"), 400)
    if given.variables is not None and not isinstance(given.variables, dict):
        return _respond(_error("variables must be a JSON object"), 400)
    return await _run(request, given, get_method=True)


@post(
    "/graphql",
    operation_id="graphqlPost",
    tags=["graphql"],
    summary="GraphQL over HTTP",
    status_code=200,
    include_in_schema=False,
)
async def graphql_post(request: Request[Any, Any, Any]) -> Response[bytes]:
    try:
        given = msgspec.json.decode(await request.body(), type=GraphRequest)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return _respond(_error(f"The body is not a GraphQL request: {exc}"), 400)
    return await _run(request, given, get_method=False)


def route_handlers() -> list[BaseRouteHandler | Any]:
    """The GraphQL routes; with the subscription socket when schema/subscriptions.py offers one."""
    handlers: list[Any] = [graphql_get, graphql_post]
    try:
        module = importlib.import_module("schema.subscriptions")
    except ModuleNotFoundError:
        return handlers
    socket = getattr(module, "websocket_handler", None)
    if socket is not None:
        handlers.append(socket)
    return handlers
