"""GET /v1/sources and /v1/sources/{id or slug}: agencies, social networks, officials, broadcasters, NGOs, newspapers."""

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
from db import sources
from db.rows import Source

TAGS = ["sources"]
KEY_TYPES: dict[str, type] = {"name": str, "-entry_count": int}


class SourceList(msgspec.Struct):
    data: list[Source]
    page: PageInfo


@get(
    "/v1/sources",
    operation_id="listSources",
    tags=TAGS,
    dependencies=DEPENDENCIES,
    summary="List sources",
    description="Sources with their aliases, url and entry_count, by name (default) or by -entry_count.",
)
async def list_sources(
    request: Request[Any, Any, Any],
    conn: Conn,
    q: c.NameQ = None,
    kind: c.SourceKindParam = None,
    sort: p.CatalogSortParam = None,
    limit: p.LimitParam = None,
    cursor: p.CursorParam = None,
    count: p.CountParam = None,
) -> Response[SourceList]:
    query = p.Query(request)
    flt, order = query.source_filter(), query.catalog_sort()
    page = query.page(cursors(request), sort=order, filter=flt, value_type=KEY_TYPES[order])
    query.done()
    fmt = formats.negotiate(request.headers.get("accept"), request.query_params.get("format"), formats.CATALOG_FORMATS)
    if fmt is formats.Format.NDJSON:  # the whole list, streamed
        stream = await formats.ndjson_pages(
            conn, request.app.state.pool, lambda cn, pg: sources.list_sources(cn, flt, order, pg)
        )
        return cast(Response[SourceList], stream)
    found = await sources.list_sources(conn, flt, order, page)
    info = page_info(request, found, page.limit, sort=order, filter=flt)
    response = list_response(request, SourceList(data=found.rows, page=info), info)
    return formats.page_response(fmt, response, Source, found.rows, info)


@get(
    "/v1/sources/{ref:str}",
    operation_id="getSource",
    tags=TAGS,
    dependencies=DEPENDENCIES,
    summary="One source by id or slug",
    description="404 if no source has that id or slug.",
)
async def get_source(request: Request[Any, Any, Any], conn: Conn, ref: c.RefPath) -> Source:
    p.Query(request).done()
    formats.single_object(request)
    return await sources.get_source(conn, p.path_ref(ref))


route_handlers = [list_sources, get_source]
