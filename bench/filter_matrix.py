"""Every entry filter, and combinations of them, as single unloaded requests at a million entries,
under both plan settings a server can be in.

    nice .venv/bin/python bench/filter_matrix.py postgresql://postgres@127.0.0.1/sitrep_bench

For each case: p50 and p99 (ms, RUNS sequential calls after a warm-up) of `entries.list_keys`
(the statement every JSON page runs) with and without `count=true`, once with the server's
`plan_cache_mode` at `force_custom_plan` and once at `force_generic_plan` (what asyncpg's
prepared statements fall back to after five runs). Values are picked from the data: the most and
the least linked actor, source and location, the newest hour, a common and a rare word. Writes
the table to bench/plans/filters.txt; a cell over 50 ms p99 is marked `!`.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

import asyncpg

from db import entries
from db.filters import EntryFilter, EntrySort
from db.page import Page
from db.pool import connect

OUT = Path(__file__).parent / "plans" / "filters.txt"
RUNS = 50
TARGET_MS = 50.0

Case = tuple[str, EntryFilter, EntrySort, Page]


async def cases(conn: asyncpg.Connection) -> list[Case]:
    async def top(table: str, col: str, desc: bool) -> int:
        order = "DESC" if desc else "ASC"
        return int(await conn.fetchval(f"SELECT {col} FROM {table} ORDER BY entry_count {order}, {col} LIMIT 1"))

    actor, actor2 = [
        r[0] for r in await conn.fetch("SELECT actor_id FROM actor_entry_counts ORDER BY entry_count DESC LIMIT 2")
    ]
    rare_actor = await top("actor_entry_counts", "actor_id", False)
    source, rare_source = (
        await top("source_entry_counts", "source_id", True),
        await top("source_entry_counts", "source_id", False),
    )
    blog = await conn.fetchval("SELECT blog_id FROM blog_entry_counts ORDER BY entry_count DESC LIMIT 1")
    blogs = [r[0] for r in await conn.fetch("SELECT id FROM blogs ORDER BY id LIMIT 3")]
    country = await conn.fetchval(
        "SELECT l.id FROM locations l JOIN location_closure c ON c.ancestor_id = l.id"
        " WHERE l.kind = 'country' GROUP BY l.id ORDER BY count(*) DESC LIMIT 1"
    )
    rare_city = await conn.fetchval(
        "SELECT c.location_id FROM location_entry_counts c JOIN locations l ON l.id = c.location_id"
        " WHERE l.kind = 'city' ORDER BY c.entry_count, c.location_id LIMIT 1"
    )
    newest = await conn.fetchval("SELECT max(published_at) FROM entries")
    updated = await conn.fetchval("SELECT max(updated_at) FROM entries")
    deep = await conn.fetchrow(
        "SELECT published_at, id FROM entries ORDER BY published_at DESC, id DESC"
        " OFFSET least(500000, (SELECT count(*) / 2 FROM entries)) LIMIT 1"  # half a smaller table
    )
    month = (newest - timedelta(days=45), newest - timedelta(days=15))
    hour_ago = newest - timedelta(hours=1)
    box = (-180.0, -90.0, 180.0, 90.0)
    p50 = Page(limit=50)
    return [
        ("no filter", EntryFilter(), "-published_at", p50),
        ("cursor 500k deep", EntryFilter(), "-published_at", Page(limit=50, after=(deep[0], deep[1]))),
        ("blog (largest)", EntryFilter(blog=(blog,)), "-published_at", p50),
        ("3 blogs", EntryFilter(blog=tuple(blogs)), "-published_at", p50),
        ("actor (most linked)", EntryFilter(actor=(actor,)), "-published_at", p50),
        ("actor (least linked)", EntryFilter(actor=(rare_actor,)), "-published_at", p50),
        ("actor, 30-day window", EntryFilter(actor=(actor,), since=month[0], until=month[1]), "-published_at", p50),
        ("2 actors, any", EntryFilter(actor=(actor, actor2)), "-published_at", p50),
        ("2 actors, all (both popular)", EntryFilter(actor=(actor, actor2), actor_match="all"), "-published_at", p50),
        (
            "2 actors, all (popular + rare)",
            EntryFilter(actor=(actor, rare_actor), actor_match="all"),
            "-published_at",
            p50,
        ),
        ("source (most linked)", EntryFilter(source=(source,)), "-published_at", p50),
        ("source (least linked)", EntryFilter(source=(rare_source,)), "-published_at", p50),
        ("location: largest country", EntryFilter(location=(country,)), "-published_at", p50),
        ("location: least linked city", EntryFilter(location=(rare_city,)), "-published_at", p50),
        ("since: the last hour", EntryFilter(since=hour_ago), "-published_at", p50),
        ("until: the first day", EntryFilter(until=newest - timedelta(days=1090)), "-published_at", p50),
        ("since + until: 30 days", EntryFilter(since=month[0], until=month[1]), "-published_at", p50),
        ("updated_since: the last hour", EntryFilter(updated_since=updated - timedelta(hours=1)), "-published_at", p50),
        ("updated_since: 3 years ago", EntryFilter(updated_since=newest - timedelta(days=1200)), "-published_at", p50),
        (
            "updated_since: last hour, sort=updated_at",
            EntryFilter(updated_since=updated - timedelta(hours=1)),
            "updated_at",
            p50,
        ),
        ("q: common word", EntryFilter(q="drone"), "-published_at", p50),
        ("q: rare word", EntryFilter(q="zeppelin"), "-published_at", p50),
        ("q: phrase and negation", EntryFilter(q='"air defence" -drone'), "-published_at", p50),
        ("kind: video", EntryFilter(kind=("video",)), "-published_at", p50),
        ("kind: interactive + read_more", EntryFilter(kind=("interactive", "read_more")), "-published_at", p50),
        ("bbox: whole world", EntryFilter(bbox=box), "-published_at", p50),
        ("bbox: small", EntryFilter(bbox=(30.0, 46.0, 31.0, 47.0)), "-published_at", p50),
        ("actor + location", EntryFilter(actor=(actor,), location=(country,)), "-published_at", p50),
        ("actor + kind video", EntryFilter(actor=(actor,), kind=("video",)), "-published_at", p50),
        ("actor + q", EntryFilter(actor=(actor,), q="drone"), "-published_at", p50),
        ("source + since: the last hour", EntryFilter(source=(source,), since=hour_ago), "-published_at", p50),
        ("blog + q", EntryFilter(blog=(blog,), q="drone"), "-published_at", p50),
        ("location + kind", EntryFilter(location=(country,), kind=("video",)), "-published_at", p50),
        ("actor, sort=-updated_at", EntryFilter(actor=(actor,)), "-updated_at", p50),
        (
            "or: actor | source",
            EntryFilter(or_=(EntryFilter(actor=(actor,)), EntryFilter(source=(rare_source,)))),
            "-published_at",
            p50,
        ),
        ("not: actor", EntryFilter(not_=EntryFilter(actor=(actor,))), "-published_at", p50),
    ]


async def timed(conn: asyncpg.Connection, flt: EntryFilter, sort: EntrySort, page: Page) -> tuple[float, float]:
    for _ in range(6):  # warm the buffers and pass asyncpg's switch to a generic plan
        await entries.list_keys(conn, flt, sort, page)
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        await entries.list_keys(conn, flt, sort, page)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def cell(p50: float, p99: float) -> str:
    return f"{p50:7.2f} {p99:7.2f}{'!' if p99 > TARGET_MS else ' '}"


async def main(dsn: str) -> None:
    conns = {
        mode: await connect(dsn, server_settings={"plan_cache_mode": mode, "statement_timeout": "30000"})
        for mode in ("force_custom_plan", "force_generic_plan")
    }
    rows = await cases(conns["force_custom_plan"])
    header = f"{'case':44s} | {'custom p50/p99':>16s} | {'+count':>16s} | {'generic p50/p99':>16s} | {'+count':>16s}"
    lines = [header, "-" * len(header)]
    print(header, flush=True)
    worst = 0.0
    for name, flt, sort, page in rows:
        out = []
        for conn in conns.values():
            for counted in (False, True):
                p50, p99 = await timed(conn, flt, sort, Page(**{**_fields(page), "count": counted}))
                worst = max(worst, p99)
                out.append(cell(p50, p99))
        line = f"{name:44s} | " + " | ".join(out)
        lines.append(line)
        print(line, flush=True)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    footer = f"\nms, {RUNS} sequential calls each; worst p99 {worst:.1f} ms; load average {load}"
    lines.append(footer)
    print(footer)
    OUT.write_text("\n".join(lines) + "\n")
    for conn in conns.values():
        await conn.close()


def _fields(page: Page) -> dict[str, object]:
    return {f: getattr(page, f) for f in page.__struct_fields__}


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1/sitrep_bench"))
