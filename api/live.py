"""The per-instance live hub: one LISTEN connection, fan-out to bounded subscriber queues.

Each instance LISTENs on `sitrep_changes` over a dedicated connection to the primary (LISTEN
works nowhere else). A notification only wakes the hub; what it delivers is read from the
change log (`seq > last seen`), so a dropped connection loses nothing: the hub reconnects
and catches up from the log. With replicas, the log is read from one that has replayed the
notified seq (the primary after SITREP_REPLICA_WAIT without one). It also
reads the log every `poll_interval` seconds in case a notification went astray.

Subscribers (an SSE client, a GraphQL subscription) each get a bounded queue. Delivery
never waits for a subscriber: one whose queue is full is cut off (`overflowed`), so a slow
client cannot slow the others or grow memory without bound; it can reconnect and resume.
Entry filters are checked in PostgreSQL (db.where.matches_sql), one query per distinct
filter per batch. A deleted entry is judged on its last state (`tombstone_may_match`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from types import FrameType
from typing import Any

import asyncpg
from litestar import Litestar

from api.auth import _metrics_registry
from api.entry_cache import EntryCache, EntryCacheCollector
from api.settings import Settings
from db import changes
from db.changes import Change
from db.errors import DATABASE_ERRORS
from db.filters import EntryFilter
from db.pool import connect
from db.refs import Heard, Refs
from db.replicas import Replicas
from db.where import matches_sql, resolve_entry_filter
from schema.compiled import NodeCache

log = logging.getLogger("sitrep.live")

_BATCH = 1000
_CATCH_UP_TIMEOUT = 30.0
_EMPTY = EntryFilter()


class Subscriber:
    """One listener's queue of entry changes that match its filter (already resolved to ids)."""

    def __init__(self, hub: Hub, filter: EntryFilter, maxsize: int) -> None:
        self.hub = hub
        self.filter = filter
        self.queue: asyncio.Queue[Change | None] = asyncio.Queue(maxsize)
        self.overflowed = False
        self.closed = False

    def offer(self, change: Change) -> None:
        if self.closed:
            return
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:
            self.overflowed = True
            self.close()

    def close(self) -> None:
        """Stop delivery; the consumer sees the end after what is queued, or, when the queue
        is full, right after what it already got (never a gap: it resumes from its last event)."""
        if self.closed:
            return
        self.closed = True
        self.hub.unsubscribe(self)
        try:
            self.queue.put_nowait(None)
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)


