"""The GraphQL object types: rows of the query layer (db/rows.py) seen through Relay conventions.

Relations are resolved through the request's batch loaders (schema/context.py), so a level of
the response costs one statement per relation, whatever its number of rows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar

import strawberry
from strawberry.types import Info

from db import entries, graph, rows
from db.page import Paged
from schema.relay import to_global_id

if TYPE_CHECKING:
    from schema.context import GraphContext
    from schema.inputs import EntryFilterInput

T = TypeVar("T")


# ---------------------------------------------------------------- enums (values are the database's)


@strawberry.enum
class EntryKind(Enum):
    POST = "post"
    VIDEO = "video"
    INTERACTIVE = "interactive"
    READ_MORE = "read_more"


@strawberry.enum
class ActorKind(Enum):
    PERSON = "person"
    ORGANIZATION = "organization"
    STATE = "state"
    MILITARY = "military"


@strawberry.enum
class ActorRole(Enum):
    SPEAKER = "speaker"
    MENTIONED = "mentioned"


@strawberry.enum
class LocationKind(Enum):
    COUNTRY = "country"
    REGION = "region"
    CITY = "city"
    SITE = "site"
    WATER = "water"


@strawberry.enum
class SourceKind(Enum):
    AGENCY = "agency"
    SOCIAL = "social"
    OFFICIAL = "official"
    BROADCASTER = "broadcaster"
    NGO = "ngo"
    NEWSPAPER = "newspaper"


@strawberry.enum
class BlogStatus(Enum):
    LIVE = "live"
    CLOSED = "closed"


@strawberry.enum
class MediaKind(Enum):
    IMAGE = "image"
    VIDEO = "video"
    EMBED = "embed"


@strawberry.enum(description="The order of an entry list.")
class EntryOrder(Enum):
    PUBLISHED_AT_DESC = "-published_at"
    PUBLISHED_AT_ASC = "published_at"
    UPDATED_AT_DESC = "-updated_at"
    UPDATED_AT_ASC = "updated_at"


@strawberry.enum(description="The order of actors, locations or sources.")
class CatalogOrder(Enum):
    NAME = "name"
    ENTRY_COUNT_DESC = "-entry_count"


@strawberry.enum
class Interval(Enum):
    HOUR = "hour"
    DAY = "day"


# ---------------------------------------------------------------- connections


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    _nodes: strawberry.Private[list[T]]
    _count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field
    def nodes(self) -> list[T]:
        return self._nodes

    @strawberry.field(description="Computed only when asked for.")
    async def total_count(self) -> int:
        return await self._count()


def connection(
    page: Paged[Any], wrap: Callable[[Any], T], cursor: Callable[[Any], str], count: Callable[[], Awaitable[int]]
) -> Connection[T]:
    nodes = [wrap(r) for r in page.rows]
    cursors = [cursor(k) for k in page.keys]
    return Connection(
        edges=[Edge(cursor=c, node=n) for c, n in zip(cursors, nodes, strict=True)],
        page_info=PageInfo(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
        ),
        _nodes=nodes,
        _count=count,
    )


# ---------------------------------------------------------------- objects


@strawberry.interface(description="An object with a global id (Relay).")
class Node:
    id: strawberry.ID


def _ctx(info: Info) -> GraphContext:
    return info.context  # type: ignore[no-any-return]


EntryFilterArg = Annotated["EntryFilterInput", strawberry.lazy("schema.inputs")]


async def _nested_entries(
    info: Info,
    parent: graph.Parent,
    parent_id: int,
    filter: EntryFilterArg | None,
    order_by: EntryOrder,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> Connection[Entry]:
    from schema import query
    from schema.inputs import entry_filter

    args = {"orderBy": order_by, "first": first, "after": after, "last": last, "before": before}
    return await query.nested_entries(_ctx(info), parent, parent_id, entry_filter(filter), args)


@strawberry.type
class Image:
    url: str | None
    caption: str | None
    credit: str | None
    alt_text: str | None


@strawberry.type
class Blog(Node):
    id: strawberry.ID
    database_id: int
    slug: str
    title: str
    standfirst: str | None
    status: BlogStatus
    authors: list[str]
    summary: list[str]
    hero_image: Image | None
    source_url: str | None
    published_at: datetime
    created_at: datetime
    updated_at: datetime
    entry_count: int

    @classmethod
    def from_row(cls, row: rows.Blog) -> Blog:
        hero = row.hero_image
        return cls(
            id=strawberry.ID(to_global_id("Blog", row.id)),
            database_id=row.id,
            slug=row.slug,
            title=row.title,
            standfirst=row.standfirst,
            status=BlogStatus(row.status),
            authors=row.authors,
            summary=row.summary,
            hero_image=None
            if hero is None
            else Image(
                url=hero.get("url"),
                caption=hero.get("caption"),
                credit=hero.get("credit"),
                alt_text=hero.get("alt_text"),
            ),
            source_url=row.source_url,
            published_at=row.published_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
            entry_count=row.entry_count,
        )

    @strawberry.field
    async def entries(
        self,
        info: Info,
        filter: EntryFilterArg | None = None,
        order_by: EntryOrder = EntryOrder.PUBLISHED_AT_DESC,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Entry]:
        return await _nested_entries(info, "blog", self.database_id, filter, order_by, first, after, last, before)


@strawberry.type
class Actor(Node):
    id: strawberry.ID
    database_id: int
    slug: str
    name: str
    kind: ActorKind
    aliases: list[str]
    country: str | None
    description: str | None
    entry_count: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: rows.Actor) -> Actor:
        return cls(
            id=strawberry.ID(to_global_id("Actor", row.id)),
            database_id=row.id,
            slug=row.slug,
            name=row.name,
            kind=ActorKind(row.kind),
            aliases=row.aliases,
            country=row.country,
            description=row.description,
            entry_count=row.entry_count,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field
    async def entries(
        self,
        info: Info,
        filter: EntryFilterArg | None = None,
        order_by: EntryOrder = EntryOrder.PUBLISHED_AT_DESC,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Entry]:
        return await _nested_entries(info, "actor", self.database_id, filter, order_by, first, after, last, before)


@strawberry.type
class Location(Node):
    id: strawberry.ID
    database_id: int
    slug: str
    name: str
    kind: LocationKind
    latitude: float
    longitude: float
    aliases: list[str]
    country: str | None
    description: str | None
    entry_count: int = strawberry.field(description="Entries linking this location itself (not places inside it).")
    created_at: datetime
    updated_at: datetime
    _parent_id: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: rows.Location) -> Location:
        return cls(
            id=strawberry.ID(to_global_id("Location", row.id)),
            database_id=row.id,
            slug=row.slug,
            name=row.name,
            kind=LocationKind(row.kind),
            latitude=row.latitude,
            longitude=row.longitude,
            aliases=row.aliases,
            country=row.country,
            description=row.description,
            entry_count=row.entry_count,
            created_at=row.created_at,
            updated_at=row.updated_at,
            _parent_id=row.parent_id,
        )

    @strawberry.field(description="The location this one is directly inside, if any.")
    async def parent(self, info: Info) -> Location | None:
        if self._parent_id is None:
            return None
        row = await _ctx(info).by_id("locations", self._parent_id)
        return None if row is None else Location.from_row(row)

    @strawberry.field(description="Every location this one is inside, outermost first.")
    async def ancestors(self, info: Info) -> list[Location]:
        found = await _ctx(info).loader("ancestors", graph.location_ancestors, []).load(self.database_id)
        return [Location.from_row(r) for r in found]

    @strawberry.field(description="The locations directly inside this one, by name.")
    async def children(self, info: Info) -> list[Location]:
        found = await _ctx(info).loader("children", graph.location_children, []).load(self.database_id)
        return [Location.from_row(r) for r in found]

    @strawberry.field(description="Entries linked to this location or to any place inside it.")
    async def entries(
        self,
        info: Info,
        filter: EntryFilterArg | None = None,
        order_by: EntryOrder = EntryOrder.PUBLISHED_AT_DESC,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Entry]:
        return await _nested_entries(info, "location", self.database_id, filter, order_by, first, after, last, before)


@strawberry.type
class Source(Node):
    id: strawberry.ID
    database_id: int
    slug: str
    name: str
    kind: SourceKind
    url: str | None
    aliases: list[str]
    description: str | None
    entry_count: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: rows.Source) -> Source:
        return cls(
            id=strawberry.ID(to_global_id("Source", row.id)),
            database_id=row.id,
            slug=row.slug,
            name=row.name,
            kind=SourceKind(row.kind),
            url=row.url,
            aliases=row.aliases,
            description=row.description,
            entry_count=row.entry_count,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field
    async def entries(
        self,
        info: Info,
        filter: EntryFilterArg | None = None,
        order_by: EntryOrder = EntryOrder.PUBLISHED_AT_DESC,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Entry]:
        return await _nested_entries(info, "source", self.database_id, filter, order_by, first, after, last, before)


@strawberry.type(description="An embedded social post.")
class Embed:
    author: str | None
    handle: str | None
    date: date | None
    text: str | None
    url: str | None


@strawberry.type
class Media:
    position: int
    kind: MediaKind
    url: str | None
    caption: str | None
    credit: str | None
    alt_text: str | None
    embed: Embed | None

    @classmethod
    def from_row(cls, row: rows.Media) -> Media:
        e = row.embed
        return cls(
            position=row.position,
            kind=MediaKind(row.kind),
            url=row.url,
            caption=row.caption,
            credit=row.credit,
            alt_text=row.alt_text,
            embed=None if e is None else Embed(author=e.author, handle=e.handle, date=e.date, text=e.text, url=e.url),
        )


@strawberry.type
class EntryActor:
    role: ActorRole
    actor: Actor


@strawberry.type
class Entry(Node):
    id: strawberry.ID
    database_id: int
    published_at: datetime
    updated_at: datetime
    created_at: datetime
    kind: EntryKind
    headline: str
    body: list[str]
    _blog_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: rows.EntryRow) -> Entry:
        return cls(
            id=strawberry.ID(to_global_id("Entry", row.id)),
            database_id=row.id,
            published_at=row.published_at,
            updated_at=row.updated_at,
            created_at=row.created_at,
            kind=EntryKind(row.kind),
            headline=row.headline,
            body=row.body,
            _blog_id=row.blog_id,
        )

    @strawberry.field
    async def blog(self, info: Info) -> Blog:
        row = await _ctx(info).by_id("blogs", self._blog_id)
        return Blog.from_row(row)

    @strawberry.field(description="The actors linked to this entry, speakers first.")
    async def actors(self, info: Info) -> list[EntryActor]:
        found = await _ctx(info).loader("entry_actors", graph.entry_actors, []).load(self.database_id)
        return [EntryActor(role=ActorRole(a.role), actor=Actor.from_row(a.actor)) for a in found]

    @strawberry.field
    async def locations(self, info: Info) -> list[Location]:
        found = await _ctx(info).loader("entry_locations", graph.entry_locations, []).load(self.database_id)
        return [Location.from_row(r) for r in found]

    @strawberry.field
    async def sources(self, info: Info) -> list[Source]:
        found = await _ctx(info).loader("entry_sources", graph.entry_sources, []).load(self.database_id)
        return [Source.from_row(r) for r in found]

    @strawberry.field
    async def media(self, info: Info) -> list[Media]:
        found = await _ctx(info).loader("entry_media", entries.media_of, []).load(self.database_id)
        return [Media.from_row(r) for r in found]


@strawberry.type
class TimelineBucket:
    start: datetime
    count: int


NODE_TYPES: dict[str, tuple[str, Callable[[Any], Node]]] = {
    "Blog": ("blogs", Blog.from_row),
    "Entry": ("entries", Entry.from_row),
    "Actor": ("actors", Actor.from_row),
    "Location": ("locations", Location.from_row),
    "Source": ("sources", Source.from_row),
}
