"""Who is calling: API keys, scopes, per-caller rate limits and CORS, for every request.

`AuthMiddleware` wraps the whole Litestar app (outside routing), so it sees every HTTP
request, matched or not, and every WebSocket handshake. For each it works out the `Caller`
(from `Authorization: Bearer <key>` or `X-API-Key: <key>`, else anonymous), charges 1 to the
caller's rate (see api/ratelimit.py), stores both on the scope (`request.state.caller`,
`request.state.rate`) and adds RateLimit-* and CORS headers to the response. Refusals are
problem details: 401 (with WWW-Authenticate), 403, 429 (with Retry-After), 503. Bad
credentials count against their address at the anonymous rate; past it that address gets 429
before any key lookup until its bucket refills, except for the ids of existing keys (kept per
process, like the keys' origins): a valid key is limited by its own rate only, never refused
for what another caller behind the same address did.

Key lookups are cached per process for a minute, but only while this process is LISTENing
on PostgreSQL's `sitrep_keys` channel: creating, rotating or revoking a key NOTIFYs at commit
and every instance drops its cache entry, so a revoked key is refused everywhere well within
a second. If the LISTEN connection is lost the cache is emptied and bypassed (every request
reads the key row) until it is back. PostgreSQL rather than Redis pub/sub, because the key
table is in PostgreSQL: the notification is part of the same commit, and revocation works
the same with no Redis at all.

WebSockets: browsers cannot set headers on them, so the socket's key comes in the
`connection_init` payload; the subscription layer calls `authenticate_token` with it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from datetime import UTC, date, datetime
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import parse_qs

import asyncpg
import msgspec
from litestar import Litestar, Request
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Response
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api import cors, stream_tokens
from api.errors import CLOSE_TRY_AGAIN, RETRY_AFTER_SECONDS, clip, unavailable_status
from api.ratelimit import Limiter, RateDecision, charge, charge_after
from api.settings import Settings
from db import keys as keydb
from db.errors import DATABASE_ERRORS
from db.pool import connect

log = logging.getLogger("sitrep.auth")

# never authenticated nor limited: a load balancer's probes, the live page and static files
# (api/web.py; what the page reads from the API is authenticated and limited as any call)
OPEN_PATHS = frozenset({"/health", "/ready", "/"})
STATIC_PREFIX = "/static/"
# readable without a key even when SITREP_REQUIRE_KEY=true: the API's documentation and explorer
DOC_PATHS = frozenset({"/docs", "/openapi.json"})
DOC_PREFIX = "/docs/"
# POST that only reads (GraphQL queries); its mutations check the write scope themselves
READ_POSTS = frozenset({"/graphql"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CACHE_TTL = 60.0
_CACHE_MAX = 10_000
_TOUCH_EVERY = 60.0
_FLUSH_EVERY = 10.0
_LISTEN_CHECK = 5.0
_RECONNECT_MIN = 0.1
_RECONNECT_MAX = 2.0
REALM = 'Bearer realm="sitrep"'


class Caller(msgspec.Struct, frozen=True, kw_only=True):
    """The authenticated party of one request: a key, or an anonymous client address."""

    key_id: str | None
    name: str
    scopes: frozenset[str]
    rate: int  # requests a minute
    client: str  # the client's address ("" when unknown)
    origins: tuple[str, ...] = ()  # browser origins the key may be used from; () for any

    @property
    def anonymous(self) -> bool:
        return self.key_id is None


# --- errors: one type per refusal, each knowing its HTTP status and GraphQL code ------------


class AuthError(HTTPException):
    """A refused caller. REST renders it as a problem; GraphQL uses `code` as extensions.code."""

    status_code = 401
    code = "UNAUTHENTICATED"
    title = "Unauthorized"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail=detail, status_code=self.status_code, headers=headers)


class Unauthenticated(AuthError):
    """No usable key: missing (where one is required), malformed, unknown, expired or revoked."""

    def __init__(self, detail: str, *, invalid_token: bool = True) -> None:
        challenge = f'{REALM}, error="invalid_token"' if invalid_token else REALM
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class HeldOff(AuthError):
    """An address that sent too many bad keys, presenting one that is not an existing key's."""

    status_code = 429
    code = "RATE_LIMITED"
    title = "Too Many Requests"

    def __init__(self, wait: int) -> None:
        super().__init__(
            f"too many bad API keys from this address; retry in {wait} s", headers={"Retry-After": str(wait)}
        )


