"""EXPLAIN ANALYZE of the entry list queries Q1-Q5 on a large database, and their latency.

    nice .venv/bin/python bench/query_plans.py postgresql://postgres@127.0.0.1/sitrep_bench

Writes bench/plans/qN_<name>.txt (the custom plan with timings, then the generic plan a
prepared statement would switch to after five runs) of the statement every JSON page runs
(`entries.list_keys`: the page's keys and the change seq its snapshot saw), and for Q2 also the
statement that reads entries with their links (`entries.linked_by_ids`, what a page runs for
the entries the entry cache lacks). Prints p50/p99 of the query functions as the API calls
them, unloaded, one connection: keys only (every entry cached) and keys + entries with links
(a cold cache).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from db import entries, where
from db.entries import _BY_IDS as BY_IDS
from db.entries import _KEY_COLUMNS as KEY_COLUMNS
from db.entries import _LINKED as LINKED
from db.filters import EntryFilter, EntrySort
from db.page import Page
from db.pool import connect
from db.refs import Refs

OUT = Path(__file__).parent / "plans"
RUNS = 200


def literal(v: Any) -> str:
    if isinstance(v, list):
        if all(isinstance(x, int) for x in v):
            return "ARRAY[" + ",".join(str(x) for x in v) + "]::bigint[]"
        return "ARRAY[" + ",".join("'" + str(x).replace("'", "''") + "'" for x in v) + "]::text[]"
    if isinstance(v, datetime):
        return f"'{v.isoformat()}'::timestamptz"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return str(v)


async def plans(conn: asyncpg.Connection, sql: str, values: list[Any]) -> str:
    analyzed = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *values)
    async with conn.transaction():
        await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE bench_q AS {sql}")
        try:
            args = f"({', '.join(literal(v) for v in values)})" if values else ""
            generic = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_q{args}")
        finally:
            await conn.execute("DEALLOCATE bench_q")
    return (
        f"-- SQL\n{sql}\n-- parameters\n{values!r}\n\n-- custom plan (EXPLAIN ANALYZE)\n"
        + "\n".join(r[0] for r in analyzed)
        + "\n\n-- generic plan (plan_cache_mode = force_generic_plan)\n"
        + "\n".join(r[0] for r in generic)
        + "\n"
    )


async def timed(work: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    for _ in range(10):  # warm the cache and pass the five-run generic-plan switch
        await work()
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        await work()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


async def main(dsn: str) -> None:
    conn = await connect(dsn)
    OUT.mkdir(exist_ok=True)
    blog = await conn.fetchval("SELECT blog_id FROM entries GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
    actor = await conn.fetchval("SELECT actor_id FROM actor_entry_counts ORDER BY entry_count DESC LIMIT 1")
    newest = await conn.fetchval("SELECT max(published_at) FROM entries")
    deep = await conn.fetchrow(
        "SELECT published_at, id FROM entries ORDER BY published_at DESC, id DESC OFFSET 100000 LIMIT 1"
    )
    window = (newest - timedelta(days=45), newest - timedelta(days=15))
    cases: list[tuple[str, EntryFilter, EntrySort, Page, bool]] = [
        ("q1_blog_latest_50", EntryFilter(blog=(blog,)), "-published_at", Page(limit=50), False),
        ("q2_latest_50_with_relations", EntryFilter(), "-published_at", Page(limit=50), True),
        (
            "q3_popular_actor_30_day_window",
            EntryFilter(actor=(actor,), since=window[0], until=window[1]),
            "-published_at",
            Page(limit=50),
            False,
        ),
        (
            "q4_cursor_100k_deep",
            EntryFilter(),
            "-published_at",
            Page(limit=50, after=(deep["published_at"], deep["id"])),
            False,
        ),
        ("q5_fulltext_drone_latest_20", EntryFilter(q="drone"), "-published_at", Page(limit=20), False),
        # a word almost no entry has: the generic plan walks the whole date index; hence custom plans for q
        ("q5b_fulltext_rare_word_latest_20", EntryFilter(q="zeppelin"), "-published_at", Page(limit=20), False),
    ]
    for name, flt, sort, page, relations in cases:
        resolved = await where.resolve_entry_filter(conn, flt)
        sql, values = where.list_entries_sql(resolved, sort, page, columns=KEY_COLUMNS)
        text = await plans(conn, sql, values)
        ids = [r["id"] for r in await conn.fetch(sql, *values)][: page.limit]
        if relations:
            analyzed = await conn.fetch(
                f"EXPLAIN (ANALYZE, BUFFERS) {LINKED.format(page=BY_IDS, col='id', direction='ASC')}", ids
            )
            text += "\n-- entries with their links (entries.linked_by_ids)\n" + "\n".join(r[0] for r in analyzed) + "\n"
        (OUT / f"{name}.txt").write_text(text)

        async def keys(flt: EntryFilter = flt, sort: EntrySort = sort, page: Page = page) -> None:
            await entries.list_keys(conn, flt, sort, page)

        async def cold(flt: EntryFilter = flt, sort: EntrySort = sort, page: Page = page) -> None:
            found, _ = await entries.list_keys(conn, flt, sort, page)
            await entries.linked_by_ids(conn, Refs(), [k.id for k in found.rows])

        k50, k99 = await timed(keys)
        c50, c99 = await timed(cold)
        print(f"{name:34s} keys p50 {k50:6.2f} p99 {k99:6.2f} ms;  keys + entries p50 {c50:6.2f} p99 {c99:6.2f} ms")
    await conn.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1/sitrep_bench"))
