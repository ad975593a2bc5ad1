"""The gazetteer: the actors, locations and sources the project ships, and the linker's rule data.

`data/gazetteer.json` is meant to be edited by users. Loading upserts by slug in one
transaction (locations first, parents resolved once every location exists), never deletes
what the file does not name (entities added through the API stay), and refuses a file with
an error naming the item, writing nothing. Countries and cross-border waters are the roots
of the location hierarchy; every other location names a parent.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import asyncpg
import msgspec
from msgspec import Meta

from db.errors import InvalidInput
from db.sql import query

DEFAULT_PATH = Path(__file__).parent / "data" / "gazetteer.json"

Slug = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9-]*$", max_length=120)]
Name = Annotated[str, Meta(min_length=1, max_length=300)]
Alias = Annotated[str, Meta(min_length=1, max_length=300)]
Country = Annotated[str, Meta(pattern=r"^[A-Z]{2}$")]
Latitude = Annotated[float, Meta(ge=-90, le=90)]
Longitude = Annotated[float, Meta(ge=-180, le=180)]
ActorKind = Literal["person", "organization", "state", "military"]
LocationKind = Literal["country", "region", "city", "site", "water"]
SourceKind = Literal["agency", "social", "official", "broadcaster", "ngo", "newspaper"]
ROOT_KINDS = frozenset({"country", "water"})  # the kinds that may stand without a parent


class GazetteerError(InvalidInput):
    """The gazetteer file is not valid; the message names the item."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"gazetteer: {detail}", field="gazetteer")