class Forbidden(AuthError):
    """A valid key that lacks the scope, or used from an origin it does not allow."""

    status_code = 403
    code = "FORBIDDEN"
    title = "Forbidden"


def problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> Response[bytes]:
    body = msgspec.json.encode({"type": "about:blank", "title": title, "status": status, "detail": detail})
    return Response(body, status_code=status, media_type="application/problem+json", headers=headers)


def auth_error_handler(_: Request[Any, Any, Any], exc: AuthError) -> Response[bytes]:
    return problem(exc.status_code, exc.title, exc.detail, dict(exc.headers or {}))


# --- what the rest of the app calls ---------------------------------------------------------


def caller_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Caller:
    caller: Caller | None = connection.scope.get("state", {}).get("caller")
    if caller is None:  # only when the middleware is not installed: refuse rather than guess
        raise Unauthenticated("no caller on this request", invalid_token=False)
    return caller


def check_scope(caller: Caller, scope: str) -> None:
    """Raise Unauthenticated (anonymous) or Forbidden (a key without it) unless the caller has `scope`."""
    if scope in caller.scopes:
        return
    if caller.anonymous:
        raise Unauthenticated(f"this needs an API key with the {scope!r} scope", invalid_token=False)
    raise Forbidden(f"this key lacks the {scope!r} scope")


