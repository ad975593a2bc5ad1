"""What the entry bitmaps (migrations 0050 and 0060) add to a write: an entry written as POST
/v1/entries writes it (the entry, with the text of a random generated entry, then a statement per
link table: 3 actors, 2 locations, 1 source), on the newest day, with the bitmap triggers on and
off in alternating rounds.

    nice .venv/bin/python bench/bit_writes.py postgresql://postgres@127.0.0.1/sitrep_bench_c

Each write runs in a transaction that is rolled back (the database is left as it was; commit
costs the same either way), the triggers switched off inside it with ALTER TABLE ... DISABLE
TRIGGER for the "off" rounds. Prints p50/p99 in ms of each.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from datetime import timedelta

import asyncpg

from db.sql import query

ROUNDS = 10
PER_ROUND = 40
TRIGGERS = {
    "entries": ["entries_sync_bits_lock", "entries_sync_bits_insert"],
    "entry_actors": ["entry_actors_sync_bits_insert"],
    "entry_locations": ["entry_locations_sync_bits_insert"],
    "entry_sources": ["entry_sources_sync_bits_insert"],
}


async def write(
    conn: asyncpg.Connection,
    rng: random.Random,
    ids: dict[str, list[int]],
    texts: list[tuple[str, list[str]]],
    at: object,
    off: bool,
) -> float:
    async with conn.transaction():
        if off:
            for table, names in TRIGGERS.items():
                for name in names:
                    await conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER {name}")
        started = time.perf_counter()
        entry_id = await conn.fetchval(
            "INSERT INTO entries (blog_id, published_at, headline, body) VALUES ($1, $2, $3, $4) RETURNING id",
            ids["blog"][0],
            at,
            *rng.choice(texts),
        )
        actors = rng.sample(ids["actor"], 3)
        await conn.execute(query("write_link_actors"), entry_id, actors, ["mentioned"] * 3)
        await conn.execute(query("write_link_locations"), entry_id, rng.sample(ids["location"], 2))
        await conn.execute(query("write_link_sources"), entry_id, rng.sample(ids["source"], 1))
        elapsed = (time.perf_counter() - started) * 1000
        raise _Undo(elapsed)


class _Undo(Exception):
    def __init__(self, elapsed: float) -> None:
        self.elapsed = elapsed


async def main(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    rng = random.Random(1)
    ids = {
        "blog": [await conn.fetchval("SELECT blog_id FROM entries ORDER BY published_at DESC LIMIT 1")],
        "actor": [r[0] for r in await conn.fetch("SELECT id FROM actors")],
        "location": [r[0] for r in await conn.fetch("SELECT id FROM locations")],
        "source": [r[0] for r in await conn.fetch("SELECT id FROM sources")],
    }
    at = await conn.fetchval("SELECT max(published_at) FROM entries") - timedelta(minutes=5)
    texts = [(r[0], r[1]) for r in await conn.fetch("SELECT headline, body FROM entries ORDER BY id DESC LIMIT 500")]
    samples: dict[bool, list[float]] = {False: [], True: []}
    for r in range(ROUNDS * 2):
        off = r % 2 == 1
        for _ in range(PER_ROUND):
            try:
                await write(conn, rng, ids, texts, at, off)
            except _Undo as done:
                samples[off].append(done.elapsed)
    for off, got in samples.items():
        got.sort()
        print(
            f"bitmap triggers {'off' if off else 'on '}: p50 {statistics.median(got):.2f} ms,"
            f" p99 {got[int(len(got) * 0.99) - 1]:.2f} ms ({len(got)} writes)"
        )
    await conn.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1/sitrep_bench_c"))
