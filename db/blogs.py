"""Blogs: newest first, filtered by status and title, and one blog, each with its entry count."""

from __future__ import annotations

from typing import Literal

import asyncpg

from db import catalog
from db.errors import NotFound
from db.filters import BlogFilter, Ref
from db.page import Page, Paged
from db.rows import Blog
from db.where import Params

BlogSort = Literal["-published_at"]
SOURCE = "blogs b LEFT JOIN blog_entry_counts n ON n.blog_id = b.id"
COLUMNS = (
    "b.id, b.slug, b.title, b.standfirst, b.status, b.authors, b.summary, b.hero_image, b.source_url,"
    " b.published_at, b.created_at, b.updated_at,"
    " COALESCE(n.entry_count, 0) AS entry_count"
)


def conditions(f: BlogFilter, p: Params) -> list[str]:
    c = []
    if f.status:
        c.append(f"b.status = ANY({p.add(list(f.status))}::text[])")
    if f.q:
        # words of the title, any order: "crimea bridge" finds "Bridge to Crimea hit"
        c.append(f"to_tsvector('english', b.title) @@ websearch_to_tsquery('english', {p.add(f.q)}::text)")
    return c


async def list_blogs(
    conn: asyncpg.Connection, filter: BlogFilter, sort: BlogSort = "-published_at", page: Page | None = None
) -> Paged[Blog]:
    p = Params()
    conds = conditions(filter, p)
    return await catalog.list_rows(
        conn, Blog, table="b", source=SOURCE, columns=COLUMNS, conds=conds, p=p, sort=sort, page=page or Page()
    )


async def count_blogs(conn: asyncpg.Connection, filter: BlogFilter) -> int:
    p = Params()
    return await catalog.count_rows(conn, source=SOURCE, conds=conditions(filter, p), values=p.values)


async def get_blog(conn: asyncpg.Connection, ref: Ref) -> Blog:
    sql = f"SELECT {COLUMNS} FROM {SOURCE} WHERE b.id = $1::bigint OR b.slug = $2::text"
    found: Blog | None = await catalog.get_one(conn, Blog, sql=sql, ref=ref)
    if found is None:
        raise NotFound(f"there is no blog {ref!r}", field="id")
    return found
