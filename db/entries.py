"""Entries: filtered keyset lists, one entry, and their relations fetched in batches.

`list_entries` answers bare rows (`EntryRow`); `with_relations` adds blog, actors, locations,
sources and media in one query whatever the number of rows. GraphQL uses the batch
functions (`actors_of`, `locations_of`, …) from its loaders; REST uses `with_relations`.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import nullcontext
from datetime import datetime

import asyncpg

from db import where
from db.errors import NotFound
from db.filters import EntryFilter, EntrySort
from db.page import Key, Page, Paged, paged
from db.rows import ActorRef, BlogRef, Embed, Entry, EntryActor, EntryRow, LocationRef, Media, SourceRef
from db.sql import query
from db.timeline import count_plan

SORT_KEY_TYPE = datetime  # the type of every entry sort's key (published_at or updated_at)


def sort_key(row: EntryRow, sort: EntrySort) -> Key:
    return (row.updated_at if sort.lstrip("-") == "updated_at" else row.published_at, row.id)


def _entry_row(r: asyncpg.Record) -> EntryRow:
    """`from_record(EntryRow, r)` spelled out: the hot path of every list (several times quicker)."""
    return EntryRow(
        id=r["id"],
        blog_id=r["blog_id"],
        published_at=r["published_at"],
        updated_at=r["updated_at"],
        created_at=r["created_at"],
        kind=r["kind"],
        headline=r["headline"],
        body=r["body"],
    )


async def list_entries(
    conn: asyncpg.Connection,
    filter: EntryFilter,
    sort: EntrySort = "-published_at",
    page: Page | None = None,
) -> Paged[EntryRow]:
    """One page of the entries matching `filter`, in `sort` order.

    NotFound (field blog/actor/location/source) if the filter names something that does not exist.
    """
    page = page or Page()
    one_statement = not page.count and where.lists_in_one_statement(filter)  # then no BEGIN/COMMIT round trips
    snapshot = (
        nullcontext() if one_statement else where.read_snapshot(conn, custom_plan=where.needs_custom_plan(filter))
    )
    async with snapshot:
        resolved = await where.rarest_actor_first(conn, await where.resolve_entry_filter(conn, filter))
        in_box = await where.bbox_locations(conn, resolved)
        if in_box == 0:  # nothing lies in the box: no entry can match, and no scan should find that out
            return paged([], [], page, 0 if page.count else None)
        drive_locations = await where.location_driving_is_small(conn, resolved)
        sql, values = where.list_entries_sql(
            resolved, sort, page, drive_locations=drive_locations, drive_bbox=where.driving_is_small(in_box)
        )
        rows = [_entry_row(r) for r in await conn.fetch(sql, *values)]
        total = None
        if page.count:
            count_sql, count_values = count_plan(resolved)
            total = int(await conn.fetchval(count_sql, *count_values))
    return paged(rows, [sort_key(r, sort) for r in rows], page, total)


async def get_entry(conn: asyncpg.Connection, entry_id: int) -> Entry:
    async with where.read_snapshot(conn):
        record = await conn.fetchrow(query("get_entry"), entry_id)
        if record is None:
            raise NotFound(f"there is no entry {entry_id}", field="id")
        (entry,) = await with_relations(conn, [_entry_row(record)])
    return entry


async def with_relations(conn: asyncpg.Connection, rows: list[EntryRow]) -> list[Entry]:
    """The rows with their blog and links: one query for any number of rows."""
    blogs, actors, locations, sources, media = await _links_of(
        conn, [r.id for r in rows], list({r.blog_id for r in rows})
    )
    return [
        Entry(
            id=r.id,
            blog=blogs[r.blog_id],
            published_at=r.published_at,
            updated_at=r.updated_at,
            created_at=r.created_at,
            kind=r.kind,
            headline=r.headline,
            body=r.body,
            actors=actors.get(r.id, []),
            locations=locations.get(r.id, []),
            sources=sources.get(r.id, []),
            media=media.get(r.id, []),
        )
        for r in rows
    ]


async def _links_of(
    conn: asyncpg.Connection, entry_ids: list[int], blog_ids: list[int]
) -> tuple[
    dict[int, BlogRef],
    dict[int, list[EntryActor]],
    dict[int, list[LocationRef]],
    dict[int, list[SourceRef]],
    dict[int, list[Media]],
]:
    """`blogs_of`, `actors_of`, `locations_of`, `sources_of` and `media_of` in one round trip.

    The same values in the same order (the `entry_links` query sorts each list as those do).
    """
    blogs: dict[int, BlogRef] = {}
    actors: dict[int, list[EntryActor]] = defaultdict(list)
    locations: dict[int, list[LocationRef]] = defaultdict(list)
    sources: dict[int, list[SourceRef]] = defaultdict(list)
    media: dict[int, list[Media]] = defaultdict(list)
    if not entry_ids and not blog_ids:
        return blogs, actors, locations, sources, media
    for r in await conn.fetch(query("entry_links"), entry_ids, blog_ids):
        link = r["link"]
        if link == "a":
            actor = ActorRef(id=r["id"], slug=r["slug"], name=r["name"], kind=r["kind"], country=r["country"])
            actors[r["entry_id"]].append(EntryActor(role=r["role"], actor=actor))
        elif link == "l":
            locations[r["entry_id"]].append(
                LocationRef(
                    id=r["id"],
                    slug=r["slug"],
                    name=r["name"],
                    kind=r["kind"],
                    country=r["country"],
                    latitude=r["latitude"],
                    longitude=r["longitude"],
                    parent_id=r["parent_id"],
                )
            )
        elif link == "s":
            sources[r["entry_id"]].append(SourceRef(id=r["id"], slug=r["slug"], name=r["name"], kind=r["kind"]))
        elif link == "m":
            media[r["entry_id"]].append(_media(r))
        else:
            blogs[r["id"]] = BlogRef(id=r["id"], slug=r["slug"], title=r["name"])
    return blogs, actors, locations, sources, media


def _media(r: asyncpg.Record) -> Media:
    author, handle, day, text, url = (
        r["embed_author"],
        r["embed_handle"],
        r["embed_date"],
        r["embed_text"],
        r["embed_url"],
    )
    embed = None
    if author is not None or handle is not None or day is not None or text is not None or url is not None:
        embed = Embed(author=author, handle=handle, date=day, text=text, url=url)
    return Media(
        position=r["position"],
        kind=r["kind"],
        url=r["url"],
        caption=r["caption"],
        credit=r["credit"],
        alt_text=r["alt_text"],
        embed=embed,
    )


async def blogs_of(conn: asyncpg.Connection, blog_ids: list[int]) -> dict[int, BlogRef]:
    if not blog_ids:
        return {}
    records = await conn.fetch(query("entry_blogs"), blog_ids)
    return {r["id"]: BlogRef(id=r["id"], slug=r["slug"], title=r["title"]) for r in records}


async def actors_of(conn: asyncpg.Connection, entry_ids: list[int]) -> dict[int, list[EntryActor]]:
    out: dict[int, list[EntryActor]] = defaultdict(list)
    if entry_ids:
        for r in await conn.fetch(query("entry_actors"), entry_ids):
            actor = ActorRef(id=r["id"], slug=r["slug"], name=r["name"], kind=r["kind"], country=r["country"])
            out[r["entry_id"]].append(EntryActor(role=r["role"], actor=actor))
    return out


async def locations_of(conn: asyncpg.Connection, entry_ids: list[int]) -> dict[int, list[LocationRef]]:
    out: dict[int, list[LocationRef]] = defaultdict(list)
    if entry_ids:
        for r in await conn.fetch(query("entry_locations"), entry_ids):
            out[r["entry_id"]].append(
                LocationRef(
                    id=r["id"],
                    slug=r["slug"],
                    name=r["name"],
                    kind=r["kind"],
                    country=r["country"],
                    latitude=r["latitude"],
                    longitude=r["longitude"],
                    parent_id=r["parent_id"],
                )
            )
    return out


async def sources_of(conn: asyncpg.Connection, entry_ids: list[int]) -> dict[int, list[SourceRef]]:
    out: dict[int, list[SourceRef]] = defaultdict(list)
    if entry_ids:
        for r in await conn.fetch(query("entry_sources"), entry_ids):
            out[r["entry_id"]].append(SourceRef(id=r["id"], slug=r["slug"], name=r["name"], kind=r["kind"]))
    return out


async def media_of(conn: asyncpg.Connection, entry_ids: list[int]) -> dict[int, list[Media]]:
    out: dict[int, list[Media]] = defaultdict(list)
    if entry_ids:
        for r in await conn.fetch(query("entry_media"), entry_ids):
            out[r["entry_id"]].append(_media(r))
    return out
