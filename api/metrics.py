"""Prometheus metrics at GET /metrics: requests and latencies per route template, pool usage.

Each app gets its own registry (tests build many apps in one process). Requests are
labelled by the route *template* (`/v1/entries/{entry_id:int}`), never the raw path, so
the number of series stays bounded whatever clients send. `MetricsMiddleware` wraps the app
outside routing (create_app installs it inside the key check), so a request that matches
no route (a 404 from routing, a 405) is counted too, under the one label
`route="<unmatched>"` (and a method outside the usual seven as `method="other"`): a scan
of a thousand made-up paths adds no series.
"""

from __future__ import annotations

import time
from typing import Any

import asyncpg
from litestar import Request, get
from litestar.config.app import AppConfig
from litestar.enums import ScopeType
from litestar.plugins import InitPlugin
from litestar.response import Response
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from api.foreground import Foreground

# Litestar appends "; charset=utf-8" to text/* types itself
MEDIA_TYPE = CONTENT_TYPE_LATEST.removesuffix("; charset=utf-8")
_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sitrep_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sitrep_http_request_duration_seconds",
            "Time from request to the last byte of the response, by method and route template",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.pool_size = Gauge("sitrep_db_pool_size", "Open connections in the pool", registry=self.registry)
        self.pool_idle = Gauge("sitrep_db_pool_idle", "Open connections not in use", registry=self.registry)
        self.pool_max = Gauge("sitrep_db_pool_max", "Most connections the pool may open", registry=self.registry)
        self.plan_pool = Gauge(
            "sitrep_db_plan_pool_connections",
            "The custom-plan pool (pages whose plan depends on their values): open, idle and most connections",
            ["state"],
            registry=self.registry,
        )
        self.foreground = Foreground()  # requests in flight, read by exports that give way to pages
        self.in_flight = Gauge(
            "sitrep_http_requests_in_flight", "HTTP requests being answered, streams included", registry=self.registry
        )
        self.streams = Gauge(
            "sitrep_http_streams_open",
            "Long-lived responses open: exports and Server-Sent Events",
            registry=self.registry,
        )

        replica = ["replica"]
        self.replica_in_rotation = Gauge(
            "sitrep_db_replica_in_rotation", "1 while reads may use the replica", replica, registry=self.registry
        )
        self.replica_lag_bytes = Gauge(
            "sitrep_db_replica_lag_bytes",
            "WAL the replica has yet to replay (-1: unknown)",
            replica,
            registry=self.registry,
        )
        self.replica_lag_seconds = Gauge(
            "sitrep_db_replica_lag_seconds",
            "How long the replica has been missing WAL the primary wrote (-1: unknown)",
            replica,
            registry=self.registry,
        )
        self.replica_seq = Gauge(
            "sitrep_db_replica_replayed_seq",
            "The last change seq the replica has replayed",
            replica,
            registry=self.registry,
        )
        self.replica_reads = Gauge(
            "sitrep_db_replica_reads",
            "Request reads routed to the replica since start",
            replica,
            registry=self.registry,
        )
        self.replica_log_reads = Gauge(
            "sitrep_db_replica_log_reads",
            "Reads of the change log by the live hub from the replica since start",
            replica,
            registry=self.registry,
        )
        self.replica_failures = Gauge(
            "sitrep_db_replica_failed_reads",
            "Reads that failed on the replica and were answered by the primary",
            replica,
            registry=self.registry,
        )

    def render_replicas(self, replicas: Any) -> None:
        for r in replicas.replicas if replicas is not None else ():
            self.replica_in_rotation.labels(r.name).set(1 if r.in_rotation else 0)
            self.replica_lag_bytes.labels(r.name).set(-1 if r.lag_bytes is None else r.lag_bytes)
            self.replica_lag_seconds.labels(r.name).set(-1 if r.lag_seconds is None else r.lag_seconds)
            self.replica_seq.labels(r.name).set(r.seq)
            self.replica_reads.labels(r.name).set(r.reads)
            self.replica_log_reads.labels(r.name).set(r.log_reads)
            self.replica_failures.labels(r.name).set(r.failures)

    def render(self, pool: asyncpg.Pool | None, plan_pool: asyncpg.Pool | None = None) -> bytes:
        self.in_flight.set(self.foreground.requests)
        self.streams.set(self.foreground.streams)
        if pool is not None:
            self.pool_size.set(pool.get_size())
            self.pool_idle.set(pool.get_idle_size())
            self.pool_max.set(pool.get_max_size())
        if plan_pool is not None:
            self.plan_pool.labels("open").set(plan_pool.get_size())
            self.plan_pool.labels("idle").set(plan_pool.get_idle_size())
            self.plan_pool.labels("max").set(plan_pool.get_max_size())
        return generate_latest(self.registry)


UNMATCHED = "<unmatched>"  # the route label of requests that matched no route
# the method label, bounded like the route: an unmatched request may carry any token as its method
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    """An ASGI wrapper timing and counting every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.foreground = metrics.foreground
        # the labelled series by (method, route, status): a bounded set, and `labels()` costs a
        # lock and a few dict lookups on every request
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope["method"] if scope["method"] in METHODS else "other"
        status = 500  # what the server answers if the app fails before starting a response

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        foreground = self.foreground
        foreground.requests += 1
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            foreground.requests -= 1
            route = scope.get("path_template") or UNMATCHED  # set by routing, on this same scope
            series = self._series.get((method, route, status))
            if series is None:
                series = self._series[(method, route, status)] = (
                    self.metrics.requests.labels(method, route, str(status)),
                    self.metrics.latency.labels(method, route),
                )
            series[0].inc()
            series[1].observe(time.perf_counter() - started)


class MetricsPlugin(InitPlugin):
    """Registers GET /metrics; `wrap(app)` gives the counting layer create_app installs around the app."""

    def __init__(self) -> None:
        self.metrics = Metrics()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        metrics = self.metrics

        @get(
            "/metrics",
            operation_id="metrics",
            tags=["ops"],
            summary="Prometheus metrics: requests and latencies per route, database pool usage",
            media_type=MEDIA_TYPE,
            sync_to_thread=False,
        )
        def metrics_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
            pool: asyncpg.Pool | None = request.app.state.get("pool")
            metrics.render_replicas(request.app.state.get("replicas"))
            return Response(metrics.render(pool, request.app.state.get("plan_pool")), media_type=MEDIA_TYPE)

        app_config.route_handlers.append(metrics_endpoint)
        return app_config

    def wrap(self, app: ASGIApp) -> MetricsMiddleware:
        return MetricsMiddleware(app, self.metrics)
