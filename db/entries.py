"""Entries: filtered keyset lists, one entry, and entries with their links.

`list_entries` answers bare rows (`EntryRow`: GraphQL resolves links level by level, db/graph.py).
REST entries carry their blog, actors, locations, sources and media: `list_linked` (a page),
`linked_by_ids` (the entries a cache lacks, an export's chunk) and `get_entry` read each entry
with its links' ids in one statement and take the references from `db.refs.Refs`.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import AbstractAsyncContextManager, nullcontext, suppress
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from db import timeline, where
from db.errors import NotFound
from db.filters import EntryFilter, EntrySort
from db.page import Key, Page, Paged, paged
from db.pool import plans_custom
from db.refs import Refs
from db.rows import Embed, Entry, EntryRow, Media
from db.sql import query
from db.where import ENTRY_COLUMNS

SORT_KEY_TYPE = datetime  # the type of every entry sort's key (published_at or updated_at)


def sort_key(row: EntryRow | Entry | EntryKey, sort: EntrySort) -> Key:
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
    records, total = await _page_records(conn, filter, sort, page)
    rows = [_entry_row(r) for r in records]
    return paged(rows, [sort_key(r, sort) for r in rows], page, total)


async def list_linked(
    conn: asyncpg.Connection,
    refs: Refs,
    filter: EntryFilter,
    sort: EntrySort = "-published_at",
    page: Page | None = None,
) -> Paged[Entry]:
    """`list_entries` with each entry's blog, actors, locations, sources and media: what REST lists.

    One statement: the page, and for each of its entries the ids of its links and its media
    (one index range per link table per entry); the references come from `refs`.
    """
    page = page or Page()
    records, total = await _page_records(conn, filter, sort, page, linked=True, refs=refs)
    data = await _linked_entries(conn, refs, records)
    return paged(data, [sort_key(r, sort) for r in data], page, total)


class EntryKey(msgspec.Struct, frozen=True, kw_only=True):
    """What tells one version of an entry from another, and places it in a list."""

    id: int
    published_at: datetime
    updated_at: datetime


async def list_keys(
    conn: asyncpg.Connection,
    filter: EntryFilter,
    sort: EntrySort = "-published_at",
    page: Page | None = None,
    refs: Refs | None = None,
) -> tuple[Paged[EntryKey], int]:
    """`list_entries` as keys only, and the last change seq the page's snapshot saw (0: none).

    For a caller that keeps entries it has already read (api/entry_cache.py): with the seq it
    can tell whether what it keeps is as new as this page (`Heard.trusts`). With `refs`, the
    filter's slugs may be turned into ids from it (see `_page_records`).
    """
    page = page or Page()
    records, total = await _page_records(conn, filter, sort, page, columns=_KEY_COLUMNS, refs=refs)
    keys = [EntryKey(id=r["id"], published_at=r["published_at"], updated_at=r["updated_at"]) for r in records]
    seq = records[0]["seen_seq"] if records else 0
    return paged(keys, [sort_key(k, sort) for k in keys], page, total), seq


async def linked_by_ids(conn: asyncpg.Connection, refs: Refs, ids: list[int]) -> dict[int, Entry]:
    """These entries with their links, by id (an id that is not an entry is left out)."""
    if not ids:
        return {}
    records = await conn.fetch(_LINKED.format(page=_BY_IDS, col="id", direction="ASC"), ids)
    return {e.id: e for e in await _linked_entries(conn, refs, records)}


async def _page_records(
    conn: asyncpg.Connection,
    filter: EntryFilter,
    sort: EntrySort,
    page: Page,
    *,
    columns: str = ENTRY_COLUMNS,
    linked: bool = False,
    refs: Refs | None = None,
) -> tuple[list[asyncpg.Record], int | None]:
    """The page's records (`columns`, or with their links' ids when `linked`) and its total when
    asked for. NotFound (field blog/actor/location/source) if the filter names something unknown.

    With `refs` (and `columns` or `linked` reading `seen_seq`), the filter's references are
    first taken from it (`Refs.resolved`), saving the statements that resolve them: the page
    is kept if `refs` vouches for its snapshot, else it is read again with them resolved here."""
    guess = refs.resolved(filter) if refs is not None else None
    if refs is not None and guess is not None:
        generation = refs.generation
        async with _snapshot(conn, filter, page):
            planned = await _plan(conn, guess, sort, page, columns=columns, known=True)
            if planned is not None:
                sql, values, resolved = planned
                records = await conn.fetch(_linked_sql(sql, sort, page) if linked else sql, *values)
                if records and refs.generation == generation and refs.trusts(records[0]["seen_seq"]):
                    return records, await _total(conn, resolved, page)
    async with _snapshot(conn, filter, page):
        planned = await _plan(conn, filter, sort, page, columns=columns)
        if planned is None:
            return [], 0 if page.count else None
        sql, values, resolved = planned
        records = await conn.fetch(_linked_sql(sql, sort, page) if linked else sql, *values)
        return records, await _total(conn, resolved, page)


def _snapshot(conn: asyncpg.Connection, filter: EntryFilter, page: Page) -> AbstractAsyncContextManager[None]:
    """A transaction only where one is needed: a total that must agree with its page, or a plan
    forced for this page's values (SET LOCAL) on a connection that does not plan every statement
    so already (db/pool.plans_custom). Otherwise no BEGIN/COMMIT round trips: the page is one
    statement, after the statements that turn slugs into ids (a slug renamed in between leaves
    the page as the request named it when it began)."""
    custom_plan = where.needs_custom_plan(filter) and not plans_custom(conn)
    if not page.count and not custom_plan:
        return nullcontext()
    return where.read_snapshot(conn, custom_plan=custom_plan)


async def _plan(
    conn: asyncpg.Connection,
    filter: EntryFilter,
    sort: EntrySort,
    page: Page,
    *,
    columns: str = ENTRY_COLUMNS,
    known: bool = False,
) -> tuple[str, list[Any], EntryFilter] | None:
    """The page's statement and values, and the filter with ids; None when nothing can match.
    `known`: the filter's references are ids already, of things that exist."""
    if not known:
        filter = await where.resolve_entry_filter(conn, filter)
    resolved = await where.rarest_actor_first(conn, filter)
    in_box = await where.bbox_locations(conn, resolved)
    if in_box == 0:  # nothing lies in the box: no entry can match, and no scan should find that out
        return None
    under = await where.locations_under(conn, resolved)
    sql, values = where.list_entries_sql(
        resolved,
        sort,
        page,
        drive_locations=where.driving_is_small(under),
        drive_bbox=where.driving_is_small(in_box),
        joined_locations=where.driving_is_narrow(under),
        joined_bbox=where.driving_is_narrow(in_box),
        columns=columns,
    )
    return sql, values, resolved


