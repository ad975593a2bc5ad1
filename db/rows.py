"""Rows the query layer returns: msgspec Structs, the REST response models as they are.

`from_record` builds a Struct from an asyncpg Record by field name, so a query's column list
is the one place that decides what a row holds.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal, TypeVar

import asyncpg
import msgspec

S = TypeVar("S", bound=msgspec.Struct)

Role = Literal["speaker", "mentioned"]


def from_record(cls: type[S], record: asyncpg.Record) -> S:
    """Every field from the record's column of that name; fields with defaults may be absent."""
    try:  # the common case, every field a column: no key set to build
        return cls(**{name: record[name] for name in cls.__struct_fields__})
    except KeyError:
        keys = set(record.keys())
        return cls(**{name: record[name] for name in cls.__struct_fields__ if name in keys})


class BlogRef(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    slug: str
    title: str


class Blog(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    slug: str
    title: str
    standfirst: str | None
    status: str
    authors: list[str]
    summary: list[str]
    hero_image: dict[str, Any] | None
    source_url: str | None
    published_at: datetime
    created_at: datetime
    updated_at: datetime
    entry_count: int


class ActorRef(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    slug: str
    name: str
    kind: str
    country: str | None


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    slug: str
    name: str
    kind: str
    aliases: list[str]
    country: str | None
    description: str | None
    entry_count: int
    created_at: datetime
    updated_at: datetime


class LocationRef(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    slug: str
    name: str
    kind: str
    country: str | None
    latitude: float
    longitude: float
    parent_id: int | None


class Location(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    slug: str
    name: str
    kind: str
    parent_id: int | None
    latitude: float
    longitude: float
    aliases: list[str]
    country: str | None
    description: str | None
    created_at: datetime
    updated_at: datetime
    # outermost first (Ukraine, Crimea for Sevastopol); `parent` is the last of them
    parent: LocationRef | None = None
    ancestors: list[LocationRef] = []
    distance_km: float | None = None  # only under a `near` filter
    entry_count: int = 0  # entries linking this location itself


class SourceRef(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    slug: str
    name: str
    kind: str


class Source(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    slug: str
    name: str
    kind: str
    url: str | None
    aliases: list[str]
    description: str | None
    entry_count: int
    created_at: datetime
    updated_at: datetime


class Embed(msgspec.Struct, frozen=True, kw_only=True):
    author: str | None
    handle: str | None
    date: date | None
    text: str | None
    url: str | None


class Media(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    kind: str
    url: str | None
    caption: str | None
    credit: str | None
    alt_text: str | None
    embed: Embed | None


class EntryActor(msgspec.Struct, frozen=True, kw_only=True):
    role: Role
    actor: ActorRef


class EntryRow(msgspec.Struct, frozen=True, kw_only=True):
    """An entry's own columns, without its links: what list queries return."""

    id: int
    blog_id: int
    published_at: datetime
    updated_at: datetime
    created_at: datetime
    kind: str
    headline: str
    body: list[str]


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """An entry with its blog and links: what REST answers."""

    id: int
    blog: BlogRef
    published_at: datetime
    updated_at: datetime
    created_at: datetime
    kind: str
    headline: str
    body: list[str]
    actors: list[EntryActor]
    locations: list[LocationRef]
    sources: list[SourceRef]
    media: list[Media]


class TimelineBucket(msgspec.Struct, frozen=True, kw_only=True):
    start: datetime
    count: int
