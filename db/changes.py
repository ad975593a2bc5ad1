"""The change feed: what was created, updated and deleted, in commit order (see 0030_changes.sql)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import asyncpg
import msgspec

from db.sql import query

CHANNEL = "sitrep_changes"  # NOTIFY payload: the last seq a transaction committed
Entity = Literal["blog", "entry", "actor", "location", "source"]
Op = Literal["create", "update", "delete"]


class Change(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    entity: Entity
    id: int
    op: Op
    at: datetime
    data: dict[str, Any] | None  # the state at commit; for a delete, the last state


def _change(row: asyncpg.Record) -> Change:
    return Change(
        seq=row["seq"], entity=row["entity"], id=row["entity_id"], op=row["op"], at=row["at"], data=row["data"]
    )


async def list_changes(conn: asyncpg.Connection, *, after: int, limit: int) -> list[Change]:
    return [_change(r) for r in await conn.fetch(query("list_changes"), after, limit)]


async def list_entry_changes(conn: asyncpg.Connection, *, after: int, limit: int) -> list[Change]:
    return [_change(r) for r in await conn.fetch(query("list_entry_changes"), after, limit)]


async def last_seq(conn: asyncpg.Connection) -> int:
    value: int = await conn.fetchval(query("last_change_seq"))
    return value


def next_after(changes: Sequence[Change], after: int) -> int:
    """Where the next page starts: the last seq returned, or `after` itself when none were."""
    return changes[-1].seq if changes else after