class Hub:
    def __init__(
        self,
        dsn: str,
        pool: asyncpg.Pool,
        *,
        queue_size: int = 1000,
        poll_interval: float = 5.0,
        caches: Sequence[Heard] = (),
        replicas: Replicas | None = None,
    ) -> None:
        self.dsn = dsn
        self.pool = pool
        self.replicas = replicas  # where the log is read once one has replayed what was notified
        self.notified_seq = 0  # the highest seq a notification announced
        self.caches = tuple(caches)  # kept by this instance only while it hears every change
        self.queue_size = queue_size
        self.poll_interval = poll_interval
        self.last_seq = 0  # every change up to here has been dispatched
        self.listening = False
        self.closing = False
        self._subscribers: set[Subscriber] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        async with self.pool.acquire() as conn:
            self.last_seq = await changes.last_seq(conn)  # type: ignore[arg-type]
        self._task = asyncio.create_task(self._run(), name="sitrep-live-hub")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._started.wait(), 5)

    def end_streams(self) -> None:
        """Close every subscriber and refuse new ones: the server is going away."""
        self.closing = True
        for sub in list(self._subscribers):
            sub.close()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for sub in list(self._subscribers):
            sub.close()

    # ---- subscribers ---------------------------------------------------------------------------

    async def resolve(self, conn: asyncpg.Connection, filter: EntryFilter) -> EntryFilter:
        """The filter with references as ids (an unknown one is NotFound naming the field)."""
        return filter if filter == _EMPTY else await resolve_entry_filter(conn, filter)

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    # ---- the loop ------------------------------------------------------------------------------

    def _notified(self, _conn: Any = None, _pid: Any = None, _channel: Any = None, payload: Any = None) -> None:
        with contextlib.suppress(TypeError, ValueError):
            self.notified_seq = max(self.notified_seq, int(payload))
        self._wake.set()

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await connect(self.dsn, timeout=5, server_settings={"application_name": "sitrep-live"})
                await conn.add_listener(changes.CHANNEL, self._notified)
                self.listening = True
                for cache in self.caches:  # from here on every change reaches _catch_up
                    cache.set_live(True, self.last_seq)
                self._started.set()
                backoff = 0.1
                await self._catch_up(conn)  # whatever committed while we were not listening
                while True:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                    self._wake.clear()
                    # also proves the connection lives: one that died silently times out here
                    await asyncio.wait_for(self._catch_up(conn), _CATCH_UP_TIMEOUT)
            except asyncio.CancelledError:
                raise
            except DATABASE_ERRORS as exc:
                log.warning("live hub lost its database connection (%s); reconnecting", exc)
            finally:
                self.listening = False
                for cache in self.caches:  # changes may now go unheard: keep nothing
                    cache.set_live(False)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _catch_up(self, conn: asyncpg.Connection) -> None:
        """Read and pass on the log after `last_seq`: from a replica that has replayed what was
        notified (waiting SITREP_REPLICA_WAIT for one at most), else from the primary (`conn`).
        Either way from `last_seq` on, so every change goes out once and in seq order."""
        target = self.notified_seq
        if self.replicas is not None and target > self.last_seq:
            replica = await self.replicas.choose(target)
            if replica is not None and replica.pool is not None:
                try:
                    async with replica.pool.acquire() as proxy:
                        replica.log_reads += 1
                        await self._read_log(proxy)  # type: ignore[arg-type]
                except DATABASE_ERRORS as exc:
                    replica.failed(exc)
                if self.last_seq >= target:
                    return
        await self._read_log(conn)

    async def _read_log(self, conn: asyncpg.Connection) -> None:
        while True:
            batch = await changes.list_changes(conn, after=self.last_seq, limit=_BATCH)
            if not batch:
                return
            # no await between these two lines: a subscriber that joins now is either in the
            # snapshot or sees last_seq past this batch (and replays it from the log)
            self.last_seq = batch[-1].seq
            for cache in self.caches:
                cache.heard(batch)
            subscribers = list(self._subscribers)
            try:
                await self._dispatch(conn, batch, subscribers)
            except BaseException:
                for sub in subscribers:  # they may have missed some of this batch: make them resume
                    sub.close()
                raise
            if len(batch) < _BATCH:
                return

    def subscribe(self, resolved: EntryFilter, maxsize: int | None = None) -> tuple[Subscriber, int]:
        """A new subscriber, and the seq up to which it must replay from the log itself."""
        sub = Subscriber(self, resolved, maxsize or self.queue_size)
        self._subscribers.add(sub)
        if self.closing:
            sub.close()
        return sub, self.last_seq

    async def _dispatch(self, conn: asyncpg.Connection, batch: list[Change], subscribers: list[Subscriber]) -> None:
        entries = [c for c in batch if c.entity == "entry"]
        if not entries or not subscribers:
            return
        live_ids = [c.id for c in entries if c.op != "delete"]
        by_filter: dict[EntryFilter, list[Subscriber]] = defaultdict(list)
        for sub in subscribers:
            by_filter[sub.filter].append(sub)
        for filter, subs in by_filter.items():
            matching = await matching_ids(conn, filter, live_ids)
            for change in entries:
                if change.id in matching if change.op != "delete" else tombstone_may_match(filter, change.data):
                    for sub in subs:
                        sub.offer(change)


def _all(values: list[bool | None]) -> bool | None:
    if False in values:
        return False
    return None if None in values else True


def _any(values: list[bool | None]) -> bool | None:
    if True in values:
        return True
    return None if None in values else False


def _judge(f: EntryFilter, doc: dict[str, Any]) -> bool | None:
    """Does the entry's last state match `f` (references as ids)? None: it cannot tell."""
    verdicts: list[bool | None] = []
    if f.blog:
        verdicts.append(doc["blog"]["id"] in f.blog)
    if f.actor:
        linked = {a["actor"]["id"] for a in doc["actors"]}
        wanted = set(f.actor)
        verdicts.append(wanted <= linked if f.actor_match == "all" else bool(wanted & linked))
    if f.source:
        verdicts.append(bool(set(f.source) & {s["id"] for s in doc["sources"]}))
    if f.kind:
        verdicts.append(doc["kind"] in f.kind)
    published = datetime.fromisoformat(doc["published_at"])
    if f.since is not None:
        verdicts.append(published >= f.since)
    if f.until is not None:
        verdicts.append(published < f.until)
    if f.updated_since is not None:
        verdicts.append(datetime.fromisoformat(doc["updated_at"]) >= f.updated_since)
    placed = {loc["id"] for loc in doc["locations"]}
    if f.location:  # the place itself decides; a place inside it needs the hierarchy
        verdicts.append(True if placed & set(f.location) else (None if placed else False))
    if f.bbox is not None:
        verdicts.append(None if placed else False)
    if f.q:
        verdicts.append(None)
    verdicts += [_judge(sub, doc) for sub in f.and_]
    if f.or_:
        verdicts.append(_any([_judge(sub, doc) for sub in f.or_]))
    if f.not_ is not None:
        inner = _judge(f.not_, doc)
        verdicts.append(None if inner is None else not inner)
    return _all(verdicts)


