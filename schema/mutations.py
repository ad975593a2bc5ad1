"""Mutations, `write` scope: the REST writes (db/writes.py) with GraphQL inputs.

Each input becomes the same msgspec body REST decodes (`writes.convert_body`), so a field
means and validates the same in both skins; references take a global id, a database id or
a slug, as filters do. Only fields a client gave are passed on, so an update changes
exactly those (`null` clears an optional field).

Idempotency as REST (db/idempotency.py): a mutation given an `idempotencyKey` argument, or
sent with an `Idempotency-Key` HTTP header, runs once per key and key holder; the same key
with the same arguments answers what it answered the first time (without writing again),
the same key with other arguments is refused (BAD_USER_INPUT, `extensions.reason`
IDEMPOTENCY_KEY_REUSED). A response with a replayed mutation says `Idempotent-Replayed: true`. The header covers a document's one mutation; when a document has
several, each uses `<header>#<its response name>`. Keys are shared with REST's, per key holder.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Annotated, Any, TypeVar

import asyncpg
import msgspec
import strawberry
from strawberry.types import Info

from db import idempotency, rows, writes
from db.errors import Conflict
from db.filters import parse_id
from db.ingest.store import ImportResult as Imported
from schema.context import GraphContext
from schema.errors import BadInput, Forbidden, Unauthenticated
from schema.relay import from_global_id, to_global_id, to_ref
from schema.types import (
    Actor,
    ActorKind,
    ActorRole,
    Blog,
    BlogStatus,
    Entry,
    EntryKind,
    Location,
    LocationKind,
    MediaKind,
    Source,
    SourceKind,
)

UNSET: Any = strawberry.UNSET
T = TypeVar("T")
IdempotencyKey = Annotated[
    str | None,
    strawberry.argument(
        description="Run this mutation once per key: a retry with the same key and arguments answers the first"
        " result; overrides the Idempotency-Key header."
    ),
]


def _ctx(info: Info) -> GraphContext:
    return info.context  # type: ignore[no-any-return]


def require_write(info: Info) -> None:
    caller = _ctx(info).caller
    if caller is not None and "write" in caller.scopes:
        return
    if caller is None or caller.key_id is None:
        raise Unauthenticated("this needs an API key with the 'write' scope")
    raise Forbidden("this key lacks the 'write' scope")


def _idempotency_key(info: Info, given: str | None) -> str | None:
    key = given
    if key is None:
        request = _ctx(info).request
        header = None if request is None else request.headers.get("idempotency-key")
        if header is None:
            return None
        fields = info.operation.selection_set.selections
        key = header if len(fields) == 1 else f"{header}#{info.path.key}"
    if not 1 <= len(key) <= 255:
        raise BadInput("idempotencyKey: 1 to 255 characters", field="idempotencyKey")
    return key


async def _once(
    info: Info, given_key: str | None, what: object, kind: type[T], run: Callable[[asyncpg.Connection], Awaitable[T]]
) -> T:
    """`run` in the write's transaction, or the answer it gave the first time under this key."""
    key = _idempotency_key(info, given_key)
    if key is None:
        return await _ctx(info).db.run(run)
    caller = _ctx(info).caller
    field = info.field_name
    hashed = idempotency.request_hash("GRAPHQL", field, msgspec.json.encode(what))

    async def work(conn: asyncpg.Connection) -> idempotency.Answer:
        return idempotency.Answer(status=200, body=msgspec.json.encode(await run(conn)))

    async def once(conn: asyncpg.Connection) -> idempotency.Answer:
        return await idempotency.once(conn, caller=caller.key_id, key=key, hashed=hashed, work=work)

    try:
        answer = await _ctx(info).db.run(once)
    except Conflict as exc:
        if exc.field != "Idempotency-Key":
            raise
        raise BadInput(
            exc.detail.replace("Idempotency-Key", "idempotency key"),
            field="idempotencyKey",
            extensions={"reason": "IDEMPOTENCY_KEY_REUSED"},
        ) from exc
    if answer.replayed:
        _ctx(info).replayed = True
    return msgspec.json.decode(answer.body, type=kind)


