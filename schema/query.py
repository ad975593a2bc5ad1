"""The root Query: connections and lookups over the shared query layer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any, cast

import asyncpg
import strawberry
from strawberry.types import Info

from db import entries, graph, where
from db import timeline as db_timeline
from db.errors import NotFound
from db.filters import EntryFilter, EntrySort, parse_id
from db.page import Key, Paged
from schema.catalog import catalog_connection
from schema.context import GraphContext
from schema.errors import BadInput
from schema.inputs import (
    ActorFilterInput,
    BlogFilterInput,
    EntryFilterInput,
    LocationFilterInput,
    SourceFilterInput,
    entry_filter,
)
from schema.relay import from_global_id, page_of, parse_global_id
from schema.types import (
    NODE_TYPES,
    Actor,
    Blog,
    CatalogOrder,
    Connection,
    Entry,
    EntryOrder,
    Interval,
    Location,
    Node,
    Source,
    TimelineBucket,
    connection,
)


def _ctx(info: Info) -> GraphContext:
    return info.context  # type: ignore[no-any-return]


def cursor_fn(ctx: GraphContext, sort: str, f: Any) -> Callable[[Key], str]:
    return lambda key: ctx.cursors.encode(key, sort=sort, filter=f)


class PageArgs:
    """first/after/last/before and orderBy of an entry connection, decoded once."""

    def __init__(self, ctx: GraphContext, f: EntryFilter, order: EntryOrder, args: dict[str, Any]) -> None:
        self.sort: EntrySort = order.value
        self.page = page_of(
            ctx.cursors,
            sort=self.sort,
            filter=f,
            value_type=datetime,
            first=args.get("first"),
            after=args.get("after"),
            last=args.get("last"),
            before=args.get("before"),
        )
        self.cursor = cursor_fn(ctx, self.sort, f)
        self.key = (self.sort, self.page)


def page_args(ctx: GraphContext, f: EntryFilter, args: dict[str, Any]) -> PageArgs:
    return PageArgs(ctx, f, args.get("orderBy", EntryOrder.PUBLISHED_AT_DESC), args)


async def count_entries(ctx: GraphContext, f: EntryFilter) -> int:
    async def run(conn: asyncpg.Connection) -> int:
        resolved = await where.resolve_entry_filter(conn, f)
        return await db_timeline.count(conn, resolved)

    return await ctx.db.run(run)


async def nested_pages(
    ctx: GraphContext, parent: graph.Parent, ids: Sequence[int], f: EntryFilter, pa: PageArgs
) -> list[Paged[Any]]:
    """Each parent's page of entries, in the order of `ids`: one statement."""
    got = await ctx.db.run(_pages, parent, ids, f, pa)
    return [got[i] for i in ids]


async def _pages(
    conn: asyncpg.Connection, parent: graph.Parent, ids: Sequence[int], f: EntryFilter, pa: PageArgs
) -> dict[int, Paged[Any]]:
    resolved = await where.resolve_entry_filter(conn, f)
    return await graph.entries_of(conn, parent, ids, resolved, pa.sort, pa.page)


async def _counts(conn: asyncpg.Connection, parent: graph.Parent, ids: Sequence[int], f: EntryFilter) -> dict[int, int]:
    resolved = await where.resolve_entry_filter(conn, f)
    return await graph.count_entries_of(conn, parent, ids, resolved)


async def nested_counts(ctx: GraphContext, parent: graph.Parent, ids: Sequence[int], f: EntryFilter) -> dict[int, int]:
    return await ctx.db.run(_counts, parent, ids, f)


async def entry_connection(ctx: GraphContext, f: EntryFilter, args: dict[str, Any]) -> Connection[Entry]:
    pa = page_args(ctx, f, args)
    found = await ctx.db.run(entries.list_entries, f, pa.sort, pa.page)
    return connection(found, Entry.from_row, pa.cursor, partial(count_entries, ctx, f))


async def nested_entries(
    ctx: GraphContext, parent: graph.Parent, parent_id: int, f: EntryFilter, args: dict[str, Any]
) -> Connection[Entry]:
    """A parent's entries; the parents of one level share one statement (a loader keyed by arguments)."""
    pa = page_args(ctx, f, args)

    async def load_pages(conn: asyncpg.Connection, ids: Sequence[int]) -> dict[int, Any]:
        return await _pages(conn, parent, ids, f, pa)

    async def load_counts(conn: asyncpg.Connection, ids: Sequence[int]) -> dict[int, int]:
        return await _counts(conn, parent, ids, f)

    found = await ctx.loader(("entries_of", parent, f, pa.key), load_pages, None).load(parent_id)
    count = partial(ctx.loader(("count_entries_of", parent, f), load_counts, 0).load, parent_id)
    return connection(found, Entry.from_row, pa.cursor, count)


def lookup_ref(type_name: str, id: strawberry.ID | None, slug: str | None) -> int | str:
    """The database id or slug a single-object lookup names."""
    if (id is None) == (slug is None):
        raise BadInput("pass id or slug (one of them)", field="id")
    if slug is not None:
        return slug
    value = str(id)
    db_id = parse_id(value)
    if db_id is not None:
        return db_id
    kind, db_id = from_global_id(value)
    if kind != type_name:
        raise BadInput(f"id: {value!r} is the id of a {kind}, not of a {type_name}", field="id")
    return db_id


