"""Whole-result exports run on resources of their own (api/exports.py): however many clients ask
for one and then read slowly, page readers keep getting pages, and a refused export is a 429 or
503 problem with Retry-After before any of its body."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import httpx

from tests.api.live import live_server, stalled_export
from tests.db import factories as f

EXPORTING = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'"
)


async def _many_entries(conn: asyncpg.Connection) -> None:
    blog = await f.blog(conn)
    paragraph = "word " * 800  # 4 kB a row, 8 MB in all: far more than the socket buffers hold
    await conn.executemany(
        "INSERT INTO entries (blog_id, published_at, headline, body) VALUES ($1, $2, $3, $4)",
        [(blog, f.at(i), f"entry {i}", [paragraph]) for i in range(2000)],
    )


async def _wait_for(conn: asyncpg.Connection, sql: str, value: int) -> int:
    for _ in range(100):
        if (found := await conn.fetchval(sql)) == value:
            return int(found)
        await asyncio.sleep(0.1)
    return int(await conn.fetchval(sql))


async def test_ten_stalled_exports_leave_page_readers_alone(
    conn: asyncpg.Connection, db_dsn: str, tmp_path: Path
) -> None:
    await _many_entries(conn)
    env = {
        "SITREP_ANONYMOUS_RATE": "100000",
        "SITREP_POOL_MAX": "4",  # fewer connections than exports asked for
        "SITREP_EXPORT_SLOTS": "2",
        "SITREP_EXPORT_PER_CALLER": "10",  # every client here is the same address: test the instance's bound
    }
    with live_server(db_dsn, tmp_path / "data", tmp_path / "server.log", **env) as base:
        async with asyncio.timeout(60):
            heads: list[bytes] = []
            exports = [stalled_export(base) for _ in range(10)]
            opened = []
            try:
                for export in exports:
                    heads.append(await export.__aenter__())
                    opened.append(export)
                statuses = [head.split(b" ", 2)[1] for head in heads]
                assert statuses.count(b"200") == 2, heads
                assert statuses.count(b"503") == 8, heads
                refused = next(head for head in heads if b" 503 " in head[:20])
                assert b"retry-after: 10" in refused.lower()
                assert b"application/problem+json" in refused
                assert await _wait_for(conn, EXPORTING, 2) == 2  # two snapshots held open by stalled clients
                async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                    scraped = (await http.get("/metrics")).text
                # the operator sees the two streams (the refused eight are gone) among the requests in flight
                assert "\nsitrep_http_streams_open 2.0\n" in scraped
                assert "\nsitrep_http_requests_in_flight 3.0\n" in scraped  # two exports and this scrape

                # eight readers, twenty pages each, while both exports are held: every page served
                async with httpx.AsyncClient(base_url=base, timeout=10) as http:

                    async def reader(n: int) -> list[int]:
                        codes = []
                        for i in range(20):
                            response = await http.get("/v1/entries", params={"limit": 20, "q": f"entry {n * i}"})
                            codes.append(response.status_code)
                        return codes

                    results = await asyncio.gather(*(reader(n) for n in range(8)))
                assert {code for codes in results for code in codes} == {200}
            finally:
                for export in reversed(opened):
                    await export.__aexit__(None, None, None)
            # the stalled clients gone, their slots and connections come back
            assert await _wait_for(conn, EXPORTING, 0) == 0
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                for _ in range(50):
                    response = await http.get("/v1/entries", params={"format": "ndjson", "limit": 1, "q": "entry 7"})
                    if response.status_code == 200:
                        break
                    await asyncio.sleep(0.1)
                assert response.status_code == 200
                assert response.text.count("\n") == 1


async def test_one_caller_runs_one_export_at_a_time(conn: asyncpg.Connection, db_dsn: str, tmp_path: Path) -> None:
    await _many_entries(conn)
    env = {"SITREP_ANONYMOUS_RATE": "100000", "SITREP_EXPORT_SLOTS": "4", "SITREP_EXPORT_PER_CALLER": "1"}
    with live_server(db_dsn, tmp_path / "data", tmp_path / "server.log", **env) as base:
        async with asyncio.timeout(60), stalled_export(base) as head:
            assert head.startswith(b"HTTP/1.1 200")
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                second = await http.get("/v1/entries", params={"format": "ndjson"})
                assert second.status_code == 429
                assert second.headers["retry-after"] == "10"
                assert "export" in second.json()["detail"]
                # pages are not exports: they are served meanwhile
                assert (await http.get("/v1/entries", params={"limit": 5})).status_code == 200
        assert await _wait_for(conn, EXPORTING, 0) == 0
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            for _ in range(50):  # the first export's slot is released once its stream ends
                again = await http.get("/v1/entries", params={"format": "ndjson", "q": "entry 7"})
                if again.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert again.status_code == 200
