"""An editor's review of the actors the linker discovered, `write` scope (db/ingest/curate.py):

    POST /v1/actors/{ref}/confirm                       -> the actor
    POST /v1/actors/{ref}/rename   {"name", "slug"?}    -> the actor (the old name an alias)
    POST /v1/actors/{ref}/merge    {"into"}             -> the kept actor (links and names moved)

Written as writes.py's handlers are: the raw body, Idempotency-Key, problem details.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
from litestar import Request, post
from litestar.params import FromPath
from litestar.response import Response

from api.controllers.writes import _WRITE, _json, _write
from api.params import path_ref
from db import idempotency, rows, writes
from db.errors import InvalidInput
from db.filters import parse_ref
from db.ingest import curate


@post(
    "/v1/actors/{ref:str}/confirm",
    **_WRITE,
    operation_id="confirmActor",
    status_code=200,
    summary="Confirm a discovered actor",
)
async def confirm_actor(request: Request[Any, Any, Any], ref: FromPath[str]) -> Response[bytes]:
    async def work(conn: asyncpg.Connection, raw: bytes) -> idempotency.Answer:
        return _json(await writes.get_actor(conn, await curate.confirm(conn, path_ref(ref))))

    return await _write(request, work)


@post(
    "/v1/actors/{ref:str}/rename",
    **_WRITE,
    operation_id="renameActor",
    status_code=200,
    summary="Rename an actor, keeping the old name as an alias",
)
async def rename_actor(request: Request[Any, Any, Any], ref: FromPath[str]) -> Response[bytes]:
    async def work(conn: asyncpg.Connection, raw: bytes) -> idempotency.Answer:
        body = writes.decode_body(raw, curate.Rename)
        actor_id, _ = await curate.rename(conn, path_ref(ref), body.name, body.slug)
        return _json(await writes.get_actor(conn, actor_id))

    return await _write(request, work)


@post(
    "/v1/actors/{ref:str}/merge",
    **_WRITE,
    operation_id="mergeActor",
    status_code=200,
    summary="Merge an actor into another: its entry links and names move there",
)
async def merge_actor(request: Request[Any, Any, Any], ref: FromPath[str]) -> Response[bytes]:
    async def work(conn: asyncpg.Connection, raw: bytes) -> idempotency.Answer:
        body = writes.decode_body(raw, curate.Merge)
        into = parse_ref(body.into) if isinstance(body.into, str) else body.into
        if into is None:
            raise InvalidInput(f"into: {str(body.into)[:40]!r} is neither an id nor a slug", field="into")
        kept, _ = await curate.merge(conn, path_ref(ref), into)
        return _json(await writes.get_actor(conn, kept))

    return await _write(request, work)


curation_routes = [confirm_actor, rename_actor, merge_actor]
# for the OpenAPI document (api/docs.py), as writes.DOCUMENTED_WRITES
DOCUMENTED_CURATION: dict[str, tuple[type[msgspec.Struct] | None, type[msgspec.Struct]]] = {
    "confirmActor": (None, rows.Actor),
    "renameActor": (curate.Rename, rows.Actor),
    "mergeActor": (curate.Merge, rows.Actor),
}
