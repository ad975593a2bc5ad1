"""API key administration at /v1/keys, `admin` scope: list, create, read, revoke, rotate.

The list is paged like every other (`limit`, `cursor`, `count`; `{"data", "page"}` and a
`Link: rel="next"` header), oldest key first; its cursors carry the key's text id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.datastructures import ResponseHeader
from litestar.params import FromPath, JSONBody
from litestar.response import Response

from api import formats
from api import params as p
from api.auth import Keyring, require_scope, services_of
from api.controllers.listing import PageInfo, cursors, list_response, page_info
from db import keys as keydb


class KeyOut(msgspec.Struct, kw_only=True):
    id: str
    name: str
    owner: str | None
    scopes: list[str]
    rate: int
    origins: list[str]
    state: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    rotated_at: datetime | None
    last_used_at: datetime | None


class NewKeyOut(KeyOut, kw_only=True):
    key: str  # the token: shown here once, never again


class KeyList(msgspec.Struct):
    data: list[KeyOut]
    page: PageInfo


class KeyIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    scopes: list[str] = msgspec.field(default_factory=lambda: ["read"])
    rate: int = 600
    owner: str | None = None
    expires_at: datetime | None = None
    origins: list[str] = msgspec.field(default_factory=list)


def key_out(row: keydb.KeyRow) -> KeyOut:
    return KeyOut(
        id=row.id,
        name=row.name,
        owner=row.owner,
        scopes=list(row.scopes),
        rate=row.rate,
        origins=list(row.origins),
        state=row.state(datetime.now(UTC)),
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        rotated_at=row.rotated_at,
        last_used_at=row.last_used_at,
    )


def new_key_out(row: keydb.KeyRow, token: str) -> NewKeyOut:
    return NewKeyOut(**msgspec.structs.asdict(key_out(row)), key=token)


def _pool(request: Request[Any, Any, Any]) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


def _pepper(request: Request[Any, Any, Any]) -> str:
    return services_of(request).pepper


def _keyring(request: Request[Any, Any, Any]) -> Keyring:
    return services_of(request).keyring


class KeysController(Controller):
    path = "/v1/keys"
    tags = ["keys"]
    guards = [require_scope("admin")]

    @get("/", operation_id="listKeys", summary="Every API key, oldest first, a page at a time (never a secret)")
    async def list_keys(
        self,
        request: Request[Any, Any, Any],
        limit: p.LimitParam = None,
        cursor: p.CursorParam = None,
        count: p.CountParam = None,
    ) -> Response[KeyList]:
        query = p.Query(request)
        page = query.page(cursors(request), sort=keydb.SORT, filter=None, value_type=datetime, id_type=str)
        query.done()
        async with _pool(request).acquire() as conn:
            found = await keydb.list_keys_page(conn, page)
        info = page_info(request, found, page.limit, sort=keydb.SORT, filter=None)
        return list_response(request, KeyList(data=[key_out(row) for row in found.rows], page=info), info)

    @post(
        "/",
        operation_id="createKey",
        summary="Create a key; the answer's `key` is shown this once",
        response_headers=[ResponseHeader(name="Location", description="The key's URL", documentation_only=True)],
    )
    async def create_key(self, request: Request[Any, Any, Any], data: JSONBody[KeyIn]) -> Response[NewKeyOut]:
        async with _pool(request).acquire() as conn:
            row, token = await keydb.create_key(
                conn,
                _pepper(request),
                name=data.name,
                scopes=data.scopes,
                rate=data.rate,
                owner=data.owner,
                expires_at=data.expires_at,
                origins=data.origins,
            )
        created = new_key_out(row, token)
        return Response(created, status_code=201, headers={"Location": f"/v1/keys/{created.id}"})

    @get("/{key_id:str}", operation_id="getKey", summary="One API key (never its secret)")
    async def get_key(self, request: Request[Any, Any, Any], key_id: FromPath[str]) -> KeyOut:
        p.Query(request).done()
        formats.single_object(request)
        async with _pool(request).acquire() as conn:
            return key_out(await keydb.get_key(conn, key_id))

    @delete(
        "/{key_id:str}", operation_id="revokeKey", summary="Revoke a key: refused on every instance within a second"
    )
    async def revoke_key(self, request: Request[Any, Any, Any], key_id: FromPath[str]) -> None:
        async with _pool(request).acquire() as conn:
            await keydb.revoke_key(conn, key_id)
        _keyring(request).forget(key_id)

    @post(
        "/{key_id:str}/rotate",
        operation_id="rotateKey",
        status_code=200,
        summary="A new secret for a key; the old one stops working",
    )
    async def rotate_key(self, request: Request[Any, Any, Any], key_id: FromPath[str]) -> NewKeyOut:
        async with _pool(request).acquire() as conn:
            row, token = await keydb.rotate_key(conn, _pepper(request), key_id)
        _keyring(request).forget(key_id)
        return new_key_out(row, token)
