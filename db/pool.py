"""Connections: codecs every connection needs, and the pool with its circuit.

The pool fails fast when the database is down or frozen: acquiring waits at most
`acquire_timeout`, new connections `connect_timeout`. Once a connection-level failure is seen
(on acquiring, or from work done on an acquired connection), the circuit opens: every acquire
raises Unavailable at once (a 503 or SERVICE_UNAVAILABLE, no waiting on a server that does not
answer), while a background probe connects afresh every PROBE_EVERY seconds; when the database
answers again the pool's old connections are expired and the circuit closes.

A frozen server (stopped processes, a partition) fails nothing: queries just wait. So while a
connection has been out of the pool (or a request has waited for one) for longer than
STUCK_AFTER seconds, a watchdog pings the
server on a connection of its own, bounded by PING_TIMEOUT; if the ping gets no answer the
circuit opens and every connection out of the pool is ended, so the requests waiting on them
fail at once (503) instead of waiting out the freeze. A slow query with a server that answers
costs nothing but the ping.

Behind PgBouncer (`pgbouncer`, SITREP_PGBOUNCER): a server connection is this pool's only for
a transaction (`transaction` mode) or for a client connection's life (`session`). PgBouncer
refuses startup parameters it does not know, so `statement_timeout` is not sent as one: in
session mode each connection SETs it once; in transaction mode no session state survives a
transaction, so the server must hold it (PgBouncer's `connect_query` on the database entry, or
`ALTER ROLE ... SET statement_timeout`) and the pool says at startup when it does not. In
transaction mode PgBouncer 1.18 (Debian's) cannot carry named prepared statements either, so
the pool runs with asyncpg's statement cache off: every statement is unnamed, parsed and planned
with its values each time (what `db/where.needs_custom_plan` asks for comes for free). The
watchdog pings the server on `direct_dsn` (not through the pooler, whose queue could make a busy
but healthy server look frozen); the circuit's probe goes the pool's own way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import asyncpg
import msgspec
from asyncpg.pool import PoolAcquireContext

from db.errors import DATABASE_ERRORS, UNAVAILABLE, Unavailable

log = logging.getLogger("sitrep.db")
PROBE_EVERY = 0.25  # seconds between probes while the database is known down
STUCK_AFTER = 0.2  # a connection out this long: ask whether the server still answers
WATCH_EVERY = 0.1
PING_TIMEOUT = 0.4  # SELECT 1 on an idle connection of its own: a server that answers takes ~1 ms
# failures that say the server or the connection is gone, not that one statement was refused
# (a statement_timeout is class 57 too, but the server answered it: no reason to open the circuit)
_CONNECTION_LOST = tuple(c for c in UNAVAILABLE if c not in (Unavailable, asyncpg.QueryCanceledError))

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


def connection_lost(exc: BaseException) -> bool:
    """Does this failure mean the database (or the way to it) is gone, rather than one statement refused?"""
    return isinstance(exc, _CONNECTION_LOST) and not isinstance(exc, asyncpg.QueryCanceledError)


class Circuit:
    """Whether the database is known down, and the probe that finds it back (see the module doc)."""

    def __init__(self, dsn: str, probe_timeout: float, *, direct_dsn: str | None = None, **connect: Any) -> None:
        self.dsn = dsn
        self.direct_dsn = direct_dsn or dsn  # the watchdog's ping: the server itself, not a pooler
        self.connect = connect  # what connecting the pool's way needs (statement cache off behind PgBouncer)
        self.probe_timeout = probe_timeout
        self.down = False
        self.opened = 0  # times the circuit opened (for metrics and tests)
        self.closed = False  # the pool is closing: no more probes
        self._probe: asyncio.Task[None] | None = None

    def check(self) -> None:
        if self.down:
            raise Unavailable("the database is unavailable; retry shortly")

    def trip(self, pool: GuardedPool, exc: BaseException) -> None:
        if self.down or self.closed or not connection_lost(exc):
            return
        log.warning("database unreachable (%r): answering 503 until it is back", exc)
        self.down = True
        self.opened += 1
        self._probe = asyncio.get_running_loop().create_task(self._recover(pool), name="sitrep-db-probe")

    async def _recover(self, pool: GuardedPool) -> None:
        while True:
            await asyncio.sleep(PROBE_EVERY)
            try:
                conn = await asyncpg.connect(self.dsn, timeout=self.probe_timeout, **self.connect)
                try:
                    await conn.fetchval("SELECT 1", timeout=self.probe_timeout)
                finally:
                    conn.terminate()
            except DATABASE_ERRORS:
                continue
            break
        await pool.expire_connections()  # those open across the outage may be broken
        self.down = False
        log.warning("database reachable again")

    async def aclose(self) -> None:
        self.closed = True
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe


class _Acquired(PoolAcquireContext):
    """`async with pool.acquire()`: a connection-level failure of the work done inside opens the circuit."""

    __slots__ = ()

    async def __aexit__(self, *exc: object) -> None:
        if isinstance(exc[1], BaseException) and isinstance(self.pool, GuardedPool):
            self.pool.failed(exc[1], self.connection)
        await super().__aexit__(*exc)


class GuardedPool(asyncpg.Pool):
    """asyncpg's pool, with a bounded acquire and the circuit (see the module doc)."""

    circuit: Circuit
    acquire_timeout: float
    check_timeout: float  # readiness and key checks: a short bound, a frozen server is a quick 503

    held: dict[int, tuple[float, Any]]  # id(proxy) -> (when it left the pool, proxy)
    waiting: dict[asyncio.Task[Any], float]  # acquiring, since
    _interrupted: set[asyncio.Task[Any]]
    _watchdog: asyncio.Task[None] | None
    _ping: asyncpg.Connection | None

    def acquire(self, *, timeout: float | None = None) -> PoolAcquireContext:
        return _Acquired(self, timeout)

    async def _acquire(self, timeout: float | None) -> Any:  # noqa: ASYNC109 (asyncpg's signature)
        self.circuit.check()
        bounded = self.acquire_timeout if timeout is None else min(timeout, self.acquire_timeout)
        task = asyncio.current_task()
        assert task is not None
        self.waiting[task] = time.monotonic()
        try:
            proxy = await super()._acquire(bounded)  # type: ignore[misc]
        except asyncio.CancelledError:
            if task not in self._interrupted:
                raise
            self._interrupted.discard(task)  # the watchdog's doing, not the caller's: a 503
            task.uncancel()
            raise Unavailable("the database stopped answering; retry shortly") from None
        except asyncpg.PostgresError as exc:
            # refused while connecting (not accepting connections, renamed, dropped): a 503, not a 500
            self.circuit.trip(self, exc)
            raise Unavailable(f"the database refused a connection ({exc.sqlstate}); retry shortly") from exc
        except BaseException as exc:
            self.circuit.trip(self, exc)
            raise
        finally:
            self.waiting.pop(task, None)
        self.held[id(proxy)] = (time.monotonic(), proxy)
        return proxy

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:  # noqa: ASYNC109
        self.held.pop(id(connection), None)
        await super().release(connection, timeout=timeout)

    def watch(self) -> None:
        self._watchdog = asyncio.get_running_loop().create_task(self._watch(), name="sitrep-db-watchdog")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY)
            now = time.monotonic()
            out = [since for since, _ in self.held.values()] + list(self.waiting.values())
            if self.circuit.down or not any(now - since > STUCK_AFTER for since in out):
                continue
            if await self._answers():
                continue
            stuck = [proxy for _, proxy in self.held.values()]
            self.circuit.trip(self, TimeoutError(f"the database did not answer a ping within {PING_TIMEOUT} s"))
            for proxy in stuck:  # the requests waiting on these fail now, as 503s
                with contextlib.suppress(Exception):
                    proxy.terminate()
            for task in list(self.waiting):  # and so do those waiting for a connection
                self._interrupted.add(task)
                task.cancel()

    async def _answers(self) -> bool:
        try:
            async with asyncio.timeout(PING_TIMEOUT):
                if self._ping is None or self._ping.is_closed():
                    self._ping = await asyncpg.connect(self.circuit.direct_dsn)
                await self._ping.fetchval("SELECT 1")
        except DATABASE_ERRORS:
            if self._ping is not None:
                self._ping.terminate()
                self._ping = None
            return False
        return True

    def failed(self, exc: BaseException, conn: Any = None) -> None:
        """Work on `conn` failed with `exc`: if the connection is lost, drop it (a graceful release
        would wait on a server that does not answer) and open the circuit."""
        if connection_lost(exc):
            if conn is not None:
                # a proxy the watchdog already ended says so by raising (it is detached): nothing to do
                with contextlib.suppress(asyncpg.InterfaceError):
                    if not conn.is_closed():
                        conn.terminate()
            self.circuit.trip(self, exc)

    async def close(self) -> None:
        await self.circuit.aclose()
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self._ping is not None:
            self._ping.terminate()
        await super().close()


