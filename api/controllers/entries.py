"""GET /v1/entries and /v1/entries/{id}: entries with their blog, actors, locations, sources and media."""

from __future__ import annotations

from typing import Annotated, Any, cast

import asyncpg
import msgspec
from litestar import Request, get
from litestar.di import NamedDependency, Provide
from litestar.openapi.spec import Example
from litestar.params import PathParameter
from litestar.response import Response

from api import formats
from api import params as p
from api.connection import connection, provide_connection
from api.controllers.listing import PageInfo, cursors, list_response, page_info
from api.entry_cache import EntryCache
from api.exports import export_caller
from db import entries, where
from db.entries import SORT_KEY_TYPE
from db.filters import EntryFilter, EntrySort
from db.page import Page
from db.rows import Entry

Conn = NamedDependency[asyncpg.Connection]
DEPENDENCIES = {"conn": Provide(provide_connection)}
TAGS = ["entries"]
_encode = msgspec.json.Encoder().encode


class EntryList(msgspec.Struct):
    data: list[Entry]
    page: PageInfo


@get(
    "/v1/entries",
    operation_id="listEntries",
    tags=TAGS,
    summary="List entries, newest first, under the entry filters",
    description=(
        "Entries with their blog, actors (with role), locations, sources and media. Filters combine with AND;"
        " repeating one parameter ORs its values. Pages are keyset-based: follow `page.next_cursor`"
        ' (or the `Link: rel="next"` header) with the same filters and sort.'
    ),
)
async def list_entries(
    request: Request[Any, Any, Any],
    blog: p.BlogParam = None,
    actor: p.ActorParam = None,
    actor_match: p.ActorMatchParam = None,
    location: p.LocationParam = None,
    source: p.SourceParam = None,
    since: p.SinceParam = None,
    until: p.UntilParam = None,
    updated_since: p.UpdatedSinceParam = None,
    q: p.EntryQParam = None,
    kind: p.EntryKindParam = None,
    bbox: p.BBoxParam = None,
    sort: p.EntrySortParam = None,
    limit: p.LimitParam = None,
    cursor: p.CursorParam = None,
    count: p.CountParam = None,
    all: p.AllParam = None,
) -> Response[EntryList]:
    query = p.Query(request)
    flt, order = query.entry_filter(), query.entry_sort()
    page = query.page(cursors(request), sort=order, filter=flt, value_type=SORT_KEY_TYPE)
    whole = query.flag("all")
    fmt = formats.negotiate(request.headers.get("accept"), request.query_params.get("format"))
    if whole and fmt is formats.Format.JSON:
        query.fail("all", "JSON answers pages; ask for format=ndjson, csv or geojson to stream the whole result")
    query.done()
    export = fmt is formats.Format.NDJSON or whole
    # not a dependency: see api/connection.py; an export reads the primary (its chunks do too)
    custom_plan = not export and where.needs_custom_plan(flt)
    async with connection(request, primary=export, custom_plan=custom_plan) as conn:
        if export:  # the whole result, streamed: no page
            state = request.app.state
            ticket = state.exports.take(export_caller(request))
            stream = await formats.export_entries(conn, state.export_pool, flt, order, ticket, fmt)
            return cast(Response[EntryList], stream)
        if fmt is formats.Format.JSON:
            body, info = await json_page(request, conn, flt, order, page)
            return list_response(request, body, info)
        found = await entries.list_linked(conn, request.app.state.refs, flt, order, page)
    info = page_info(request, found, page.limit, sort=order, filter=flt)
    response = list_response(request, EntryList(data=found.rows, page=info), info)
    return cast(Response[EntryList], formats.entries_page_response(fmt, found.rows, info, dict(response.headers)))


async def json_page(
    request: Request[Any, Any, Any], conn: asyncpg.Connection, flt: EntryFilter, order: EntrySort, page: Page
) -> tuple[bytes, PageInfo]:
    """The page as `EntryList` JSON bytes and its page info: keys first and entries from the entry
    cache while it finds nearly all of them, else the page with its links in one statement
    (api/entry_cache.py). The ETag is the caching middleware's, from the body's bytes, the same
    either way. The route and its fast path (api/fast_entries.py) both answer with this."""
    cache: EntryCache = request.app.state.entry_cache
    if cache.enabled and cache.keys_first:
        return await _json_page_keys_first(request, conn, cache, flt, order, page)
    generation = cache.generation
    found = await entries.list_linked(conn, request.app.state.refs, flt, order, page)
    info = page_info(request, found, page.limit, sort=order, filter=flt)
    if not cache.enabled:
        return _encode(EntryList(data=found.rows, page=info)), info
    cache.count(len(found.rows), sum(1 for entry in found.rows if cache.get(entry) is not None))
    if not cache.fills():
        return _encode(EntryList(data=found.rows, page=info)), info
    rendered = cache.render({entry.id: entry for entry in found.rows}, generation)
    body = b",".join(rendered[entry.id].body for entry in found.rows)
    return b'{"data":[' + body + b'],"page":' + _encode(info) + b"}", info


async def _json_page_keys_first(
    request: Request[Any, Any, Any],
    conn: asyncpg.Connection,
    cache: EntryCache,
    flt: EntryFilter,
    order: EntrySort,
    page: Page,
) -> tuple[bytes, PageInfo]:
    found, seq = await entries.list_keys(conn, flt, order, page, request.app.state.refs)
    trusted = cache.trusts(seq)
    parts = [cache.get(key) if trusted else None for key in found.rows]
    missing = [key.id for key, part in zip(found.rows, parts, strict=True) if part is None]
    cache.count(len(parts), len(parts) - len(missing))
    if missing:
        generation = cache.keep_token(seq)  # a snapshot older than the cache's news keeps nothing
        fresh = cache.render(await entries.linked_by_ids(conn, request.app.state.refs, missing), generation)
        # an entry deleted since the page was read is left out
        parts = [part if part is not None else fresh.get(key.id) for key, part in zip(found.rows, parts, strict=True)]
    info = page_info(request, found, page.limit, sort=order, filter=flt)
    body = b",".join(part.body for part in parts if part is not None)
    return b'{"data":[' + body + b'],"page":' + _encode(info) + b"}", info


@get(
    "/v1/entries/{entry_id:int}",
    operation_id="getEntry",
    tags=TAGS,
    dependencies=DEPENDENCIES,
    summary="One entry by id",
    description="The entry with its blog, actors (with role), locations, sources and media; 404 if there is none.",
)
async def get_entry(
    request: Request[Any, Any, Any],
    conn: Conn,
    entry_id: Annotated[int, PathParameter(description="The entry's id.", examples=[Example(value=1234)])],
) -> Entry:
    p.Query(request).done()
    formats.single_object(request)
    return await entries.get_entry(conn, entry_id, request.app.state.refs)


route_handlers = [list_entries, get_entry]
