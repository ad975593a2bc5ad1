"""An editor's review of the actors the linker discovered: list, confirm, rename, merge.

A discovered actor links entries as soon as it is found (db/ingest/store.py); an editor then
confirms it, gives it its proper name, or merges it into the actor it really is (a surname
found alone, an acronym, a spelling), which moves its links and keeps its names as aliases,
so later imports and relinks find the merged actor under every name.
"""

from __future__ import annotations

import datetime as dt

import asyncpg
import msgspec

from db.errors import Conflict, InvalidInput, NotFound
from db.ingest.page import slugify
from db.sql import query


class Discovered(msgspec.Struct, frozen=True):
    slug: str
    name: str
    kind: str
    country: str | None
    aliases: list[str]
    status: str
    discovered_by: str
    discovered_at: dt.datetime
    entries: int


async def discovered(conn: asyncpg.Connection, status: str | None = None, limit: int = 100) -> list[Discovered]:
    if status not in (None, "discovered", "confirmed"):
        raise InvalidInput("status: one of discovered, confirmed", field="status")
    return [Discovered(**dict(r)) for r in await conn.fetch(query("curate_discovered"), status, limit)]


async def _actor(conn: asyncpg.Connection, slug: str) -> asyncpg.Record:
    row = await conn.fetchrow(query("curate_actor"), slug)
    if row is None:
        raise NotFound(f"no actor {slug!r}", field="slug")
    return row


async def confirm(conn: asyncpg.Connection, slug: str) -> None:
    async with conn.transaction():
        row = await _actor(conn, slug)
        if row["status"] is None:
            raise InvalidInput(f"{slug!r} was not discovered: it comes from the gazetteer or the API", field="slug")
        await conn.execute(query("curate_confirm"), row["id"])


async def rename(conn: asyncpg.Connection, slug: str, name: str, new_slug: str | None = None) -> str:
    """Rename an actor (its slug follows the name unless given); the old name stays an alias."""
    name = " ".join(name.split())
    if not 1 <= len(name) <= 300:
        raise InvalidInput("name: 1 to 300 characters", field="name")
    target = new_slug or slugify(name)
    async with conn.transaction():
        row = await _actor(conn, slug)
        if target != slug and await conn.fetchval("SELECT 1 FROM actors WHERE slug = $1", target):
            raise Conflict(f"an actor {target!r} exists already: merge into it instead", field="slug")
        try:
            await conn.execute(query("curate_rename"), row["id"], name, target)
        except asyncpg.CheckViolationError as exc:
            raise InvalidInput(f"slug: {target!r} is not a slug (a-z, 0-9 and '-')", field="slug") from exc
    return target


async def merge(conn: asyncpg.Connection, source: str, into: str) -> int:
    """Merge actor `source` into `into`: its links move, its names become aliases; entries changed."""
    if source == into:
        raise InvalidInput("an actor cannot be merged into itself", field="into")
    async with conn.transaction():
        gone = await _actor(conn, source)
        kept = await _actor(conn, into)
        entries = [r["entry_id"] for r in await conn.fetch(query("curate_move_links"), gone["id"], kept["id"])]
        await conn.execute(query("curate_absorb"), gone["id"], kept["id"])
        if entries:
            await conn.execute(query("curate_touch_entries"), entries)
    return len(entries)