async def one(ctx: GraphContext, type_name: str, ref: int | str) -> Any:
    table, _ = NODE_TYPES[type_name]
    if isinstance(ref, int):
        row = await ctx.by_id(table, ref)
    else:
        row = (await ctx.db.run(graph.by_slugs, table, [ref])).get(ref)
    if row is None:
        raise NotFound(f"there is no {type_name.lower()} {ref!r}", field="id")
    return row


def parse_node_id(id: str) -> tuple[str, int]:
    parsed = parse_global_id(id)
    if parsed is None:
        raise BadInput(f"not a valid global id: {id!r}", field="id")
    return parsed


async def _node(ctx: GraphContext, id: str) -> Node | None:
    parsed = parse_node_id(id)
    table, wrap = NODE_TYPES[parsed[0]]
    row = await ctx.by_id(table, parsed[1])
    return None if row is None else wrap(row)


@strawberry.type
class Query:
    @strawberry.field(description="An object by its global id; null if there is none.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return await _node(_ctx(info), str(id))

    @strawberry.field(description="Objects by global id, in the order asked; null where there is none.")
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        ctx = _ctx(info)
        # one batch per type; every lookup ends before the first error is raised
        found = await asyncio.gather(*(_node(ctx, str(i)) for i in ids), return_exceptions=True)
        for result in found:
            if isinstance(result, BaseException):
                raise result
        return cast(list[Node | None], found)

    @strawberry.field(description="Entries, newest first unless orderBy says otherwise.")
    async def entries(
        self,
        info: Info,
        filter: EntryFilterInput | None = None,
        order_by: EntryOrder = EntryOrder.PUBLISHED_AT_DESC,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Entry]:
        args = {"orderBy": order_by, "first": first, "after": after, "last": last, "before": before}
        return await entry_connection(_ctx(info), entry_filter(filter), args)

    @strawberry.field(description="One entry by global id or database id.")
    async def entry(self, info: Info, id: strawberry.ID) -> Entry | None:
        ref = lookup_ref("Entry", id, None)
        if not isinstance(ref, int):
            raise BadInput("entries have no slug; pass their id", field="id")
        return Entry.from_row(await one(_ctx(info), "Entry", ref))

    @strawberry.field(description="Live blogs, newest first.")
    async def blogs(
        self,
        info: Info,
        filter: BlogFilterInput | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Blog]:
        f = filter.to_filter() if filter else None
        args = {"first": first, "after": after, "last": last, "before": before}
        return await catalog_connection(_ctx(info), "Blog", f, "-published_at", args)

    @strawberry.field(description="One blog by global id, database id or slug.")
    async def blog(self, info: Info, id: strawberry.ID | None = None, slug: str | None = None) -> Blog | None:
        return Blog.from_row(await one(_ctx(info), "Blog", lookup_ref("Blog", id, slug)))

    @strawberry.field
    async def actors(
        self,
        info: Info,
        filter: ActorFilterInput | None = None,
        order_by: CatalogOrder = CatalogOrder.NAME,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Actor]:
        f = filter.to_filter() if filter else None
        args = {"first": first, "after": after, "last": last, "before": before}
        return await catalog_connection(_ctx(info), "Actor", f, order_by.value, args)

    @strawberry.field(description="One actor by global id, database id or slug.")
    async def actor(self, info: Info, id: strawberry.ID | None = None, slug: str | None = None) -> Actor | None:
        return Actor.from_row(await one(_ctx(info), "Actor", lookup_ref("Actor", id, slug)))

    @strawberry.field
    async def locations(
        self,
        info: Info,
        filter: LocationFilterInput | None = None,
        order_by: CatalogOrder = CatalogOrder.NAME,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Location]:
        f = filter.to_filter() if filter else None
        args = {"first": first, "after": after, "last": last, "before": before}
        return await catalog_connection(_ctx(info), "Location", f, order_by.value, args)

    @strawberry.field(description="One location by global id, database id or slug.")
    async def location(self, info: Info, id: strawberry.ID | None = None, slug: str | None = None) -> Location | None:
        return Location.from_row(await one(_ctx(info), "Location", lookup_ref("Location", id, slug)))

    @strawberry.field
    async def sources(
        self,
        info: Info,
        filter: SourceFilterInput | None = None,
        order_by: CatalogOrder = CatalogOrder.NAME,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Source]:
        f = filter.to_filter() if filter else None
        args = {"first": first, "after": after, "last": last, "before": before}
        return await catalog_connection(_ctx(info), "Source", f, order_by.value, args)

    @strawberry.field(description="One source by global id, database id or slug.")
    async def source(self, info: Info, id: strawberry.ID | None = None, slug: str | None = None) -> Source | None:
        return Source.from_row(await one(_ctx(info), "Source", lookup_ref("Source", id, slug)))

    @strawberry.field(
        description="Entry counts per hour or day (UTC) under the entry filter, from the first to the last non-empty bucket."
    )
    async def timeline(
        self, info: Info, filter: EntryFilterInput | None = None, interval: Interval = Interval.DAY
    ) -> list[TimelineBucket]:
        found = await _ctx(info).db.run(db_timeline.timeline, entry_filter(filter), interval.value)
        return [TimelineBucket(start=b.start, count=b.count) for b in found]
