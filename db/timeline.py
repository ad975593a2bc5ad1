"""Entry counts per hour or day (UTC) under an entry filter, empty buckets included."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

import asyncpg

from db import where
from db.filters import EntryFilter
from db.rows import TimelineBucket

Interval = Literal["hour", "day"]
STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


async def timeline(conn: asyncpg.Connection, filter: EntryFilter, interval: Interval = "day") -> list[TimelineBucket]:
    """Buckets from the first to the last that holds an entry, each with its count (zero when empty).

    NotFound (field blog/actor/location/source) if the filter names something that does not exist.
    """
    async with where.read_snapshot(conn, custom_plan=where.needs_custom_plan(filter)):
        resolved = await where.resolve_entry_filter(conn, filter)
        if await where.bbox_locations(conn, resolved) == 0:
            return []
        sql, values = where.timeline_sql(resolved, interval)
        found = {r["start"]: int(r["count"]) for r in await conn.fetch(sql, *values)}
    if not found:
        return []
    out = []
    at, last = min(found), max(found)
    while at <= last:
        out.append(TimelineBucket(start=at, count=found.get(at, 0)))
        at += STEP[interval]
    return out
