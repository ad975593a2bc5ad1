"""The GraphQL fast path beside Strawberry's executor, in process, on one database.

    nice -n 10 .venv/bin/python bench/graphql_paths.py \\
        --dsn postgresql://postgres@127.0.0.1:5432/sitrep_bench --runs 200

Runs each query through schema.execute.execute with the fast path on and off (alternating,
one connection, after a warm-up), and prints the median and p90 wall time per request and
the SQL statements each sent. No HTTP: this isolates execution (graphql-core's per-field
cost) from transport. Read-only.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import msgspec

from db.page import Cursors
from db.pool import connect
from schema.context import Db, GraphContext
from schema.execute import execute

QUERIES = {
    "Q2 latest 50 entries with actors, locations, sources": """{ entries(first: 50) { nodes {
        id headline publishedAt kind actors { role actor { slug name } } locations { slug name latitude longitude }
        sources { slug name } } } }""",
    "Q4 20 actors, 10 entries each with their actors": """{ actors(first: 20, orderBy: ENTRY_COUNT_DESC) { nodes {
        slug entries(first: 10) { nodes { headline actors { role actor { slug } } } } } } }""",
}


async def main(dsn: str, runs: int) -> None:
    conn = await connect(dsn)
    statements: list[str] = []
    conn.add_query_logger(lambda r: statements.append(r.query))
    cursors = Cursors("bench")
    print("| query | path | median ms | p90 ms | statements | response bytes |\n|---|---|---|---|---|---|")
    for name, query in QUERIES.items():
        times: dict[bool, list[float]] = {True: [], False: []}
        counts: dict[bool, int] = {}
        sizes: dict[bool, int] = {}
        bodies: dict[bool, bytes] = {}
        for i in range(runs + 10):
            for fast in (True, False):
                await asyncio.sleep(0.005)  # the query logger reports completions a moment late
                statements.clear()
                ctx = GraphContext(Db(conn=conn), cursors)
                start = time.perf_counter()
                outcome = await execute(ctx, query, use_fast=fast)
                body = msgspec.json.encode(outcome.body)
                elapsed = time.perf_counter() - start
                assert outcome.path == ("fast" if fast else "plain"), outcome.body
                await asyncio.sleep(0.005)
                if i >= 10:
                    times[fast].append(elapsed * 1000)
                counts[fast] = len(statements)
                sizes[fast] = len(body)
                bodies[fast] = body
        assert bodies[True] == bodies[False], "the two paths disagree"
        for fast in (True, False):
            t = sorted(times[fast])
            print(
                f"| {name} | {'fast' if fast else 'strawberry'} | {statistics.median(t):.1f} |"
                f" {t[int(len(t) * 0.9)]:.1f} | {counts[fast]} | {sizes[fast]} |"
            )
    await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.dsn, args.runs))
