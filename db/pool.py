"""Connections: codecs every connection needs, and the pool."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import msgspec

_json_encode = msgspec.json.encode
_json_decode = msgspec.json.decode


async def init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=lambda v: _json_encode(v).decode(),
        decoder=_json_decode,
        format="text",
    )
    await conn.set_type_codec(
        "json",
        schema="pg_catalog",
        encoder=lambda v: _json_encode(v).decode(),
        decoder=_json_decode,
        format="text",
    )


async def keep_session(conn: asyncpg.Connection) -> None:
    """What a connection needs on its way back to the pool: nothing more than asyncpg's own step.

    Before this, asyncpg rolls back any transaction left open and drops listeners. Its default
    reset then runs `RESET ALL; CLOSE ALL; UNLISTEN *; pg_advisory_unlock_all()`, one more round
    trip per request, undoing what this code never leaves on a pooled connection: settings are
    `SET LOCAL` (gone at the transaction's end), cursors live in transactions, LISTEN and
    session advisory locks use connections of their own. Prepared statements are kept either way.
    """
    return


async def connect(dsn: str, **kwargs: Any) -> asyncpg.Connection:
    conn: asyncpg.Connection = await asyncpg.connect(dsn, **kwargs)
    await init_connection(conn)
    return conn


async def create_pool(
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    statement_timeout_ms: int = 5000,
    connect_timeout: float = 5.0,
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=init_connection,
        reset=keep_session,
        timeout=connect_timeout,
        command_timeout=statement_timeout_ms / 1000 + 1,
        server_settings={
            "statement_timeout": str(statement_timeout_ms),
            "application_name": "sitrep",
        },
    )
    assert pool is not None
    return pool


CLOSE_SECONDS = 10.0


async def close_pool(pool: asyncpg.Pool) -> None:
    """Close gracefully, but never wait on a connection that is not given back (a stream its
    client still holds, a handler stuck on a frozen server) for more than CLOSE_SECONDS: then
    end every connection, so that shutting down always ends."""
    try:
        async with asyncio.timeout(CLOSE_SECONDS):
            await pool.close()
    except TimeoutError:
        pool.terminate()
