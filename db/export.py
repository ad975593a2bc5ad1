"""Whole-result exports: every entry a filter matches, read through a server-side cursor.

Pages (`entries.list_entries`) answer at most a page; an export answers everything, so it
cannot hold the result in memory. `iter_entries` reads the rows in chunks through a cursor
inside one read-only repeatable-read transaction (one consistent snapshot however long the
export takes) and adds each chunk's relations with the same five batch queries a page uses.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import asyncpg

from db import where
from db.entries import with_relations
from db.filters import EntryFilter, EntrySort
from db.rows import Entry, EntryRow, from_record

DEFAULT_CHUNK = 500


def export_entries_sql(f: EntryFilter, sort: EntrySort) -> tuple[str, list[Any]]:
    """Every entry matching the (resolved) filter, in `sort` order, ties broken by id."""
    p = where.Params()
    direction = "DESC" if sort.startswith("-") else "ASC"
    col = sort.lstrip("-")
    sql = (
        f"SELECT {where.ENTRY_COLUMNS} FROM entries e WHERE {where.where(f, p)}"
        f" ORDER BY e.{col} {direction}, e.id {direction}"
    )
    return sql, p.values


async def iter_entries(
    conn: asyncpg.Connection,
    filter: EntryFilter,
    sort: EntrySort = "-published_at",
    *,
    chunk: int = DEFAULT_CHUNK,
) -> AsyncGenerator[list[Entry], None]:
    """Chunks of at most `chunk` entries, with their links, until the result is exhausted.

    NotFound (field blog/actor/location/source) before the first chunk if the filter names
    something that does not exist. The connection is busy until the iterator is exhausted or
    closed.
    """
    async with where.read_snapshot(conn, custom_plan=where.needs_custom_plan(filter)):
        resolved = await where.resolve_entry_filter(conn, filter)
        sql, values = export_entries_sql(resolved, sort)
        cursor = await conn.cursor(sql, *values)
        while records := await cursor.fetch(chunk):
            yield await with_relations(conn, [from_record(EntryRow, r) for r in records])