def require_scope(scope: str) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]:
    """A Litestar guard: `guards=[require_scope("write")]`."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        check_scope(caller_of(connection), scope)

    return guard


async def authenticate_token(app_state: Any, token: str, client: str = "", origin: str | None = None) -> Caller:
    """The caller a token stands for (WebSocket connection_init); raises Unauthenticated/Forbidden."""
    services: AuthServices = app_state.auth
    try:
        caller = await services.caller_for_token(token.strip(), client, blocked=services.blocked_for(client))
    except Unauthenticated:
        if client:
            await services.count_failure(client)
        raise
    check_origin(caller, origin)
    return caller


def services_of(connection: ASGIConnection[Any, Any, Any, Any]) -> AuthServices:
    services: AuthServices = connection.app.state.auth
    return services


def check_origin(caller: Caller, origin: str | None) -> None:
    if origin and caller.origins and origin.lower() not in caller.origins:
        raise Forbidden("this key may not be used from this origin")


# --- the per-process parts: key cache, usage counters ---------------------------------------


class Keyring:
    """Key lookups with a per-process cache that PostgreSQL NOTIFY invalidates (see the module doc)."""

    def __init__(self, pool: asyncpg.Pool, dsn: str, pepper: str) -> None:
        self.pool = pool
        self.pepper = pepper
        self._dsn = dsn
        self._cache: dict[str, tuple[keydb.StoredKey | None, float]] = {}
        self._generation = 0
        self._listener: asyncpg.Connection | None = None
        self._touched: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._lost = asyncio.Event()
        self.origins: frozenset[str] = frozenset()
        self.key_ids: frozenset[str] = frozenset()  # of the usable keys, kept fresh like origins

    @property
    def listening(self) -> bool:
        return self._listener is not None and not self._listener.is_closed()

    async def start(self) -> None:
        try:
            await self._listen()
        except DATABASE_ERRORS as exc:
            log.warning("key cache off: cannot LISTEN for key changes (%s)", type(exc).__name__)
        self._spawn(self._watch())

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close(timeout=2)

    async def _listen(self) -> None:
        conn = await connect(self._dsn, timeout=5)
        await conn.add_listener(keydb.CHANNEL, self._on_notify)
        conn.add_termination_listener(self._on_lost)
        self._listener = conn
        self._forget_all()  # anything cached while not listening may be stale
        await self.refresh_active()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, key_id: object) -> None:
        self._generation += 1
        self._cache.pop(str(key_id), None)
        self._spawn(self.refresh_active())

    def forget(self, key_id: str) -> None:
        """Drop a key this process just changed (its own NOTIFY arrives a moment later)."""
        self._generation += 1
        self._cache.pop(key_id, None)

    def _forget_all(self) -> None:
        self._generation += 1
        self._cache.clear()

    def _on_lost(self, _conn: Any) -> None:
        self._forget_all()
        self._lost.set()

    def _drop(self) -> None:
        self._forget_all()
        if self._listener is not None:
            self._listener.terminate()
            self._listener = None

    async def _watch(self) -> None:
        """Keep the LISTEN connection: ping it every few seconds (a half-open socket hears nothing),
        reconnect at once when it drops, then with backoff; while it is down the cache is bypassed."""
        delay = _RECONNECT_MIN
        while True:
            if self.listening:
                delay = _RECONNECT_MIN
                self._lost.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._lost.wait(), _LISTEN_CHECK)
                if self._lost.is_set() or self._listener is None:
                    continue
                try:
                    await self._listener.fetchval("SELECT 1", timeout=2)
                except DATABASE_ERRORS:
                    self._drop()
                continue
            try:
                await self._listen()
            except DATABASE_ERRORS:
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RECONNECT_MAX)

    async def refresh_active(self) -> None:
        """Reload what the usable keys allow: their browser origins and their ids."""
        with contextlib.suppress(*DATABASE_ERRORS):
            async with self.pool.acquire(timeout=2) as conn:
                self.origins = await keydb.active_origins(conn)
                self.key_ids = await keydb.active_key_ids(conn)

    def may_exist(self, key_id: str) -> bool:
        """Whether a key with this id may exist (always true while key changes go unheard)."""
        return key_id in self.key_ids or not self.listening

    async def lookup(self, key_id: str) -> keydb.StoredKey | None:
        now = time.monotonic()
        hit = self._cache.get(key_id)
        if hit is not None and now - hit[1] < _CACHE_TTL and self.listening:
            return hit[0]
        generation = self._generation
        async with self.pool.acquire(timeout=2) as conn:
            # a frozen database: a 503 within the check timeout, not the statement's (db/pool.py)
            found = await asyncio.wait_for(keydb.find_key(conn, key_id), getattr(self.pool, "check_timeout", 2.0))
        if generation == self._generation and self.listening:  # no change announced meanwhile
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key_id] = (found, now)
        return found

    def touch(self, key_id: str) -> None:
        """Record use in the table at most once a minute per key (and per process)."""
        now = time.monotonic()
        if now - self._touched.get(key_id, -_TOUCH_EVERY) < _TOUCH_EVERY:
            return
        self._touched[key_id] = now
        self._spawn(self._touch(key_id))

    async def _touch(self, key_id: str) -> None:
        with contextlib.suppress(*DATABASE_ERRORS):
            async with self.pool.acquire(timeout=2) as conn:
                await keydb.touch_last_used(conn, key_id)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class UsageRecorder:
    """Per-key daily request counts, summed in memory and added to PostgreSQL every 10 seconds."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._pending: dict[tuple[str, date], tuple[int, int]] = {}
        self._task: asyncio.Task[None] | None = None

    def count(self, caller: Caller, allowed: bool) -> None:
        if caller.key_id is None:
            return
        slot = (caller.key_id, datetime.now(UTC).date())
        requests, limited = self._pending.get(slot, (0, 0))
        self._pending[slot] = (requests + 1, limited + (0 if allowed else 1))

    def pending(self, key_id: str) -> dict[date, tuple[int, int]]:
        return {day: counts for (kid, day), counts in self._pending.items() if kid == key_id}

    async def flush(self) -> None:
        batch, self._pending = self._pending, {}
        try:
            async with self.pool.acquire(timeout=2) as conn:
                await keydb.add_usage(conn, batch)
        except DATABASE_ERRORS:
            for slot, (requests, limited) in batch.items():  # keep them for the next try
                r, lim = self._pending.get(slot, (0, 0))
                self._pending[slot] = (r + requests, lim + limited)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_EVERY)
            await self.flush()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()


