"""db/replicas.py against a real standby: what it has replayed, its lag, rotation, refusal of a
server that is not a standby of this primary; and the caches' rule for snapshots older than
what they heard (db/refs.py `keep_token`), which a replica behind the hub produces."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from db.pool import GuardedPool, create_pool
from db.refs import Refs
from db.replicas import Replicas
from tests.standby import Replicated, last_seq, replicated

__all__ = ["replicated"]


async def _pool(url: str) -> GuardedPool:
    return await create_pool(url, min_size=0, max_size=2)


@pytest.fixture
async def replicas(replicated: Replicated) -> AsyncIterator[Replicas]:
    found = Replicas(replicated.dsn, [replicated.replica_dsn], pool_factory=_pool, max_lag=0.5, wait=1.0)
    await found.start()
    try:
        yield found
    finally:
        await found.aclose()


async def _write(dsn: str, headline: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO entries (blog_id, published_at, headline, body)"
            " SELECT id, now(), $1, ARRAY['x'] FROM blogs WHERE slug = 'day-1'",
            headline,
        )
    finally:
        await conn.close()
    return await last_seq(dsn)


async def _until(condition: object, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.02)


async def test_a_standby_is_in_rotation_and_says_what_it_has_replayed(
    replicated: Replicated, replicas: Replicas
) -> None:
    replica = replicas.replicas[0]
    assert replica.in_rotation
    assert replica.state == "in rotation"
    seq = await _write(replicated.dsn, "Replayed")
    chosen = await replicas.choose(seq)  # waits (up to 1 s here) for the replay
    assert chosen is replica
    assert replica.seq >= seq
    await _until(lambda: replica.lag_bytes == 0)
    assert replica.lag_seconds == 0
    assert replicas.describe()[0]["replayed_seq"] >= seq
    assert await replicas.choose(10**12) is None  # a seq nobody reaches: after the wait, the primary


async def test_paused_replay_takes_it_out_of_rotation_until_it_catches_up(
    replicated: Replicated, replicas: Replicas
) -> None:
    replica = replicas.replicas[0]
    standby = await asyncpg.connect(replicated.replica_dsn)
    try:
        await standby.execute("SELECT pg_wal_replay_pause()")
        seq = await _write(replicated.dsn, "Not replayed yet")
        assert await replicas.choose(seq) is None  # waited its second: nobody has it
        await _until(lambda: replica.lag_bytes is not None and replica.lag_bytes > 0)
        await _until(lambda: not replica.in_rotation)  # behind by more than max_lag
        assert replica.state == "behind"
        assert replica.lag_seconds is not None
        assert replica.lag_seconds > 0.5
        assert replicas.pick(0) is None
        await standby.execute("SELECT pg_wal_replay_resume()")
        await _until(lambda: replica.in_rotation)
        assert replica.seq >= seq
    finally:
        await standby.execute("SELECT pg_wal_replay_resume()")
        await standby.close()


async def test_a_server_that_is_not_a_standby_of_the_primary_is_refused(replicated: Replicated, db_dsn: str) -> None:
    # the suite's own server is another cluster: another system identifier
    other = Replicas(replicated.dsn, [db_dsn], pool_factory=_pool, wait=0.2)
    await other.start()
    try:
        await _until(lambda: other.replicas[0].state != "starting")
        assert other.replicas[0].state == "refused"
        assert not other.replicas[0].in_rotation
        assert await other.choose(0) is None
    finally:
        await other.aclose()


async def test_an_unreachable_replica_is_out_of_rotation(replicated: Replicated) -> None:
    gone = replicated.replica_dsn.replace(str(replicated.standby.port), "1")  # nothing listens on port 1
    other = Replicas(replicated.dsn, [gone], pool_factory=_pool, wait=0.2)
    await other.start()
    try:
        await _until(lambda: other.replicas[0].state != "starting")
        assert other.replicas[0].state == "unreachable"
        assert await other.choose(0) is None
    finally:
        await other.aclose()


async def test_caches_keep_nothing_from_a_snapshot_older_than_what_they_heard(conn: asyncpg.Connection) -> None:
    blog_id = await conn.fetchval(
        "INSERT INTO blogs (slug, title, published_at) VALUES ('b-old', 'Old title', now()) RETURNING id"
    )
    refs = Refs()
    refs.set_live(True, 10)  # the hub has passed on every change up to seq 10
    # a page read on a replica that has replayed only up to 5: its rows may predate a change the
    # hub already dropped, so they serve that page and are not kept
    seen = await refs.view(conn, 5, [blog_id], [], [], [])
    assert seen.blogs[blog_id].title == "Old title"
    assert len(refs) == 0
    # a snapshot as new as what the cache heard fills it
    await refs.view(conn, 10, [blog_id], [], [], [])
    assert blog_id in refs.blogs
    assert refs.keep_token(9) == -1
    assert refs.keep_token(10) == refs.generation
