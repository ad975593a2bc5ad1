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


Ref = int | str  # an actor's id or slug


class Rename(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The body of a rename: the new name, and the new slug (made from the name when absent)."""

    name: str
    slug: str | None = None


class Merge(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The body of a merge: the actor (id or slug) that takes the other's links and names."""

    into: int | str


async def _actor(conn: asyncpg.Connection, ref: Ref, field: str = "slug") -> asyncpg.Record:
    ident, slug = (ref, None) if isinstance(ref, int) else (None, ref)
    row = await conn.fetchrow(query("curate_actor"), ident, slug)
    if row is None:
        raise NotFound(f"no actor {ref!r}", field=field)
    return row


async def confirm(conn: asyncpg.Connection, ref: Ref) -> int:
    """Confirm a discovered actor; its id."""
    async with conn.transaction():
        row = await _actor(conn, ref)
        if row["status"] is None:
            raise InvalidInput(f"{ref!r} was not discovered: it comes from the gazetteer or the API", field="slug")
        await conn.execute(query("curate_confirm"), row["id"])
    return int(row["id"])


async def rename(conn: asyncpg.Connection, ref: Ref, name: str, new_slug: str | None = None) -> tuple[int, str]:
    """Rename an actor (its slug follows the name unless given); the old name stays an alias.
    Returns its id and slug."""
    name = " ".join(name.split())
    if not 1 <= len(name) <= 300:
        raise InvalidInput("name: 1 to 300 characters", field="name")
    target = new_slug or slugify(name)
    async with conn.transaction():
        row = await _actor(conn, ref)
        if target != row["slug"] and await conn.fetchval(query("curate_slug_taken"), target):
            raise Conflict(f"an actor {target!r} exists already: merge into it instead", field="slug")
        try:
            await conn.execute(query("curate_rename"), row["id"], name, target)
        except asyncpg.CheckViolationError as exc:
            raise InvalidInput(f"slug: {target!r} is not a slug (a-z, 0-9 and '-')", field="slug") from exc
    return int(row["id"]), target


async def merge(conn: asyncpg.Connection, source: Ref, into: Ref) -> tuple[int, int]:
    """Merge actor `source` into `into`: its links move, its names become aliases.
    Returns the kept actor's id and how many entries changed."""
    async with conn.transaction():
        gone = await _actor(conn, source)
        kept = await _actor(conn, into, "into")
        if gone["id"] == kept["id"]:
            raise InvalidInput("an actor cannot be merged into itself", field="into")
        entries = [r["entry_id"] for r in await conn.fetch(query("curate_move_links"), gone["id"], kept["id"])]
        await conn.execute(query("curate_absorb"), gone["id"], kept["id"])
        if entries:
            await conn.execute(query("curate_touch_entries"), entries)
    return int(kept["id"]), len(entries)