def tombstone_may_match(resolved: EntryFilter, doc: dict[str, Any] | None) -> bool:
    """A deleted entry can no longer be matched in SQL: judge its last state, and when that
    cannot decide (text search, places inside places), deliver: a client drops unknown ids."""
    if doc is None or resolved == _EMPTY:
        return True
    return _judge(resolved, doc) is not False


async def matching_ids(conn: asyncpg.Connection, resolved: EntryFilter, ids: list[int]) -> set[int]:
    """Which of these entries match a filter whose references are already ids."""
    if not ids:
        return set()
    if resolved == _EMPTY:
        return set(ids)
    sql, values = matches_sql(resolved)
    return {r["id"] for r in await conn.fetch(sql, ids, *values)}


async def replay(pool: asyncpg.Pool, resolved: EntryFilter, after: int, upto: int) -> AsyncIterator[Change]:
    """Entry changes with after < seq <= upto that match (deletes always), read from the log
    a batch at a time (the connection goes back to the pool while the client reads)."""
    while after < upto:
        async with pool.acquire() as proxy:
            conn: asyncpg.Connection = proxy  # type: ignore[assignment]
            page = await changes.list_entry_changes(conn, after=after, limit=_BATCH)
            batch = [c for c in page if c.seq <= upto]
            matching = await matching_ids(conn, resolved, [c.id for c in batch if c.op != "delete"])
        if not batch:
            return
        for change in batch:
            if change.id in matching if change.op != "delete" else tombstone_may_match(resolved, change.data):
                yield change
        after = batch[-1].seq


async def follow(hub: Hub, resolved: EntryFilter, after: int | None, idle: float) -> AsyncIterator[Change | None]:
    """Matching entry changes: those after `after` from the log (when given), then live, each
    once and in seq order; None after `idle` seconds without one (time for a heartbeat). Ends
    when the subscriber is cut off (overflow, shutdown): the client resumes from its last seq."""
    sub, upto = hub.subscribe(resolved)
    try:
        last = max(upto, after or 0)  # a client already holds everything up to `after`
        if after is not None and after < upto:
            async for change in replay(hub.pool, resolved, after, upto):
                yield change
        while True:
            try:
                item = await asyncio.wait_for(sub.queue.get(), idle)
            except TimeoutError:
                yield None
                continue
            if item is None:
                return
            if item.seq <= last:
                continue
            last = item.seq
            yield item
    finally:
        sub.close()


def live_lifespan(dsn: str) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """Start this instance's hub once the pool exists (app.state.live), stop it at shutdown."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        settings: Settings = app.state.settings
        app.state.refs = Refs()
        app.state.entry_cache = EntryCache(max_bytes=settings.entry_cache_mb * 1024 * 1024 // settings.workers)
        collector = EntryCacheCollector(app.state.entry_cache)
        registry = _metrics_registry(app)
        if registry is not None:
            registry.register(collector)
        # GraphQL's compiled path keeps each entry's answer per selection beside it (schema/compiled.py)
        app.state.graphql_nodes = NodeCache(max_bytes=settings.graphql_cache_mb * 1024 * 1024 // settings.workers)
        hub = Hub(
            dsn,
            app.state.pool,
            queue_size=settings.stream_queue,
            caches=(app.state.refs, app.state.entry_cache, app.state.graphql_nodes),
            replicas=app.state.get("replicas"),
        )
        await hub.start()
        app.state.live = hub
        app.state.live_heartbeat = settings.stream_heartbeat_seconds
        restore = _end_streams_on_exit(hub)
        try:
            yield
        finally:
            restore()
            await hub.aclose()
            if registry is not None:
                registry.unregister(collector)

    return lifespan


def _end_streams_on_exit(hub: Hub) -> Callable[[], None]:
    """End every stream as soon as the server is told to stop.

    A server shuts down gracefully by waiting for open responses to finish, and a stream
    never finishes by itself; the lifespan's shutdown (which would close them) only runs
    after that wait. So the signal handler the server installed is wrapped: on SIGTERM or
    SIGINT the hub closes its subscribers (streams end, clients reconnect elsewhere with
    Last-Event-ID), then the server's own handler runs. Returns what undoes the wrapping.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    wrapped: dict[signal.Signals, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(hub.end_streams)
            previous(signum, frame)

        signal.signal(sig, handler)
        wrapped[sig] = (previous, handler)

    def restore() -> None:
        for sig, (previous, handler) in wrapped.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, previous)

    return restore
