"""Exports beside page readers: do ten full exports starve the readers of one instance?

    nice .venv/bin/python bench/exports.py --dsn postgresql://postgres@127.0.0.1:5432/sitrep_bench \\
        --seconds 20 --rounds 2

One `sitrep serve` process (pool of 10, SITREP_EXPORT_SLOTS=2) on an existing database. Eight
readers (one keep-alive connection each) ask, one request after another, for the latest 50
entries of a random blog. Each round has two phases of --seconds each:

  alone         the eight readers only
  with exports  the same readers while ten exporters, in a process of their own on raw
                sockets, each stream the whole table (format=ndjson, csv, geojson in turn,
                all=true) as fast as they can read; an exporter refused (429 or 503) waits the
                Retry-After it was given, then asks again

For each phase: the readers' requests/s, p50 and p99 latency, and every status they got; the
exporters' statuses, rows streamed and the server's RSS (with its children) at its peak.
Every client is on 127.0.0.1, one address, so SITREP_EXPORT_PER_CALLER is raised to 10: the
bound measured is the instance's (slots), not the caller's. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rest import machine, server

FORMATS = ("ndjson", "csv", "geojson")  # each with all=true: the whole result


async def blog_slugs(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return [r["slug"] for r in await conn.fetch("SELECT slug FROM blogs")]
    finally:
        await conn.close()


async def reader(base: str, blogs: list[str], until: float, rng: random.Random) -> tuple[list[float], Counter[int]]:
    times: list[float] = []
    codes: Counter[int] = Counter()
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        while time.monotonic() < until:
            started = time.perf_counter()
            response = await http.get("/v1/entries", params={"blog": rng.choice(blogs), "limit": 50})
            times.append(time.perf_counter() - started)
            codes[response.status_code] += 1
    return times, codes


async def exporter(host: str, port: int, n: int, until: float) -> tuple[Counter[int], int]:
    """One exporter on a raw socket: reads and discards the stream, counting lines (no HTTP client
    library: its parsing would take CPU from the readers this measures)."""
    codes: Counter[int] = Counter()
    rows = 0
    fmt = FORMATS[n % len(FORMATS)]
    request = f"GET /v1/entries?format={fmt}&all=true HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    while time.monotonic() < until:
        reader_, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        try:
            writer.write(request.encode())
            head = await reader_.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            codes[status] += 1
            if status != 200:
                retry = next(
                    (
                        line.split(b":", 1)[1]
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"retry-after:")
                    ),
                    b"1",
                )
                await asyncio.sleep(max(0.0, min(float(retry), until - time.monotonic())))
                continue
            while time.monotonic() < until and (chunk := await reader_.read(1 << 16)):
                rows += chunk.count(b"\n")
        finally:
            writer.close()
    return codes, rows


def exporters_process(base: str, exports: int, seconds: float, out: Any) -> None:
    """The exporters, in a process of their own."""
    host, port = base.removeprefix("http://").split(":")
    until = time.monotonic() + seconds

    async def run() -> list[tuple[Counter[int], int]]:
        return await asyncio.gather(*(exporter(host, int(port), n, until) for n in range(exports)))

    results = asyncio.run(run())
    codes: Counter[int] = Counter()
    for c, _ in results:
        codes.update(c)
    out.send((dict(codes), sum(n for _, n in results)))


async def phase(base: str, blogs: list[str], seconds: float, exports: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    export_codes: dict[int, int] = {}
    rows = 0
    process = None
    if exports:
        receive, send = multiprocessing.Pipe(duplex=False)
        process = multiprocessing.Process(target=exporters_process, args=(base, exports, seconds + 0.5, send))
        process.start()
        await asyncio.sleep(0.5)  # the exports are under way before the readers start
    until = time.monotonic() + seconds
    readers = [reader(base, blogs, until, random.Random(rng.random())) for _ in range(8)]
    started = time.perf_counter()
    results = await asyncio.gather(*readers)
    elapsed = time.perf_counter() - started
    if process is not None:
        export_codes, rows = await asyncio.to_thread(receive.recv)
        process.join()
    times = sorted(t for ts, _ in results for t in ts)
    reader_codes: Counter[int] = Counter()
    for _, codes in results:
        reader_codes.update(codes)
    return {
        "reader_rps": round(len(times) / elapsed, 1),
        "reader_p50_ms": round(1000 * statistics.median(times), 1),
        "reader_p99_ms": round(1000 * times[int(0.99 * (len(times) - 1))], 1),
        "reader_statuses": dict(sorted(reader_codes.items())),
        "export_statuses": dict(sorted(export_codes.items())),
        "export_rows": rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--exports", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    blogs = asyncio.run(blog_slugs(args.dsn))
    os.environ["SITREP_EXPORT_PER_CALLER"] = "10"
    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    with server("uvicorn", args.dsn) as (base, sampler):
        asyncio.run(phase(base, blogs, 3, 0, 0))  # warm-up
        for r in range(args.rounds):
            for name, exports in (("alone", 0), ("with exports", args.exports)):
                first = len(sampler.samples)
                result = asyncio.run(phase(base, blogs, args.seconds, exports, r))
                result["rss_peak_mib"] = round(max(sampler.samples[first:] or [0.0]), 1)
                rows.append({"round": r + 1, "phase": name, **result})
                print(json.dumps(rows[-1]), flush=True)
    load_after = os.getloadavg()
    print(f"\nmachine: {machine()}; load average before {load_before[0]:.2f}, after {load_after[0]:.2f}\n")
    print(
        "| round | phase | reader req/s | p50 ms | p99 ms | reader statuses | export statuses | rows exported | RSS peak MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['round']} | {row['phase']} | {row['reader_rps']} | {row['reader_p50_ms']} | {row['reader_p99_ms']}"
            f" | {row['reader_statuses']} | {row['export_statuses']} | {row['export_rows']:,} | {row['rss_peak_mib']} |"
        )
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "load": [load_before, load_after]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
