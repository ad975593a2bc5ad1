"""GET /v1/timeline: entry counts per hour or day under the entry filters."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get

from api import formats
from api import params as p
from api.controllers import catalog_params as c
from api.controllers.entries import DEPENDENCIES, Conn
from db import timeline as db_timeline
from db.rows import TimelineBucket


class Timeline(msgspec.Struct):
    interval: str
    data: list[TimelineBucket]


@get(
    "/v1/timeline",
    operation_id="getTimeline",
    tags=["entries"],
    dependencies=DEPENDENCIES,
    summary="Entry counts per hour or day",
    description=(
        "Buckets (UTC) from the first to the last holding a matching entry, empty ones included with"
        " count 0. Takes the same filters as /v1/entries."
    ),
)
async def timeline(
    request: Request[Any, Any, Any],
    conn: Conn,
    interval: c.IntervalParam = None,
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
) -> Timeline:
    query = p.Query(request)
    flt, unit = query.entry_filter(), query.interval()
    query.done()
    formats.single_object(request)
    return Timeline(interval=unit, data=await db_timeline.timeline(conn, flt, unit))


route_handlers = [timeline]
