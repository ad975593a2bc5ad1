"""Keyset lists over the catalog tables (blogs, actors, locations, sources), shared by their modules.

Each module gives a FROM clause, its columns and the conditions its filter chose (fixed
fragments with `$n` values); this one adds the keyset bound, the order and the limit. These
tables are small (thousands of rows), so a sort over the filtered rows is cheap; the entry
counts come from the trigger-kept count tables (migration 0010/0011), not from counting links.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from db.page import Key, Page, Paged, paged
from db.rows import from_record
from db.where import Params

# sort name -> (SQL of the sort value, descending?)
SORTS: dict[str, tuple[str, bool]] = {
    "name": ("lower({t}.name)", False),
    "-entry_count": ("COALESCE(n.entry_count, 0)", True),
    "-published_at": ("{t}.published_at", True),
}


def like_prefix(q: str) -> str:
    """`q` as a LIKE prefix pattern, its wildcards escaped (lowered in SQL, like the columns)."""
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def name_or_alias(t: str, p: Params, q: str) -> str:
    pattern = p.add(like_prefix(q))
    return (
        f"(lower({t}.name) LIKE lower({pattern}::text)"
        f" OR EXISTS (SELECT 1 FROM unnest({t}.aliases) AS alias WHERE lower(alias) LIKE lower({pattern}::text)))"
    )


async def list_rows(
    conn: asyncpg.Connection,
    cls: type[msgspec.Struct],
    *,
    table: str,
    source: str,
    columns: str,
    conds: list[str],
    p: Params,
    sort: str,
    page: Page,
) -> Paged[Any]:
    """One page of `cls` rows from `source` (which names the table `table`) under `conds`.

    Every value in `p` so far belongs to `conds` (columns may reuse their placeholders).
    """
    cond_values = len(p.values)
    if sort not in SORTS:
        raise ValueError(f"unknown catalog sort {sort!r}")
    expr, desc = SORTS[sort]
    expr = expr.format(t=table)
    order_desc = desc != (page.direction == "backward")
    direction = "DESC" if order_desc else "ASC"
    bounds = list(conds)
    if page.after is not None:
        bounds.append(
            f"({expr}, {table}.id) {'<' if desc else '>'} ({p.add(page.after[0])}, {p.add(page.after[1])}::bigint)"
        )
    if page.before is not None:
        bounds.append(
            f"({expr}, {table}.id) {'>' if desc else '<'} ({p.add(page.before[0])}, {p.add(page.before[1])}::bigint)"
        )
    sql = (
        f"SELECT {columns}, {expr} AS sort_value FROM {source}"
        f" WHERE {' AND '.join(bounds) or 'TRUE'}"
        f" ORDER BY {expr} {direction}, {table}.id {direction} LIMIT {int(page.limit) + 1}"
    )
    records = await conn.fetch(sql, *p.values)
    rows = [from_record(cls, r) for r in records]
    keys: list[Key] = [(r["sort_value"], r["id"]) for r in records]
    total = None
    if page.count:
        total = await count_rows(conn, source=source, conds=conds, values=p.values[:cond_values])
    return paged(rows, keys, page, total)


async def count_rows(conn: asyncpg.Connection, *, source: str, conds: list[str], values: list[Any]) -> int:
    sql = f"SELECT count(*) FROM {source} WHERE {' AND '.join(conds) or 'TRUE'}"
    return int(await conn.fetchval(sql, *values))


async def get_one(conn: asyncpg.Connection, cls: type[msgspec.Struct], *, sql: str, ref: int | str) -> Any:
    """The row whose id (an int ref) or slug (a str ref) is `ref`, or None."""
    record = await conn.fetchrow(sql, ref if isinstance(ref, int) else None, ref if isinstance(ref, str) else None)
    return None if record is None else from_record(cls, record)