async def _total(conn: asyncpg.Connection, resolved: EntryFilter, page: Page) -> int | None:
    if not page.count:
        return None
    return await timeline.count(conn, resolved)


# The last change seq a statement's snapshot sees (changes are numbered in commit order).
_SEEN_SEQ = "(SELECT COALESCE(max(c.seq), 0) FROM changes c) AS seen_seq"
_KEY_COLUMNS = f"e.id, e.published_at, e.updated_at, {_SEEN_SEQ}"
_BY_IDS = f"SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.id = ANY($1::bigint[])"
# A page's entries (`{page}`: a statement of ENTRY_COLUMNS) with their links' ids and their
# media rows; each link list is read from its table's primary key (entry_id, …).
_LINKED = (
    f"SELECT p.*, a.ids AS actor_ids, a.speaker, {_SEEN_SEQ},"
    " ARRAY(SELECT el.location_id FROM entry_locations el WHERE el.entry_id = p.id) AS location_ids,"
    " ARRAY(SELECT es.source_id FROM entry_sources es WHERE es.entry_id = p.id) AS source_ids,"
    " ARRAY(SELECT m FROM media m WHERE m.entry_id = p.id ORDER BY m.position) AS media"
    " FROM ({page}) p LEFT JOIN LATERAL ("
    "SELECT array_agg(ea.actor_id) AS ids, array_agg(ea.role = 'speaker') AS speaker"
    " FROM entry_actors ea WHERE ea.entry_id = p.id) a ON true"
    " ORDER BY p.{col} {direction}, p.id {direction}"
)


def _linked_sql(page_sql: str, sort: EntrySort, page: Page) -> str:
    direction = "DESC" if sort.startswith("-") != (page.direction == "backward") else "ASC"
    return _LINKED.format(page=page_sql, col=sort.lstrip("-"), direction=direction)


async def _linked_entries(conn: asyncpg.Connection, refs: Refs, records: list[asyncpg.Record]) -> list[Entry]:
    if not records:
        return []
    if refs.trusts(records[0]["seen_seq"]):
        # nearly always every reference is kept already: build at once (collecting the page's
        # ids to look for missing ones cost 4% of an uncached actor page's CPU)
        with suppress(KeyError):  # one is not: read what is missing, as below
            return _built(refs, records)
    view = await refs.view(
        conn,
        records[0]["seen_seq"],
        (r["blog_id"] for r in records),
        (i for r in records if r["actor_ids"] for i in r["actor_ids"]),
        (i for r in records for i in r["location_ids"]),
        (i for r in records for i in r["source_ids"]),
    )
    return _built(view, records)


def _built(view: Refs, records: list[asyncpg.Record]) -> list[Entry]:
    """The entries of `records` with their links from `view` (KeyError: a reference it lacks)."""
    blogs = view.blogs
    return [
        Entry(
            id=r["id"],
            blog=blogs[r["blog_id"]],
            published_at=r["published_at"],
            updated_at=r["updated_at"],
            created_at=r["created_at"],
            kind=r["kind"],
            headline=r["headline"],
            body=r["body"],
            actors=view.actor_links(r["actor_ids"], r["speaker"]),
            locations=view.location_links(r["location_ids"]),
            sources=view.source_links(r["source_ids"]),
            media=[_media(m) for m in r["media"]] if r["media"] else [],
        )
        for r in records
    ]


async def get_entry(conn: asyncpg.Connection, entry_id: int, refs: Refs | None = None) -> Entry:
    """One entry with its links; NotFound (field id) if there is none."""
    found = await linked_by_ids(conn, refs or Refs(), [entry_id])
    if entry_id not in found:
        raise NotFound(f"there is no entry {entry_id}", field="id")
    return found[entry_id]


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


async def media_of(conn: asyncpg.Connection, entry_ids: list[int]) -> dict[int, list[Media]]:
    out: dict[int, list[Media]] = defaultdict(list)
    if entry_ids:
        for r in await conn.fetch(query("entry_media"), entry_ids):
            out[r["entry_id"]].append(_media(r))
    return out
