"""The Litestar application: create_app(settings) wires the pool, the routes and error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, get
from litestar.datastructures import State
from litestar.response import Response

from api.auth import AuthError, AuthMiddleware, auth_error_handler, auth_lifespan
from api.caching import HttpCachingMiddleware
from api.controllers import read as read_routes
from api.controllers.changes import list_changes
from api.controllers.keys import KeysController
from api.controllers.stream import stream_entries
from api.controllers.usage import usage
from api.controllers.writes import write_routes
from api.docs import DocsPlugin, openapi_config
from api.errors import RETRY_AFTER_SECONDS, exception_handlers
from api.head import HeadMiddleware
from api.live import live_lifespan
from api.metrics import MetricsPlugin
from api.settings import Settings
from db.errors import UNAVAILABLE
from db.pool import GuardedPool, create_pool
from schema.app import route_handlers as graphql_routes


@get("/health", operation_id="health", tags=["ops"], summary="Liveness: the process answers")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready", operation_id="ready", tags=["ops"], summary="Readiness: the database answers")
async def ready(state: State) -> Response[dict[str, str]]:
    pool: GuardedPool = state.pool
    try:  # a database known down answers at once (the pool's circuit), a frozen one within check_timeout
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1", timeout=pool.check_timeout)
    except UNAVAILABLE:
        return Response(
            {"status": "unavailable", "database": "unreachable"},
            status_code=503,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    return Response({"status": "ready", "database": "ok"})


def create_app(settings: Settings, dsn: str) -> Litestar:
    """The app for one process; `dsn` is the resolved database (a URL or the embedded one)."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.pool = await create_pool(
            dsn,
            min_size=settings.pool_min,
            max_size=settings.pool_max,
            statement_timeout_ms=settings.statement_timeout_ms,
            connect_timeout=settings.db_connect_timeout,
            acquire_timeout=settings.db_acquire_timeout,
            check_timeout=settings.db_check_timeout,
        )
        try:
            yield
        finally:
            await app.state.pool.close()

    metrics = MetricsPlugin()
    app = Litestar(
        route_handlers=[
            health,
            ready,
            KeysController,
            usage,
            *write_routes,
            *read_routes.route_handlers,
            list_changes,
            stream_entries,
            *graphql_routes(),
        ],
        lifespan=[lifespan, auth_lifespan(settings, dsn), live_lifespan(dsn)],
        exception_handlers={**exception_handlers(), AuthError: auth_error_handler},
        state=State({"settings": settings}),
        openapi_config=openapi_config(),
        plugins=[metrics, DocsPlugin()],
        middleware=[HttpCachingMiddleware()],
    )
    # before routing, outermost first: keys, rate limits and CORS for every request and WebSocket;
    # metrics for every request that gets past them, matched or not; HEAD answered as GET without the body
    app.asgi_handler = AuthMiddleware(metrics.wrap(HeadMiddleware(app.asgi_handler)))
    return app
