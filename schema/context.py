"""The per-request context: one database connection, the caller, cursors and batch loaders.

`provide_context` is the Litestar dependency the GraphQL controller takes it from. Resolvers
reach the database only through `Db.run`, which takes a lock: loaders of one level fire
together, and one asyncpg connection runs one statement at a time. The connection is taken
from the pool on first use (a query refused by the limits never takes one) and held for the
rest of the request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
from litestar import Request
from strawberry.dataloader import DataLoader

from api import routing
from db import graph
from db.errors import UNAVAILABLE, Unavailable
from db.page import Cursors
from db.pool import GuardedPool
from db.replicas import Replica

ACQUIRE_TIMEOUT = 2.0  # seconds: an unreachable database is SERVICE_UNAVAILABLE, never a hang

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


class Db:
    """A connection borrowed from the pool on first use (or given, in tests) and a lock."""

    def __init__(
        self, *, pool: asyncpg.Pool | None = None, conn: asyncpg.Connection | None = None, state: Any = None
    ) -> None:
        self._pool = pool
        self._conn: Any = conn  # a Connection, or the pool's proxy of one
        self._owned = False
        self._closed = False
        self._lock = asyncio.Lock()
        # a query (execute sets `reading`) of an HTTP request may read a replica (api/routing.py)
        self._state = state
        self.reading = False
        self._from: Any = pool  # the pool the connection came from
        self._replica: Replica | None = None

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        async with self._lock:
            if self._conn is None:
                assert self._pool is not None
                if self._closed:
                    raise Unavailable("the request has ended")
                await self._acquire()
            try:
                return await fn(self._conn, *args)
            except BaseException as exc:
                routing.replica_failed(self._replica, exc)  # the request is answered again from the primary
                if isinstance(self._from, GuardedPool):
                    self._from.failed(exc, self._conn)  # a connection-level failure opens the circuit (db/pool.py)
                raise

    async def _acquire(self) -> None:
        pool: Any = self._pool
        if self.reading and self._state is not None:
            pool, self._replica = await routing.read_pool(self._state)
        try:
            self._conn = await pool.acquire(timeout=ACQUIRE_TIMEOUT)
        except UNAVAILABLE as exc:
            if self._replica is None:
                raise Unavailable(f"the database cannot be reached ({type(exc).__name__})") from exc
            self._replica.failed(exc)  # that replica cannot serve: the primary can
            self._replica, pool = None, self._pool
            try:
                self._conn = await pool.acquire(timeout=ACQUIRE_TIMEOUT)
            except UNAVAILABLE as again:
                raise Unavailable(f"the database cannot be reached ({type(again).__name__})") from again
        self._from = pool
        self._owned = True

    async def release(self) -> None:
        if self._owned and self._conn is not None and self._from is not None:
            await self._from.release(self._conn)
        self._conn = None
        self._owned = False

    async def close(self) -> None:
        """Give the connection back for good, once no statement is running on it: a resolver
        still going after its request ended (a sibling of one that failed) must not take
        another one, which nobody would give back."""
        self._closed = True
        async with self._lock:
            await self.release()


class GraphContext:
    def __init__(self, db: Db, cursors: Cursors, caller: Any = None, request: Any = None) -> None:
        self.db = db
        self.cursors = cursors
        self.caller = caller
        self.request = request
        self.cost = 0  # the estimate the rate limiter may charge
        self.replayed = False  # a mutation answered from its idempotency key (schema/mutations.py)
        self.event_seq: int | None = None  # a subscription's current event: its change seq
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

    async def by_id(self, table: str, id: int) -> Any:
        """One row of `table` by id (None if there is none); the lookups of a level share a statement."""

        async def batch(conn: asyncpg.Connection, ids: list[int]) -> dict[int, Any]:
            return await graph.by_ids(conn, table, ids)

        return await self.loader(("by_id", table), batch, None).load(id)


def cursors_of(state: Any) -> Cursors:
    """The app's cursor codec (settings.secret): GraphQL's cursors are REST's tokens."""
    found: Cursors | None = state.get("graphql_cursors")
    if found is None:
        found = state.graphql_cursors = Cursors(state.settings.secret)
    return found


@asynccontextmanager
async def graph_context(request: Request[Any, Any, Any]) -> AsyncIterator[GraphContext]:
    """The request's context, its connection given back afterwards (as api/connection.py's
    `connection`: a generator dependency's resolution costs about as much as a cached page)."""
    async with _context(request) as ctx:
        yield ctx


async def provide_context(request: Request[Any, Any, Any]) -> AsyncIterator[GraphContext]:
    """A Litestar dependency: the request's context, its connection given back afterwards."""
    async with _context(request) as ctx:
        yield ctx


@asynccontextmanager
async def _context(request: Request[Any, Any, Any]) -> AsyncIterator[GraphContext]:
    ctx = GraphContext(
        Db(pool=request.app.state.pool, state=request.app.state),
        cursors_of(request.app.state),
        caller=getattr(request.state, "caller", None),
        request=request,
    )
    try:
        yield ctx
    finally:
        await ctx.db.close()
