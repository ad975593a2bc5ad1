"""Automatic Persisted Queries: sha256 → GraphQL document, shared by every instance through Redis.

A document registered on one instance (a request with both the query and its
`persistedQuery.sha256Hash`) is written to Redis under `<prefix>apq:<sha256>`, so a client that
then sends only the hash to another instance behind the load balancer is answered there. Each
instance keeps the documents it has seen in a small in-process LRU in front of Redis: a document
is content-addressed (its key is its own hash, checked on the way in and on the way back from
Redis), so a copy never goes stale and needs no invalidation.

Kept for `SITREP_APQ_TTL` seconds (default a day) since last registered or read from Redis
(GETEX slides it), so the documents of clients that stopped asking leave Redis by themselves;
a client whose document expired gets PERSISTED_QUERY_NOT_FOUND and registers it again, as
Apollo's protocol provides. Registration is bounded like any request (rate limits, body size).

Redis is never on the critical path: every call is bounded by 0.25 s, and after a failure
Redis is left alone for a second (each miss would otherwise wait out the timeout); meanwhile
documents are read from and registered in process only. A hash unknown here then answers
PERSISTED_QUERY_NOT_FOUND (the client registers it again), never a 5xx.

The key a document is known by, `document_hash(text)`, is the same sha256 a compiled plan can
be cached under: plans are built per instance from the document; only documents are shared.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from litestar import Litestar

    from api.settings import Settings

log = logging.getLogger("sitrep.graphql")

LOCAL_MAX = 5000  # documents kept in process
TIMEOUT = 0.25  # seconds for any Redis call
BACK_OFF = 1.0  # seconds Redis is left alone after a failure


def document_hash(text: str) -> str:
    """The APQ hash of a document: sha256 of its UTF-8 text, in lowercase hex."""
    return hashlib.sha256(text.encode()).hexdigest()


class PersistedQueries:
    """sha256 → document: an in-process LRU in front of Redis (see the module doc)."""

    def __init__(
        self,
        redis_url: str | None = None,
        prefix: str = "sitrep:",
        *,
        ttl_seconds: int = 86400,
        size: int = LOCAL_MAX,
        timeout: float = TIMEOUT,
    ) -> None:
        self._size = size
        self._local: OrderedDict[str, str] = OrderedDict()
        self._prefix = prefix + "apq:"
        self._ttl = ttl_seconds if ttl_seconds > 0 else None
        self._redis: aioredis.Redis | None = None
        self._skip_until = 0.0
        self.redis_errors = 0
        self.hits = {"local": 0, "redis": 0}
        self.misses = 0
        if redis_url:
            self._redis = aioredis.Redis.from_url(
                redis_url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry_on_timeout=False,
                retry=Retry(NoBackoff(), 0),
                health_check_interval=0,
            )

    @property
    def shared(self) -> bool:
        """Redis is configured and not known down."""
        return self._redis is not None and time.monotonic() >= self._skip_until

    async def get(self, sha: str) -> str | None:
        found = self._local.get(sha)
        if found is not None:
            self._local.move_to_end(sha)
            self.hits["local"] += 1
            return found
        if self._redis is not None and self.shared:
            try:
                key = self._prefix + sha
                raw = await (self._redis.getex(key, ex=self._ttl) if self._ttl else self._redis.get(key))
            except (RedisError, OSError) as exc:
                self._failed(exc)
            else:
                text = raw.decode() if isinstance(raw, bytes) else raw
                if text is not None and document_hash(text) == sha:
                    self._remember(sha, text)
                    self.hits["redis"] += 1
                    return text
        self.misses += 1
        return None

    async def put(self, sha: str, text: str) -> None:
        """Register a document whose hash the caller has checked."""
        self._remember(sha, text)
        if self._redis is not None and self.shared:
            try:
                await self._redis.set(self._prefix + sha, text, ex=self._ttl)
            except (RedisError, OSError) as exc:
                self._failed(exc)

    def _remember(self, sha: str, text: str) -> None:
        self._local[sha] = text
        self._local.move_to_end(sha)
        if len(self._local) > self._size:
            self._local.popitem(last=False)

    def _failed(self, exc: BaseException) -> None:
        self.redis_errors += 1
        if time.monotonic() >= self._skip_until:
            log.warning(
                "persisted queries: Redis unreachable (%s); in process only for %g s", type(exc).__name__, BACK_OFF
            )
        self._skip_until = time.monotonic() + BACK_OFF

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


class PersistedCollector(Collector):
    """Prometheus view of the store: where hashes were found, misses, Redis failures."""

    def __init__(self, store: PersistedQueries) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        found = CounterMetricFamily(
            "sitrep_graphql_apq_hits",
            "Persisted-query hashes answered, by where the document was found",
            labels=["store"],
        )
        for where, count in sorted(self.store.hits.items()):
            found.add_metric([where], count)
        yield found
        yield CounterMetricFamily(
            "sitrep_graphql_apq_misses",
            "Persisted-query hashes not found (the client registers them)",
            value=self.store.misses,
        )
        yield CounterMetricFamily(
            "sitrep_graphql_apq_redis_errors",
            "Persisted-query calls to Redis that failed",
            value=self.store.redis_errors,
        )


def persisted_lifespan(settings: Settings) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """A lifespan hook: the app's store (`app.state.graphql_apq`) and its metrics."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        from api.metrics import MetricsPlugin

        store = PersistedQueries(settings.redis_url, settings.redis_prefix, ttl_seconds=settings.apq_ttl_seconds)
        app.state.graphql_apq = store
        collector = PersistedCollector(store)
        try:
            registry = app.plugins.get(MetricsPlugin).metrics.registry
        except KeyError:
            registry = None
        if registry is not None:
            registry.register(collector)
        try:
            yield
        finally:
            if registry is not None:
                registry.unregister(collector)
            await store.aclose()

    return lifespan
