"""Writes, `write` scope: blogs, entries, actors, locations, sources, and page imports.

Each handler reads the raw body (so a retry with an Idempotency-Key is recognised by its
bytes), decodes it into the db.writes Struct, and runs the write and the key's record in
one transaction (db.idempotency.once). Answers are the resource as the read API shows it;
failures become problem details in api/errors.py's one table.

PATCH and DELETE honour `If-Match`: in the write's transaction the row is locked and the
ETag of its GET representation computed; a tag that is not it (compared strongly) is a 412
and nothing is written. `If-Match: *` only asks that the resource exist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

import asyncpg
import msgspec
from litestar import Request, delete, patch, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.response import Response

from api.auth import caller_of, require_scope
from api.caching import etag_for, if_match_hits
from api.params import path_ref
from db import idempotency, rows, writes
from db.errors import InvalidInput
from db.ingest.store import ImportResult

Work = Callable[[asyncpg.Connection, bytes], Awaitable[idempotency.Answer]]
# locks the target row and returns it as its GET shows it (for If-Match)
Current = Callable[[asyncpg.Connection], Awaitable[Any]]


def _json(value: Any, status: int = 200, location: str | None = None) -> idempotency.Answer:
    return idempotency.Answer(status=status, body=msgspec.json.encode(value), location=location)


def _conditional(condition: str | None, current: Current | None, work: Work) -> Work:
    if condition is None or current is None:
        return work

    async def checked(conn: asyncpg.Connection, raw: bytes) -> idempotency.Answer:
        etag = etag_for(msgspec.json.encode(await current(conn)))
        if not if_match_hits(condition, etag):
            raise HTTPException(status_code=412, detail=f"If-Match: the resource has changed; its ETag is now {etag}")
        return await work(conn, raw)

    return checked


async def _write(request: Request[Any, Any, Any], work: Work, current: Current | None = None) -> Response[Any]:
    work = _conditional(request.headers.get("if-match"), current, work)
    raw = await request.body()
    caller = caller_of(request)
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= 255:
        raise InvalidInput("Idempotency-Key: 1 to 255 characters", field="Idempotency-Key")
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as proxy:
        answer = await idempotency.once(
            cast(asyncpg.Connection, proxy),
            caller=caller.key_id or f"anonymous:{caller.client}",
            key=key,
            hashed=idempotency.request_hash(request.method, request.url.path, raw),
            work=lambda c: work(c, raw),
        )
    headers = {"Location": answer.location} if answer.location else {}
    if answer.replayed:
        headers["Idempotent-Replayed"] = "true"
    if answer.status == 204:
        return Response(None, status_code=204, headers=headers)
    return Response(answer.body, status_code=answer.status, media_type="application/json", headers=headers)


# Plain handlers, not a Controller: Litestar 2.25 refuses two controllers sharing a path
# (/v1/entries is also the read controller's), and these share it.
_WRITE: dict[str, Any] = {"guards": [require_scope("write")], "tags": ["writes"]}


@post("/v1/blogs", **_WRITE, operation_id="createBlog", summary="Create a blog", status_code=201)
async def create_blog(request: Request[Any, Any, Any]) -> Response[bytes]:
    async def work(conn: asyncpg.Connection, raw: bytes) -> idempotency.Answer:
        blog_id = await writes.create_blog(conn, writes.decode_body(raw, writes.BlogCreate))
        return _json(await writes.get_blog(conn, blog_id), 201, f"/v1/blogs/{blog_id}")

    return await _write(request, work)


@post("/v1/entries", **_WRITE, operation_id="createEntry", summary="Publish an entry", status_code=201)
async def create_entry(request: Request[Any, Any, Any]) -> Response[bytes]:
    async def work(conn: asyncpg.Connection, raw: bytes) -> idempotency.Answer:
        entry_id = await writes.create_entry(conn, writes.decode_body(raw, writes.EntryCreate), writes.load_linker)
        return _json(await writes.get_entry(conn, entry_id), 201, f"/v1/entries/{entry_id}")

    return await _write(request, work)


@patch("/v1/entries/{entry_id:int}", **_WRITE, operation_id="updateEntry", summary="Change an entry's given fields")
async def update_entry(request: Request[Any, Any, Any], entry_id: FromPath[int]) -> Response[bytes]:
    async def work(conn: asyncpg.Connection, raw: bytes) -> idempotency.Answer:
        await writes.update_entry(conn, entry_id, writes.decode_body(raw, writes.EntryPatch))
        return _json(await writes.get_entry(conn, entry_id))

    return await _write(request, work, lambda conn: writes.locked_entry(conn, entry_id))


@delete("/v1/entries/{entry_id:int}", **_WRITE, operation_id="deleteEntry", summary="Delete an entry", status_code=204)
async def delete_entry(request: Request[Any, Any, Any], entry_id: FromPath[int]) -> Response[None]:
    async def work(conn: asyncpg.Connection, _: bytes) -> idempotency.Answer:
        await writes.delete_entry(conn, entry_id)
        return idempotency.Answer(status=204, body=b"")

    return cast(Response[None], await _write(request, work, lambda conn: writes.locked_entry(conn, entry_id)))


@post("/v1/actors", **_WRITE, operation_id="createActor", summary="Create an actor", status_code=201)
async def create_actor(request: Request[Any, Any, Any]) -> Response[bytes]:
    async def work(conn: asyncpg.Connection, raw: bytes) -> idempotency.Answer:
        actor_id = await writes.create_actor(conn, writes.decode_body(raw, writes.ActorCreate))
        return _json(await writes.get_actor(conn, actor_id), 201, f"/v1/actors/{actor_id}")

    return await _write(request, work)


@patch("/v1/actors/{ref:str}", **_WRITE, operation_id="updateActor", summary="Change an actor's given fields")
async def update_actor(request: Request[Any, Any, Any], ref: FromPath[str]) -> Response[bytes]:
    async def work(conn: asyncpg.Connection, raw: bytes) -> idempotency.Answer:
        actor_id = await writes.update_actor(conn, path_ref(ref), writes.decode_body(raw, writes.ActorPatch))
        return _json(await writes.get_actor(conn, actor_id))

    return await _write(request, work, lambda conn: writes.locked_actor(conn, path_ref(ref)))


@post("/v1/locations", **_WRITE, operation_id="createLocation", summary="Create a location", status_code=201)
async def create_location(request: Request[Any, Any, Any]) -> Response[bytes]:
    async def work(conn: asyncpg.Connection, raw: bytes) -> idempotency.Answer:
        location_id = await writes.create_location(conn, writes.decode_body(raw, writes.LocationCreate))
        return _json(await writes.get_location(conn, location_id), 201, f"/v1/locations/{location_id}")

    return await _write(request, work)


@patch("/v1/locations/{ref:str}", **_WRITE, operation_id="updateLocation", summary="Change a location's given fields")
async def update_location(request: Request[Any, Any, Any], ref: FromPath[str]) -> Response[bytes]:
    async def work(conn: asyncpg.Connection, raw: bytes) -> idempotency.Answer:
        location_id = await writes.update_location(conn, path_ref(ref), writes.decode_body(raw, writes.LocationPatch))
        return _json(await writes.get_location(conn, location_id))

    return await _write(request, work, lambda conn: writes.locked_location(conn, path_ref(ref)))


@post("/v1/sources", **_WRITE, operation_id="createSource", summary="Create a source", status_code=201)
async def create_source(request: Request[Any, Any, Any]) -> Response[bytes]:
    async def work(conn: asyncpg.Connection, raw: bytes) -> idempotency.Answer:
        source_id = await writes.create_source(conn, writes.decode_body(raw, writes.SourceCreate))
        return _json(await writes.get_source(conn, source_id), 201, f"/v1/sources/{source_id}")

    return await _write(request, work)


@patch("/v1/sources/{ref:str}", **_WRITE, operation_id="updateSource", summary="Change a source's given fields")
async def update_source(request: Request[Any, Any, Any], ref: FromPath[str]) -> Response[bytes]:
    async def work(conn: asyncpg.Connection, raw: bytes) -> idempotency.Answer:
        source_id = await writes.update_source(conn, path_ref(ref), writes.decode_body(raw, writes.SourcePatch))
        return _json(await writes.get_source(conn, source_id))

    return await _write(request, work, lambda conn: writes.locked_source(conn, path_ref(ref)))


@post(
    "/v1/imports",
    **_WRITE,
    operation_id="importPage",
    summary="Import a live-blog page (the body is the page as text), as `sitrep import` does",
    status_code=201,
)
async def import_page(request: Request[Any, Any, Any]) -> Response[bytes]:
    async def work(conn: asyncpg.Connection, raw: bytes) -> idempotency.Answer:
        result = await writes.import_page_text(conn, raw)
        return _json(result, 201, f"/v1/blogs/{result.blog_id}")

    return await _write(request, work)


# what each write reads and answers, for the OpenAPI document (api/docs.py): the handlers decode
# the raw body themselves, so Litestar cannot see these types. None: the body is text.
# operationId -> (request body: a Struct as JSON, `str` for a page as text, None for none; answer)
DOCUMENTED_WRITES: dict[str, tuple[type[msgspec.Struct] | type[str] | None, type[msgspec.Struct]]] = {
    "createBlog": (writes.BlogCreate, rows.Blog),
    "createEntry": (writes.EntryCreate, rows.Entry),
    "updateEntry": (writes.EntryPatch, rows.Entry),
    "createActor": (writes.ActorCreate, rows.Actor),
    "updateActor": (writes.ActorPatch, rows.Actor),
    "createLocation": (writes.LocationCreate, rows.Location),
    "updateLocation": (writes.LocationPatch, rows.Location),
    "createSource": (writes.SourceCreate, rows.Source),
    "updateSource": (writes.SourcePatch, rows.Source),
    "importPage": (str, ImportResult),
}

write_routes = [
    create_blog,
    create_entry,
    update_entry,
    delete_entry,
    create_actor,
    update_actor,
    create_location,
    update_location,
    create_source,
    update_source,
    import_page,
]
