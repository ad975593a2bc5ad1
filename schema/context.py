"""The per-request context: one database connection, the caller, cursors and batch loaders.

Resolvers reach the database only through `Db.run`, which takes a lock: loaders of one level
fire together, and one asyncpg connection runs one statement at a time. Holding a single
connection for the request keeps the cost of a query to one pool checkout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

import asyncpg
from strawberry.dataloader import DataLoader

from db.page import Cursors

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


class Db:
    """A connection borrowed from the pool on first use (or given, in tests) and a lock."""

    def __init__(self, *, pool: asyncpg.Pool | None = None, conn: asyncpg.Connection | None = None) -> None:
        self._pool = pool
        self._conn: Any = conn  # a Connection, or the pool's proxy of one
        self._owned = False
        self._lock = asyncio.Lock()

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        async with self._lock:
            if self._conn is None:
                assert self._pool is not None
                self._conn = await self._pool.acquire()
                self._owned = True
            return await fn(self._conn, *args)

    async def release(self) -> None:
        if self._owned and self._conn is not None and self._pool is not None:
            await self._pool.release(self._conn)
        self._conn = None
        self._owned = False


class GraphContext:
    def __init__(self, db: Db, cursors: Cursors, caller: Any = None, request: Any = None) -> None:
        self.db = db
        self.cursors = cursors
        self.caller = caller
        self.request = request
        self.cost = 0  # the estimate the rate limiter may charge
        self._loaders: dict[Hashable, DataLoader[Any, Any]] = {}

    def loader(
        self, key: Hashable, batch: Callable[[asyncpg.Connection, list[K]], Awaitable[dict[K, V]]], default: Any
    ) -> DataLoader[K, V]:
        """One DataLoader per relation (and arguments) per request: a level's keys, one statement."""
        found = self._loaders.get(key)
        if found is None:

            async def load(keys: list[K]) -> list[V]:
                got = await self.db.run(batch, keys)
                return [got.get(k, default) for k in keys]

            found = self._loaders[key] = DataLoader(load_fn=load)
        return found
