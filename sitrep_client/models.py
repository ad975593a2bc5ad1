"""The models the client speaks: the server's own, re-exported, plus the shape of a page."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

from db.changes import Change
from db.rows import Actor, Blog, Entry, Location, Source, TimelineBucket
from db.writes import (
    ActorCreate,
    ActorLinkIn,
    ActorPatch,
    BlogCreate,
    EmbedIn,
    EntryCreate,
    EntryPatch,
    LocationCreate,
    LocationPatch,
    MediaIn,
    SourceCreate,
    SourcePatch,
)

T = TypeVar("T")

__all__ = [
    "Actor",
    "ActorCreate",
    "ActorLinkIn",
    "ActorPatch",
    "Blog",
    "BlogCreate",
    "Change",
    "ChangeList",
    "EmbedIn",
    "Entry",
    "EntryCreate",
    "EntryPatch",
    "Location",
    "LocationCreate",
    "LocationPatch",
    "MediaIn",
    "Page",
    "PageInfo",
    "Source",
    "SourceCreate",
    "SourcePatch",
    "Timeline",
    "TimelineBucket",
]


class PageInfo(msgspec.Struct, frozen=True):
    limit: int
    next_cursor: str | None
    total: int | None = None  # only when asked for with count=True


class Page(msgspec.Struct, Generic[T], frozen=True):
    """One page of a list: `{"data": [...], "page": {...}}`."""

    data: list[T]
    page: PageInfo


class ChangePage(msgspec.Struct, frozen=True):
    next_after: int


class ChangeList(msgspec.Struct, frozen=True):
    data: list[Change]
    page: ChangePage


class Timeline(msgspec.Struct, frozen=True):
    interval: str
    data: list[TimelineBucket]
