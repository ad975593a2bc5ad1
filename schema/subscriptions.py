"""Subscriptions over WebSocket (`graphql-transport-ws`), driven by the instance's live hub.

`entryPublished(filter:)` and `entryUpdated(filter:)` yield entries as their changes
commit, on every instance (api/live.py: LISTEN plus the change log); `entryDeleted(filter:)`
yields what is left of an entry once it is gone (its ids, time and headline), judged against
the filter on its last state as SSE's `deleted` events are, so a view can drop it. Every event
carries its change's `seq` (the change feed's and SSE's) in the `next` payload's
`extensions.seq`; a subscription given `after: seq` first replays the matching changes after it
from the log, then goes on live, each once and in order: a client that reconnects (its instance
restarted, say) resumes from the last seq it saw without a gap. The socket speaks the
graphql-transport-ws protocol itself (connection_init/ack, ping/pong, subscribe/next/
error/complete), so the caller comes from the `connection_init` payload (`Authorization:
Bearer …`, `X-API-Key` or `apiKey`) or, failing that, from the upgrade request's headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated, Any, cast

import asyncpg
import msgspec
import strawberry
from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from strawberry.types import Info
from strawberry.types.execution import PreExecutionError

from api.auth import AuthError, authenticate_token
from api.errors import CLOSE_TRY_AGAIN, unavailable_status
from api.live import Hub, follow
from db import rows
from db.changes import Change
from db.filters import EntryFilter
from db.page import Cursors
from schema.context import Db, GraphContext
from schema.errors import BAD_USER_INPUT, ApiError, BadInput, RateLimited, error_dict
from schema.inputs import EntryFilterInput
from schema.limits import MAX_TOKENS
from schema.relay import to_global_id
from schema.types import Entry

PROTOCOL = "graphql-transport-ws"
INIT_TIMEOUT = 10.0
IDLE = 30.0


def _ctx(info: Info) -> GraphContext:
    return info.context  # type: ignore[no-any-return]


def _entry(data: dict[str, Any]) -> Entry:
    doc = msgspec.convert(data, rows.Entry)
    return Entry.from_row(
        rows.EntryRow(
            id=doc.id,
            blog_id=doc.blog.id,
            published_at=doc.published_at,
            updated_at=doc.updated_at,
            created_at=doc.created_at,
            kind=doc.kind,
            headline=doc.headline,
            body=doc.body,
        )
    )


@strawberry.type(description="An entry that was deleted: its ids and what it was, to drop it from a view.")
class DeletedEntry:
    id: strawberry.ID = strawberry.field(description="The deleted entry's global id (as Entry.id).")
    database_id: int
    blog_slug: str
    published_at: datetime
    headline: str
    deleted_at: datetime


AFTER = (
    "Resume: replay the matching changes with a seq above this one first (extensions.seq of the last event received)."
)


async def _changes(
    info: Info, filter: EntryFilterInput | None, op: str, after: int | None
) -> AsyncGenerator[Change, None]:
    if after is not None and after < 0:
        raise BadInput(f"after must be a change seq (0 or more), got {after}")
    ctx = _ctx(info)
    hub: Hub = ctx.request.app.state.live
    wanted = filter.to_filter() if filter is not None else EntryFilter()
    async with hub.pool.acquire() as conn:
        resolved = await hub.resolve(cast(asyncpg.Connection, conn), wanted)
    async for change in follow(hub, resolved, after, IDLE):
        if change is None or change.op != op or change.data is None:
            continue
        # a fresh view per event: loaders must not answer an updated entry from an older one
        ctx._loaders.clear()
        ctx.event_seq = change.seq  # the socket puts it in the event's extensions
        yield change
        await ctx.db.release()  # the event's fields are resolved: give the connection back


async def _entries(
    info: Info, filter: EntryFilterInput | None, op: str, after: int | None
) -> AsyncGenerator[Entry, None]:
    async for change in _changes(info, filter, op, after):
        yield _entry(change.data or {})


def _deleted(change: Change) -> DeletedEntry:
    last = msgspec.convert(change.data, rows.Entry)
    return DeletedEntry(
        id=strawberry.ID(to_global_id("Entry", last.id)),
        database_id=last.id,
        blog_slug=last.blog.slug,
        published_at=last.published_at,
        headline=last.headline,
        deleted_at=change.at,
    )


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Each new entry matching the filter, as it is published.")
    async def entry_published(
        self,
        info: Info,
        filter: EntryFilterInput | None = None,
        after: Annotated[int | None, strawberry.argument(description=AFTER)] = None,
    ) -> AsyncGenerator[Entry, None]:
        async for entry in _entries(info, filter, "create", after):
            yield entry

    @strawberry.subscription(description="Each change to an entry matching the filter, as it commits.")
    async def entry_updated(
        self,
        info: Info,
        filter: EntryFilterInput | None = None,
        after: Annotated[int | None, strawberry.argument(description=AFTER)] = None,
    ) -> AsyncGenerator[Entry, None]:
        async for entry in _entries(info, filter, "update", after):
            yield entry

    @strawberry.subscription(
        description="Each entry deleted that matched the filter (judged on its last state), as the delete commits."
    )
    async def entry_deleted(
        self,
        info: Info,
        filter: EntryFilterInput | None = None,
        after: Annotated[int | None, strawberry.argument(description=AFTER)] = None,
    ) -> AsyncGenerator[DeletedEntry, None]:
        async for change in _changes(info, filter, "delete", after):
            yield _deleted(change)


# ---- the socket ---------------------------------------------------------------------------------


def _token(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return None
    for name in ("Authorization", "authorization"):
        value = payload.get(name)
        if isinstance(value, str) and value.strip():
            scheme, _, rest = value.strip().partition(" ")
            return rest.strip() if scheme.lower() == "bearer" else value.strip()
    for name in ("X-API-Key", "x-api-key", "apiKey", "api_key", "token"):
        value = payload.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _not_a_subscription(payload: dict[str, Any]) -> GraphQLError | None:
    """This socket runs subscriptions only: queries and mutations go over HTTP."""
    query, name = payload.get("query"), payload.get("operationName")
    if not isinstance(query, str):
        return GraphQLError("subscribe: payload.query must be a string", extensions={"code": BAD_USER_INPUT})
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return None  # Strawberry reports the syntax error with its position
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [op for op in operations if name is None or (op.name is not None and op.name.value == name)]
    if len(chosen) != 1:
        reason = "several operations: name one with operationName" if chosen else "no such operation"
        return GraphQLError(f"subscribe: {reason}", extensions={"code": BAD_USER_INPUT})
    if chosen[0].operation != OperationType.SUBSCRIPTION:
        return GraphQLError(
            f"this socket runs subscriptions; send a {chosen[0].operation.value} over HTTP (POST /graphql)",
            extensions={"code": BAD_USER_INPUT},
        )
    return None


class _Session:
    def __init__(self, socket: WebSocket[Any, Any, Any], caller: Any) -> None:
        self.socket = socket
        self.caller = caller
        self.operations: dict[str, asyncio.Task[None]] = {}
        self.send_lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.socket.send_data(msgspec.json.encode(message).decode())

    async def run(self, op_id: str, payload: dict[str, Any]) -> None:
        from schema import build

        app = self.socket.app
        ctx = GraphContext(
            Db(pool=app.state.pool), Cursors(app.state.settings.secret), caller=self.caller, request=self.socket
        )
        try:
            refused = _not_a_subscription(payload)
            if refused is not None:
                await self.send({"id": op_id, "type": "error", "payload": [error_dict(refused)]})
                return
            result = await build().subscribe(
                payload.get("query"),
                variable_values=payload.get("variables"),
                context_value=ctx,
                operation_name=payload.get("operationName"),
            )
            async for item in result:
                if isinstance(item, PreExecutionError):
                    await self.send(
                        {"id": op_id, "type": "error", "payload": [error_dict(e) for e in item.errors or []]}
                    )
                    return
                body: dict[str, Any] = {"data": item.data}
                if item.errors:
                    body["errors"] = [error_dict(e) for e in item.errors]
                if ctx.event_seq is not None:
                    body["extensions"] = {"seq": ctx.event_seq}
                await self.send({"id": op_id, "type": "next", "payload": body})
            await self.send({"id": op_id, "type": "complete"})
        except asyncio.CancelledError:
            raise
        except GraphQLError as exc:
            await self.send({"id": op_id, "type": "error", "payload": [error_dict(exc)]})
        except Exception as exc:  # a resolver's failure before its first event
            error = GraphQLError(str(exc), original_error=exc)
            await self.send({"id": op_id, "type": "error", "payload": [error_dict(error)]})
        finally:
            self.operations.pop(op_id, None)
            await ctx.db.close()

    def cancel_all(self) -> None:
        for task in self.operations.values():
            task.cancel()


class SubscriptionCounts:
    """Open subscriptions per caller (a key, or an anonymous address) on this instance, and the caps."""

    def __init__(self, per_socket: int, per_caller: int) -> None:
        self.per_socket = per_socket
        self.per_caller = per_caller
        self.open: dict[str, int] = {}

    def take(self, caller: Any, on_socket: int) -> ApiError | None:
        """Count one more subscription, or the error refusing it (RATE_LIMITED)."""
        key = caller.key_id or caller.client
        if on_socket >= self.per_socket:
            return RateLimited(f"at most {self.per_socket} subscriptions on one socket; complete one first")
        if self.open.get(key, 0) >= self.per_caller:
            return RateLimited(f"at most {self.per_caller} subscriptions open at once for this caller")
        self.open[key] = self.open.get(key, 0) + 1
        return None

    def give_back(self, key: str) -> None:
        left = self.open.get(key, 1) - 1
        if left > 0:
            self.open[key] = left
        else:
            self.open.pop(key, None)


def _give_back(counts: SubscriptionCounts, key: str, _: object) -> None:
    counts.give_back(key)


def _counts(state: Any) -> SubscriptionCounts:
    found: SubscriptionCounts | None = state.get("subscription_counts")
    if found is None:
        settings = state.settings
        found = state.subscription_counts = SubscriptionCounts(
            settings.ws_max_subscriptions, settings.caller_max_subscriptions
        )
    return found


async def _init(socket: WebSocket[Any, Any, Any]) -> Any | None:
    """Wait for connection_init; the caller, or None after closing the socket."""
    try:
        first = msgspec.json.decode(await asyncio.wait_for(socket.receive_data("text"), INIT_TIMEOUT))
    except TimeoutError:
        await socket.close(4408, "Connection initialisation timeout")
        return None
    except msgspec.DecodeError:
        await socket.close(4400, "Invalid message")
        return None
    if not isinstance(first, dict) or first.get("type") != "connection_init":
        await socket.close(4401, "Unauthorized")
        return None
    caller = socket.scope.get("state", {}).get("caller")
    token = _token(first.get("payload"))
    if token is not None:
        origin = dict(socket.headers).get("origin")
        try:
            caller = await authenticate_token(socket.app.state, token, caller.client if caller else "", origin)
        except AuthError as exc:
            await socket.close({403: 4403, 429: 4429}.get(exc.status_code, 4401), exc.detail[:120])
            return None
        except Exception as exc:  # the key could not be checked: retryable when the database is down
            status = unavailable_status(exc, "connection_init key check")
            await socket.close(CLOSE_TRY_AGAIN if status == 503 else 1011, "Service unavailable; retry shortly")
            return None
    if caller is None or (socket.app.state.settings.require_key and caller.anonymous):
        await socket.close(4401, "Unauthorized: this server needs an API key")
        return None
    return caller


@websocket("/graphql", name="graphql-ws")
async def websocket_handler(socket: WebSocket[Any, Any, Any]) -> None:
    if PROTOCOL not in (socket.scope.get("subprotocols") or []):
        await socket.close(4406, f"Subprotocol not acceptable: use {PROTOCOL}")
        return
    await socket.accept(subprotocols=PROTOCOL)
    caller = await _init(socket)
    if caller is None:
        return
    session = _Session(socket, caller)
    counts = _counts(socket.app.state)
    await session.send({"type": "connection_ack"})
    try:
        while True:
            try:
                message = msgspec.json.decode(await socket.receive_data("text"))
            except msgspec.DecodeError:
                await socket.close(4400, "Invalid message")
                return
            kind = message.get("type") if isinstance(message, dict) else None
            if kind == "ping":
                await session.send({"type": "pong"})
            elif kind == "pong":
                continue
            elif kind == "subscribe":
                op_id, payload = message.get("id"), message.get("payload")
                if not isinstance(op_id, str) or not isinstance(payload, dict):
                    await socket.close(4400, "Invalid subscribe message")
                    return
                if op_id in session.operations:
                    await socket.close(4409, f"Subscriber for {op_id} already exists")
                    return
                refused = counts.take(caller, len(session.operations))
                if refused is not None:
                    error = GraphQLError(refused.message, original_error=refused)
                    await session.send({"id": op_id, "type": "error", "payload": [error_dict(error)]})
                    continue
                started = asyncio.create_task(session.run(op_id, payload))
                started.add_done_callback(functools.partial(_give_back, counts, caller.key_id or caller.client))
                session.operations[op_id] = started
            elif kind == "complete":
                task = session.operations.pop(str(message.get("id")), None)
                if task is not None:
                    task.cancel()
            elif kind == "connection_init":
                await socket.close(4429, "Too many initialisation requests")
                return
            else:
                await socket.close(4400, "Unknown message type")
                return
    except WebSocketDisconnect:
        pass
    finally:
        session.cancel_all()
        with contextlib.suppress(Exception):
            await asyncio.gather(*session.operations.values(), return_exceptions=True)
