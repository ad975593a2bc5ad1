"""Idempotency-Key: a retried write returns the first answer instead of writing again.

The key, a hash of the request and the answer are stored in the write's own transaction,
so a key is remembered exactly when its write committed. Two requests racing with one key
serialise on the key's row: the loser rolls back its write and answers what the winner
stored. The same key with a different request is a Conflict.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

import asyncpg
import msgspec

from db.errors import Conflict
from db.sql import query


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    status: int
    body: bytes
    location: str | None = None
    replayed: bool = False


class _Raced(Exception):
    """Another request stored this key first; retry to answer what it stored."""


def request_hash(method: str, path: str, body: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


async def _lookup(conn: asyncpg.Connection, caller: str, key: str, hashed: bytes) -> Answer | None:
    row = await conn.fetchrow(query("idempotency_lookup"), caller, key)
    if row is None:
        return None
    if bytes(row["request_hash"]) != hashed:
        raise Conflict("this Idempotency-Key was used for a different request; use a new key", field="Idempotency-Key")
    return Answer(status=row["status"], body=bytes(row["body"]), location=row["location"], replayed=True)


async def once(
    conn: asyncpg.Connection,
    *,
    caller: str,
    key: str | None,
    hashed: bytes,
    work: Callable[[asyncpg.Connection], Awaitable[Answer]],
) -> Answer:
    """Run `work` in one transaction, or answer what it answered the first time under `key`."""
    for _ in range(3):
        try:
            async with conn.transaction():
                if key is not None:
                    prior = await _lookup(conn, caller, key, hashed)
                    if prior is not None:
                        return prior
                answer = await work(conn)
                if key is not None:
                    stored = await conn.fetchval(
                        query("idempotency_remember"), caller, key, hashed, answer.status, answer.body, answer.location
                    )
                    if stored is None:
                        raise _Raced
                    await conn.execute(query("idempotency_prune"))  # keyed writes clean up after themselves
                return answer
        except _Raced:
            continue
    raise Conflict("this Idempotency-Key is in use by a concurrent request; retry", field="Idempotency-Key")
