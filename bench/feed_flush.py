"""The change feed's flush at COMMIT: how long a transaction that changes N entries waits for it.

    nice .venv/bin/python bench/feed_flush.py postgresql://postgres@127.0.0.1:5432/postgres
    nice .venv/bin/python bench/feed_flush.py DSN --upto 30      # the migrations before 0031 only
    nice .venv/bin/python bench/feed_flush.py DSN --relink       # and time `sitrep relink` after

Makes a scratch database on the server (dropped at the end), applies the migrations (all, or
those numbered up to --upto), generates --entries entries (db.generate, fixed seed), then runs
--rounds transactions, each one as `sitrep relink` writes a batch: the actor, location and source
links of --batch consecutive entries deleted and written again, and their updated_at bumped. It
times the statements, then the flush (SET CONSTRAINTS ALL IMMEDIATE runs the deferred feed
trigger at that point instead of inside COMMIT), then the COMMIT, and checks that each round
published exactly one change per entry. --relink then times db.ingest.relink over every entry
with the shipped gazetteer (the generated text links differently, so most entries change).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from db.generate import generate
from db.ingest.relink import relink
from db.migrate import MIGRATIONS_DIR, migrate
from db.pool import connect

REWRITE = """
WITH a AS (DELETE FROM entry_actors WHERE entry_id = ANY($1::bigint[]) RETURNING *),
     l AS (DELETE FROM entry_locations WHERE entry_id = ANY($1::bigint[]) RETURNING *),
     s AS (DELETE FROM entry_sources WHERE entry_id = ANY($1::bigint[]) RETURNING *),
     ia AS (INSERT INTO entry_actors SELECT * FROM a),
     il AS (INSERT INTO entry_locations SELECT * FROM l)
INSERT INTO entry_sources SELECT * FROM s
"""


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _migrations(upto: int | None, into: Path) -> Path:
    if upto is None:
        return MIGRATIONS_DIR
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if int(path.name.split("_", 1)[0]) <= upto:
            shutil.copy(path, into / path.name)
    return into


async def _round(conn: asyncpg.Connection, ids: list[int]) -> tuple[float, float, float]:
    before = await conn.fetchval("SELECT COALESCE(max(seq), 0) FROM changes")
    t0 = time.perf_counter()
    async with conn.transaction():
        await conn.execute(REWRITE, ids)
        await conn.execute("UPDATE entries SET updated_at = now() WHERE id = ANY($1::bigint[])", ids)
        t1 = time.perf_counter()
        await conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
        t2 = time.perf_counter()
    t3 = time.perf_counter()
    published = await conn.fetch("SELECT entity, entity_id, op FROM changes WHERE seq > $1 ORDER BY seq", before)
    got = sorted((r["entity"], r["entity_id"], r["op"]) for r in published)
    if got != [("entry", i, "update") for i in sorted(ids)]:
        raise SystemExit(f"round published {len(got)} changes, not one update per entry")
    return t1 - t0, t2 - t1, t3 - t2


async def main(args: argparse.Namespace) -> None:
    name = f"sitrep_feed_flush_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = await connect(_with_database(args.dsn, name))
        try:
            with tempfile.TemporaryDirectory() as tmp:
                applied = await migrate(conn, _migrations(args.upto, Path(tmp)))
            print(f"migrations: {applied[0]} .. {applied[-1]}")
            made = await generate(conn, entries=args.entries, seed=1)
            print(f"generated {made.entries} entries")
            ids = [r["id"] for r in await conn.fetch("SELECT id FROM entries ORDER BY id")]
            statements, flushes, commits = [], [], []
            for n in range(args.rounds):
                batch = ids[n * args.batch : (n + 1) * args.batch]
                if len(batch) < args.batch:
                    break
                s, f, c = await _round(conn, batch)
                statements.append(s)
                flushes.append(f)
                commits.append(c)
            print(f"{len(flushes)} transactions of {args.batch} entries (links rewritten, updated_at bumped):")
            for label, values in (("statements", statements), ("flush", flushes), ("commit", commits)):
                print(
                    f"  {label:<10} median {statistics.median(values) * 1000:8.1f} ms"
                    f"   max {max(values) * 1000:8.1f} ms"
                )
            if args.relink:
                start = time.perf_counter()
                result = await relink(conn, batch=args.batch)
                elapsed = time.perf_counter() - start
                print(f"relink: {result.entries} entries, {result.changed} changed, {elapsed:.1f} s")
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dsn", help="a DSN of the server (its maintenance database)")
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--upto", type=int, help="apply only the migrations numbered up to this")
    parser.add_argument("--relink", action="store_true", help="then time relink over every entry")
    asyncio.run(main(parser.parse_args()))
