"""Shutting down always ends: a connection that is never given back (a stream its client still
holds, a handler stuck on a frozen database) does not hold the process up."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import Settings
from db import pool

SESSIONS = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'sitrep'"


async def test_shutdown_ends_with_a_connection_never_given_back(
    conn: asyncpg.Connection, db_dsn: str, api_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool, "CLOSE_SECONDS", 0.5)
    app = create_app(api_settings, db_dsn)
    held: list[asyncpg.Connection] = []

    async def take() -> None:  # on the app's own event loop, as a handler would
        held.append(await app.state.pool.acquire())  # never released

    async with asyncio.timeout(15):
        async with AsyncTestClient(app) as client:
            assert (await client.get("/ready")).status_code == 200
            client.blocking_portal.call(take)
            assert await conn.fetchval(SESSIONS) >= 1
        # the lifespan ended: the pool gave up waiting and ended the connection it held
        for _ in range(50):
            if await conn.fetchval(SESSIONS) == 0:
                break
            await asyncio.sleep(0.1)
        assert await conn.fetchval(SESSIONS) == 0
