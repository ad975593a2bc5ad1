"""The custom-plan pool: pages whose plan depends on their values, planned for them in one statement.

A prepared statement that PostgreSQL has run five times may switch to a generic plan, which on
a skewed value (a common search word, the last hour of updates) walked a million rows. Pages
that need their own plan (db/where.needs_custom_plan) used to get it from a transaction of
their own (`BEGIN; SET LOCAL plan_cache_mode = force_custom_plan`, then COMMIT: two more round
trips); on a connection of a pool whose sessions plan every statement for its values
(`create_pool(custom_plans=True)`), they are one statement.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from db import entries
from db.filters import EntryFilter
from db.page import Page
from db.pool import GuardedPool, close_pool, create_pool, plans_custom
from db.refs import Refs
from tests.db import factories as f


@pytest.fixture
async def pools(db_dsn: str) -> AsyncIterator[tuple[GuardedPool, GuardedPool]]:
    plain = await create_pool(db_dsn, min_size=0, max_size=1)
    custom = await create_pool(db_dsn, min_size=0, max_size=1, custom_plans=True)
    try:
        yield plain, custom
    finally:
        await close_pool(plain)
        await close_pool(custom)


async def _seed(conn: asyncpg.Connection) -> None:
    blog = await f.blog(conn, "plans")
    for i in range(30):
        words = "drone strike on the harbour" if i % 3 == 0 else "talks in the capital"
        await f.entry(conn, blog, f.at(0) - timedelta(minutes=i), headline=f"Update {i}: {words}")


def _logged(conn: asyncpg.Connection) -> list[str]:
    statements: list[str] = []
    conn.add_query_logger(lambda record: statements.append(record.query))
    return statements


async def test_its_sessions_plan_every_statement_for_its_values(
    conn: asyncpg.Connection, pools: tuple[GuardedPool, GuardedPool]
) -> None:
    plain, custom = pools
    async with custom.acquire() as proxy:
        assert plans_custom(proxy)
        assert await proxy.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
    async with plain.acquire() as proxy:
        assert not plans_custom(proxy)
        assert await proxy.fetchval("SHOW plan_cache_mode") == "auto"


async def test_a_search_page_is_one_statement_there_and_a_transaction_elsewhere_with_the_same_rows(
    conn: asyncpg.Connection, pools: tuple[GuardedPool, GuardedPool]
) -> None:
    await _seed(conn)
    plain, custom = pools
    search = EntryFilter(q="drone")
    async with custom.acquire() as proxy:
        sent = _logged(proxy)
        there = await entries.list_linked(proxy, Refs(), search, page=Page(limit=5))
    async with plain.acquire() as proxy:
        sent_elsewhere = _logged(proxy)
        elsewhere = await entries.list_linked(proxy, Refs(), search, page=Page(limit=5))
    assert [e.id for e in there.rows] == [e.id for e in elsewhere.rows]
    assert len(there.rows) == 5
    assert all("drone" in e.headline for e in there.rows)
    assert not any(s.startswith(("BEGIN", "SET", "COMMIT")) for s in sent), sent
    assert any(s.startswith("BEGIN") and "force_custom_plan" in s for s in sent_elsewhere), sent_elsewhere
    assert "COMMIT" in sent_elsewhere


async def test_a_counted_page_keeps_its_snapshot_there_without_setting_the_plan_mode(
    conn: asyncpg.Connection, pools: tuple[GuardedPool, GuardedPool]
) -> None:
    await _seed(conn)
    _, custom = pools
    async with custom.acquire() as proxy:
        sent = _logged(proxy)
        found = await entries.list_linked(proxy, Refs(), EntryFilter(q="drone"), page=Page(limit=5, count=True))
    assert found.total == 10
    assert "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" in sent, sent
    assert not any("plan_cache_mode" in s for s in sent), sent


async def test_a_statement_run_again_and_again_there_never_gets_a_generic_plan(
    conn: asyncpg.Connection, pools: tuple[GuardedPool, GuardedPool]
) -> None:
    """PostgreSQL counts the plans of each prepared statement: past five runs, `auto` takes the
    generic one when it looks no dearer (here it does); this pool's sessions never take it."""
    await _seed(conn)
    page = (
        "SELECT e.id FROM entries e WHERE e.search @@ websearch_to_tsquery('english', $1::text)"
        " ORDER BY e.published_at DESC, e.id DESC LIMIT 5"
    )
    plans = "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1"
    counted = {}
    for name, pool in zip(("plain", "custom"), pools, strict=True):
        async with pool.acquire() as proxy:
            for _ in range(8):
                assert len(await proxy.fetch(page, "drone")) == 5
            counted[name] = tuple(await proxy.fetchrow(plans, page))
    assert counted["custom"] == (0, 8)
    assert counted["plain"][0] > 0  # what the pages of the request pool would meet without SET LOCAL


async def test_pgbouncer_transaction_mode_has_no_such_pool(db_dsn: str) -> None:
    with pytest.raises(ValueError, match="transaction mode"):
        await create_pool(db_dsn, pgbouncer="transaction", custom_plans=True)