class AuthServices:
    """Everything the middleware needs, built once per process in the app's lifespan."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool, dsn: str) -> None:
        self.settings = settings
        self.refused: collections.Counter[int] = collections.Counter()  # status -> requests
        self._blocked: dict[str, float] = {}  # address -> monotonic time it may try keys again
        self.pepper = settings.key_pepper or settings.secret
        self.keyring = Keyring(pool, dsn, self.pepper)
        self.limiter = Limiter(settings.redis_url, settings.redis_prefix)
        self.usage = UsageRecorder(pool)

    async def count_failure(self, client: str) -> None:
        """A bad credential counts against its address at the anonymous rate; past it, the address
        is refused (429) here before any key lookup, so guessing keys cannot load the database."""
        decision = await self.limiter.charge("f:" + client, self.settings.anonymous_rate, 1)
        if not decision.allowed:
            if len(self._blocked) >= _CACHE_MAX:
                now = time.monotonic()
                self._blocked = {c: until for c, until in self._blocked.items() if until > now}
            self._blocked[client] = time.monotonic() + decision.retry_after

    def blocked_for(self, client: str) -> int:
        """Seconds this address must wait after too many bad credentials (0: not blocked)."""
        until = self._blocked.get(client)
        return 0 if until is None else max(0, math.ceil(until - time.monotonic()))

    def anonymous(self, client: str) -> Caller:
        return Caller(
            key_id=None, name="anonymous", scopes=frozenset({"read"}), rate=self.settings.anonymous_rate, client=client
        )

    async def caller_for_token(self, token: str, client: str, *, blocked: int = 0) -> Caller:
        """The key's caller. From an address `blocked` (seconds) for bad keys, only the id of an
        existing key is looked up: guessing cannot load the database, a valid key still works."""
        parsed = keydb.parse_token(token) if token else None
        if blocked and (parsed is None or not self.keyring.may_exist(parsed[0])):
            raise HeldOff(blocked)
        if not token:
            raise Unauthenticated("the API key is empty")
        if parsed is None:
            raise Unauthenticated("malformed API key: expected sk_<id>_<secret>")
        key_id, secret = parsed
        if not self.pepper:  # settings built without a secret (never from the environment)
            raise Unauthenticated("unknown API key")
        stored = await self.keyring.lookup(key_id)
        if stored is None or not keydb.secret_matches(self.pepper, key_id, secret, stored.secret_hash):
            raise Unauthenticated("unknown API key")
        return self._caller(stored, client)

    def _caller(self, stored: keydb.StoredKey, client: str) -> Caller:
        state = stored.row.state(datetime.now(UTC))
        if state == "revoked":
            raise Unauthenticated("this API key was revoked")
        if state == "expired":
            raise Unauthenticated("this API key has expired")
        self.keyring.touch(stored.row.id)
        return Caller(
            key_id=stored.row.id,
            name=stored.row.name,
            scopes=frozenset(stored.row.scopes),
            rate=stored.row.rate,
            client=client,
            origins=stored.row.origins,
        )

    async def caller_for_stream_token(self, token: str, client: str, *, blocked: int = 0) -> Caller:
        """The key a stream token stands for (api/stream_tokens.py), checked as the key itself is
        (from a held-off address, only a token naming an existing key is looked up)."""
        parsed = stream_tokens.parse(token.strip())
        if blocked and (parsed is None or not self.keyring.may_exist(parsed[0])):
            raise HeldOff(blocked)
        if parsed is None:
            raise Unauthenticated("malformed stream token: expected one from POST /v1/stream/tokens")
        key_id, expires, signature = parsed
        if expires <= time.time():
            raise Unauthenticated("this stream token has expired; get a new one from POST /v1/stream/tokens")
        stored = await self.keyring.lookup(key_id)
        if stored is None or not stream_tokens.signed(
            self.settings.secret, key_id, expires, signature, stored.secret_hash
        ):
            raise Unauthenticated("unknown stream token")
        return self._caller(stored, client)

    async def caller_for_headers(self, headers: dict[str, str], client: str, *, blocked: int = 0) -> Caller | None:
        """The caller the request's credentials name; None when it carries none."""
        tokens: list[str] = []
        if "authorization" in headers:
            scheme, _, value = headers["authorization"].strip().partition(" ")
            if scheme.lower() != "bearer":
                raise Unauthenticated("use Authorization: Bearer <key> (or X-API-Key: <key>)")
            tokens.append(value.strip())
        if "x-api-key" in headers:
            tokens.append(headers["x-api-key"].strip())
        if not tokens:
            return None
        if len(set(tokens)) > 1:
            raise Unauthenticated("two different API keys given")
        return await self.caller_for_token(tokens[0], client, blocked=blocked)

    async def start(self) -> None:
        await self.keyring.start()
        await self.limiter.start()
        self.usage.start()

    async def aclose(self) -> None:
        await self.usage.aclose()
        await self.limiter.aclose()
        await self.keyring.aclose()


