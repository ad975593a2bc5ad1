"""Whole-result exports: every entry a filter matches, read through a server-side cursor.

Pages (`entries.list_entries`) answer at most a page; an export answers everything, so it
cannot hold the result in memory. `iter_entries` reads the rows in chunks through a cursor
inside one read-only repeatable-read transaction (one consistent snapshot however long the
export takes) and reads each chunk's entries with their links as a cache miss of a page does
(`entries.linked_by_ids`, in the same snapshot).

The cursor is SQL's own (DECLARE, then FETCH), not asyncpg's: asyncpg binds its cursors to a
named prepared statement that it closes lazily, on whatever server connection the next query
gets, which behind PgBouncer in transaction mode is not the one it was prepared on. DECLARE
plans its query with the bound values (a custom plan, whatever the statement cache does), for
the whole result (`cursor_tuple_fraction = 1`, as a protocol-level cursor is planned).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import asyncpg

from db import where
from db.entries import linked_by_ids
from db.filters import EntryFilter, EntrySort
from db.refs import Refs
from db.rows import Entry

DEFAULT_CHUNK = 200  # small: each chunk is a burst of CPU that page requests wait behind (api/foreground.py)


def export_entries_sql(f: EntryFilter, sort: EntrySort) -> tuple[str, list[Any]]:
    """The ids of every entry matching the (resolved) filter, in `sort` order, ties broken by id."""
    p = where.Params()
    direction = "DESC" if sort.startswith("-") else "ASC"
    col = sort.lstrip("-")
    sql = f"SELECT e.id FROM entries e WHERE {where.where(f, p)} ORDER BY e.{col} {direction}, e.id {direction}"
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
        await conn.execute("SET LOCAL cursor_tuple_fraction = 1")
        # one name (one cached FETCH statement): one export at a time in a transaction
        await conn.execute(f"DECLARE sitrep_export NO SCROLL CURSOR FOR {sql}", *values)
        fetch = f"FETCH FORWARD {int(chunk)} FROM sitrep_export"
        refs = Refs()  # not kept between chunks: each reads the references it needs
        while records := await conn.fetch(fetch):
            ids = [r["id"] for r in records]
            found = await linked_by_ids(conn, refs, ids)
            yield [found[i] for i in ids]  # all there: the same snapshot
            if len(records) < chunk:
                break
