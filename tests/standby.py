"""A primary and its streaming standby (pg_basebackup -R) on spare ports, for the replica tests.

`replicated` (session-wide) starts both in a temporary folder, migrates the primary, creates the
blog `day-1` and waits until the standby has replayed it; everything is stopped and removed at
the end of the session whatever happens. Tests share the database and write their own entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import msgspec
import pytest

from db import keys as keydb
from db import writes
from db.migrate import migrate
from db.pool import connect
from tests.faults.harness import Postgres

SECRET = "replica-test-secret"
BLOG = "day-1"


@dataclass
class Replicated:
    primary: Postgres
    standby: Postgres
    writer: dict[str, str]  # headers of a key with the write scope

    @property
    def dsn(self) -> str:
        return self.primary.dsn

    @property
    def replica_dsn(self) -> str:
        return self.standby.dsn


async def last_seq(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        seq: int = await conn.fetchval("SELECT COALESCE(max(seq), 0) FROM changes")
        return seq
    finally:
        await conn.close()


async def wait_replayed(replica_dsn: str, seq: int, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            if await last_seq(replica_dsn) >= seq:
                return
        assert time.monotonic() < deadline, f"the standby did not replay seq {seq} within {within} s"
        await asyncio.sleep(0.05)


async def _prepare(dsn: str) -> str:
    conn = await connect(dsn)
    try:
        await migrate(conn)
        blog = msgspec.convert(
            {"slug": BLOG, "title": "Day 1", "published_at": "2023-09-13T06:00:00Z"}, writes.BlogCreate
        )
        await writes.create_blog(conn, blog)
        _, token = await keydb.create_key(conn, SECRET, name="replica-writer", scopes=["read", "write"], rate=1_000_000)
        return token
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def replicated() -> Iterator[Replicated]:
    folder = Path(tempfile.mkdtemp(prefix="sitrep-replicas-"))
    folder.chmod(0o755)
    primary = Postgres(folder / "primary")
    standby: Postgres | None = None
    try:
        primary.init()
        primary.allow_replication()
        primary.start()
        token = asyncio.run(_prepare(primary.dsn))
        standby = primary.standby(folder / "standby")
        standby.start()
        asyncio.run(wait_replayed(standby.dsn, asyncio.run(last_seq(primary.dsn))))
        yield Replicated(primary, standby, {"Authorization": f"Bearer {token}"})
    finally:
        if standby is not None:
            standby.close()
        primary.close()
        shutil.rmtree(folder, ignore_errors=True)


def entry(headline: str) -> dict[str, object]:
    return {"blog": BLOG, "published_at": "2023-09-13T10:00:00Z", "headline": headline, "body": ["x"]}
