"""sitrep behind PgBouncer in transaction mode (SITREP_PGBOUNCER=transaction, Debian's 1.18).

A real PgBouncer on a spare port in front of the test's database, with two server connections
for an instance whose pool opens up to eight: concurrent requests share server connections
transaction by transaction, so anything that leans on session state (a named prepared
statement, a SET, an asyncpg cursor's lazily closed statement) breaks here. LISTEN (the live
hub, the key cache) goes to DATABASE_DIRECT_URL.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from db.pool import close_pool, create_pool
from tests.api.test_live import SECRET, SseClient, _auth, _catalog, _entry, serve
from tests.api.test_live import write_token as write_token  # the fixture
from tests.bouncer import PgBouncer

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture
def bouncer(db_dsn: str) -> Iterator[PgBouncer]:
    with PgBouncer(db_dsn, pool_mode="transaction", pool_size=2) as pgb:
        yield pgb


@pytest.fixture
def instance(bouncer: PgBouncer, db_dsn: str, tmp_path: Path) -> Iterator[str]:
    with serve(
        bouncer.dsn,
        tmp_path,
        DATABASE_DIRECT_URL=db_dsn,
        SITREP_PGBOUNCER="transaction",
        SITREP_HEARTBEAT_SECONDS="0.5",
        SITREP_ENTRY_CACHE_MB="0",  # every page renders from the database
    ) as base:
        yield base


async def test_reads_writes_graphql_exports_and_live_push_through_pgbouncer(
    instance: str, bouncer: PgBouncer, write_token: str
) -> None:
    headers = _auth(write_token)
    await _catalog(instance, headers)
    sse = await SseClient(f"{instance}/v1/stream/entries?actor=zelenskyy", headers).start()
    try:
        async with httpx.AsyncClient(base_url=instance, headers=headers, timeout=10) as client:

            async def write(n: int) -> dict:  # type: ignore[type-arg]
                actor = "zelenskyy" if n % 3 == 0 else "peskov"
                body = _entry(n, actor) | {"headline": f"Drone report {n}" if n % 2 else f"Update {n}"}
                created = await client.post("/v1/entries", json=body)
                assert created.status_code == 201, created.text
                # a write, then a read of it: the read sees it whatever server connection it gets
                read = await client.get(f"/v1/entries/{created.json()['id']}")
                assert read.status_code == 200, read.text
                assert read.json()["headline"] == body["headline"]
                return created.json()  # type: ignore[no-any-return]

            made = await asyncio.gather(*(write(n) for n in range(1, 31)))
            ids = {e["id"] for e in made}
            assert len(ids) == 30

            # many readers at once on two server connections: pages with a link filter (one
            # plan for every value) and full text (planned for its value), counts, GraphQL
            async def read(n: int) -> None:
                by_actor = await client.get("/v1/entries", params={"actor": "zelenskyy", "limit": 50, "count": "true"})
                assert by_actor.status_code == 200, by_actor.text
                assert len(by_actor.json()["data"]) == 10
                by_text = await client.get("/v1/entries", params={"q": "drone", "limit": 50})
                assert by_text.status_code == 200, by_text.text
                assert len(by_text.json()["data"]) == 15
                graph = await client.post(
                    "/graphql",
                    json={
                        "query": "query($a: [String!]) { entries(first: 5, filter: {actor: $a}) "
                        "{ totalCount nodes { headline actors { actor { slug } } } } }",
                        "variables": {"a": ["peskov"]},
                    },
                )
                assert graph.status_code == 200, graph.text
                assert "errors" not in graph.json(), graph.json()
                assert graph.json()["data"]["entries"]["totalCount"] == 20

            await asyncio.gather(*(read(n) for n in range(24)))
            pools = bouncer.pool()
            assert int(pools["sv_active"]) + int(pools["sv_idle"]) + int(pools["sv_used"]) <= 2, pools
            assert int(pools["cl_active"]) > 2, pools  # more clients than server connections

            # a whole-result export: a cursor that lives in its transaction only
            export = await client.get("/v1/entries", params={"all": "true"}, headers={"Accept": "application/x-ndjson"})
            assert export.status_code == 200, export.text
            assert {int(line.split(b'"id":')[1].split(b",")[0]) for line in export.content.splitlines()} == ids

        # live push: the hub LISTENs on the direct connection, the filter is checked through the pool
        events = await sse.wait_for(10, 5.0)
        assert sorted(e.data["id"] for e in events) == sorted(e["id"] for e in made if "zelenskyy" in str(e))
        assert [e.id for e in events] == sorted(e.id for e in events)
    finally:
        await sse.stop()


async def test_many_concurrent_pages_share_two_server_connections_without_errors(
    instance: str, bouncer: PgBouncer, write_token: str
) -> None:
    headers = _auth(write_token)
    await _catalog(instance, headers)
    async with httpx.AsyncClient(base_url=instance, headers=headers, timeout=10) as client:
        for n in range(12):
            assert (await client.post("/v1/entries", json=_entry(n))).status_code == 201
        paths = [
            "/v1/entries?limit=5",
            "/v1/entries?actor=peskov&limit=3",
            "/v1/entries?q=update&limit=4",
            "/v1/actors",
            "/v1/blogs",
            "/v1/timeline?interval=hour",
            "/v1/changes?after=0&limit=20",
        ]
        answers = await asyncio.gather(*(client.get(paths[n % len(paths)]) for n in range(140)))
    assert [r.status_code for r in answers] == [200] * 140, {r.status_code: r.text for r in answers}
    stats = bouncer.show("STATS")
    row = next(r for r in stats if r["database"] == bouncer.database)
    assert int(row["total_xact_count"]) >= 140


def test_statement_mode_is_refused_at_startup_with_a_clear_message(tmp_path: Path, db_dsn: str) -> None:
    env = {
        "DATABASE_URL": db_dsn,
        "SITREP_PGBOUNCER": "statement",
        "SITREP_DATA_DIR": str(tmp_path),
        "SITREP_SECRET": SECRET,
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "serve", "--port", "0"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode != 0
    assert "SITREP_PGBOUNCER=statement is not supported" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_cli_works_on_the_direct_connection_while_the_app_uses_pgbouncer(
    tmp_path: Path, db_dsn: str, bouncer: PgBouncer
) -> None:
    env = {
        "DATABASE_URL": bouncer.dsn,
        "DATABASE_DIRECT_URL": db_dsn,
        "SITREP_PGBOUNCER": "transaction",
        "SITREP_DATA_DIR": str(tmp_path),
        "SITREP_SECRET": SECRET,
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "migrate"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout
    assert [r for r in bouncer.show("SERVERS") if r["database"] == bouncer.database] == []  # none through PgBouncer


async def test_exports_from_two_instances_on_one_server_connection(
    db_dsn: str, tmp_path: Path, write_token: str
) -> None:
    """Two processes on one server connection, each export a cursor that must live and die in its
    own transaction (db/export.py declares it in SQL rather than through asyncpg's named statements)."""
    with (
        PgBouncer(db_dsn, pool_mode="transaction", pool_size=1) as pgb,
        serve(pgb.dsn, tmp_path / "a", DATABASE_DIRECT_URL=db_dsn, SITREP_PGBOUNCER="transaction") as a,
        serve(pgb.dsn, tmp_path / "b", DATABASE_DIRECT_URL=db_dsn, SITREP_PGBOUNCER="transaction") as b,
    ):
        headers = _auth(write_token)
        await _catalog(a, headers)
        async with httpx.AsyncClient(headers=headers | {"Accept": "application/x-ndjson"}, timeout=10) as client:
            for n in range(5):
                assert (await client.post(f"{a}/v1/entries", json=_entry(n), headers=headers)).status_code == 201
            for base in (a, b, a, b):
                export = await client.get(f"{base}/v1/entries", params={"all": "true", "actor": "peskov"})
                assert export.status_code == 200, export.text
                assert len(export.content.splitlines()) == 5, export.text


async def test_session_mode_sets_the_statement_timeout_on_each_connection(db_dsn: str) -> None:
    with PgBouncer(db_dsn, pool_mode="session", pool_size=2, statement_timeout_ms=None) as pgb:
        pool = await create_pool(pgb.dsn, min_size=1, max_size=2, statement_timeout_ms=1234, pgbouncer="session")
        try:
            async with pool.acquire() as conn:
                assert await conn.fetchval("SHOW statement_timeout") == "1234ms"
                with pytest.raises(asyncpg.QueryCanceledError):
                    await conn.execute("SELECT pg_sleep(2)")
        finally:
            await close_pool(pool)


async def test_transaction_mode_says_when_the_server_does_not_bound_statements(
    db_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    for timeout, warned in ((None, True), (5000, False)):
        caplog.clear()
        with PgBouncer(db_dsn, pool_mode="transaction", pool_size=2, statement_timeout_ms=timeout) as pgb:
            with caplog.at_level(logging.WARNING, logger="sitrep.db"):
                pool = await create_pool(pgb.dsn, min_size=1, statement_timeout_ms=5000, pgbouncer="transaction")
            try:
                async with pool.acquire() as conn:  # unnamed statements only: fine on any server connection
                    assert await conn.fetchval("SELECT $1::int * 2", 21) == 42
                    assert await conn.fetchval("SELECT count(*) FROM pg_prepared_statements") == 0
            finally:
                await close_pool(pool)
        said = [r.getMessage() for r in caplog.records if "statement_timeout" in r.getMessage()]
        assert bool(said) is warned, said
        if warned:
            assert "connect_query = 'SET statement_timeout = 5000'" in said[0]
