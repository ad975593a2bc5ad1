"""Actors: filtered keyset lists (by name or by how many entries link them) and one actor."""

from __future__ import annotations

import asyncpg

from db import catalog
from db.errors import NotFound
from db.filters import ActorFilter, CatalogSort, Ref
from db.page import Page, Paged
from db.rows import Actor
from db.where import Params

SOURCE = "actors a LEFT JOIN actor_entry_counts n ON n.actor_id = a.id"
COLUMNS = (
    "a.id, a.slug, a.name, a.kind, a.aliases, a.country, a.description,"
    " COALESCE(n.entry_count, 0) AS entry_count, a.created_at, a.updated_at"
)


def conditions(f: ActorFilter, p: Params) -> list[str]:
    c = []
    if f.q:
        c.append(catalog.name_or_alias("a", p, f.q))
    if f.kind:
        c.append(f"a.kind = ANY({p.add(list(f.kind))}::text[])")
    if f.country:
        c.append(f"a.country = ANY({p.add(list(f.country))}::text[])")
    return c


async def list_actors(
    conn: asyncpg.Connection, filter: ActorFilter, sort: CatalogSort = "name", page: Page | None = None
) -> Paged[Actor]:
    p = Params()
    conds = conditions(filter, p)
    return await catalog.list_rows(
        conn, Actor, table="a", source=SOURCE, columns=COLUMNS, conds=conds, p=p, sort=sort, page=page or Page()
    )


async def count_actors(conn: asyncpg.Connection, filter: ActorFilter) -> int:
    p = Params()
    return await catalog.count_rows(conn, source=SOURCE, conds=conditions(filter, p), values=p.values)


async def get_actor(conn: asyncpg.Connection, ref: Ref) -> Actor:
    sql = f"SELECT {COLUMNS} FROM {SOURCE} WHERE a.id = $1::bigint OR a.slug = $2::text"
    found: Actor | None = await catalog.get_one(conn, Actor, sql=sql, ref=ref)
    if found is None:
        raise NotFound(f"there is no actor {ref!r}", field="id")
    return found