class AuthCollector(Collector):
    """Prometheus view of the middleware: refusals, limiter mode, key cache state (never a key)."""

    def __init__(self, services: AuthServices) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        services = self.services
        refused = CounterMetricFamily(
            "sitrep_auth_refused", "Requests refused before reaching a route, by status", labels=["status"]
        )
        for status, count in sorted(services.refused.items()):
            refused.add_metric([str(status)], count)
        yield refused
        yield CounterMetricFamily(
            "sitrep_ratelimit_redis_errors",
            "Rate-limit calls to Redis that failed",
            value=services.limiter.redis_errors,
        )
        yield GaugeMetricFamily(
            "sitrep_ratelimit_degraded",
            "1 while Redis is unreachable and this instance limits in process at its share",
            value=1 if services.limiter.mode == "degraded" else 0,
        )
        yield GaugeMetricFamily(
            "sitrep_ratelimit_instances",
            "Instances sharing the rate limits (seen in Redis)",
            value=services.limiter.peers,
        )
        yield GaugeMetricFamily(
            "sitrep_key_cache_listening",
            "1 while key changes are heard (LISTEN), so key lookups may be cached",
            value=1 if services.keyring.listening else 0,
        )


def _metrics_registry(app: Litestar) -> CollectorRegistry | None:
    from api.metrics import MetricsPlugin

    try:
        return app.plugins.get(MetricsPlugin).metrics.registry
    except KeyError:
        return None


