"""A frozen database (its processes SIGSTOPped): readiness and key checks answer 503 within
about a second, then every request at once while it is known down (the pool's circuit), and the
first request after it thaws succeeds within about a second (issue #12, defect 4)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from db import keys as keydb
from db.migrate import migrate
from db.pool import connect
from tests.api.live import live_server
from tests.pgcluster import Cluster

SECRET = "live-server-test-secret"  # the live server's


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    found = Cluster()
    try:
        found.start()
        yield found
    finally:
        found.stop()  # thaws first: never leaves stopped processes behind


async def _prepare(dsn: str) -> list[str]:
    conn: asyncpg.Connection = await connect(dsn)
    try:
        await migrate(conn)
        return [(await keydb.create_key(conn, SECRET, name=f"k{i}", scopes=("read",), rate=10**6))[1] for i in range(3)]
    finally:
        await conn.close()


def _timed(http: httpx.Client, path: str, token: str | None = None) -> tuple[int, float, httpx.Response]:
    started = time.monotonic()
    r = http.get(path, headers={"X-API-Key": token} if token else {})
    return r.status_code, time.monotonic() - started, r


def test_a_frozen_database_is_a_fast_503_and_recovery_is_quick(cluster: Cluster, tmp_path: Path) -> None:
    tokens = asyncio.run(_prepare(cluster.dsn))
    with live_server(cluster.dsn, tmp_path) as base, httpx.Client(base_url=base, timeout=20) as http:
        assert http.get("/ready").status_code == 200
        assert http.get("/v1/entries", headers={"X-API-Key": tokens[0]}).status_code == 200
        cluster.freeze()
        try:
            status, took, r = _timed(http, "/ready")
            assert status == 503
            assert r.headers["retry-after"]
            assert took < 2.0, f"/ready took {took:.2f} s"
            # the database is known down now: everything answers at once, a fresh key included
            for path, token in (("/v1/entries", tokens[1]), ("/v1/actors", None), ("/ready", None)):
                status, took, r = _timed(http, path, token)
                assert status == 503, r.text
                assert r.headers["retry-after"]
                assert took < 0.5, f"{path} took {took:.2f} s while the database was known down"
            r = http.post("/graphql", json={"query": "{ entries(first: 1) { nodes { id } } }"})
            assert r.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        finally:
            cluster.thaw()
        thawed = time.monotonic()
        while http.get("/v1/entries", headers={"X-API-Key": tokens[2]}).status_code != 200:
            assert time.monotonic() - thawed < 1.5, "no 200 within 1.5 s of the database coming back"
            time.sleep(0.05)
        assert http.get("/ready").status_code == 200
