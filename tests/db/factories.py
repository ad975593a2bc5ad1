"""Small fixtures built with plain SQL: blogs, actors, locations (with parents), sources, entries."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

T0 = datetime(2023, 9, 13, 6, 0, tzinfo=UTC)
_seq = itertools.count(1)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def blog(conn: asyncpg.Connection, slug: str | None = None, **kw: Any) -> int:
    slug = slug or f"blog-{next(_seq)}"
    return int(
        await conn.fetchval(
            "INSERT INTO blogs (slug, title, status, published_at) VALUES ($1, $2, $3, $4) RETURNING id",
            slug,
            kw.get("title", slug.replace("-", " ").title()),
            kw.get("status", "live"),
            kw.get("published_at", T0),
        )
    )


async def actor(
    conn: asyncpg.Connection,
    slug: str,
    name: str | None = None,
    kind: str = "person",
    aliases: list[str] | None = None,
    country: str | None = None,
) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO actors (slug, name, kind, aliases, country) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            slug,
            name or slug.replace("-", " ").title(),
            kind,
            aliases or [],
            country,
        )
    )


async def location(
    conn: asyncpg.Connection,
    slug: str,
    lat: float,
    lon: float,
    kind: str = "city",
    parent: int | None = None,
    name: str | None = None,
    country: str | None = None,
    aliases: list[str] | None = None,
) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO locations (slug, name, kind, parent_id, latitude, longitude, country, aliases)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            slug,
            name or slug.replace("-", " ").title(),
            kind,
            parent,
            lat,
            lon,
            country,
            aliases or [],
        )
    )


async def source(conn: asyncpg.Connection, slug: str, kind: str = "agency", name: str | None = None) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO sources (slug, name, kind) VALUES ($1, $2, $3) RETURNING id",
            slug,
            name or slug.upper(),
            kind,
        )
    )


async def entry(
    conn: asyncpg.Connection,
    blog_id: int,
    published_at: datetime,
    headline: str = "An update",
    body: list[str] | None = None,
    kind: str = "post",
    actors: dict[int, str] | list[int] = (),  # type: ignore[assignment]
    locations: list[int] = (),  # type: ignore[assignment]
    sources: list[int] = (),  # type: ignore[assignment]
    media: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> int:
    entry_id = int(
        await conn.fetchval(
            "INSERT INTO entries (blog_id, published_at, headline, body, kind) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            blog_id,
            published_at,
            headline,
            body or [],
            kind,
        )
    )
    roles = actors if isinstance(actors, dict) else dict.fromkeys(actors, "mentioned")
    if roles:
        await conn.executemany(
            "INSERT INTO entry_actors (entry_id, actor_id, role, published_at) VALUES ($1, $2, $3, $4)",
            [(entry_id, a, r, published_at) for a, r in roles.items()],
        )
    if locations:
        await conn.executemany(
            "INSERT INTO entry_locations (entry_id, location_id, published_at) VALUES ($1, $2, $3)",
            [(entry_id, loc, published_at) for loc in locations],
        )
    if sources:
        await conn.executemany(
            "INSERT INTO entry_sources (entry_id, source_id, published_at) VALUES ($1, $2, $3)",
            [(entry_id, s, published_at) for s in sources],
        )
    for position, m in enumerate(media):
        await conn.execute(
            "INSERT INTO media (entry_id, position, kind, url, caption, credit, embed_author, embed_handle)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            entry_id,
            position,
            m.get("kind", "image"),
            m.get("url"),
            m.get("caption"),
            m.get("credit"),
            m.get("embed_author"),
            m.get("embed_handle"),
        )
    return entry_id
