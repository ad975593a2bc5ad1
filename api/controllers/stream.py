"""GET /v1/stream/entries: Server-Sent Events for entries matching the entry filters.

Each event's `id` is the change's seq, its type `created`, `updated` or `deleted`, its data
the entry JSON (for `deleted`, the entry's last state). A client that reconnects with
`Last-Event-ID` (or `?last_event_id=`) first gets the matching events it missed, from the
change log, then the live tail. A comment line every HEARTBEAT seconds keeps proxies from
closing an idle stream. The stream ends if the client falls too far behind; it resumes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Annotated, Any, cast

import asyncpg
import msgspec
from litestar import Request, get
from litestar.params import QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from api import params as p
from api.live import Hub, follow
from db import rows
from db.changes import Change
from db.filters import EntryFilter, parse_id

EVENT_TYPE = {"create": "created", "update": "updated", "delete": "deleted"}
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


async def _events(hub: Hub, resolved: EntryFilter, after: int | None, heartbeat: float) -> AsyncIterator[Any]:
    yield ServerSentEventMessage(comment="sitrep entry stream", data=None, retry=2000)
    async for change in follow(hub, resolved, after, heartbeat):
        yield ServerSentEventMessage(comment="heartbeat", data=None) if change is None else event_of(change)


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
) -> ServerSentEvent:
    hub: Hub = request.app.state.live
    query = p.Query(request)
    filter = query.entry_filter()
    header = request.headers.get("last-event-id")
    if header is not None and header.strip():
        after = _seq(query, "Last-Event-ID", header.strip())
    else:
        given = query.one("last_event_id")
        after = None if given is None else _seq(query, "last_event_id", given)
    query.done()
    async with hub.pool.acquire() as proxy:
        resolved = await hub.resolve(cast(asyncpg.Connection, proxy), filter)  # an unknown slug: 404
    return ServerSentEvent(
        _events(hub, resolved, after, request.app.state.live_heartbeat),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
