"""Connections over the catalog lists of the query layer: blogs, actors, locations, sources."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import msgspec

from db import actors as db_actors
from db import blogs as db_blogs
from db import locations as db_locations
from db import sources as db_sources
from db.filters import ActorFilter, BlogFilter, LocationFilter, SourceFilter
from db.page import Paged
from schema.context import GraphContext
from schema.relay import page_of
from schema.types import Actor, Blog, Connection, Location, Source, connection

# catalog: type name -> (list function, count function, empty filter, row -> object)
CATALOGS: dict[str, tuple[Callable[..., Awaitable[Paged[Any]]], Callable[..., Awaitable[int]], msgspec.Struct, Any]] = {
    "Blog": (db_blogs.list_blogs, db_blogs.count_blogs, BlogFilter(), Blog.from_row),
    "Actor": (db_actors.list_actors, db_actors.count_actors, ActorFilter(), Actor.from_row),
    "Location": (db_locations.list_locations, db_locations.count_locations, LocationFilter(), Location.from_row),
    "Source": (db_sources.list_sources, db_sources.count_sources, SourceFilter(), Source.from_row),
}
_KEY_TYPES: dict[str, type] = {"name": str, "-entry_count": int, "-published_at": datetime}


class CatalogPage:
    """A catalog list's filter, sort and page, decoded once (both execution paths use it)."""

    def __init__(
        self, ctx: GraphContext, type_name: str, f: msgspec.Struct | None, sort: str, args: dict[str, Any]
    ) -> None:
        self.lister, self.counter, empty, self.wrap = CATALOGS[type_name]
        self.filter = f if f is not None else empty
        self.sort = sort
        self.page = page_of(
            ctx.cursors,
            sort=sort,
            filter=self.filter,
            value_type=_KEY_TYPES[sort],
            first=args.get("first"),
            after=args.get("after"),
            last=args.get("last"),
            before=args.get("before"),
        )
        self.ctx = ctx

    def cursor(self, key: Any) -> str:
        return self.ctx.cursors.encode(key, sort=self.sort, filter=self.filter)

    async def fetch(self) -> Paged[Any]:
        return await self.ctx.db.run(self.lister, self.filter, self.sort, self.page)

    async def count(self) -> int:
        return int(await self.ctx.db.run(self.counter, self.filter))


async def catalog_connection(
    ctx: GraphContext, type_name: str, f: msgspec.Struct | None, sort: str, args: dict[str, Any]
) -> Connection[Any]:
    cp = CatalogPage(ctx, type_name, f, sort, args)
    return connection(await cp.fetch(), cp.wrap, cp.cursor, cp.count)
