"""GET /v1/blogs and /v1/blogs/{id or slug}: live blogs, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import msgspec
from litestar import Request, get
from litestar.response import Response

from api import formats
from api import params as p
from api.controllers import catalog_params as c
from api.controllers.entries import DEPENDENCIES, Conn
from api.controllers.listing import PageInfo, cursors, list_response, page_info
from db import blogs
from db.blogs import BlogSort
from db.rows import Blog

TAGS = ["blogs"]
SORT: BlogSort = "-published_at"


class BlogList(msgspec.Struct):
    data: list[Blog]
    page: PageInfo


@get(
    "/v1/blogs",
    operation_id="listBlogs",
    tags=TAGS,
    dependencies=DEPENDENCIES,
    summary="List blogs, newest first",
    description="Live blogs with title, standfirst, status, authors, key points, hero image and entry_count.",
)
async def list_blogs(
    request: Request[Any, Any, Any],
    conn: Conn,
    status: c.BlogStatusParam = None,
    q: c.BlogQParam = None,
    limit: p.LimitParam = None,
    cursor: p.CursorParam = None,
    count: p.CountParam = None,
) -> Response[BlogList]:
    query = p.Query(request)
    flt = query.blog_filter()
    page = query.page(cursors(request), sort=SORT, filter=flt, value_type=datetime)
    query.done()
    fmt = formats.negotiate(request.headers.get("accept"), request.query_params.get("format"), formats.CATALOG_FORMATS)
    if fmt is formats.Format.NDJSON:  # the whole list, streamed
        stream = await formats.ndjson_pages(
            conn, request.app.state.pool, lambda cn, pg: blogs.list_blogs(cn, flt, SORT, pg)
        )
        return cast(Response[BlogList], stream)
    found = await blogs.list_blogs(conn, flt, SORT, page)
    info = page_info(request, found, page.limit, sort=SORT, filter=flt)
    response = list_response(request, BlogList(data=found.rows, page=info), info)
    return formats.page_response(fmt, response, Blog, found.rows, info)


@get(
    "/v1/blogs/{ref:str}",
    operation_id="getBlog",
    tags=TAGS,
    dependencies=DEPENDENCIES,
    summary="One blog by id or slug",
    description="404 if no blog has that id or slug. Its entries: GET /v1/entries?blog={id or slug}.",
)
async def get_blog(request: Request[Any, Any, Any], conn: Conn, ref: c.RefPath) -> Blog:
    p.Query(request).done()
    formats.single_object(request)
    return await blogs.get_blog(conn, p.path_ref(ref))


route_handlers = [list_blogs, get_blog]
