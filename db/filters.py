"""Filters and pages: defined once here, used by REST and GraphQL alike, turned into SQL once.

A reference (`Ref`) is a database id (int) or a slug (str); each skin turns its own inputs
(query parameters, GraphQL global ids) into these before calling the query layer.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

import msgspec

from db.errors import InvalidInput

MAX_LIMIT = 200  # REST's ceiling; GraphQL's first/last stop at MAX_GRAPHQL_PAGE
MAX_GRAPHQL_PAGE = 100
DEFAULT_LIMIT = 50

Ref = int | str
_ID = re.compile(r"[0-9]{1,18}")  # ASCII only: str.isdigit() and int() also take "²" and "١٢"
_SLUG = re.compile(r"[a-z][a-z0-9-]{0,119}")
EntrySort = Literal["-published_at", "published_at", "-updated_at", "updated_at"]
CatalogSort = Literal["name", "-entry_count"]
ActorMatch = Literal["any", "all"]
BBox = tuple[float, float, float, float]  # min_lon, min_lat, max_lon, max_lat


def parse_id(text: str) -> int | None:
    """A database id or other non-negative integer as a user writes it: 1 to 18 ASCII digits
    (so it always fits a bigint), nothing else (no sign, space, '_' or other scripts' digits).
    Every skin parses integers from user input with this."""
    return int(text) if _ID.fullmatch(text) else None


def parse_ref(text: str) -> Ref | None:
    """A database id or a slug (lowercase a-z, 0-9, '-', starting with a letter); None if neither."""
    found = parse_id(text)
    if found is not None:
        return found
    return text if _SLUG.fullmatch(text) else None


MAX_SEARCH = 200  # characters of a search (`q`, GraphQL's `search`)


def check_text(value: str | None, field: str, max_length: int | None = None) -> None:
    """PostgreSQL text cannot hold NUL: a value with one is bad input, refused before any SQL.
    Every text a user gives (filters here, write bodies in db.writes) is checked with this."""
    if value is None:
        return
    if "\x00" in value:
        raise InvalidInput(f"{field}: must not contain NUL characters", field=field)
    if max_length is not None and len(value) > max_length:
        raise InvalidInput(f"{field}: at most {max_length} characters", field=field)


class _Searchable(msgspec.Struct, frozen=True, kw_only=True):
    q: str | None = None

    def __post_init__(self) -> None:
        check_text(self.q, "q", MAX_SEARCH)


class EntryFilter(_Searchable, frozen=True, kw_only=True):
    """Which entries: every field narrows; repeated values of one field are OR'ed.

    `location` includes everything inside the location; `since <= published_at < until`;
    `updated_since <= updated_at`; `q` is web-search syntax (websearch_to_tsquery);
    `bbox` keeps entries linked to a location inside the box. `and_`, `or_` and `not_`
    combine whole filters (GraphQL's boolean filter fields).
    """

    blog: tuple[Ref, ...] = ()
    actor: tuple[Ref, ...] = ()
    actor_match: ActorMatch = "any"
    location: tuple[Ref, ...] = ()
    source: tuple[Ref, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    updated_since: datetime | None = None
    q: str | None = None
    kind: tuple[str, ...] = ()
    bbox: BBox | None = None
    and_: tuple[EntryFilter, ...] = ()
    or_: tuple[EntryFilter, ...] = ()
    not_: EntryFilter | None = None


class ActorFilter(_Searchable, frozen=True, kw_only=True):
    q: str | None = None  # name or alias, prefix, case-insensitive
    kind: tuple[str, ...] = ()
    country: tuple[str, ...] = ()


class LocationFilter(_Searchable, frozen=True, kw_only=True):
    q: str | None = None
    kind: tuple[str, ...] = ()
    country: tuple[str, ...] = ()
    within: tuple[Ref, ...] = ()  # an ancestor: the location's descendants (not itself)
    bbox: BBox | None = None
    near: tuple[float, float] | None = None  # lat, lon
    radius_km: float | None = None


class SourceFilter(_Searchable, frozen=True, kw_only=True):
    q: str | None = None
    kind: tuple[str, ...] = ()


class BlogFilter(_Searchable, frozen=True, kw_only=True):
    status: tuple[str, ...] = ()
    q: str | None = None