class _Item(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ActorItem(_Item, kw_only=True):
    slug: Slug
    name: Name
    kind: ActorKind
    aliases: list[Alias] = []
    country: Country | None = None
    description: str | None = None


class LocationItem(_Item, kw_only=True):
    slug: Slug
    name: Name
    kind: LocationKind
    parent: Slug | None = None
    latitude: Latitude
    longitude: Longitude
    country: Country | None = None
    aliases: list[Alias] = []
    description: str | None = None


class SourceItem(_Item, kw_only=True):
    slug: Slug
    name: Name
    kind: SourceKind
    url: str | None = None
    aliases: list[Alias] = []
    # phrases that by themselves say a report came from this source ("Telegram channel")
    attribution: list[Alias] = []
    description: str | None = None


class Rules(_Item, kw_only=True):
    """Rule data for the linker (see the comment in the shipped file)."""

    comment: str | None = None
    # an alias several actors share -> the one it means when the entry names none of them fully
    ambiguous_defaults: dict[str, Slug] = {}
    # adjective -> country location slug, linked only before a place noun ("Ukrainian ports")
    demonyms: dict[str, Slug] = {}
    place_nouns: list[str] = []
    # words before a capital's name that make it a place, not its government ("in Moscow")
    locative_words: list[str] = []


class Gazetteer(_Item, kw_only=True):
    comment: str | None = None
    actors: list[ActorItem] = []
    locations: list[LocationItem] = []
    sources: list[SourceItem] = []
    rules: Rules = msgspec.field(default_factory=Rules)


class LoadCounts(msgspec.Struct, frozen=True):
    """What a load did, per kind: rows inserted and rows whose fields changed."""

    actors_inserted: int = 0
    actors_updated: int = 0
    locations_inserted: int = 0
    locations_updated: int = 0
    sources_inserted: int = 0
    sources_updated: int = 0

    @property
    def changed(self) -> bool:
        return any(msgspec.structs.astuple(self))


_PATH_ITEM = re.compile(r"^\$\.(actors|locations|sources)\[(\d+)\](.*)$")


def _item_name(raw: Any, section: str, index: int) -> str:
    try:
        slug = raw[section][index].get("slug")
    except (KeyError, IndexError, TypeError, AttributeError):
        slug = None
    return f"{section}[{index}]" + (f" {slug!r}" if isinstance(slug, str) else "")


def parse(data: bytes | str, *, origin: str = "gazetteer") -> Gazetteer:
    """Decode and validate a gazetteer document; GazetteerError names the offending item."""
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise GazetteerError(f"{origin} is not valid JSON: {exc}") from exc
    try:
        gazetteer = msgspec.convert(raw, Gazetteer)
    except msgspec.ValidationError as exc:
        message = str(exc)
        where = message.rsplit(" - at `", 1)
        if len(where) == 2:
            match = _PATH_ITEM.match(where[1].rstrip("`"))
            if match:
                section, index, rest = match.groups()
                field = rest.lstrip(".") or "item"
                raise GazetteerError(f"{_item_name(raw, section, int(index))}: {field}: {where[0]}") from exc
        raise GazetteerError(message) from exc
    _check(gazetteer)
    return gazetteer


def read(path: Path | str = DEFAULT_PATH) -> Gazetteer:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise GazetteerError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return parse(data, origin=str(path))


def _check(g: Gazetteer) -> None:
    """What a schema cannot say: unique slugs, known parents, roots, no cycles, known rule targets."""
    sections: tuple[tuple[str, list[str]], ...] = (
        ("actors", [a.slug for a in g.actors]),
        ("locations", [loc.slug for loc in g.locations]),
        ("sources", [s.slug for s in g.sources]),
    )
    for section, slugs in sections:
        seen: set[str] = set()
        for i, slug in enumerate(slugs):
            if slug in seen:
                raise GazetteerError(f"{section}[{i}] {slug!r}: slug: appears twice")
            seen.add(slug)
    by_slug = {loc.slug: loc for loc in g.locations}
    for i, loc in enumerate(g.locations):
        name = f"locations[{i}] {loc.slug!r}"
        if loc.parent is None and loc.kind not in ROOT_KINDS:
            raise GazetteerError(f"{name}: parent: a {loc.kind} needs a parent (only countries and waters are roots)")
        if loc.parent is not None and loc.kind == "country":
            raise GazetteerError(f"{name}: parent: a country is a root and has no parent")
        if loc.parent == loc.slug:
            raise GazetteerError(f"{name}: parent: a location cannot be inside itself")
        if loc.parent is not None and loc.parent not in by_slug:
            # may still name a location already in the database; checked when loading
            continue
        # walk up: a cycle would never reach a root
        steps, cursor = 0, loc.parent
        while cursor is not None and cursor in by_slug:
            cursor = by_slug[cursor].parent
            steps += 1
            if steps > len(by_slug):
                raise GazetteerError(f"{name}: parent: the parents form a cycle")
    actor_slugs = {a.slug for a in g.actors}
    for alias, slug in g.rules.ambiguous_defaults.items():
        if slug not in actor_slugs:
            raise GazetteerError(f"rules.ambiguous_defaults[{alias!r}]: unknown actor {slug!r}")
    for word, slug in g.rules.demonyms.items():
        if slug not in by_slug:
            raise GazetteerError(f"rules.demonyms[{word!r}]: unknown location {slug!r}")


def _rows(items: list[Any], drop: tuple[str, ...] = ()) -> str:
    rows = [{k: v for k, v in msgspec.structs.asdict(item).items() if k not in drop} for item in items]
    return msgspec.json.encode(rows).decode()


async def load_gazetteer(conn: asyncpg.Connection, path: Path | str = DEFAULT_PATH) -> LoadCounts:
    """Upsert the file's actors, locations and sources by slug, in one transaction."""
    return await load_parsed(conn, read(path))


async def load_parsed(conn: asyncpg.Connection, g: Gazetteer) -> LoadCounts:
    async with conn.transaction():
        file_slugs = {loc.slug for loc in g.locations}
        outside = sorted({loc.parent for loc in g.locations if loc.parent and loc.parent not in file_slugs})
        known = {r["slug"] for r in await conn.fetch(query("gazetteer_location_slugs"), outside)}
        for i, loc in enumerate(g.locations):
            if loc.parent is not None and loc.parent not in file_slugs and loc.parent not in known:
                raise GazetteerError(f"locations[{i}] {loc.slug!r}: parent: unknown location {loc.parent!r}")

        actors = await conn.fetch(query("gazetteer_upsert_actors"), _rows(g.actors))
        locations = await conn.fetch(query("gazetteer_upsert_locations"), _rows(g.locations, drop=("parent",)))
        reparented = await conn.fetch(
            query("gazetteer_set_parents"), [loc.slug for loc in g.locations], [loc.parent for loc in g.locations]
        )
        sources = await conn.fetch(query("gazetteer_upsert_sources"), _rows(g.sources, drop=("attribution",)))
    # a new location gets its parent in a second statement: it counts once, as inserted
    new_locations = {r["slug"] for r in locations if r["inserted"]}
    changed_locations = {r["slug"] for r in locations} | {r["slug"] for r in reparented}
    return LoadCounts(
        actors_inserted=sum(r["inserted"] for r in actors),
        actors_updated=sum(not r["inserted"] for r in actors),
        locations_inserted=len(new_locations),
        locations_updated=len(changed_locations - new_locations),
        sources_inserted=sum(r["inserted"] for r in sources),
        sources_updated=sum(not r["inserted"] for r in sources),
    )


async def ensure_gazetteer(conn: asyncpg.Connection, path: Path | str = DEFAULT_PATH) -> LoadCounts | None:
    """Load the shipped gazetteer into a database that has no actor, location or source yet."""
    if not await conn.fetchval(query("gazetteer_is_empty")):
        return None
    return await load_gazetteer(conn, path)