class CustomPlanConnection(asyncpg.Connection):
    """A connection whose session plans every statement for its values (create_pool(custom_plans=True))."""

    custom_plans = True


def plans_custom(conn: Any) -> bool:
    """Whether `conn` (a connection or a pool's proxy of one) plans every statement for its values."""
    return getattr(conn, "custom_plans", False) is True


async def create_pool(
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    statement_timeout_ms: int = 5000,
    connect_timeout: float = 2.0,
    acquire_timeout: float = 2.0,
    check_timeout: float = 1.0,
    pgbouncer: str = "off",
    direct_dsn: str | None = None,
    custom_plans: bool = False,
) -> GuardedPool:
    """The request pool on `dsn`; `pgbouncer` says what sits in front of PostgreSQL (module doc).

    `custom_plans`: every statement on these connections is planned for its values
    (`plan_cache_mode = force_custom_plan` for the session; a `CustomPlanConnection` says so).
    Not with PgBouncer in transaction mode, whose server sessions are not the client's."""
    server_settings = {"application_name": "sitrep"}
    init = init_connection
    connect: dict[str, Any] = {}
    if custom_plans and pgbouncer == "transaction":
        raise ValueError("a custom-plan pool needs session settings: not through PgBouncer's transaction mode")
    if pgbouncer == "off":
        server_settings["statement_timeout"] = str(statement_timeout_ms)
        if custom_plans:
            server_settings["plan_cache_mode"] = "force_custom_plan"
    elif pgbouncer == "session":

        async def init_session(conn: asyncpg.Connection) -> None:
            await init_connection(conn)
            await conn.execute(f"SET statement_timeout = {int(statement_timeout_ms)}")
            if custom_plans:
                await conn.execute("SET plan_cache_mode = force_custom_plan")

        init = init_session
    elif pgbouncer == "transaction":
        connect["statement_cache_size"] = 0
    else:
        raise ValueError(f"pgbouncer must be off, session or transaction, not {pgbouncer!r}")
    pool = GuardedPool(
        dsn,
        connection_class=CustomPlanConnection if custom_plans else asyncpg.Connection,
        record_class=asyncpg.Record,
        min_size=min_size,
        max_size=max_size,
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        init=init,
        reset=keep_session,
        timeout=connect_timeout,
        command_timeout=statement_timeout_ms / 1000 + 1,
        server_settings=server_settings,
        **connect,
    )
    pool.circuit = Circuit(dsn, check_timeout, direct_dsn=direct_dsn, **connect)
    pool.acquire_timeout = acquire_timeout
    pool.check_timeout = check_timeout
    pool.held = {}
    pool.waiting = {}
    pool._interrupted = set()
    pool._watchdog = None
    pool._ping = None
    await pool
    pool.watch()
    if pgbouncer == "transaction":
        await _check_statement_timeout(pool, statement_timeout_ms)
    return pool


