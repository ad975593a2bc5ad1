"""GET /v1/stream/entries: Server-Sent Events for entries matching the entry filters.

Each event's `id` is the change's seq, its type `created`, `updated` or `deleted`, its data
the entry JSON (for `deleted`, the entry's last state). A client that reconnects with
`Last-Event-ID` (or `?last_event_id=`) first gets the matching events it missed, from the
change log, then the live tail. A comment line every HEARTBEAT seconds keeps proxies from
closing an idle stream. The stream ends if the client falls too far behind; it resumes.

Browsers' EventSource cannot send a key: `POST /v1/stream/tokens` (with the key) gives a
short-lived token to pass as `?token=` instead (api/stream_tokens.py). A stream opened with a
key or a token ends at the next heartbeat after that key is revoked, expires or is rotated.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, cast

import asyncpg
import msgspec
from litestar import Request, get, post
from litestar.params import QueryParameter
from litestar.response import Response, ServerSentEvent, ServerSentEventMessage

from api import params as p
from api import stream_tokens
from api.auth import Unauthenticated, caller_of, check_scope, services_of
from api.foreground import Foreground
from api.live import Hub, follow
from db import rows
from db.changes import Change
from db.errors import DATABASE_ERRORS
from db.filters import EntryFilter, parse_id

EVENT_TYPE = {"create": "created", "update": "updated", "delete": "deleted"}
TokenParam = Annotated[
    str | None,
    QueryParameter(
        description="A stream token from POST /v1/stream/tokens, for clients that cannot send a key header"
        " (browsers' EventSource). Never put the key itself in a URL."
    ),
]
LastEventIdParam = Annotated[
    str | None,
    QueryParameter(description="Resume after this event id (a seq), as the Last-Event-ID header does."),
]


_ENCODED: OrderedDict[int, str] = OrderedDict()  # seq -> data, shared by every stream of this process
_ENCODED_MAX = 4096


def _data(change: Change) -> str:
    """The entry exactly as REST renders it (the log's JSON has PostgreSQL's time format)."""
    found = _ENCODED.get(change.seq)
    if found is None:
        found = msgspec.json.encode(msgspec.convert(change.data, rows.Entry)).decode()
        _ENCODED[change.seq] = found
        if len(_ENCODED) > _ENCODED_MAX:
            _ENCODED.popitem(last=False)
    return found


def event_of(change: Change) -> ServerSentEventMessage:
    return ServerSentEventMessage(data=_data(change), event=EVENT_TYPE[change.op], id=change.seq)


Allowed = Callable[[], Awaitable[bool]]


async def _events(
    hub: Hub,
    resolved: EntryFilter,
    after: int | None,
    heartbeat: float,
    allowed: Allowed | None,
    foreground: Foreground,
) -> AsyncIterator[Any]:
    foreground.streams += 1  # a long-lived stream, not a page an export should give way to
    try:
        yield ServerSentEventMessage(comment="sitrep entry stream", data=None, retry=2000)
        checked = time.monotonic()
        async for change in follow(hub, resolved, after, heartbeat):
            if allowed is not None and time.monotonic() - checked >= heartbeat:
                if not await allowed():
                    return  # the key was revoked, expired or rotated: the stream ends
                checked = time.monotonic()
            yield ServerSentEventMessage(comment="heartbeat", data=None) if change is None else event_of(change)
    finally:
        foreground.streams -= 1


async def _key_check(request: Request[Any, Any, Any]) -> Allowed | None:
    """For a stream opened with a key (or its token): whether that key still holds, asked at
    most once a heartbeat (from the per-process key cache, which NOTIFY keeps fresh)."""
    key_id = caller_of(request).key_id
    if key_id is None:
        return None
    keyring = services_of(request).keyring
    opened = await keyring.lookup(key_id)
    if opened is None:
        return None

    async def allowed() -> bool:
        try:
            now = await keyring.lookup(key_id)
        except DATABASE_ERRORS:
            return True  # the database is down or slow (db/errors.py): cannot tell now, the next check asks again
        return (
            now is not None and now.secret_hash == opened.secret_hash and now.row.state(datetime.now(UTC)) == "active"
        )

    return allowed


def _seq(query: p.Query, name: str, value: str) -> int | None:
    seq = parse_id(value)
    if seq is None:
        query.fail(name, "a seq (a non-negative integer in ASCII digits) from an earlier event")
    return seq


@get(
    "/v1/stream/entries",
    operation_id="streamEntries",
    tags=["entries"],
    summary="Server-Sent Events: each new, changed or deleted entry matching the entry filters, live",
    description=(
        "Events `created`, `updated` and `deleted` (data: the entry; for `deleted`, its last state), each with"
        " `id` = the change feed's seq. Reconnect with `Last-Event-ID` (or `last_event_id`) to get the matching"
        " events missed, then the live tail. A comment line every 15 s keeps idle connections open."
    ),
)
async def stream_entries(
    request: Request[Any, Any, Any],
    blog: p.BlogParam = None,
    actor: p.ActorParam = None,
    actor_match: p.ActorMatchParam = None,
    location: p.LocationParam = None,
    source: p.SourceParam = None,
    since: p.SinceParam = None,
    until: p.UntilParam = None,
    updated_since: p.UpdatedSinceParam = None,
    q: p.EntryQParam = None,
    kind: p.EntryKindParam = None,
    bbox: p.BBoxParam = None,
    last_event_id: LastEventIdParam = None,
    token: TokenParam = None,
) -> ServerSentEvent:
    hub: Hub = request.app.state.live
    query = p.Query(request)
    filter = query.entry_filter()
    query.one("token")  # checked by the key middleware; here only its shape as a parameter
    header = request.headers.get("last-event-id")
    if header is not None and header.strip():
        after = _seq(query, "Last-Event-ID", header.strip())
    else:
        given = query.one("last_event_id")
        after = None if given is None else _seq(query, "last_event_id", given)
    query.done()
    async with hub.pool.acquire() as proxy:
        resolved = await hub.resolve(cast(asyncpg.Connection, proxy), filter)  # an unknown slug: 404
    allowed = await _key_check(request) if "auth" in request.app.state else None
    return ServerSentEvent(
        _events(hub, resolved, after, request.app.state.live_heartbeat, allowed, request.app.state.foreground),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


class StreamToken(msgspec.Struct, frozen=True, kw_only=True):
    token: str
    expires_at: datetime


@post(
    stream_tokens.ISSUE_PATH,
    operation_id="createStreamToken",
    tags=["entries"],
    summary="A short-lived token for opening a stream where no key header can be sent (EventSource)",
    description=(
        f"Needs a key with the `read` scope. The token is valid for {stream_tokens.TTL // 60} minutes, only as"
        " `?token=` on GET /v1/stream/*, with the key's scopes, rate and origins; it stops working when the key"
        " is revoked, expires or is rotated. A stream opened in time runs on; to reconnect later, get a new token."
    ),
    status_code=200,
)
async def create_stream_token(request: Request[Any, Any, Any]) -> Response[StreamToken]:
    caller = caller_of(request)
    check_scope(caller, "read")
    assert caller.key_id is not None  # an anonymous POST never gets here (api/auth.py)
    services = services_of(request)
    stored = await services.keyring.lookup(caller.key_id)
    if stored is None:
        raise Unauthenticated("unknown API key")
    expires = int(time.time()) + stream_tokens.TTL
    token = stream_tokens.issue(services.settings.secret, caller.key_id, stored.secret_hash, expires)
    return Response(
        StreamToken(token=token, expires_at=datetime.fromtimestamp(expires, UTC)),
        headers={"Cache-Control": "no-store"},
    )
