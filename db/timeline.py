"""Entry counts per hour or day (UTC) under an entry filter, empty buckets included.

Three ways to count, the cheapest that answers the filter exactly:
- no filter but an hour-aligned since/until: the per-hour rollup (migration 0012);
- one link filter (actors with match=any, sources, or locations) and at most since/until:
  the link table's own index, which carries published_at;
- anything else: the entries matching the composed WHERE.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal

import asyncpg
from msgspec.structs import replace

from db import bitcount, where
from db.filters import EntryFilter, Ref
from db.rows import TimelineBucket
from db.sql import query
from db.where import Params

Interval = Literal["hour", "day"]
STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
_TIME_ONLY = EntryFilter()


def _aligned(moment: datetime | None) -> bool:
    return moment is None or (moment.minute, moment.second, moment.microsecond) == (0, 0, 0)


def _time_range(col: str, f: EntryFilter, p: Params) -> list[str]:
    out = []
    if f.since is not None:
        out.append(f"{col} >= {p.add(f.since)}::timestamptz")
    if f.until is not None:
        out.append(f"{col} < {p.add(f.until)}::timestamptz")
    return out


def _only(f: EntryFilter, **kept: Any) -> bool:
    """Whether `f` sets nothing but since/until and the given fields."""
    return replace(f, since=None, until=None, **kept) == replace(_TIME_ONLY, **kept)


def timeline_plan(f: EntryFilter, interval: Interval) -> tuple[str, list[Any]]:
    """The counting query for a resolved filter: (start, count) rows in time order."""
    p = Params()
    unit = p.add(interval)
    if _only(f) and _aligned(f.since) and _aligned(f.until):
        conds = ["entry_count <> 0", *_time_range("hour", f, p)]
        return (
            f"SELECT date_trunc({unit}::text, hour, 'UTC') AS start, sum(entry_count)::bigint AS count"
            f" FROM entry_hour_counts WHERE {' AND '.join(conds)} GROUP BY 1 HAVING sum(entry_count) > 0 ORDER BY 1"
        ), p.values
    link = None
    if f.actor and f.actor_match == "any" and _only(f, actor=f.actor, actor_match="any"):
        link = f"entry_actors l WHERE l.actor_id = ANY({p.add(list(f.actor))}::bigint[])"
    elif f.source and _only(f, source=f.source):
        link = f"entry_sources l WHERE l.source_id = ANY({p.add(list(f.source))}::bigint[])"
    elif f.location and _only(f, location=f.location):
        link = (
            "entry_locations l WHERE l.location_id IN (SELECT location_id FROM location_closure"
            f" WHERE ancestor_id = ANY({p.add(list(f.location))}::bigint[]))"
        )
    if link is not None:
        window = " AND ".join(["", *_time_range("l.published_at", f, p)])
        return (
            f"SELECT date_trunc({unit}::text, l.published_at, 'UTC') AS start, count(DISTINCT l.entry_id) AS count"
            f" FROM {link}{window} GROUP BY 1 ORDER BY 1"
        ), p.values
    return where.timeline_sql(f, interval)


async def rebuild_rollups(conn: asyncpg.Connection) -> None:
    """Recount the per-blog and per-hour rollups from entries: for a bulk load that ran with
    triggers bypassed (session_replication_role = replica), inside its transaction."""
    await conn.execute(query("rebuild_entry_rollups"))


def count_plan(
    f: EntryFilter, covers: bitcount.Covers | None = None, words: bitcount.Words | None = None
) -> tuple[str, list[Any]]:
    """How many entries a resolved filter matches, from a rollup when one answers it exactly, else
    from the entry bitmaps when they can (`covers`: each box's locations, `box_covers`; `words`:
    each q's search terms, `bitcount.search_words`), else by counting the matching entries."""
    p = Params()
    if _only(f) and _aligned(f.since) and _aligned(f.until):
        conds = " AND ".join(["TRUE", *_time_range("hour", f, p)])
        return f"SELECT COALESCE(sum(entry_count), 0)::bigint FROM entry_hour_counts WHERE {conds}", p.values
    if f.blog and _only(f, blog=f.blog) and f.since is None and f.until is None:
        return (
            f"SELECT COALESCE(sum(entry_count), 0)::bigint FROM blog_entry_counts WHERE blog_id = ANY({p.add(list(f.blog))}::bigint[])",
            p.values,
        )
    if len(f.actor) == 1 and _only(f, actor=f.actor, actor_match=f.actor_match):  # one actor: any = all
        return _link_days("a", "entry_actors", "actor_id", f.actor[0], f, p), p.values
    if len(f.source) == 1 and _only(f, source=f.source):
        return _link_days("s", "entry_sources", "source_id", f.source[0], f, p), p.values
    return bitcount.compile_count(f, covers, words) or where.count_entries_sql(f)


async def count(conn: asyncpg.Connection, f: EntryFilter) -> int:
    """How many entries a resolved filter matches (`count_plan`; a location with nothing inside
    it has its own links as its entries, so it is counted by day like an actor). Exact whichever
    way it is counted; one statement, or two when the bitmaps decline an updated_since."""
    if len(f.location) == 1 and _only(f, location=f.location) and await where.locations_under(conn, f) == 1:
        p = Params()
        sql, values = _link_days("l", "entry_locations", "location_id", f.location[0], f, p), p.values
    else:
        sql, values = count_plan(f, await box_covers(conn, f), await bitcount.search_words(conn, f))
    found = await conn.fetchval(sql, *values)
    if found is None:  # the bitmaps could not answer this updated_since (`bitcount.compile_count`)
        sql, values = where.count_entries_sql(f)
        found = await conn.fetchval(sql, *values)
    return int(found)


async def box_covers(conn: asyncpg.Connection, f: EntryFilter) -> bitcount.Covers:
    """For each box in a resolved filter, the locations whose bitmaps answer it (`bitcount.cover_sql`)."""
    covers: bitcount.Covers = {}
    for bbox in bitcount.boxes(f):
        sql, values = bitcount.cover_sql(bbox)
        row = await conn.fetchrow(sql, *values)
        if row is None or row["open"]:
            covers[bbox] = None
        else:
            covers[bbox] = [0] if row["everywhere"] else list(row["top"])
    return covers


def _midnight(moment: datetime, *, up: bool) -> datetime:
    """The UTC midnight at or before `moment`, or (up) at or after it."""
    day = datetime.combine(moment.astimezone(UTC).date(), time(), UTC)
    return day + timedelta(days=1) if up and day < moment else day


def _link_days(link: str, table: str, col: str, target: Ref, f: EntryFilter, p: Params) -> str:
    """Entries linked to `target` in [since, until): the whole UTC days from link_day_counts
    (migration 0041), the partial days at either end from the link table's own index."""
    t = p.add(target)
    first = _midnight(f.since, up=True) if f.since is not None else None
    last = _midnight(f.until, up=False) if f.until is not None else None
    links = f"SELECT count(*) FROM {table} WHERE {col} = {t}::bigint"
    if first is not None and last is not None and first >= last:  # within one or two days: links only
        return f"SELECT ({links} AND published_at >= {p.add(f.since)}::timestamptz AND published_at < {p.add(f.until)}::timestamptz)::bigint"
    days = [f"link = '{link}'", f"target_id = {t}::bigint"]
    parts = []
    if first is not None:
        days.append(f"day >= {p.add(first.date())}::date")
        if f.since is not None and f.since < first:
            parts.append(
                f"({links} AND published_at >= {p.add(f.since)}::timestamptz AND published_at < {p.add(first)}::timestamptz)"
            )
    if last is not None:
        days.append(f"day < {p.add(last.date())}::date")
        if f.until is not None and f.until > last:
            parts.append(
                f"({links} AND published_at >= {p.add(last)}::timestamptz AND published_at < {p.add(f.until)}::timestamptz)"
            )
    parts.insert(0, f"(SELECT COALESCE(sum(entry_count), 0) FROM link_day_counts WHERE {' AND '.join(days)})")
    return f"SELECT ({' + '.join(parts)})::bigint"


async def timeline(conn: asyncpg.Connection, filter: EntryFilter, interval: Interval = "day") -> list[TimelineBucket]:
    """Buckets from the first to the last that holds an entry, each with its count (zero when empty).

    NotFound (field blog/actor/location/source) if the filter names something that does not exist.
    """
    async with where.read_snapshot(conn, custom_plan=where.needs_custom_plan(filter)):
        resolved = await where.resolve_entry_filter(conn, filter)
        if await where.bbox_locations(conn, resolved) == 0:
            return []
        sql, values = timeline_plan(resolved, interval)
        found = {r["start"]: int(r["count"]) for r in await conn.fetch(sql, *values)}
    if not found:
        return []
    out = []
    at, last = min(found), max(found)
    while at <= last:
        out.append(TimelineBucket(start=at, count=found.get(at, 0)))
        at += STEP[interval]
    return out