async def _check_statement_timeout(pool: GuardedPool, statement_timeout_ms: int) -> None:
    """Transaction mode: say so when the server does not bound statements as SITREP_STATEMENT_TIMEOUT_MS asks."""
    try:
        async with pool.acquire() as conn:
            held = await conn.fetchval(
                "SELECT setting::int FROM pg_settings WHERE name = 'statement_timeout'", timeout=pool.check_timeout
            )
    except DATABASE_ERRORS:
        return  # the database is not there yet: requests will say so
    if not held or held > statement_timeout_ms:
        log.warning(
            "behind PgBouncer in transaction mode the server's statement_timeout is %s ms, not %d:"
            " set it on PgBouncer's database entry (connect_query = 'SET statement_timeout = %d')"
            " or on the role (ALTER ROLE ... SET statement_timeout = %d)",
            held,
            statement_timeout_ms,
            statement_timeout_ms,
            statement_timeout_ms,
        )


CLOSE_SECONDS = 10.0


async def close_pool(pool: asyncpg.Pool | None) -> None:
    """Close gracefully, but never wait on a connection that is not given back (a stream its
    client still holds, a handler stuck on a frozen server) for more than CLOSE_SECONDS: then
    end every connection, so that shutting down always ends."""
    if pool is None:
        return
    try:
        async with asyncio.timeout(CLOSE_SECONDS):
            await pool.close()
    except TimeoutError:
        pool.terminate()
