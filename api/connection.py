"""A pooled connection per request, as a Litestar dependency (`NamedDependency[Connection]`).

An unreachable database fails fast: acquiring waits at most ACQUIRE_TIMEOUT seconds (or the pool's
bound, and not at all while its circuit is open: db/pool.py), then the request is a 503 with
Retry-After (api.errors), never a hang.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
from litestar import Request

from api import routing
from db.errors import UNAVAILABLE, Unavailable
from db.pool import GuardedPool

ACQUIRE_TIMEOUT = 2.0
log = logging.getLogger("sitrep.api")


async def provide_connection(request: Request[Any, Any, Any]) -> AsyncIterator[asyncpg.Connection]:
    async with connection(request) as conn:
        yield conn


@asynccontextmanager
async def connection(
    request: Request[Any, Any, Any], *, primary: bool = False, custom_plan: bool = False
) -> AsyncIterator[asyncpg.Connection]:
    """The same, as a context manager: for the hottest handler, whose dependency resolution
    (a generator, a cleanup group, an exit stack per request) cost about as much as its query.

    A read may get a replica's connection (api/routing.py); `primary`: never (exports).
    `custom_plan`: the page's plan depends on its values (db/where.needs_custom_plan): on the
    primary, a connection of the custom-plan pool when one is free, whose statements are planned
    for their values with no transaction around them (otherwise db/where.read_snapshot sets it
    for a transaction: two more round trips; a q= page under wrk -c16 went from 585 to 678 req/s
    with 4 such connections, bench/RESULTS.md)."""
    state = request.app.state
    pool, replica = await routing.read_pool(state, primary=primary)
    if replica is None:
        pool = _primary(state, custom_plan)
    try:
        conn = await pool.acquire(timeout=ACQUIRE_TIMEOUT)
    except UNAVAILABLE as exc:
        if replica is None:
            raise Unavailable(f"the database cannot be reached ({type(exc).__name__}); retry shortly") from exc
        replica.failed(exc)  # that replica cannot serve: the primary can
        pool, replica = _primary(state, custom_plan), None
        try:
            conn = await pool.acquire(timeout=ACQUIRE_TIMEOUT)
        except UNAVAILABLE as again:
            raise Unavailable(f"the database cannot be reached ({type(again).__name__}); retry shortly") from again
    try:
        yield cast(asyncpg.Connection, conn)  # a pool proxy: same interface
    except BaseException as exc:
        routing.replica_failed(replica, exc)  # a replica's failure: answer again from the primary
        pool.failed(exc, conn)  # a connection-level failure opens that pool's circuit (db/pool.py)
        raise
    finally:
        try:
            await pool.release(conn)
        except Exception as exc:
            # a request cancelled mid-query leaves the connection busy; asyncpg has closed it
            # already, and the caller's answer (or its absence) must not turn into a 500
            log.warning("a pooled connection could not be reset and was closed: %r", exc)


def _primary(state: Any, custom_plan: bool) -> GuardedPool:
    """The primary's pool for this page: the custom-plan pool if the page wants it and it can give
    a connection now (one idle, or room to open one), else the request pool: when all are busy
    the page takes a transaction there rather than waiting."""
    plans: GuardedPool | None = state.get("plan_pool") if custom_plan else None
    if plans is not None and (plans.get_idle_size() > 0 or plans.get_size() < plans.get_max_size()):
        return plans
    request_pool: GuardedPool = state.pool
    return request_pool
