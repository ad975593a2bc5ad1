"""Streaming replicas of the primary that reads may use, each watched for how far it has replayed.

Each replica (DATABASE_REPLICA_URLS) has a pool of its own (a GuardedPool: its circuit opens
and closes apart from the primary's) and a monitor: a connection of its own that every
POLL_EVERY seconds, or at once when a read is waiting for it, reads

- the change-log seq the replica has replayed (`max(seq)` of `changes` there: seqs become
  visible in commit order on the primary, and a standby replays commits in that same order,
  so everything up to this seq is visible on the replica and nothing above it is);
- its replay position (`pg_last_wal_replay_lsn()`), against the primary's write position
  (`pg_current_wal_lsn()`, read by one monitor of the primary): the lag in bytes, and in
  seconds as how long ago the primary first reported WAL the replica has not yet replayed
  (0 when it has replayed everything; an idle primary does not make a replica look late).

A replica is in rotation while it answers, is a standby (`pg_is_in_recovery()`) of this very
primary (same system identifier; any other server is refused and never used), its pool's
circuit is closed, and it is no more than `max_lag` seconds behind; one that fell out for lag
comes back once it is within half of that. `choose(min_seq)` gives an in-rotation replica that
has replayed at least `min_seq`, waiting up to `wait` seconds for one (asking the monitors to
poll at once), else None: the caller reads the primary.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import asyncpg

from db.errors import DATABASE_ERRORS
from db.pool import GuardedPool, close_pool, connect, connection_lost

log = logging.getLogger("sitrep.replicas")
POLL_EVERY = 0.1  # seconds between two looks at a replica (and at the primary's position)
EAGER_POLL = 0.002  # at least this long between two looks asked for by waiting reads
RETRY_EVERY = 1.0  # seconds between two attempts to reach an unreachable or refused replica

_IDENTITY = "SELECT system_identifier FROM pg_control_system()"
_PRIMARY = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"
_REPLICA = (
    "SELECT pg_is_in_recovery() AS standby,"
    " pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint AS position,"
    " (SELECT COALESCE(max(seq), 0) FROM changes) AS seq"
)

_LOST: tuple[type[BaseException], ...] = (*DATABASE_ERRORS, TimeoutError, OSError)
PoolFactory = Callable[[str], Awaitable[GuardedPool]]


def display_name(dsn: str) -> str:
    """host:port/database, without user or password (for logs, /ready and metric labels)."""
    parts = urlsplit(dsn)
    host = parts.hostname or "localhost"
    port = parts.port or 5432
    return f"{host}:{port}{parts.path or '/'}"


class Replica:
    def __init__(self, owner: Replicas, dsn: str) -> None:
        self.owner = owner
        self.dsn = dsn
        self.name = display_name(dsn)
        self.pool: GuardedPool | None = None
        self.state = "starting"  # starting, in rotation, behind, unreachable, refused
        self.in_rotation = False
        self.seq = 0  # change-log seq replayed
        self.position: int | None = None  # replay position, bytes of WAL
        self.lag_bytes: int | None = None
        self.lag_seconds: float | None = None
        self.reads = 0  # request reads routed here
        self.log_reads = 0  # reads of the change log by the live hub
        self.failures = 0  # reads that failed here and went to the primary
        self.wanted = asyncio.Event()  # a read waits: look now
        # (when the primary first reported it, position) for WAL not yet replayed here
        self.unreplayed: deque[tuple[float, int]] = deque(maxlen=100_000)
        self._task: asyncio.Task[None] | None = None

    def describe(self) -> dict[str, object]:
        return {
            "replica": self.name,
            "state": self.state,
            "in_rotation": self.in_rotation,
            "lag_bytes": self.lag_bytes,
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
            "replayed_seq": self.seq,
        }

    def failed(self, exc: BaseException) -> None:
        """A read here failed with `exc`: if the replica is gone, out of rotation until its
        monitor finds it back (its pool's circuit, opened by the same failure, says when)."""
        self.failures += 1
        if connection_lost(exc) or isinstance(exc, TimeoutError):
            self._leave("unreachable")

    def _leave(self, state: str) -> None:
        if self.in_rotation:
            log.warning("replica %s leaves rotation (%s)", self.name, state)
        self.in_rotation = False
        self.state = state

    def _observe(self, standby: bool, position: int, seq: int) -> None:
        now = time.monotonic()
        if not standby:
            self._leave("refused")
            log.error("replica %s is not a standby (promoted?): not used", self.name)
            return
        self.position, self.seq = position, seq
        primary = self.owner.primary_position
        self.lag_bytes = None if primary is None else max(0, primary - position)
        unreplayed = self.unreplayed
        while unreplayed and unreplayed[0][1] <= position:
            unreplayed.popleft()
        self.lag_seconds = now - unreplayed[0][0] if unreplayed else 0.0
        max_lag = self.owner.max_lag
        circuit_open = self.pool is not None and self.pool.circuit.down
        if circuit_open:
            self._leave("unreachable")
        elif self.lag_seconds > max_lag:
            self._leave("behind")
        elif self.in_rotation or self.state == "starting" or self.lag_seconds <= max_lag / 2:
            if not self.in_rotation and self.state != "starting":
                log.warning("replica %s back in rotation", self.name)
            self.in_rotation = True
            self.state = "in rotation"

    async def _watch(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await connect(
                    self.dsn,
                    timeout=self.owner.check_timeout,
                    server_settings={"application_name": "sitrep-replica-monitor"},
                )
                identity = await conn.fetchval(_IDENTITY, timeout=self.owner.check_timeout)
                if self.owner.identity is not None and identity != self.owner.identity:
                    self._leave("refused")
                    log.error(
                        "replica %s is not a standby of the primary (system identifier %s, the primary's %s): not used",
                        self.name,
                        identity,
                        self.owner.identity,
                    )
                else:
                    while True:
                        row = await conn.fetchrow(_REPLICA, timeout=self.owner.check_timeout)
                        assert row is not None
                        self._observe(row["standby"], row["position"], row["seq"])
                        self.owner.ticked()
                        if self.state == "refused":
                            break
                        await self._pause()
            except asyncio.CancelledError:
                raise
            except _LOST as exc:
                if self.state != "unreachable":
                    log.warning("replica %s unreachable (%r)", self.name, exc)
                self._leave("unreachable")
                self.lag_seconds = self.lag_bytes = None
                self.owner.ticked()
            finally:
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(RETRY_EVERY if self.state == "refused" else POLL_EVERY)

    async def _pause(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wanted.wait(), POLL_EVERY)
        if self.wanted.is_set():
            self.wanted.clear()
            await asyncio.sleep(EAGER_POLL)


class Replicas:
    """Every replica of one primary, their monitors and the choice of one for a read."""

    def __init__(
        self,
        primary_dsn: str,
        urls: tuple[str, ...] | list[str],
        *,
        pool_factory: PoolFactory,
        max_lag: float = 5.0,
        wait: float = 0.05,
        check_timeout: float = 1.0,
    ) -> None:
        self.primary_dsn = primary_dsn
        self.pool_factory = pool_factory
        self.max_lag = max_lag
        self.wait = wait
        self.check_timeout = check_timeout
        self.replicas = [Replica(self, url) for url in urls]
        self.identity: int | None = None  # the primary's system identifier
        self.primary_position: int | None = None
        self._tick = asyncio.Event()
        self._turn = itertools.count()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            conn = await connect(self.primary_dsn, timeout=self.check_timeout)
            try:
                self.identity = await conn.fetchval(_IDENTITY, timeout=self.check_timeout)
            finally:
                conn.terminate()
        except DATABASE_ERRORS as exc:  # the primary's own checks will say so; refuse nothing blindly
            log.warning("could not read the primary's system identifier (%r)", exc)
        for replica in self.replicas:
            replica.pool = await self.pool_factory(replica.dsn)
            replica._task = asyncio.create_task(replica._watch(), name=f"sitrep-replica-{replica.name}")
        self._task = asyncio.create_task(self._watch_primary(), name="sitrep-replica-primary")
        # give the monitors a moment to find their replicas before the first request
        for _ in range(max(1, int(self.check_timeout / 0.01))):
            if all(r.state != "starting" for r in self.replicas):
                break
            await asyncio.sleep(0.01)

    async def aclose(self) -> None:
        tasks = [t for t in [self._task, *(r._task for r in self.replicas)] if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for replica in self.replicas:
            if replica.pool is not None:
                await close_pool(replica.pool)

    def ticked(self) -> None:
        """A monitor has news: wake the reads waiting for a replica."""
        self._tick.set()
        self._tick = asyncio.Event()

    async def _watch_primary(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await connect(
                    self.primary_dsn,
                    timeout=self.check_timeout,
                    server_settings={"application_name": "sitrep-replica-monitor"},
                )
                while True:
                    position: int = await conn.fetchval(_PRIMARY, timeout=self.check_timeout)
                    if self.primary_position is None or position > self.primary_position:
                        now = time.monotonic()
                        for replica in self.replicas:
                            if replica.position is None or position > replica.position:
                                replica.unreplayed.append((now, position))
                    self.primary_position = position
                    await asyncio.sleep(POLL_EVERY)
            except asyncio.CancelledError:
                raise
            except _LOST as exc:
                log.warning("replica monitor lost the primary (%r)", exc)
            finally:
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(RETRY_EVERY)

    def pick(self, min_seq: int = 0) -> Replica | None:
        """An in-rotation replica that has replayed `min_seq`, in turn; None if there is none."""
        ready = [r for r in self.replicas if r.in_rotation and r.seq >= min_seq]
        if not ready:
            return None
        return ready[next(self._turn) % len(ready)]

    async def choose(self, min_seq: int = 0) -> Replica | None:
        """`pick`, or after waiting up to `wait` seconds for a replica in rotation to replay
        `min_seq`; None: read the primary."""
        found = self.pick(min_seq)
        if found is not None or self.wait <= 0 or not any(r.in_rotation for r in self.replicas):
            return found
        deadline = time.monotonic() + self.wait
        while True:
            for replica in self.replicas:
                if replica.in_rotation:
                    replica.wanted.set()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self._tick.wait(), remaining)
            except TimeoutError:
                return self.pick(min_seq)
            found = self.pick(min_seq)
            if found is not None:
                return found

    def describe(self) -> list[dict[str, object]]:
        return [r.describe() for r in self.replicas]
