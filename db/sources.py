"""Sources: filtered keyset lists (by name or by how many entries cite them) and one source."""

from __future__ import annotations

import asyncpg

from db import catalog
from db.errors import NotFound
from db.filters import CatalogSort, Ref, SourceFilter
from db.page import Page, Paged
from db.rows import Source
from db.where import Params

SOURCE = "sources s LEFT JOIN source_entry_counts n ON n.source_id = s.id"
COLUMNS = (
    "s.id, s.slug, s.name, s.kind, s.url, s.aliases, s.description,"
    " COALESCE(n.entry_count, 0) AS entry_count, s.created_at, s.updated_at"
)


def conditions(f: SourceFilter, p: Params) -> list[str]:
    c = []
    if f.q:
        c.append(catalog.name_or_alias("s", p, f.q))
    if f.kind:
        c.append(f"s.kind = ANY({p.add(list(f.kind))}::text[])")
    return c


async def list_sources(
    conn: asyncpg.Connection, filter: SourceFilter, sort: CatalogSort = "name", page: Page | None = None
) -> Paged[Source]:
    p = Params()
    conds = conditions(filter, p)
    return await catalog.list_rows(
        conn, Source, table="s", source=SOURCE, columns=COLUMNS, conds=conds, p=p, sort=sort, page=page or Page()
    )


async def count_sources(conn: asyncpg.Connection, filter: SourceFilter) -> int:
    p = Params()
    return await catalog.count_rows(conn, source=SOURCE, conds=conditions(filter, p), values=p.values)


async def get_source(conn: asyncpg.Connection, ref: Ref) -> Source:
    sql = f"SELECT {COLUMNS} FROM {SOURCE} WHERE s.id = $1::bigint OR s.slug = $2::text"
    found: Source | None = await catalog.get_one(conn, Source, sql=sql, ref=ref)
    if found is None:
        raise NotFound(f"there is no source {ref!r}", field="id")
    return found
