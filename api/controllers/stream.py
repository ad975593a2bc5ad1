"""GET /v1/stream/entries: Server-Sent Events for entries matching the entry filters.

Each event's `id` is the change's seq, its type `created`, `updated` or `deleted`, its data
the entry JSON (for `deleted`, the entry's last state). A client that reconnects with
`Last-Event-ID` (or `?last_event_id=`) first gets the matching events it missed, from the
change log, then the live tail. A comment line every HEARTBEAT seconds keeps proxies from
closing an idle stream. The stream ends if the client falls too far behind; it resumes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, cast

import asyncpg
import msgspec
from litestar import Request, get
from litestar.response import Response, ServerSentEvent, ServerSentEventMessage

from api.controllers.writes import problem_response
from api.live import Hub, follow
from db.changes import Change
from db.errors import DomainError, InvalidInput, NotFound
from db.filters import EntryFilter, Ref

EVENT_TYPE = {"create": "created", "update": "updated", "delete": "deleted"}
_REPEATABLE = {"blog", "actor", "location", "source", "kind"}
_SINGLE = {"actor_match", "since", "until", "updated_since", "q", "bbox", "last_event_id"}
_KINDS = {"post", "video", "interactive", "read_more"}


def _ref(value: str) -> Ref:
    return int(value) if value.isdigit() else value


def _moment(name: str, value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name}: not an RFC 3339 time: {value!r}", field=name) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{name}: give a time zone offset (or Z)", field=name)
    return moment


def _bbox(value: str) -> tuple[float, float, float, float]:
    try:
        parts = [float(p) for p in value.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 4:
        raise InvalidInput("bbox: min_lon,min_lat,max_lon,max_lat", field="bbox")
    min_lon, min_lat, max_lon, max_lat = parts
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise InvalidInput("bbox: min_lon,min_lat,max_lon,max_lat within the globe, mins first", field="bbox")
    return (min_lon, min_lat, max_lon, max_lat)


def parse_query(params: dict[str, list[str]]) -> tuple[EntryFilter, int | None]:
    """The entry filter and the resume point given as query parameters."""
    for name, values in params.items():
        if name not in _REPEATABLE | _SINGLE:
            raise InvalidInput(f"{name}: unknown parameter", field=name)
        if name in _SINGLE and len(values) > 1:
            raise InvalidInput(f"{name}: give it once", field=name)
    one = {name: values[0] for name, values in params.items() if name in _SINGLE}
    kinds = tuple(params.get("kind", ()))
    for kind in kinds:
        if kind not in _KINDS:
            raise InvalidInput(f"kind: one of {', '.join(sorted(_KINDS))}", field="kind")
    if one.get("actor_match", "any") not in ("any", "all"):
        raise InvalidInput("actor_match: any or all", field="actor_match")
    last_event_id = _seq(one["last_event_id"], "last_event_id") if "last_event_id" in one else None
    filter = EntryFilter(
        blog=tuple(_ref(v) for v in params.get("blog", ())),
        actor=tuple(_ref(v) for v in params.get("actor", ())),
        actor_match=cast(Any, one.get("actor_match", "any")),
        location=tuple(_ref(v) for v in params.get("location", ())),
        source=tuple(_ref(v) for v in params.get("source", ())),
        since=_moment("since", one["since"]) if "since" in one else None,
        until=_moment("until", one["until"]) if "until" in one else None,
        updated_since=_moment("updated_since", one["updated_since"]) if "updated_since" in one else None,
        q=one.get("q") or None,
        kind=kinds,
        bbox=_bbox(one["bbox"]) if "bbox" in one else None,
    )
    return filter, last_event_id


def _seq(value: str, name: str) -> int:
    if not value.isdigit() or len(value) > 18:
        raise InvalidInput(f"{name}: a seq (a non-negative integer) from an earlier event", field=name)
    return int(value)


def event_of(change: Change) -> ServerSentEventMessage:
    return ServerSentEventMessage(
        data=msgspec.json.encode(change.data).decode(), event=EVENT_TYPE[change.op], id=change.seq
    )


async def _events(hub: Hub, resolved: EntryFilter, after: int | None, heartbeat: float) -> AsyncIterator[Any]:
    yield ServerSentEventMessage(comment="sitrep entry stream", data=None, retry=2000)
    async for change in follow(hub, resolved, after, heartbeat):
        yield ServerSentEventMessage(comment="heartbeat", data=None) if change is None else event_of(change)


@get(
    "/v1/stream/entries",
    operation_id="streamEntries",
    tags=["entries"],
    summary="Server-Sent Events: each new, changed or deleted entry matching the entry filters, live",
)
async def stream_entries(request: Request[Any, Any, Any]) -> Response[bytes] | ServerSentEvent:
    hub: Hub = request.app.state.live
    try:
        filter, after = parse_query({k: request.query_params.getall(k) for k in request.query_params})
        header = request.headers.get("last-event-id")
        if header is not None and header.strip():
            after = _seq(header.strip(), "Last-Event-ID")
        async with hub.pool.acquire() as proxy:
            resolved = await hub.resolve(cast(asyncpg.Connection, proxy), filter)
    except NotFound as exc:
        return problem_response(exc)
    except DomainError as exc:
        return problem_response(exc, status=400)
    return ServerSentEvent(
        _events(hub, resolved, after, request.app.state.live_heartbeat),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
