from __future__ import annotations

from pathlib import Path

import asyncpg

from db import embedded
from db.migrate import migrate
from tests.conftest import embedded_data_dir


async def test_the_embedded_server_starts_migrates_and_keeps_data_across_restarts() -> None:
    with embedded_data_dir() as data_dir:
        await _start_twice(data_dir)


async def _start_twice(tmp_path: Path) -> None:
    dsn, server = embedded.start(tmp_path)
    try:
        conn = await asyncpg.connect(dsn)
        await migrate(conn)
        await conn.execute("INSERT INTO actors (slug, name, kind) VALUES ('kept', 'Kept', 'person')")
        await conn.close()
    finally:
        embedded.stop(server)
    dsn, server = embedded.start(tmp_path)
    try:
        conn = await asyncpg.connect(dsn)
        assert await conn.fetchval("SELECT name FROM actors WHERE slug = 'kept'") == "Kept"
        assert await migrate(conn) == []
        await conn.close()
    finally:
        embedded.stop(server)
