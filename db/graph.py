"""Batched reads for GraphQL's nested fields: one statement per relation per response level.

The SQL is composed from fixed fragments: the entity modules' FROM clauses and column lists,
and where.py's entry filter; values only ever travel as `$n` parameters.

Each function takes the ids of a whole level of a response (every entry of a page, every
location of those entries) and answers a dict keyed by those ids, so the number of round
trips follows the depth of a query, never its number of rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import cache
from typing import Any, Literal, TypeVar

import asyncpg
import msgspec

from db import actors, blogs, locations, rows, sources
from db.filters import EntryFilter, EntrySort
from db.page import Page, Paged, paged
from db.where import ENTRY_COLUMNS, Params, where
from db.where import _keyset as keyset_bounds  # the list queries' own keyset bound

S = TypeVar("S", bound=msgspec.Struct)

# Each entity's FROM clause and columns are the ones its own module lists it with, so a row
# here is the row REST answers: (struct, table alias, FROM, columns).
_ENTITIES: dict[str, tuple[type[msgspec.Struct], str, str, str]] = {
    "blogs": (rows.Blog, "b", blogs.SOURCE, blogs.COLUMNS),
    "entries": (rows.EntryRow, "e", "entries e", ENTRY_COLUMNS),
    "actors": (rows.Actor, "a", actors.SOURCE, actors.COLUMNS),
    "locations": (rows.Location, "l", locations.SOURCE, locations.COLUMNS),
    "sources": (rows.Source, "s", sources.SOURCE, sources.COLUMNS),
}
_BY_IDS = {t: f"SELECT {c} FROM {src} WHERE {a}.id = ANY($1::bigint[])" for t, (_, a, src, c) in _ENTITIES.items()}
_BY_SLUGS = {t: f"SELECT {c} FROM {src} WHERE {a}.slug = ANY($1::text[])" for t, (_, a, src, c) in _ENTITIES.items()}
_ENTRY_ACTORS = (
    f"SELECT ea.entry_id, ea.role, {actors.COLUMNS} FROM {actors.SOURCE} JOIN entry_actors ea ON ea.actor_id = a.id"
    ' WHERE ea.entry_id = ANY($1::bigint[]) ORDER BY ea.entry_id, ea.role DESC, a.name COLLATE "C", a.id'
)
_ENTRY_LOCATIONS = (
    f"SELECT el.entry_id, {locations.COLUMNS} FROM {locations.SOURCE} JOIN entry_locations el ON el.location_id = l.id"
    ' WHERE el.entry_id = ANY($1::bigint[]) ORDER BY el.entry_id, l.name COLLATE "C", l.id'
)
_ENTRY_SOURCES = (
    f"SELECT es.entry_id, {sources.COLUMNS} FROM {sources.SOURCE} JOIN entry_sources es ON es.source_id = s.id"
    ' WHERE es.entry_id = ANY($1::bigint[]) ORDER BY es.entry_id, s.name COLLATE "C", s.id'
)
_LOCATION_CHILDREN = (
    f"SELECT {locations.COLUMNS} FROM {locations.SOURCE}"
    " WHERE l.parent_id = ANY($1::bigint[]) ORDER BY l.parent_id, l.name, l.id"
)
_LOCATION_ANCESTORS = (  # outermost first, as REST lists them; the location itself excluded
    f"SELECT c.location_id AS of_id, {locations.COLUMNS} FROM {locations.SOURCE}"
    " JOIN location_closure c ON c.ancestor_id = l.id"
    " WHERE c.location_id = ANY($1::bigint[]) AND c.depth > 0 ORDER BY c.location_id, c.depth DESC"
)


@cache
def _selected(cls: type[msgspec.Struct], columns: frozenset[str]) -> tuple[str, ...]:
    return tuple(name for name in cls.__struct_fields__ if name in columns)


def from_record(cls: type[S], record: asyncpg.Record) -> S:
    """Like rows.from_record, but fields the query did not select keep their defaults."""
    return cls(**{name: record[name] for name in _selected(cls, frozenset(record.keys()))})


async def by_ids(conn: asyncpg.Connection, table: str, ids: Sequence[int]) -> dict[int, Any]:
    """Rows of `table` ("blogs", "entries", "actors", "locations", "sources") by id; missing ids are absent."""
    if not ids:
        return {}
    cls = _ENTITIES[table][0]
    return {r["id"]: from_record(cls, r) for r in await conn.fetch(_BY_IDS[table], list(set(ids)))}


async def by_slugs(conn: asyncpg.Connection, table: str, slugs: Sequence[str]) -> dict[str, Any]:
    """Rows of `table` (not entries, which have no slug) by slug; missing slugs are absent."""
    if not slugs:
        return {}
    cls = _ENTITIES[table][0]
    return {r["slug"]: from_record(cls, r) for r in await conn.fetch(_BY_SLUGS[table], list(set(slugs)))}


async def _grouped(
    conn: asyncpg.Connection, sql: str, ids: Sequence[int], key: str, cls: type[msgspec.Struct]
) -> dict[int, list[Any]]:
    grouped: dict[int, list[Any]] = defaultdict(list)
    if ids:
        for r in await conn.fetch(sql, list(set(ids))):
            grouped[r[key]].append(from_record(cls, r))
    return grouped


class LinkedActor(msgspec.Struct, frozen=True):
    role: rows.Role
    actor: rows.Actor


async def entry_actors(conn: asyncpg.Connection, entry_ids: Sequence[int]) -> dict[int, list[LinkedActor]]:
    """Per entry: its actors with their role, speakers first, then by name."""
    grouped: dict[int, list[LinkedActor]] = defaultdict(list)
    if entry_ids:
        for r in await conn.fetch(_ENTRY_ACTORS, list(set(entry_ids))):
            grouped[r["entry_id"]].append(LinkedActor(r["role"], from_record(rows.Actor, r)))
    return grouped


async def entry_locations(conn: asyncpg.Connection, entry_ids: Sequence[int]) -> dict[int, list[rows.Location]]:
    return await _grouped(conn, _ENTRY_LOCATIONS, entry_ids, "entry_id", rows.Location)


async def entry_sources(conn: asyncpg.Connection, entry_ids: Sequence[int]) -> dict[int, list[rows.Source]]:
    return await _grouped(conn, _ENTRY_SOURCES, entry_ids, "entry_id", rows.Source)


async def location_children(conn: asyncpg.Connection, location_ids: Sequence[int]) -> dict[int, list[rows.Location]]:
    """Per location: the locations directly inside it, by name."""
    return await _grouped(conn, _LOCATION_CHILDREN, location_ids, "parent_id", rows.Location)


async def location_ancestors(conn: asyncpg.Connection, location_ids: Sequence[int]) -> dict[int, list[rows.Location]]:
    """Per location: its ancestors, outermost first (as REST lists them)."""
    return await _grouped(conn, _LOCATION_ANCESTORS, location_ids, "of_id", rows.Location)


# ---------------------------------------------------------------- entries of many parents

Parent = Literal["blog", "actor", "location", "source"]
# a parent's entries: a fixed condition over `entries e` and the parent id column d.parent_id
_PARENT_COND: dict[Parent, str] = {
    "blog": "e.blog_id = d.parent_id",
    "actor": "EXISTS (SELECT 1 FROM entry_actors pa WHERE pa.entry_id = e.id AND pa.actor_id = d.parent_id)",
    "source": "EXISTS (SELECT 1 FROM entry_sources ps WHERE ps.entry_id = e.id AND ps.source_id = d.parent_id)",
    "location": (
        "EXISTS (SELECT 1 FROM entry_locations pl JOIN location_closure pc ON pc.location_id = pl.location_id"
        " WHERE pl.entry_id = e.id AND pc.ancestor_id = d.parent_id)"
    ),
}
# parents whose link table carries published_at: (table, parent column)
_LINKS: dict[Parent, tuple[str, str]] = {
    "actor": ("entry_actors", "actor_id"),
    "source": ("entry_sources", "source_id"),
}


async def entries_of(
    conn: asyncpg.Connection,
    parent: Parent,
    parent_ids: Sequence[int],
    f: EntryFilter,
    sort: EntrySort,
    page: Page,
) -> dict[int, Paged[rows.EntryRow]]:
    """Per parent: one page of its entries under `f` (resolved: ids only), in one statement.

    A location's entries include those of every place inside it, as the location filter does.
    """
    ids = list(dict.fromkeys(parent_ids))
    if not ids:
        return {}
    desc = sort.startswith("-")
    col = sort.lstrip("-")
    direction = "DESC" if desc != (page.direction == "backward") else "ASC"
    p = Params(ids)
    link = _LINKS.get(parent) if col == "published_at" else None
    if link is not None:
        # driven by the link table's (x_id, published_at DESC, entry_id DESC) index, as where.py's
        # lists are: a rarely linked actor's page is an index range, not a scan of every entry
        table, link_col = link
        conds = [
            f"l.{link_col} = d.parent_id",
            where(f, p),
            *keyset_bounds(page, desc, "l.published_at, l.entry_id", p),
        ]
        inner = (
            f"SELECT {ENTRY_COLUMNS} FROM {table} l JOIN entries e ON e.id = l.entry_id WHERE {' AND '.join(conds)}"
            f" ORDER BY l.published_at {direction}, l.entry_id {direction}"
        )
    elif parent == "location" and col == "published_at":
        # each place inside the location drives its own index range; the merged ids are then
        # ordered once more (an entry linked to two of those places appears once)
        conds = [
            "l.location_id = c.location_id",
            where(f, p),
            *keyset_bounds(page, desc, "l.published_at, l.entry_id", p),
        ]
        inner = (
            f"SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.id IN ("
            "SELECT y.entry_id FROM location_closure c CROSS JOIN LATERAL ("
            f"SELECT l.entry_id FROM entry_locations l JOIN entries e ON e.id = l.entry_id WHERE {' AND '.join(conds)}"
            f" ORDER BY l.published_at {direction}, l.entry_id {direction} LIMIT {int(page.limit) + 1}) y"
            " WHERE c.ancestor_id = d.parent_id)"
            f" ORDER BY e.published_at {direction}, e.id {direction}"
        )
    else:
        conds = [_PARENT_COND[parent], where(f, p), *keyset_bounds(page, desc, f"e.{col}, e.id", p)]
        inner = (
            f"SELECT {ENTRY_COLUMNS} FROM entries e WHERE {' AND '.join(conds)}"
            f" ORDER BY e.{col} {direction}, e.id {direction}"
        )
    sql = (
        f"SELECT d.parent_id, x.* FROM unnest($1::bigint[]) AS d(parent_id)"
        f" CROSS JOIN LATERAL ({inner} LIMIT {int(page.limit) + 1}) x"
    )
    grouped: dict[int, list[rows.EntryRow]] = defaultdict(list)
    for r in await conn.fetch(sql, *p.values):
        grouped[r["parent_id"]].append(from_record(rows.EntryRow, r))
    out = {}
    for parent_id in ids:
        found = grouped.get(parent_id, [])
        keys = [(getattr(e, col), e.id) for e in found]
        out[parent_id] = paged(found, keys, page)
    return out


async def count_entries_of(
    conn: asyncpg.Connection, parent: Parent, parent_ids: Sequence[int], f: EntryFilter
) -> dict[int, int]:
    """Per parent: how many of its entries match `f` (resolved)."""
    ids = list(dict.fromkeys(parent_ids))
    if not ids:
        return {}
    p = Params(ids)
    sql = (
        f"SELECT d.parent_id, (SELECT count(*) FROM entries e WHERE {_PARENT_COND[parent]} AND {where(f, p)}) AS n"
        " FROM unnest($1::bigint[]) AS d(parent_id)"
    )
    return {r["parent_id"]: r["n"] for r in await conn.fetch(sql, *p.values)}