def _given(obj: object, renames: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fields a client set, as plain values (enums by value, inputs as dicts)."""
    out: dict[str, Any] = {}
    for name, value in vars(obj).items():
        if value is UNSET:
            continue
        out[name] = _plain(value)
    for name, convert in (renames or {}).items():
        if name in out and out[name] is not None:
            out[name] = convert(out[name])
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "__strawberry_definition__"):
        return _given(value)
    return value


def _refs(type_name: str, argument: str) -> Any:
    return lambda values: [to_ref(type_name, v, f"{argument}[{i}]") for i, v in enumerate(values)]


def _entry_id(value: strawberry.ID, argument: str = "id") -> int:
    text = str(value)
    db_id = parse_id(text)
    return db_id if db_id is not None else from_global_id(text, argument)[1]


def _ref_of(type_name: str, value: str) -> writes.Ref:
    return to_ref(type_name, value, "id")


# ---- inputs ---------------------------------------------------------------------------------


@strawberry.input
class EmbedInput:
    author: str | None = UNSET
    handle: str | None = UNSET
    date: dt.date | None = UNSET
    text: str | None = UNSET
    url: str | None = UNSET


@strawberry.input
class MediaInput:
    kind: MediaKind | None = UNSET
    url: str | None = UNSET
    caption: str | None = UNSET
    credit: str | None = UNSET
    alt_text: str | None = UNSET
    embed: EmbedInput | None = UNSET


@strawberry.input
class EntryActorInput:
    actor: str = strawberry.field(description="A global id, database id or slug.")
    role: ActorRole | None = UNSET


@strawberry.input(description="Links not given are found in the text by the importer's linker.")
class CreateEntryInput:
    blog: str
    published_at: dt.datetime
    headline: str
    body: list[str] | None = UNSET
    kind: EntryKind | None = UNSET
    media: list[MediaInput] | None = UNSET
    actors: list[EntryActorInput] | None = UNSET
    locations: list[str] | None = UNSET
    sources: list[str] | None = UNSET


@strawberry.input(description="Only the fields given change; given link lists and media replace the old ones.")
class UpdateEntryInput:
    blog: str | None = UNSET
    published_at: dt.datetime | None = UNSET
    headline: str | None = UNSET
    body: list[str] | None = UNSET
    kind: EntryKind | None = UNSET
    media: list[MediaInput] | None = UNSET
    actors: list[EntryActorInput] | None = UNSET
    locations: list[str] | None = UNSET
    sources: list[str] | None = UNSET


def _actor_links(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**v, "actor": to_ref("Actor", v["actor"], f"actors[{i}].actor")} for i, v in enumerate(values)]


_ENTRY_REFS = {
    "blog": lambda v: to_ref("Blog", v, "blog"),
    "actors": _actor_links,
    "locations": _refs("Location", "locations"),
    "sources": _refs("Source", "sources"),
}


@strawberry.input
class CreateBlogInput:
    slug: str
    title: str
    published_at: dt.datetime
    standfirst: str | None = UNSET
    status: BlogStatus | None = UNSET
    authors: list[str] | None = UNSET
    summary: list[str] | None = UNSET
    source_url: str | None = UNSET


@strawberry.input
class CreateActorInput:
    slug: str
    name: str
    kind: ActorKind
    aliases: list[str] | None = UNSET
    country: str | None = UNSET
    description: str | None = UNSET


@strawberry.input
class UpdateActorInput:
    slug: str | None = UNSET
    name: str | None = UNSET
    kind: ActorKind | None = UNSET
    aliases: list[str] | None = UNSET
    country: str | None = UNSET
    description: str | None = UNSET


@strawberry.input
class CreateLocationInput:
    slug: str
    name: str
    kind: LocationKind
    latitude: float
    longitude: float
    parent: str | None = UNSET
    aliases: list[str] | None = UNSET
    country: str | None = UNSET
    description: str | None = UNSET


@strawberry.input
class UpdateLocationInput:
    slug: str | None = UNSET
    name: str | None = UNSET
    kind: LocationKind | None = UNSET
    latitude: float | None = UNSET
    longitude: float | None = UNSET
    parent: str | None = UNSET
    aliases: list[str] | None = UNSET
    country: str | None = UNSET
    description: str | None = UNSET


_PARENT = {"parent": lambda v: to_ref("Location", v, "parent")}


@strawberry.input
class CreateSourceInput:
    slug: str
    name: str
    kind: SourceKind
    url: str | None = UNSET
    aliases: list[str] | None = UNSET
    description: str | None = UNSET


@strawberry.input
class UpdateSourceInput:
    slug: str | None = UNSET
    name: str | None = UNSET
    kind: SourceKind | None = UNSET
    url: str | None = UNSET
    aliases: list[str] | None = UNSET
    description: str | None = UNSET


@strawberry.type
class ImportResult:
    blog: Blog
    blog_change: str = strawberry.field(description="created, updated or unchanged")
    created: int
    updated: int
    unchanged: int


@strawberry.type
class DeleteEntryPayload:
    deleted_id: strawberry.ID
    database_id: int


def _entry(doc: rows.Entry) -> Entry:
    return Entry.from_row(
        rows.EntryRow(
            id=doc.id,
            blog_id=doc.blog.id,
            published_at=doc.published_at,
            updated_at=doc.updated_at,
            created_at=doc.created_at,
            kind=doc.kind,
            headline=doc.headline,
            body=doc.body,
        )
    )


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create a blog.")
    async def create_blog(self, info: Info, input: CreateBlogInput, idempotency_key: IdempotencyKey = None) -> Blog:
        require_write(info)
        body = writes.convert_body(_given(input), writes.BlogCreate)

        async def run(conn: asyncpg.Connection) -> rows.Blog:
            return await writes.get_blog(conn, await writes.create_blog(conn, body))

        return Blog.from_row(await _once(info, idempotency_key, body, rows.Blog, run))

    @strawberry.mutation(description="Publish an entry.")
    async def create_entry(self, info: Info, input: CreateEntryInput, idempotency_key: IdempotencyKey = None) -> Entry:
        require_write(info)
        body = writes.convert_body(_given(input, _ENTRY_REFS), writes.EntryCreate)

        async def run(conn: asyncpg.Connection) -> rows.Entry:
            return await writes.get_entry(conn, await writes.create_entry(conn, body, writes.load_linker))

        return _entry(await _once(info, idempotency_key, body, rows.Entry, run))

    @strawberry.mutation(description="Change an entry's given fields.")
    async def update_entry(
        self, info: Info, id: strawberry.ID, input: UpdateEntryInput, idempotency_key: IdempotencyKey = None
    ) -> Entry:
        require_write(info)
        entry_id = _entry_id(id)
        body = writes.convert_body(_given(input, _ENTRY_REFS), writes.EntryPatch)

        async def run(conn: asyncpg.Connection) -> rows.Entry:
            await writes.update_entry(conn, entry_id, body)
            return await writes.get_entry(conn, entry_id)

        return _entry(await _once(info, idempotency_key, [entry_id, body], rows.Entry, run))

    @strawberry.mutation(description="Delete an entry.")
    async def delete_entry(
        self, info: Info, id: strawberry.ID, idempotency_key: IdempotencyKey = None
    ) -> DeleteEntryPayload:
        require_write(info)
        entry_id = _entry_id(id)

        async def run(conn: asyncpg.Connection) -> None:
            await writes.delete_entry(conn, entry_id)

        await _once(info, idempotency_key, entry_id, type(None), run)
        return DeleteEntryPayload(deleted_id=strawberry.ID(to_global_id("Entry", entry_id)), database_id=entry_id)

    @strawberry.mutation(description="Create an actor.")
    async def create_actor(self, info: Info, input: CreateActorInput, idempotency_key: IdempotencyKey = None) -> Actor:
        require_write(info)
        body = writes.convert_body(_given(input), writes.ActorCreate)

        async def run(conn: asyncpg.Connection) -> rows.Actor:
            return await writes.get_actor(conn, await writes.create_actor(conn, body))

        return Actor.from_row(await _once(info, idempotency_key, body, rows.Actor, run))

    @strawberry.mutation(description="Change an actor's given fields; `id` is a global id, database id or slug.")
    async def update_actor(
        self, info: Info, id: str, input: UpdateActorInput, idempotency_key: IdempotencyKey = None
    ) -> Actor:
        require_write(info)
        ref = _ref_of("Actor", id)
        body = writes.convert_body(_given(input), writes.ActorPatch)

        async def run(conn: asyncpg.Connection) -> rows.Actor:
            return await writes.get_actor(conn, await writes.update_actor(conn, ref, body))

        return Actor.from_row(await _once(info, idempotency_key, [ref, body], rows.Actor, run))

    @strawberry.mutation(description="Create a location.")
    async def create_location(
        self, info: Info, input: CreateLocationInput, idempotency_key: IdempotencyKey = None
    ) -> Location:
        require_write(info)
        body = writes.convert_body(_given(input, _PARENT), writes.LocationCreate)

        async def run(conn: asyncpg.Connection) -> rows.Location:
            return await writes.get_location(conn, await writes.create_location(conn, body))

        return Location.from_row(await _once(info, idempotency_key, body, rows.Location, run))

    @strawberry.mutation(description="Change a location's given fields; `id` is a global id, database id or slug.")
    async def update_location(
        self, info: Info, id: str, input: UpdateLocationInput, idempotency_key: IdempotencyKey = None
    ) -> Location:
        require_write(info)
        ref = _ref_of("Location", id)
        body = writes.convert_body(_given(input, _PARENT), writes.LocationPatch)

        async def run(conn: asyncpg.Connection) -> rows.Location:
            return await writes.get_location(conn, await writes.update_location(conn, ref, body))

        return Location.from_row(await _once(info, idempotency_key, [ref, body], rows.Location, run))

    @strawberry.mutation(description="Create a source.")
    async def create_source(
        self, info: Info, input: CreateSourceInput, idempotency_key: IdempotencyKey = None
    ) -> Source:
        require_write(info)
        body = writes.convert_body(_given(input), writes.SourceCreate)

        async def run(conn: asyncpg.Connection) -> rows.Source:
            return await writes.get_source(conn, await writes.create_source(conn, body))

        return Source.from_row(await _once(info, idempotency_key, body, rows.Source, run))

    @strawberry.mutation(description="Change a source's given fields; `id` is a global id, database id or slug.")
    async def update_source(
        self, info: Info, id: str, input: UpdateSourceInput, idempotency_key: IdempotencyKey = None
    ) -> Source:
        require_write(info)
        ref = _ref_of("Source", id)
        body = writes.convert_body(_given(input), writes.SourcePatch)

        async def run(conn: asyncpg.Connection) -> rows.Source:
            return await writes.get_source(conn, await writes.update_source(conn, ref, body))

        return Source.from_row(await _once(info, idempotency_key, [ref, body], rows.Source, run))

    @strawberry.mutation(description="Import a live-blog page given as text, as `sitrep import` does.")
    async def import_page(self, info: Info, text: str, idempotency_key: IdempotencyKey = None) -> ImportResult:
        require_write(info)

        async def run(conn: asyncpg.Connection) -> tuple[Imported, rows.Blog]:
            result = await writes.import_page_text(conn, text.encode())
            return result, await writes.get_blog(conn, result.blog_id)

        result, blog = await _once(info, idempotency_key, text, tuple[Imported, rows.Blog], run)
        return ImportResult(
            blog=Blog.from_row(blog),
            blog_change=result.blog,
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
        )
