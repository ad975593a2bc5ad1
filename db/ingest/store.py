"""Write a parsed live-blog page into the database, changing only what the page changed.

The blog is found by slug, its entries by (blog, external_key). Each entry's row, media and
links are compared with what is stored and written only when they differ, so importing the
same page twice rewrites nothing and leaves every `updated_at` alone, and an updated page
bumps `updated_at` of the entries it changed and of no other.

An entry that an updated page no longer shows is left in place: pages drop entries when
they are trimmed or split into a new day's blog, not only when a post is withdrawn, and the
text form cannot tell these apart; deleting is a deliberate act (`DELETE /v1/entries/{id}`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import asyncpg
import msgspec

from db.errors import DomainError, from_postgres
from db.ingest.linker import Linker
from db.ingest.page import Embed, Image, Media, ParsedEntry, ParsedPage, parse_page
from db.ingest.types import Links
from db.sql import query

LinkFn = Callable[[str, Sequence[str]], Links]
Change = Literal["created", "updated", "unchanged"]

_MediaRow = tuple[Any, ...]
_ActorLinks = frozenset[tuple[int, str]]


class ImportResult(msgspec.Struct, frozen=True):
    blog_id: int
    blog_slug: str
    blog: Change
    created: int
    updated: int
    unchanged: int


class _Stored(msgspec.Struct):
    """One entry as the database holds it."""

    id: int
    row: tuple[Any, ...]
    media: list[_MediaRow] = msgspec.field(default_factory=list)
    actors: set[tuple[int, str]] = msgspec.field(default_factory=set)
    locations: set[int] = msgspec.field(default_factory=set)
    sources: set[int] = msgspec.field(default_factory=set)


class _Wanted(msgspec.Struct):
    """One entry as the page and the linker say it should be."""

    entry: ParsedEntry
    media: list[_MediaRow]
    actors: _ActorLinks
    locations: frozenset[int]
    sources: frozenset[int]

    @property
    def row(self) -> tuple[Any, ...]:
        e = self.entry
        return (e.published_at, e.headline, e.body, e.kind)


async def import_text(conn: asyncpg.Connection, text: str, link: LinkFn | Linker) -> ImportResult:
    """Parse a page (PageError names the line if it cannot) and import it."""
    return await import_page(conn, parse_page(text), link)


async def import_page(conn: asyncpg.Connection, page: ParsedPage, link: LinkFn | Linker) -> ImportResult:
    """Upsert the page's blog and entries in one transaction; see the module docstring.

    Given a Linker, entries are linked as a page (`Linker.for_page`: the blog's countries as
    context, actors discovered across its entries); given a function, one entry at a time."""
    if isinstance(link, Linker):
        link = link.for_page(page)
    try:
        async with conn.transaction():
            return await _import(conn, page, link)
    except asyncpg.IntegrityConstraintViolationError as exc:
        error: DomainError | None = from_postgres(exc)
        if error is None:
            raise
        raise error from exc


async def _import(conn: asyncpg.Connection, page: ParsedPage, link: LinkFn) -> ImportResult:
    blog_id, blog_change = await _upsert_blog(conn, page)
    keys = [e.external_key for e in page.entries]
    wanted = await _wanted(conn, page.entries, link)
    stored = await _stored(conn, blog_id, keys)

    new = [w for w in wanted if w.entry.external_key not in stored]
    ids: dict[str, int] = {}
    if new:
        rows = await conn.fetch(query("import_insert_entries"), blog_id, _json(_entry_doc(w.entry) for w in new))
        ids = {r["external_key"]: r["id"] for r in rows}

    rewrite: list[tuple[int, _Wanted]] = []
    touch: list[int] = []
    media: list[tuple[int, _Wanted]] = [(ids[w.entry.external_key], w) for w in new]
    actors, locations, sources = list(media), list(media), list(media)
    unchanged = 0
    for w in wanted:
        have = stored.get(w.entry.external_key)
        if have is None:
            continue
        changed = False
        if have.row != w.row:
            rewrite.append((have.id, w))
            changed = True
        for differs, todo in (
            (have.media != w.media, media),
            (have.actors != w.actors, actors),
            (have.locations != w.locations, locations),
            (have.sources != w.sources, sources),
        ):
            if differs:
                todo.append((have.id, w))
                changed = True
        if not changed:
            unchanged += 1
        elif have.row == w.row:
            touch.append(have.id)

    if rewrite:
        await conn.execute(query("import_update_entries"), _json({"id": i, **_entry_doc(w.entry)} for i, w in rewrite))
    if touch:
        await conn.execute(query("import_touch_entries"), touch)
    await _write_media(conn, media)
    await _write_links(conn, actors, locations, sources)
    return ImportResult(
        blog_id=blog_id,
        blog_slug=page.blog.slug,
        blog=blog_change,
        created=len(new),
        updated=len(wanted) - len(new) - unchanged,
        unchanged=unchanged,
    )


async def _upsert_blog(conn: asyncpg.Connection, page: ParsedPage) -> tuple[int, Change]:
    b = page.blog
    hero = None if b.hero_image is None else msgspec.json.encode(b.hero_image).decode()
    row = await conn.fetchrow(
        query("import_upsert_blog"),
        b.slug,
        b.title,
        b.standfirst,
        b.status,
        list(b.authors),
        list(b.summary),
        hero,
        b.published_at,
    )
    blog_id = await conn.fetchval(query("import_lock_blog"), b.slug)
    assert isinstance(blog_id, int)
    if row is None:
        return blog_id, "unchanged"
    return blog_id, "created" if row["inserted"] else "updated"


async def ensure_found(conn: asyncpg.Connection, found: Sequence[Links]) -> None:
    """Create the world places and discovered actors that links name and the database lacks."""
    places = {spec.slug: spec for links in found for spec in links.new_locations}
    for level in (True, False):  # countries (roots) first, then the places inside them
        todo = [msgspec.structs.asdict(p) for p in places.values() if (p.parent is None) is level]
        if todo:
            await conn.execute(query("import_ensure_locations"), _json(todo))
    actors = {spec.slug: spec for links in found for spec in links.new_actors}
    if actors:
        await conn.execute(query("import_ensure_actors"), _json(msgspec.structs.asdict(a) for a in actors.values()))


async def _wanted(conn: asyncpg.Connection, entries: Sequence[ParsedEntry], link: LinkFn) -> list[_Wanted]:
    found = [link(e.headline, e.body) for e in entries]
    await ensure_found(conn, found)
    actor_ids = await _ids(conn, "import_actor_ids", {a.slug for f in found for a in f.actors})
    location_ids = await _ids(conn, "import_location_ids", {s for f in found for s in f.locations})
    source_ids = await _ids(conn, "import_source_ids", {s for f in found for s in f.sources})
    wanted: list[_Wanted] = []
    for entry, links in zip(entries, found, strict=True):
        roles: dict[int, str] = {}
        for actor in links.actors:
            if actor.slug in actor_ids:
                # an actor named twice is a speaker if either mention is
                actor_id = actor_ids[actor.slug]
                roles[actor_id] = "speaker" if "speaker" in (actor.role, roles.get(actor_id)) else actor.role
        wanted.append(
            _Wanted(
                entry=entry,
                media=[_media_row(m) for m in entry.media],
                actors=frozenset(roles.items()),
                locations=frozenset(location_ids[s] for s in links.locations if s in location_ids),
                sources=frozenset(source_ids[s] for s in links.sources if s in source_ids),
            )
        )
    return wanted


async def _ids(conn: asyncpg.Connection, name: str, slugs: set[str]) -> dict[str, int]:
    if not slugs:
        return {}
    return {r["slug"]: r["id"] for r in await conn.fetch(query(name), sorted(slugs))}


async def _stored(conn: asyncpg.Connection, blog_id: int, keys: list[str]) -> dict[str, _Stored]:
    rows = await conn.fetch(query("import_existing_entries"), blog_id, keys)
    by_key = {
        r["external_key"]: _Stored(r["id"], (r["published_at"], r["headline"], tuple(r["body"]), r["kind"]))
        for r in rows
    }
    if not by_key:
        return by_key
    by_id = {s.id: s for s in by_key.values()}
    ids = list(by_id)
    for r in await conn.fetch(query("import_existing_media"), ids):
        by_id[r["entry_id"]].media.append(tuple(r[k] for k in _MEDIA_COLUMNS))
    for r in await conn.fetch(query("import_existing_actor_links"), ids):
        by_id[r["entry_id"]].actors.add((r["actor_id"], r["role"]))
    for r in await conn.fetch(query("import_existing_location_links"), ids):
        by_id[r["entry_id"]].locations.add(r["location_id"])
    for r in await conn.fetch(query("import_existing_source_links"), ids):
        by_id[r["entry_id"]].sources.add(r["source_id"])
    return by_key


_MEDIA_COLUMNS = (
    "kind",
    "url",
    "caption",
    "credit",
    "alt_text",
    "embed_author",
    "embed_handle",
    "embed_date",
    "embed_text",
    "embed_url",
)


def _media_row(item: Media) -> _MediaRow:
    if isinstance(item, Image):
        return ("image", item.url, item.caption, item.credit, item.alt, None, None, None, None, None)
    assert isinstance(item, Embed)
    return ("embed", None, None, None, None, item.author, item.handle, item.date, item.text, item.url)


def _entry_doc(entry: ParsedEntry) -> dict[str, Any]:
    return {
        "external_key": entry.external_key,
        "published_at": entry.published_at,
        "headline": entry.headline,
        "body": entry.body,
        "kind": entry.kind,
    }


def _json(docs: Iterable[dict[str, Any]]) -> str:
    return msgspec.json.encode(list(docs)).decode()


async def _write_media(conn: asyncpg.Connection, todo: list[tuple[int, _Wanted]]) -> None:
    if not todo:
        return
    await conn.execute(query("import_delete_media"), [i for i, _ in todo])
    docs = [
        {"entry_id": i, "position": position, **dict(zip(_MEDIA_COLUMNS, row, strict=True))}
        for i, w in todo
        for position, row in enumerate(w.media)
    ]
    if docs:
        await conn.execute(query("import_insert_media"), _json(docs))


async def _write_links(
    conn: asyncpg.Connection,
    actors: list[tuple[int, _Wanted]],
    locations: list[tuple[int, _Wanted]],
    sources: list[tuple[int, _Wanted]],
) -> None:
    if actors:
        await conn.execute(query("import_delete_actor_links"), [i for i, _ in actors])
        pairs = [(i, actor_id, role) for i, w in actors for actor_id, role in sorted(w.actors)]
        if pairs:
            entry_ids, actor_ids, roles = zip(*pairs, strict=True)
            await conn.execute(query("import_insert_actor_links"), list(entry_ids), list(actor_ids), list(roles))
    for todo, kind in ((locations, "location"), (sources, "source")):
        if not todo:
            continue
        await conn.execute(query(f"import_delete_{kind}_links"), [i for i, _ in todo])
        links = [(i, target) for i, w in todo for target in sorted(getattr(w, kind + "s"))]
        if links:
            entry_ids, target_ids = zip(*links, strict=True)
            await conn.execute(query(f"import_insert_{kind}_links"), list(entry_ids), list(target_ids))
