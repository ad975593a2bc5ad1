"""The Litestar application: create_app(settings) wires the pool, the routes and error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, get
from litestar.datastructures import State
from litestar.response import Response

from api.auth import AuthError, AuthMiddleware, auth_error_handler, auth_lifespan
from api.caching import HttpCachingMiddleware
from api.compression import CompressionMiddleware
from api.controllers import read as read_routes
from api.controllers.changes import list_changes
from api.controllers.curation import curation_routes
from api.controllers.keys import KeysController
from api.controllers.stream import create_stream_token, stream_entries
from api.controllers.usage import usage
from api.controllers.writes import write_routes
from api.docs import DocsPlugin, openapi_config
from api.errors import RETRY_AFTER_SECONDS, exception_handlers
from api.exports import ExportGate
from api.fast_entries import FastEntryPages
from api.head import HeadMiddleware, allow_every_method
from api.live import live_lifespan
from api.metrics import MetricsPlugin
from api.routing import RoutingMiddleware
from api.settings import Settings
from api.web import WebPlugin
from db.errors import UNAVAILABLE
from db.pool import GuardedPool, close_pool, create_pool
from db.replicas import Replicas
from schema.app import route_handlers as graphql_routes
from schema.persisted import persisted_lifespan


@get("/health", operation_id="health", tags=["ops"], summary="Liveness: the process answers")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready", operation_id="ready", tags=["ops"], summary="Readiness: the database answers")
async def ready(state: State) -> Response[dict[str, Any]]:
    """Ready when the primary answers; with replicas, each one's rotation and lag besides
    (a replica out of rotation does not make the instance unready: the primary serves reads)."""
    pool: GuardedPool = state.pool
    replicas: Replicas | None = state.get("replicas")
    extra = {} if replicas is None else {"replicas": replicas.describe()}
    try:  # a database known down answers at once (the pool's circuit), a frozen one within check_timeout
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1", timeout=pool.check_timeout)
    except UNAVAILABLE:
        return Response(
            {"status": "unavailable", "database": "unreachable", **extra},
            status_code=503,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    return Response({"status": "ready", "database": "ok", **extra})


def create_app(settings: Settings, dsn: str) -> Litestar:
    """The app for one process; `dsn` is the resolved database (a URL or the embedded one)."""

    metrics = MetricsPlugin()
    # LISTEN (the live hub, the key cache) and the watchdog's ping need the server itself, not a pooler
    direct = settings.database_direct_url or dsn

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        def pool(min_size: int, max_size: int, url: str = dsn, custom_plans: bool = False) -> Awaitable[GuardedPool]:
            return create_pool(
                url,
                min_size=min_size,
                max_size=max_size,
                statement_timeout_ms=settings.statement_timeout_ms,
                connect_timeout=settings.db_connect_timeout,
                acquire_timeout=settings.db_acquire_timeout,
                check_timeout=settings.db_check_timeout,
                pgbouncer=settings.pgbouncer,
                # the watchdog pings the server itself: the primary for its pools, a replica for its own
                direct_dsn=direct if url == dsn else url,
                custom_plans=custom_plans,
            )

        app.state.pool = await pool(settings.pool_min, settings.pool_max)
        # exports hold a connection as long as their client reads: never the request pool's (api/exports.py)
        app.state.exports = ExportGate(
            settings.export_slots, settings.export_per_caller, metrics.metrics.foreground, settings.export_give_way
        )
        app.state.export_pool = await pool(0, max(1, settings.export_slots))
        # pages whose plan depends on their values, in one statement rather than BEGIN; SET LOCAL ...
        # (api/connection.py); through PgBouncer's transaction mode a session setting does not hold
        planned = settings.plan_pool_max > 0 and settings.pgbouncer != "transaction"
        app.state.plan_pool = await pool(0, settings.plan_pool_max, custom_plans=True) if planned else None
        replicas = None
        if settings.replica_urls:  # reads may go to these (api/routing.py)
            replicas = Replicas(
                direct,  # its monitor polls the primary's WAL position: never through a transaction pooler
                settings.replica_urls,
                pool_factory=lambda url: pool(0, settings.pool_max, url),
                max_lag=settings.replica_max_lag,
                wait=settings.replica_wait,
                check_timeout=settings.db_check_timeout,
            )
            await replicas.start()
        app.state.replicas = replicas
        try:
            yield
        finally:
            if replicas is not None:
                await replicas.aclose()
            await close_pool(app.state.export_pool)
            await close_pool(app.state.plan_pool)
            await close_pool(app.state.pool)

    app = Litestar(
        route_handlers=[
            health,
            ready,
            KeysController,
            usage,
            *write_routes,
            *curation_routes,
            *read_routes.route_handlers,
            list_changes,
            stream_entries,
            create_stream_token,
            *graphql_routes(),
        ],
        lifespan=[lifespan, auth_lifespan(settings, direct), live_lifespan(direct), persisted_lifespan(settings)],
        exception_handlers={**exception_handlers(), AuthError: auth_error_handler},
        state=State({"settings": settings, "foreground": metrics.metrics.foreground}),
        openapi_config=openapi_config(),
        plugins=[metrics, DocsPlugin(), WebPlugin()],
        middleware=[HttpCachingMiddleware()],
    )
    allow_every_method(app)
    # before routing, outermost first: keys, rate limits and CORS for every request and WebSocket;
    # metrics for every request that gets past them, matched or not; HEAD answered as GET without the
    # body; compression of the finished body (its ETag already computed by the caching middleware)
    inner = app.asgi_handler
    if settings.rest_fast:  # the hottest route's JSON pages without Litestar's per-request machinery
        inner = FastEntryPages(inner, app)
    if settings.compression:
        inner = CompressionMiddleware(inner, min_bytes=settings.compress_min_bytes)
    # read-your-writes: Sitrep-Min-Seq in, Sitrep-Seq out, reads on replicas (api/routing.py)
    app.asgi_handler = AuthMiddleware(metrics.wrap(RoutingMiddleware(HeadMiddleware(inner), app)))
    return app