def auth_lifespan(settings: Settings, dsn: str) -> Callable[[Litestar], contextlib.AbstractAsyncContextManager[None]]:
    """A lifespan hook (after the pool's) that starts the key cache, the limiter and the usage counters."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        services = AuthServices(settings, app.state.pool, dsn)
        await services.start()
        app.state.auth = services
        registry = _metrics_registry(app)
        collector = AuthCollector(services)
        if registry is not None:
            registry.register(collector)
        try:
            yield
        finally:
            if registry is not None:
                registry.unregister(collector)
            await services.aclose()

    return lifespan


# --- the middleware -------------------------------------------------------------------------


def _headers(scope: Scope) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        found[key] = f"{found[key]}, {text}" if key in found else text
    return found


async def _emit(send: Send, message: dict[str, Any]) -> None:
    await send(cast("Message", message))


async def _send_problem(
    send: Send, status: int, title: str, detail: str, headers: dict[str, str], extra: list[tuple[bytes, bytes]]
) -> None:
    body = msgspec.json.encode({"type": "about:blank", "title": title, "status": status, "detail": detail})
    await _send_refusal(send, status, b"application/problem+json", body, headers, extra)


async def _send_refusal(
    send: Send, status: int, media_type: bytes, body: bytes, headers: dict[str, str], extra: list[tuple[bytes, bytes]]
) -> None:
    if status == 503:
        headers = {"Retry-After": RETRY_AFTER_SECONDS, **headers}
    raw = [
        (b"content-type", media_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
        *extra,
    ]
    await _emit(send, {"type": "http.response.start", "status": status, "headers": raw})
    await _emit(send, {"type": "http.response.body", "body": body})


def _stream_token(scope: Scope, method: str) -> str | None:
    """`?token=` where a stream token is a credential (GET /v1/stream/*), else None."""
    if not stream_tokens.accepted_on(method, scope["path"]):
        return None
    query_string: bytes = scope.get("query_string", b"")
    if b"token=" not in query_string:
        return None
    values = parse_qs(query_string.decode("latin-1"), keep_blank_values=True).get("token")
    return None if values is None else values[-1]


# a refusal's GraphQL code, for /graphql (clients there read errors[].extensions.code, not problems)
_GRAPHQL_CODES = {401: "UNAUTHENTICATED", 403: "FORBIDDEN", 429: "RATE_LIMITED", 503: "SERVICE_UNAVAILABLE"}


async def _send_graphql_error(
    send: Send, status: int, title: str, detail: str, headers: dict[str, str], extra: list[tuple[bytes, bytes]]
) -> None:
    """A refusal on /graphql as a GraphQL response: the same status and headers as the problem
    it stands for, the body `{"errors": [{"message", "extensions": {"code"}}]}`."""
    code = _GRAPHQL_CODES.get(status, "INTERNAL_SERVER_ERROR" if status >= 500 else "BAD_USER_INPUT")
    body = msgspec.json.encode({"errors": [{"message": detail, "extensions": {"code": code}}]})
    await _send_refusal(send, status, b"application/json", body, headers, extra)


def _documentation(scope: Scope, method: str, headers: dict[str, str]) -> bool:
    path: str = scope["path"]
    if path in DOC_PATHS or path.startswith(DOC_PREFIX):
        return True
    # GraphiQL: a browser opening /graphql (its queries then carry the key)
    query_string: bytes = scope.get("query_string", b"")
    return path == "/graphql" and method == "GET" and not query_string and "text/html" in headers.get("accept", "")


class AuthMiddleware:
    """Outermost ASGI layer: authenticate, check origin, charge, then add headers to the answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] not in ("http", "websocket") or path in OPEN_PATHS or path.startswith(STATIC_PREFIX):
            await self.app(scope, receive, send)
            return
        services: AuthServices | None = scope["app"].state.get("auth")
        if services is None:
            await _send_problem(send, 503, "Service Unavailable", "starting up", {"Retry-After": "1"}, [])
            return
        if scope["type"] == ScopeType.WEBSOCKET:
            await self._websocket(services, scope, receive, send)
        else:
            await self._http(services, scope, receive, send)

    async def _http(self, services: AuthServices, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        method = str(scope.get("method", "GET"))
        refuse = functools.partial(_send_graphql_error if scope["path"] in READ_POSTS else _send_problem, send)
        origin = headers.get("origin")
        global_origins = services.settings.cors_origins
        token = _stream_token(scope, method)
        credentials = "authorization" in headers or "x-api-key" in headers or token is not None
        if not credentials and method in cors.PUBLIC_METHODS:
            cors_out = cors.public_headers()  # an anonymous read: any page may read it (api/cors.py)
        elif origin and cors.globally_allowed(origin, global_origins):
            cors_out = cors.response_headers(origin)
        else:
            cors_out = []

        if cors.is_preflight(method, headers):
            assert origin is not None
            if cors.globally_allowed(origin, global_origins) or origin.lower() in services.keyring.origins:
                allowed = cors.preflight_headers(origin)
            elif cors.public_preflight(headers):
                allowed = cors.public_preflight_headers()
            else:
                services.refused[403] += 1
                await refuse(403, "Forbidden", "this origin is not allowed", {"Vary": "Origin"}, [])
                return
            await _emit(send, {"type": "http.response.start", "status": 204, "headers": allowed})
            await _emit(send, {"type": "http.response.body", "body": b""})
            return

        client = (scope.get("client") or ("", 0))[0]
        blocked = services.blocked_for(client)
        try:
            if token is None:
                caller = await services.caller_for_headers(headers, client, blocked=blocked)
            elif "authorization" in headers or "x-api-key" in headers:
                raise Unauthenticated("give a key header or a stream token, not both")
            else:
                caller = await services.caller_for_stream_token(token, client, blocked=blocked)
            if caller is None:
                if services.settings.require_key and not _documentation(scope, method, headers):
                    raise Unauthenticated("an API key is required", invalid_token=False)
                caller = services.anonymous(client)
                if method not in _SAFE_METHODS and scope["path"] not in READ_POSTS:
                    raise Unauthenticated("writing needs an API key with the 'write' scope", invalid_token=False)
            check_origin(caller, origin)
        except AuthError as exc:
            services.refused[exc.status_code] += 1
            if credentials and exc.status_code == 401:
                await services.count_failure(client)
            await refuse(exc.status_code, exc.title, exc.detail, dict(exc.headers or {}), cors_out)
            return
        except Exception as exc:  # this runs outside Litestar's handlers: nothing may reach the server as a 500
            status = unavailable_status(exc, f"key check on {method} {clip(scope['path'])}")
            services.refused[status] += 1
            detail = "cannot check the API key: the database is unreachable; retry shortly"
            if status != 503:
                detail = "an unexpected error occurred; it has been logged"
            await refuse(status, HTTPStatus(status).phrase, detail, {}, cors_out)
            return
        if origin and caller.origins and origin.lower() in caller.origins:
            cors_out = cors.response_headers(origin)

        decision = await charge(services.limiter, caller, 1)
        services.usage.count(caller, decision.allowed)
        state = scope.setdefault("state", {})
        state["caller"] = caller
        state["rate"] = decision
        if not decision.allowed:
            services.refused[429] += 1
            await refuse(
                429, "Too Many Requests",
                f"over the rate of {decision.limit} requests a minute; retry in {decision.retry_after} s",
                decision.headers(), cors_out,
            )  # fmt: skip
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                await charge_after(services.limiter, caller, state)
                current: RateDecision = state.get("rate", decision)
                present = {name.lower() for name, _ in message.get("headers", [])}
                added = [
                    (k.lower().encode(), v.encode())
                    for k, v in current.headers().items()
                    if k.lower().encode() not in present
                ]
                message["headers"] = [*message.get("headers", []), *added, *cors_out]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _websocket(self, services: AuthServices, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        client = (scope.get("client") or ("", 0))[0]
        try:
            blocked = services.blocked_for(client)
            caller = await services.caller_for_headers(headers, client, blocked=blocked) or services.anonymous(client)
            check_origin(caller, headers.get("origin"))
        except AuthError as exc:
            if exc.status_code == 401:
                await services.count_failure(client)
            code = {401: 4401, 429: 4429}.get(exc.status_code, 4403)
            await _emit(send, {"type": "websocket.close", "code": code})
            return
        except Exception as exc:
            unavailable_status(exc, "key check on a WebSocket")
            await _emit(send, {"type": "websocket.close", "code": CLOSE_TRY_AGAIN})
            return
        decision = await charge(services.limiter, caller, 1)
        services.usage.count(caller, decision.allowed)
        if not decision.allowed:
            await _emit(send, {"type": "websocket.close", "code": 4429})
            return
        state = scope.setdefault("state", {})
        state["caller"] = caller
        state["rate"] = decision
        await self.app(scope, receive, send)
