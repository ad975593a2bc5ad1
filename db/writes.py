"""Writes: blogs, entries, actors, locations and sources, each in one transaction.

Bodies are msgspec Structs validated on decode (`decode_body`), so a bad field is refused
before any SQL runs; references (a blog, actor, location or source by id or slug) are
resolved up front, so an unknown one is refused with nothing written. The change feed
records every write by trigger (0030_changes.sql); nothing here has to remember it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, TypeVar

import asyncpg
import msgspec
from msgspec import UNSET, Meta, UnsetType

from db import rows
from db.errors import InvalidInput, NotFound, from_postgres
from db.filters import check_text
from db.ingest.gazetteer import ensure_gazetteer
from db.ingest.linker import Linker
from db.ingest.store import ImportResult, ensure_found, import_text
from db.ingest.types import Links
from db.sql import query

Ref = int | str
Slug = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9-]*$", max_length=120)]
Name = Annotated[str, Meta(min_length=1, max_length=300)]
Country = Annotated[str, Meta(pattern=r"^[A-Z]{2}$")]
Headline = Annotated[str, Meta(min_length=1, max_length=1000)]
Title = Annotated[str, Meta(min_length=1, max_length=500)]
Latitude = Annotated[float, Meta(ge=-90, le=90)]
Longitude = Annotated[float, Meta(ge=-180, le=180)]
Moment = Annotated[datetime, Meta(tz=True)]
EntryKind = Literal["post", "video", "interactive", "read_more"]
ActorKind = Literal["person", "organization", "state", "military"]
LocationKind = Literal["country", "region", "city", "site", "water"]
SourceKind = Literal["agency", "social", "official", "broadcaster", "ngo", "newspaper"]
Role = Literal["speaker", "mentioned"]

# what finds the links in an entry's text (the importer's linker, db.ingest.linker)
LinkText = Callable[[str, Sequence[str]], Links]
LoadLinker = Callable[[asyncpg.Connection], Awaitable[LinkText]]


class _Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class EmbedIn(_Body):
    author: str | None = None
    handle: str | None = None
    date: date | None = None
    text: str | None = None
    url: str | None = None


class MediaIn(_Body):
    kind: Literal["image", "video", "embed"] = "image"
    url: str | None = None
    caption: str | None = None
    credit: str | None = None
    alt_text: str | None = None
    embed: EmbedIn | None = None


class ActorLinkIn(_Body):
    actor: Ref
    role: Role = "mentioned"


class BlogCreate(_Body):
    slug: Slug
    title: Title
    published_at: Moment
    standfirst: str | None = None
    status: Literal["live", "closed"] = "live"
    authors: list[str] = []
    summary: list[str] = []
    hero_image: dict[str, Any] | None = None
    source_url: str | None = None


class EntryCreate(_Body):
    blog: Ref
    published_at: Moment
    headline: Headline
    body: list[str] = []
    kind: EntryKind = "post"
    media: list[MediaIn] = []
    # None: found in the text by the linker; [] means "no links"
    actors: list[ActorLinkIn] | None = None
    locations: list[Ref] | None = None
    sources: list[Ref] | None = None


class EntryPatch(_Body):
    blog: Ref | UnsetType = UNSET
    published_at: Moment | UnsetType = UNSET
    headline: Headline | UnsetType = UNSET
    body: list[str] | UnsetType = UNSET
    kind: EntryKind | UnsetType = UNSET
    media: list[MediaIn] | UnsetType = UNSET
    actors: list[ActorLinkIn] | UnsetType = UNSET
    locations: list[Ref] | UnsetType = UNSET
    sources: list[Ref] | UnsetType = UNSET


class ActorCreate(_Body):
    slug: Slug
    name: Name
    kind: ActorKind
    aliases: list[str] = []
    country: Country | None = None
    description: str | None = None


class ActorPatch(_Body):
    slug: Slug | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    kind: ActorKind | UnsetType = UNSET
    aliases: list[str] | UnsetType = UNSET
    country: Country | UnsetType | None = UNSET
    description: str | UnsetType | None = UNSET


class LocationCreate(_Body):
    slug: Slug
    name: Name
    kind: LocationKind
    latitude: Latitude
    longitude: Longitude
    parent: Ref | None = None
    aliases: list[str] = []
    country: Country | None = None
    description: str | None = None


class LocationPatch(_Body):
    slug: Slug | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    kind: LocationKind | UnsetType = UNSET
    latitude: Latitude | UnsetType = UNSET
    longitude: Longitude | UnsetType = UNSET
    parent: Ref | UnsetType | None = UNSET
    aliases: list[str] | UnsetType = UNSET
    country: Country | UnsetType | None = UNSET
    description: str | UnsetType | None = UNSET


class SourceCreate(_Body):
    slug: Slug
    name: Name
    kind: SourceKind
    url: str | None = None
    aliases: list[str] = []
    description: str | None = None


class SourcePatch(_Body):
    slug: Slug | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    kind: SourceKind | UnsetType = UNSET
    url: str | UnsetType | None = UNSET
    aliases: list[str] | UnsetType = UNSET
    description: str | UnsetType | None = UNSET


B = TypeVar("B", bound=msgspec.Struct)
_PATH = re.compile(r"at `\$\.?([^`]*)`")


def decode_body(raw: bytes, cls: type[B]) -> B:
    """A request body as `cls`; a bad one is InvalidInput naming the field (`actors[0].role`)."""
    try:
        return _checked(msgspec.json.decode(raw, type=cls))
    except msgspec.ValidationError as exc:
        raise _invalid(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}", field="body") from None


def convert_body(value: Any, cls: type[B]) -> B:
    """As decode_body, from already-parsed values (GraphQL inputs)."""
    try:
        return _checked(msgspec.convert(value, cls))
    except msgspec.ValidationError as exc:
        raise _invalid(str(exc)) from None


# what a live blog's times can be: PostgreSQL keeps far older ones, but renders some of them
# (local mean time offsets with seconds) in a form no RFC 3339 reader takes back
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)


def _checked(body: B) -> B:
    """The body, once every text in it is one PostgreSQL can store (no NUL) and every time in it
    lies between EARLIEST and LATEST."""
    for name in body.__struct_fields__:
        value = getattr(body, name)
        if isinstance(value, datetime) and not EARLIEST <= value < LATEST:
            raise InvalidInput(f"{name}: a time from 1900 to 2999", field=name)

    def walk(value: Any, path: str) -> None:
        if isinstance(value, str):
            check_text(value, path or "body")
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]")

    walk(msgspec.to_builtins(body), "")
    return body


def _invalid(message: str) -> InvalidInput:
    match = _PATH.search(message)
    field = match.group(1) if match and match.group(1) else "body"
    reason = _PATH.sub("", message).strip().rstrip("-").strip()
    if message.startswith("Object contains unknown field"):
        field = message.split("`")[1]
        reason = "unknown field"
    elif message.startswith("Object missing required field"):
        field = message.split("`")[1]
        reason = "required"
    return InvalidInput(f"{field}: {reason}", field=field)


def _split(refs: Sequence[Ref]) -> tuple[list[int], list[str]]:
    return [r for r in refs if isinstance(r, int)], [r for r in refs if isinstance(r, str)]


async def _resolve_each(conn: asyncpg.Connection, kind: str, refs: Sequence[Ref], field: str) -> list[int]:
    """The id of each ref, in order; an unknown one is InvalidInput naming `field[i]`."""
    ids, slugs = _split(refs)
    by_id: dict[int, int] = {}
    by_slug: dict[str, int] = {}
    for r in await conn.fetch(query(f"write_resolve_{kind}"), ids, slugs):
        by_id[r["id"]] = r["id"]
        by_slug[r["slug"]] = r["id"]
    out: list[int] = []
    for i, ref in enumerate(refs):
        found = by_id.get(ref) if isinstance(ref, int) else by_slug.get(ref)
        if found is None:
            raise InvalidInput(f"{field}[{i}]: no {kind[:-1]} {ref!r}", field=f"{field}[{i}]")
        out.append(found)
    return out


async def _resolve(conn: asyncpg.Connection, kind: str, refs: Sequence[Ref], field: str) -> list[int]:
    return list(dict.fromkeys(await _resolve_each(conn, kind, refs, field)))


async def _known(conn: asyncpg.Connection, kind: str, slugs: Sequence[str]) -> list[int]:
    """Ids of the slugs that exist (the linker's finds), in order, silently dropping the rest."""
    found = {r["slug"]: r["id"] for r in await conn.fetch(query(f"write_resolve_{kind}"), [], list(slugs))}
    return list(dict.fromkeys(found[s] for s in slugs if s in found))


async def resolve_blog(conn: asyncpg.Connection, ref: Ref, field: str = "blog") -> int:
    blog_id: int | None = await conn.fetchval(
        query("write_resolve_blog"), ref if isinstance(ref, int) else None, ref if isinstance(ref, str) else None
    )
    if blog_id is None:
        raise InvalidInput(f"{field}: no blog {ref!r}", field=field)
    return blog_id


async def _guarded(work: Awaitable[Any]) -> Any:
    try:
        return await work
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise from_postgres(exc) or InvalidInput(f"refused by the database: {exc}", field="body") from None


# ---- blogs -------------------------------------------------------------------------------


async def create_blog(conn: asyncpg.Connection, data: BlogCreate) -> int:
    async with conn.transaction():
        blog_id: int = await _guarded(
            conn.fetchval(
                query("write_insert_blog"),
                data.slug,
                data.title,
                data.standfirst,
                data.status,
                data.authors,
                data.summary,
                data.hero_image,
                data.source_url,
                data.published_at,
            )
        )
        return blog_id


async def get_blog(conn: asyncpg.Connection, blog_id: int) -> rows.Blog:
    row = await conn.fetchrow(query("write_get_blog"), blog_id)
    if row is None:
        raise NotFound(f"no blog {blog_id}", field="id")
    return rows.Blog(**dict(row))


# ---- entries -----------------------------------------------------------------------------


async def _link_actors(conn: asyncpg.Connection, entry_id: int, ids: list[int], roles: list[str]) -> None:
    if ids:
        await conn.execute(query("write_link_actors"), entry_id, ids, roles)


async def _set_links(
    conn: asyncpg.Connection,
    entry_id: int,
    *,
    actors: list[ActorLinkIn] | None,
    locations: list[Ref] | None,
    sources: list[Ref] | None,
    found: Links | None,
    replace: bool,
) -> None:
    """Given links replace the entry's; for a relation not given, `found` (the linker's) if any."""
    if actors is not None:
        roles: dict[int, str] = {}
        each = await _resolve_each(conn, "actors", [a.actor for a in actors], "actors")
        for actor_id, link in zip(each, actors, strict=True):
            roles.setdefault(actor_id, link.role)
        if replace:
            await conn.execute(query("write_clear_entry_actors"), entry_id)
        await _link_actors(conn, entry_id, list(roles), list(roles.values()))
    elif found is not None:
        by_slug = {a.slug: a.role for a in found.actors}
        found_ids = await _known(conn, "actors", list(by_slug))
        slugs = {r["id"]: r["slug"] for r in await conn.fetch(query("write_resolve_actors"), found_ids, [])}
        await _link_actors(conn, entry_id, found_ids, [by_slug[slugs[i]] for i in found_ids])
    for kind, given, linked in (
        ("locations", locations, found.locations if found else None),
        ("sources", sources, found.sources if found else None),
    ):
        if given is not None:
            ids = await _resolve(conn, kind, given, kind)
            if replace:
                await conn.execute(query(f"write_clear_entry_{kind}"), entry_id)
        elif linked is not None:
            ids = await _known(conn, kind, linked)
        else:
            continue
        if ids:
            await conn.execute(query(f"write_link_{kind}"), entry_id, ids)


async def _set_media(conn: asyncpg.Connection, entry_id: int, media: list[MediaIn], *, replace: bool) -> None:
    if replace:
        await conn.execute(query("write_clear_entry_media"), entry_id)
    args = []
    for position, m in enumerate(media):
        e = m.embed or EmbedIn()
        args.append(
            (
                entry_id,
                position,
                m.kind,
                m.url,
                m.caption,
                m.credit,
                m.alt_text,
                e.author,
                e.handle,
                e.date,
                e.text,
                e.url,
            )
        )
    if args:
        await conn.executemany(query("write_insert_media"), args)


async def create_entry(conn: asyncpg.Connection, data: EntryCreate, load_linker: LoadLinker | None = None) -> int:
    """A new entry; relations not given are found in its text by the linker (when one is given)."""
    async with conn.transaction():
        blog_id = await resolve_blog(conn, data.blog)
        found = None
        if load_linker is not None and (data.actors is None or data.locations is None or data.sources is None):
            link = await load_linker(conn)
            found = link(data.headline, data.body)
            # the world's places and the states the linker found become rows, for the relations it fills
            await ensure_found(
                conn,
                [
                    msgspec.structs.replace(
                        found,
                        new_locations=found.new_locations if data.locations is None else (),
                        new_actors=found.new_actors if data.actors is None else (),
                    )
                ],
            )
        entry_id: int = await _guarded(
            conn.fetchval(query("write_insert_entry"), blog_id, data.published_at, data.headline, data.body, data.kind)
        )
        await _guarded(
            _set_links(
                conn,
                entry_id,
                actors=data.actors,
                locations=data.locations,
                sources=data.sources,
                found=found,
                replace=False,
            )
        )
        await _guarded(_set_media(conn, entry_id, data.media, replace=False))
        return entry_id


def _given(value: Any) -> Any:
    return None if value is UNSET else value


async def update_entry(conn: asyncpg.Connection, entry_id: int, patch: EntryPatch) -> None:
    """Change the given fields; given link lists and media replace the old ones wholesale."""
    async with conn.transaction():
        await _lock_entry(conn, entry_id)
        blog_id = None if isinstance(patch.blog, UnsetType) else await resolve_blog(conn, patch.blog)
        await _guarded(
            conn.execute(
                query("write_update_entry"),
                entry_id,
                blog_id,
                _given(patch.published_at),
                _given(patch.headline),
                _given(patch.body),
                _given(patch.kind),
            )
        )
        await _guarded(
            _set_links(
                conn,
                entry_id,
                actors=_given(patch.actors),
                locations=_given(patch.locations),
                sources=_given(patch.sources),
                found=None,
                replace=True,
            )
        )
        if not isinstance(patch.media, UnsetType):
            await _guarded(_set_media(conn, entry_id, patch.media, replace=True))


async def _lock_entry(conn: asyncpg.Connection, entry_id: int) -> None:
    if await conn.fetchval(query("write_lock_entry"), entry_id) is None:
        raise NotFound(f"no entry {entry_id}", field="id")


async def locked_entry(conn: asyncpg.Connection, entry_id: int) -> rows.Entry:
    """The entry as REST shows it, its row locked to the end of the caller's transaction, so a
    conditional write (If-Match) compares against the state it then changes."""
    await _lock_entry(conn, entry_id)
    return await get_entry(conn, entry_id)


async def delete_entry(conn: asyncpg.Connection, entry_id: int) -> None:
    if await conn.fetchval(query("write_delete_entry"), entry_id) is None:
        raise NotFound(f"no entry {entry_id}", field="id")


async def get_entry_doc(conn: asyncpg.Connection, entry_id: int) -> dict[str, Any]:
    """The entry as REST answers it (what the change feed carries too)."""
    doc: dict[str, Any] | None = await conn.fetchval(query("write_entry_doc"), entry_id)
    if doc is None:
        raise NotFound(f"no entry {entry_id}", field="id")
    return doc


async def get_entry(conn: asyncpg.Connection, entry_id: int) -> rows.Entry:
    return msgspec.convert(await get_entry_doc(conn, entry_id), rows.Entry)


# ---- actors, locations, sources ------------------------------------------------------------


async def _resolve_one(conn: asyncpg.Connection, kind: str, ref: Ref) -> int:
    ids, slugs = _split([ref])
    found = await conn.fetch(query(f"write_resolve_{kind}"), ids, slugs)
    if not found:
        raise NotFound(f"no {kind[:-1]} {ref!r}", field="id")
    return int(found[0]["id"])


async def _locked_one(conn: asyncpg.Connection, kind: str, ref: Ref) -> int:
    """Resolve and lock an actor, location or source to the end of the caller's transaction."""
    found_id = await _resolve_one(conn, kind, ref)
    if await conn.fetchval(query(f"write_lock_{kind}"), found_id) is None:
        raise NotFound(f"no {kind[:-1]} {ref!r}", field="id")
    return found_id


async def locked_actor(conn: asyncpg.Connection, ref: Ref) -> rows.Actor:
    return await get_actor(conn, await _locked_one(conn, "actors", ref))


async def locked_location(conn: asyncpg.Connection, ref: Ref) -> rows.Location:
    return await get_location(conn, await _locked_one(conn, "locations", ref))


async def locked_source(conn: asyncpg.Connection, ref: Ref) -> rows.Source:
    return await get_source(conn, await _locked_one(conn, "sources", ref))


def _flag(value: Any) -> tuple[bool, Any]:
    return (False, None) if value is UNSET else (True, value)


async def create_actor(conn: asyncpg.Connection, data: ActorCreate) -> int:
    async with conn.transaction():
        actor_id: int = await _guarded(
            conn.fetchval(
                query("write_insert_actor"),
                data.slug,
                data.name,
                data.kind,
                data.aliases,
                data.country,
                data.description,
            )
        )
        return actor_id


async def update_actor(conn: asyncpg.Connection, ref: Ref, patch: ActorPatch) -> int:
    async with conn.transaction():
        actor_id = await _resolve_one(conn, "actors", ref)
        country_set, country = _flag(patch.country)
        description_set, description = _flag(patch.description)
        await _guarded(
            conn.fetchval(
                query("write_update_actor"),
                actor_id,
                _given(patch.slug),
                _given(patch.name),
                _given(patch.kind),
                _given(patch.aliases),
                country,
                description,
                country_set,
                description_set,
            )
        )
        return actor_id


async def get_actor(conn: asyncpg.Connection, actor_id: int) -> rows.Actor:
    row = await conn.fetchrow(query("write_get_actor"), actor_id)
    if row is None:
        raise NotFound(f"no actor {actor_id}", field="id")
    return rows.Actor(**dict(row))


async def _parent(conn: asyncpg.Connection, ref: Ref | None) -> int | None:
    if ref is None:
        return None
    return (await _resolve(conn, "locations", [ref], "parent"))[0]


async def create_location(conn: asyncpg.Connection, data: LocationCreate) -> int:
    async with conn.transaction():
        parent_id = await _parent(conn, data.parent)
        location_id: int = await _guarded(
            conn.fetchval(
                query("write_insert_location"),
                data.slug,
                data.name,
                data.kind,
                parent_id,
                data.latitude,
                data.longitude,
                data.aliases,
                data.country,
                data.description,
            )
        )
        return location_id


async def update_location(conn: asyncpg.Connection, ref: Ref, patch: LocationPatch) -> int:
    async with conn.transaction():
        location_id = await _resolve_one(conn, "locations", ref)
        parent_set, parent = _flag(patch.parent)
        parent_id = await _parent(conn, parent) if parent_set else None
        country_set, country = _flag(patch.country)
        description_set, description = _flag(patch.description)
        await _guarded(
            conn.fetchval(
                query("write_update_location"),
                location_id,
                _given(patch.slug),
                _given(patch.name),
                _given(patch.kind),
                parent_id,
                _given(patch.latitude),
                _given(patch.longitude),
                _given(patch.aliases),
                country,
                description,
                parent_set,
                country_set,
                description_set,
            )
        )
        return location_id


async def get_location(conn: asyncpg.Connection, location_id: int) -> rows.Location:
    row = await conn.fetchrow(query("write_get_location"), location_id)
    if row is None:
        raise NotFound(f"no location {location_id}", field="id")
    ancestors = [rows.LocationRef(**dict(r)) for r in await conn.fetch(query("write_location_ancestors"), location_id)]
    return rows.Location(**dict(row), ancestors=ancestors, parent=ancestors[-1] if ancestors else None)


async def create_source(conn: asyncpg.Connection, data: SourceCreate) -> int:
    async with conn.transaction():
        source_id: int = await _guarded(
            conn.fetchval(
                query("write_insert_source"), data.slug, data.name, data.kind, data.url, data.aliases, data.description
            )
        )
        return source_id


async def update_source(conn: asyncpg.Connection, ref: Ref, patch: SourcePatch) -> int:
    async with conn.transaction():
        source_id = await _resolve_one(conn, "sources", ref)
        url_set, url = _flag(patch.url)
        description_set, description = _flag(patch.description)
        await _guarded(
            conn.fetchval(
                query("write_update_source"),
                source_id,
                _given(patch.slug),
                _given(patch.name),
                _given(patch.kind),
                url,
                _given(patch.aliases),
                url_set,
                description_set,
                description,
            )
        )
        return source_id


async def get_source(conn: asyncpg.Connection, source_id: int) -> rows.Source:
    row = await conn.fetchrow(query("write_get_source"), source_id)
    if row is None:
        raise NotFound(f"no source {source_id}", field="id")
    return rows.Source(**dict(row))


async def load_linker(conn: asyncpg.Connection) -> LinkText:
    """The importer's linker over the current catalog (cached by db.ingest.linker while unchanged)."""
    linker = await Linker.load(conn)
    return linker.link


async def import_page_text(conn: asyncpg.Connection, raw: bytes) -> ImportResult:
    """Import a live-blog page given as UTF-8 text, linking its entries as `sitrep import` does."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("body: the page must be UTF-8 text", field="body") from None
    if not text.strip():
        raise InvalidInput("body: the page is empty", field="body")
    await ensure_gazetteer(conn)  # as `sitrep import` does: a fresh database gets the shipped catalog
    return await import_text(conn, text, await Linker.load(conn))  # a page: actors discovered across it
