"""GET /v1/changes: the change feed, for mirroring the dataset (see db/changes.py)."""

from __future__ import annotations

from typing import Any, cast

import asyncpg
import msgspec
from litestar import Request, get
from litestar.response import Response

from api.controllers.writes import problem_response
from db import changes
from db.errors import InvalidInput

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


class ChangePage(msgspec.Struct, frozen=True):
    next_after: int


class ChangeList(msgspec.Struct, frozen=True):
    data: list[changes.Change]
    page: ChangePage


def _int(params: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    values = params.get(name)
    if not values:
        return default
    if len(values) > 1:
        raise InvalidInput(f"{name}: give it once", field=name)
    try:
        value = int(values[0])
    except ValueError:
        raise InvalidInput(f"{name}: not an integer: {values[0]!r}", field=name) from None
    if not low <= value <= high:
        raise InvalidInput(f"{name}: must be between {low} and {high}", field=name)
    return value


def parse_params(request: Request[Any, Any, Any]) -> tuple[int, int]:
    params = {k: request.query_params.getall(k) for k in request.query_params}
    unknown = sorted(set(params) - {"after", "limit"})
    if unknown:
        raise InvalidInput(f"{unknown[0]}: unknown parameter", field=unknown[0])
    return _int(params, "after", 0, 0, 2**63 - 1), _int(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)


@get(
    "/v1/changes",
    operation_id="listChanges",
    tags=["changes"],
    summary="Every create, update and delete after a seq, in commit order; store next_after and ask again",
)
async def list_changes(request: Request[Any, Any, Any]) -> Response[bytes]:
    try:
        after, limit = parse_params(request)
    except InvalidInput as exc:
        return problem_response(exc, status=400)
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as proxy:
        found = await changes.list_changes(cast(asyncpg.Connection, proxy), after=after, limit=limit)
    body = ChangeList(data=found, page=ChangePage(next_after=changes.next_after(found, after)))
    return Response(msgspec.json.encode(body), media_type="application/json", headers={"Cache-Control": "no-store"})
