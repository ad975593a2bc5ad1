"""GET /v1/usage: the calling key's rate, what is left of it, and its requests per day."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.params import QueryParameter

from api import formats
from api import params as p
from api.auth import Unauthenticated, caller_of, services_of
from api.ratelimit import RateDecision
from db import keys as keydb


class RateOut(msgspec.Struct, kw_only=True):
    limit: int  # requests a minute
    remaining: int
    reset: int  # seconds until the full rate is available again


class DayOut(msgspec.Struct, kw_only=True):
    date: date
    requests: int  # requests answered
    limited: int  # requests refused for the rate (included in `requests`)


class UsageOut(msgspec.Struct, kw_only=True):
    key_id: str
    name: str
    scopes: list[str]
    rate: RateOut
    days: list[DayOut]


@get("/v1/usage", operation_id="getUsage", tags=["keys"], summary="The calling key's rate and daily request counts")
async def usage(
    request: Request[Any, Any, Any],
    days: Annotated[int, QueryParameter(ge=1, le=90, description="How many recent days (UTC) to count")] = 30,
) -> UsageOut:
    caller = caller_of(request)
    if caller.key_id is None:
        raise Unauthenticated("usage is counted per API key: send one", invalid_token=False)
    p.Query(request).done()
    formats.single_object(request)
    decision: RateDecision = request.scope["state"]["rate"]
    services = services_of(request)
    async with services.keyring.pool.acquire() as conn:
        stored = await keydb.daily_usage(conn, caller.key_id, days)
    counts = {d.day: (d.requests, d.limited) for d in stored}
    for day, (requests, limited) in services.usage.pending(caller.key_id).items():
        r, lim = counts.get(day, (0, 0))
        counts[day] = (r + requests, lim + limited)
    return UsageOut(
        key_id=caller.key_id,
        name=caller.name,
        scopes=sorted(caller.scopes),
        rate=RateOut(limit=decision.limit, remaining=decision.remaining, reset=decision.reset_seconds),
        days=[DayOut(date=d, requests=r, limited=lim) for d, (r, lim) in sorted(counts.items(), reverse=True)],
    )
