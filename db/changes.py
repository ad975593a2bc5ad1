"""The change feed: what was created, updated and deleted, in commit order (see 0030_changes.sql)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
import msgspec

from db import rows
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


# the timestamp columns of blogs, actors, locations and sources (0001_core.sql)
_TIMESTAMPS = ("published_at", "created_at", "updated_at")


def _rfc3339(value: str) -> str:
    """PostgreSQL's JSON timestamp text ('2023-09-13T19:33:00+00:00') as REST writes it ('…Z')."""
    moment: str = msgspec.to_builtins(datetime.fromisoformat(value).astimezone(UTC))
    return moment


def rest_shape(entity: str, data: dict[str, Any] | None) -> dict[str, Any] | None:
    """The log's JSON as the API renders it: an entry exactly as GET /v1/entries/{id} answers
    (the log stores PostgreSQL's timestamp text, and rows written before 0031 too); for the
    other entities their row, timestamps in the same RFC 3339 form."""
    if data is None:
        return None
    if entity == "entry":
        entry: dict[str, Any] = msgspec.to_builtins(msgspec.convert(data, rows.Entry))
        return entry
    return {k: _rfc3339(v) if k in _TIMESTAMPS and isinstance(v, str) else v for k, v in data.items()}


def _change(row: asyncpg.Record) -> Change:
    return Change(
        seq=row["seq"],
        entity=row["entity"],
        id=row["entity_id"],
        op=row["op"],
        at=row["at"].astimezone(UTC),
        data=rest_shape(row["entity"], row["data"]),
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
