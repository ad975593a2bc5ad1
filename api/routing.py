"""Read-your-writes across the primary and its replicas: which database a request reads.

Every write answers `Sitrep-Seq`: the change-log seq its commit reached (REST: the header;
a GraphQL mutation: `extensions.seq` and the header). A client that sends it back on a read
(`Sitrep-Min-Seq: <seq>`, or `min_seq=<seq>` in a GraphQL GET's query string, which needs no
header and keeps the URL cacheable per seq) reads a database that has replayed at least that
seq: an in-rotation replica that has (db/replicas.py), else one within SITREP_REPLICA_WAIT
seconds, else the primary. Reads answer `Sitrep-Seq` too: a seq the data read is at least as
new as (send it back to never read older data than already seen), and `Vary: Sitrep-Min-Seq`
where they carry caching headers.

Reads are GET and HEAD requests (and GraphQL queries over POST); writes, exports, the change
feed, SSE replays and subscriptions use the primary. A read whose replica fails (connection
lost, replica gone) is answered again from the primary, never as a 5xx: `RoutingMiddleware`
holds back the answer of a request whose replica failed and runs the request once more with
the primary alone (its body replayed).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from litestar import Litestar
from litestar.types import ASGIApp, Receive, Scope, Send

from db.errors import DATABASE_ERRORS, Unavailable
from db.pool import GuardedPool, connection_lost
from db.replicas import Replica, Replicas

MIN_SEQ = "Sitrep-Min-Seq"
SEQ = "Sitrep-Seq"
_MIN_SEQ_HEADER = b"sitrep-min-seq"
_READS = frozenset({"GET", "HEAD"})
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_MAX_SEQ = 2**63 - 1
_LAST_SEQ = "SELECT COALESCE(max(seq), 0) FROM changes"


class Route:
    """One request's routing: what it must see, whether it may read a replica, what it read."""

    __slots__ = ("failed", "min_seq", "read", "replica", "seq")

    def __init__(self, min_seq: int = 0, *, read: bool = True) -> None:
        self.min_seq = min_seq
        self.read = read  # may read a replica
        self.replica: Replica | None = None  # the replica it read, if any
        self.seq: int | None = None  # the Sitrep-Seq to answer
        self.failed = False  # its replica failed: answer again from the primary

    def saw(self, seq: int) -> None:
        self.seq = seq if self.seq is None else min(self.seq, seq)


_route: ContextVar[Route | None] = ContextVar("sitrep_route", default=None)


def current() -> Route | None:
    return _route.get()


async def read_pool(state: Any, *, primary: bool = False) -> tuple[GuardedPool, Replica | None]:
    """The pool a read of this request should use: a replica's (see the module doc) or the primary's."""
    route = _route.get()
    replicas: Replicas | None = state.get("replicas")
    if route is not None and not primary and route.read and not route.failed and replicas is not None:
        replica = await replicas.choose(route.min_seq)
        if replica is not None and replica.pool is not None:
            replica.reads += 1
            route.replica = replica
            route.saw(replica.seq)
            return replica.pool, replica
    live = state.get("live")
    if route is not None and live is not None:
        # the primary has every committed change: those the hub has passed on, and the seq a
        # write answered the client (a seq nobody answered only misleads the client sending it)
        route.saw(max(live.last_seq, route.min_seq))
    return state.pool, None


def replica_failed(replica: Replica | None, exc: BaseException) -> None:
    """Work on `replica` failed with `exc`: if it is the replica's fault, rerun the request on the primary."""
    if replica is None or not (connection_lost(exc) or isinstance(exc, Unavailable | TimeoutError)):
        return
    replica.failed(exc)
    route = _route.get()
    if route is not None:
        route.failed = True


def parse_min_seq(value: str) -> int | None:
    """A Sitrep-Min-Seq value: a non-negative integer (None: not one)."""
    value = value.strip()
    if not value.isdigit() or len(value) > 19:
        return None
    seq = int(value)
    return seq if seq <= _MAX_SEQ else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _min_seq_param(scope: Scope) -> str | None:
    raw = scope.get("query_string", b"")
    if b"min_seq" not in raw:
        return None
    for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if key == "min_seq":
            return value
    return None


