"""Connections over the catalog lists (blogs, actors, locations, sources) of the query layer."""

from __future__ import annotations

import importlib
from datetime import datetime
from typing import Any

import msgspec

from schema.context import GraphContext
from schema.errors import BadInput
from schema.relay import page_of
from schema.types import Actor, Blog, Connection, Location, Source, connection

_KEY_TYPES: dict[str, type] = {"name": str, "-entry_count": int}


def _db(module: str, name: str) -> Any:
    # the catalog modules land in db/ independently of this skin; looked up when first used
    return getattr(importlib.import_module(f"db.{module}"), name)


async def _catalog(
    ctx: GraphContext,
    lister: Any,
    counter: Any,
    wrap: Any,
    f: msgspec.Struct | None,
    sort: str,
    value_type: type,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> Connection[Any]:
    page = page_of(
        ctx.cursors, sort=sort, filter=f, value_type=value_type, first=first, after=after, last=last, before=before
    )
    found = await ctx.db.run(lister, f, sort, page)

    async def count() -> int:
        return int(await ctx.db.run(counter, f))

    return connection(found, wrap, lambda key: ctx.cursors.encode(key, sort=sort, filter=f), count)


async def blogs(
    ctx: GraphContext, f: Any, first: int | None, after: str | None, last: int | None, before: str | None
) -> Connection[Blog]:
    return await _catalog(
        ctx,
        _db("blogs", "list_blogs"),
        _db("blogs", "count_blogs"),
        Blog.from_row,
        f,
        "-published_at",
        datetime,
        first,
        after,
        last,
        before,
    )


async def actors(
    ctx: GraphContext, f: Any, sort: str, first: int | None, after: str | None, last: int | None, before: str | None
) -> Connection[Actor]:
    return await _catalog(
        ctx,
        _db("actors", "list_actors"),
        _db("actors", "count_actors"),
        Actor.from_row,
        f,
        sort,
        _KEY_TYPES[sort],
        first,
        after,
        last,
        before,
    )


async def locations(
    ctx: GraphContext, f: Any, sort: str, first: int | None, after: str | None, last: int | None, before: str | None
) -> Connection[Location]:
    if sort == "-entry_count":
        raise BadInput("orderBy: locations have no entry count to sort by", field="orderBy")
    return await _catalog(
        ctx,
        _db("locations", "list_locations"),
        _db("locations", "count_locations"),
        Location.from_row,
        f,
        sort,
        str,
        first,
        after,
        last,
        before,
    )


async def sources(
    ctx: GraphContext, f: Any, sort: str, first: int | None, after: str | None, last: int | None, before: str | None
) -> Connection[Source]:
    return await _catalog(
        ctx,
        _db("sources", "list_sources"),
        _db("sources", "count_sources"),
        Source.from_row,
        f,
        sort,
        _KEY_TYPES[sort],
        first,
        after,
        last,
        before,
    )
