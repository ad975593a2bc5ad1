"""Pages whose plan depends on their values (a search, `updated_since`, a box, several blogs) go to
the custom-plan pool (SITREP_PLAN_POOL_MAX, tests/db/test_plan_pool.py) and answer what the request
pool answers; when that pool is busy they take the request pool instead of waiting."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import Settings
from tests.api.test_metrics import scrape
from tests.db import factories as f

PAGES = [
    "/v1/entries?q=drone&limit=3",
    "/v1/entries?q=drone&limit=3&count=true",
    "/v1/entries?updated_since=2000-01-01T00:00:00Z&limit=4",
    "/v1/entries?blog=plans-a&blog=plans-b&limit=5",
]


async def _seed(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        blogs = [await f.blog(conn, "plans-a"), await f.blog(conn, "plans-b")]
        for i in range(12):
            words = "drone over the harbour" if i % 2 else "talks in the capital"
            await f.entry(conn, blogs[i % 2], f.at(0) - timedelta(minutes=i), headline=f"Update {i}: {words}")
    finally:
        await conn.close()


@pytest.fixture
async def clients(db_dsn: str) -> AsyncIterator[tuple[AsyncTestClient, AsyncTestClient]]:  # type: ignore[type-arg]
    await _seed(db_dsn)
    settings = Settings(secret="api-test-secret", anonymous_rate=100_000, entry_cache_mb=0)
    without = Settings(secret="api-test-secret", anonymous_rate=100_000, entry_cache_mb=0, plan_pool_max=0)
    async with (
        AsyncTestClient(create_app(settings, db_dsn)) as planned,
        AsyncTestClient(create_app(without, db_dsn)) as plain,
    ):
        yield planned, plain


async def test_such_pages_are_answered_from_the_custom_plan_pool_as_the_request_pool_answers_them(
    clients: tuple[AsyncTestClient, AsyncTestClient],  # type: ignore[type-arg]
) -> None:
    planned, plain = clients
    assert plain.app.state.plan_pool is None
    for path in PAGES:
        there, elsewhere = await planned.get(path), await plain.get(path)
        assert there.status_code == elsewhere.status_code == 200, (path, there.text)
        assert there.json() == elsewhere.json(), path
        assert there.json()["data"], path
    pool = planned.app.state.plan_pool
    assert pool.get_size() >= 1  # opened for those pages: the pool starts empty
    samples = await scrape(planned)
    assert samples[("sitrep_db_plan_pool_connections", (("state", "open"),))] == pool.get_size()
    assert samples[("sitrep_db_plan_pool_connections", (("state", "max"),))] == 4


async def test_a_page_that_would_wait_for_a_busy_custom_plan_pool_takes_the_request_pool(
    clients: tuple[AsyncTestClient, AsyncTestClient],  # type: ignore[type-arg]
) -> None:
    planned, _ = clients
    pool = planned.app.state.plan_pool
    held: list[asyncpg.Connection] = []

    async def take() -> None:  # on the app's own event loop, as handlers would
        held.extend([await pool.acquire() for _ in range(pool.get_max_size())])

    async def give_back() -> None:
        for conn in held:
            await pool.release(conn)

    planned.blocking_portal.call(take)
    try:
        started = time.monotonic()
        response = await planned.get("/v1/entries?q=drone&limit=3")
        assert response.status_code == 200
        assert len(response.json()["data"]) == 3
        assert time.monotonic() - started < 1.5  # no wait for the pool's 2 s acquire timeout
        assert pool.get_idle_size() == 0
        assert pool.get_size() == pool.get_max_size()
    finally:
        planned.blocking_portal.call(give_back)