class RoutingMiddleware:
    """ASGI: reads the request's Sitrep-Min-Seq, answers Sitrep-Seq (and Vary), reruns a read
    whose replica failed on the primary (see the module doc)."""

    def __init__(self, app: ASGIApp, litestar: Litestar) -> None:
        self.app = app
        self.state = litestar.state

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        graphql = scope["path"] == "/graphql"
        given = _header(scope, _MIN_SEQ_HEADER)
        name = MIN_SEQ
        if given is None and graphql and method == "GET":
            given, name = _min_seq_param(scope), "min_seq"
        min_seq = 0
        if given is not None:
            parsed = parse_min_seq(given)
            if parsed is None:
                await _bad_min_seq(send, name, given, graphql)
                return
            min_seq = parsed
        read = method in _READS or (graphql and method == "POST")
        route = Route(min_seq, read=read)
        if not read or self.state.get("replicas") is None:
            await self._run(scope, receive, send, route)
            return
        recorded: list[Any] = []

        async def recording(message: Any | None = None) -> Any:
            got = await receive()
            recorded.append(got)
            return got

        if await self._run(scope, recording, send, route, hold=True):
            return
        # the replica failed: once more, the primary alone, the request's body replayed
        replay = iter(list(recorded))

        async def replaying() -> Any:
            return next(replay, None) or await receive()

        await self._run(scope, replaying, send, Route(min_seq, read=False))

    async def _run(self, scope: Scope, receive: Receive, send: Send, route: Route, *, hold: bool = False) -> bool:
        """Run the app for `route`; False (nothing sent) when `hold` and its replica failed."""
        started = False
        dropped = False

        async def sending(message: Any) -> None:
            nonlocal started, dropped
            if message["type"] == "http.response.start":
                if hold and route.failed:
                    dropped = True
                    return
                started = True
                await self._start(message, scope, route)
            elif dropped:
                return
            await send(message)

        token = _route.set(route)
        try:
            await self.app(scope, receive, sending)
        except Exception:
            if hold and route.failed and not started:
                return False
            raise
        finally:
            _route.reset(token)
        return not dropped

    async def _start(self, message: Any, scope: Any, route: Route) -> None:
        headers: list[tuple[bytes, bytes]] = message.setdefault("headers", [])
        seq = route.seq
        if seq is None and message["status"] < 400 and scope["method"] in _WRITES and not route.read:
            seq = await self._last_seq()
        if seq is not None:
            headers.append((b"sitrep-seq", str(seq).encode()))
        if route.read and scope["method"] in _READS:
            cached = any(k in (b"etag", b"cache-control") for k, _ in headers)
            if cached:
                _vary(headers)

    async def _last_seq(self) -> int | None:
        """The last seq the primary has committed, which a write that just returned is part of."""
        pool: GuardedPool | None = self.state.get("pool")
        if pool is None:
            return None
        try:
            async with pool.acquire() as conn:
                seq: int = await conn.fetchval(_LAST_SEQ)
        except DATABASE_ERRORS:
            return None
        return seq


def _vary(headers: list[tuple[bytes, bytes]]) -> None:
    for i, (key, value) in enumerate(headers):
        if key == b"vary":
            if b"sitrep-min-seq" not in value.lower():
                headers[i] = (key, value + b", Sitrep-Min-Seq")
            return
    headers.append((b"vary", b"Sitrep-Min-Seq"))


async def _bad_min_seq(send: Any, name: str, given: str, graphql: bool) -> None:
    detail = f"{name} must be a change seq: a non-negative integer (got {given[:40]!r})"
    if graphql:
        body = msgspec.json.encode({"errors": [{"message": detail, "extensions": {"code": "BAD_USER_INPUT"}}]})
        media = b"application/json"
    else:
        problem = {"type": "about:blank", "title": "Bad Request", "status": 400, "detail": detail}
        body = msgspec.json.encode({**problem, "errors": [{"name": name, "reason": detail}]})
        media = b"application/problem+json"
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", media),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
