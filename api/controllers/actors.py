"""GET /v1/actors and /v1/actors/{id or slug}: people, organisations, states, armed forces."""

from __future__ import annotations

from typing import Any, cast

import msgspec
from litestar import Request, get
from litestar.response import Response

from api import formats
from api import params as p
from api.controllers import catalog_params as c
from api.controllers.entries import DEPENDENCIES, Conn
from api.controllers.listing import PageInfo, cursors, list_response, page_info
from db import actors
from db.rows import Actor

TAGS = ["actors"]
KEY_TYPES: dict[str, type] = {"name": str, "-entry_count": int}


class ActorList(msgspec.Struct):
    data: list[Actor]
    page: PageInfo


@get(
    "/v1/actors",
    operation_id="listActors",
    tags=TAGS,
    dependencies=DEPENDENCIES,
    summary="List actors",
    description="Actors with their aliases, country and entry_count, by name (default) or by -entry_count.",
)
async def list_actors(
    request: Request[Any, Any, Any],
    conn: Conn,
    q: c.NameQ = None,
    kind: c.ActorKindParam = None,
    country: c.CountryParam = None,
    sort: p.CatalogSortParam = None,
    limit: p.LimitParam = None,
    cursor: p.CursorParam = None,
    count: p.CountParam = None,
) -> Response[ActorList]:
    query = p.Query(request)
    flt, order = query.actor_filter(), query.catalog_sort()
    page = query.page(cursors(request), sort=order, filter=flt, value_type=KEY_TYPES[order])
    query.done()
    fmt = formats.negotiate(request.headers.get("accept"), request.query_params.get("format"), formats.CATALOG_FORMATS)
    if fmt is formats.Format.NDJSON:  # the whole list, streamed
        stream = await formats.ndjson_pages(
            conn, request.app.state.pool, lambda cn, pg: actors.list_actors(cn, flt, order, pg)
        )
        return cast(Response[ActorList], stream)
    found = await actors.list_actors(conn, flt, order, page)
    info = page_info(request, found, page.limit, sort=order, filter=flt)
    response = list_response(request, ActorList(data=found.rows, page=info), info)
    return formats.page_response(fmt, response, Actor, found.rows, info)


@get(
    "/v1/actors/{ref:str}",
    operation_id="getActor",
    tags=TAGS,
    dependencies=DEPENDENCIES,
    summary="One actor by id or slug",
    description="404 if no actor has that id or slug.",
)
async def get_actor(request: Request[Any, Any, Any], conn: Conn, ref: c.RefPath) -> Actor:
    p.Query(request).done()
    formats.single_object(request)
    return await actors.get_actor(conn, p.path_ref(ref))


route_handlers = [list_actors, get_actor]
