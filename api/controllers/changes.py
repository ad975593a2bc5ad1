"""GET /v1/changes: the change feed, for mirroring the dataset (see db/changes.py)."""

from __future__ import annotations

from typing import Annotated, Any, cast

import asyncpg
import msgspec
from litestar import Request, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter
from litestar.response import Response

from api import formats
from api.params import Query
from db import changes

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


class ChangePage(msgspec.Struct, frozen=True):
    next_after: int


class ChangeList(msgspec.Struct, frozen=True):
    data: list[changes.Change]
    page: ChangePage


AfterParam = Annotated[
    str | None, QueryParameter(description="Changes after this seq (0, the default, is the beginning).")
]
LimitParam = Annotated[str | None, QueryParameter(description=f"At most this many changes (1 to {MAX_LIMIT}).")]


@get(
    "/v1/changes",
    operation_id="listChanges",
    tags=["changes"],
    summary="Every create, update and delete after a seq, in commit order",
    # the handler encodes the body itself; document what it encodes
    responses={
        200: ResponseSpec(
            data_container=ChangeList, generate_examples=False, description="The changes after `after`, in commit order"
        )
    },
    description=(
        "For mirroring the dataset: apply the changes in order, store `page.next_after`, ask again with"
        " `after` set to it. `seq` only grows and a change is never published after a later one, so"
        " nothing is missed, deletions included (`op: delete`, `data`: the last state)."
    ),
)
async def list_changes(
    request: Request[Any, Any, Any], after: AfterParam = None, limit: LimitParam = None
) -> Response[bytes]:
    query = Query(request)
    start, size = query.integer("after", 0, 0, 2**62), query.integer("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    query.done()
    formats.single_object(request)
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as proxy:
        found = await changes.list_changes(cast(asyncpg.Connection, proxy), after=start, limit=size)
    body = ChangeList(data=found, page=ChangePage(next_after=changes.next_after(found, start)))
    return Response(msgspec.json.encode(body), media_type="application/json", headers={"Cache-Control": "no-store"})
