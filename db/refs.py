"""The catalog references entries link to (blogs, actors, locations, sources), kept in memory.

An entry page names its links by id (db/entries.py `list_linked`); the references
themselves (`ActorRef`, `LocationRef`, …) come from here. The catalog is small and read on
every page, so joining it in SQL for each page cost more than the page itself (PostgreSQL
rebuilt a hash of every actor per request); held here, a page is one statement over the
link tables' primary keys, and the shared, frozen ref objects are encoded as they are.

Freshness. A cache here is kept only while it hears every change (`Heard`): the live hub
(api/live.py) reads each committed change from the change log and passes it on (`heard`), and
says when its LISTEN connection is lost (`set_live(False)`, which empties the cache). Each
page statement also reads the last change seq its snapshot sees; the cache answers for that
page only if the hub has passed on every change up to it (`trusts(seq)`), so a page never
mixes its snapshot with references older than it, whatever the hub's delay. Otherwise, and
while not live, the references are read from the database for that request. A reference read
from the database is kept only if nothing was forgotten meanwhile (`generation`), so a read
that raced a change cannot keep what the hub has just dropped, nor one whose snapshot is
older than the changes the hub has passed on (a replica behind the hub: `keep_token`).
`max_age` bounds how long anything is kept in any case.

Order. Links are listed speakers first, then by name in code-point order (`COLLATE "C"` in
the SQL that the GraphQL loaders use), then by id: the same in Python and PostgreSQL
whatever the database's collation.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import asyncpg

from db import where
from db.changes import Change
from db.filters import EntryFilter, Ref
from db.rows import ActorRef, BlogRef, EntryActor, LocationRef, SourceRef, from_record
from db.sql import query

# one of each actor's two links, by role; speakers sort first
_SPEAKER, _MENTIONED = 0, 1


class ActorLinks:
    """An actor's two `EntryActor` objects (speaker, mentioned) and its sort key."""

    __slots__ = ("by_role", "key")

    def __init__(self, ref: ActorRef) -> None:
        self.by_role = (EntryActor(role="speaker", actor=ref), EntryActor(role="mentioned", actor=ref))
        self.key = (ref.name, ref.id)


class Heard:
    """A per-process cache that the live hub keeps fresh (see the module docstring)."""

    def __init__(self, *, max_age: float = 300.0) -> None:
        self.max_age = max_age
        self.live = False  # the hub hears every change
        self.seq = 0  # every change up to this seq has been passed on
        self.generation = 0  # grows whenever something may have become stale
        self._since = time.monotonic()

    def set_live(self, live: bool, seq: int = 0) -> None:
        """Whether every change will be heard from now on; `seq`: what the hub has seen so far."""
        self.live = live
        self.seq = seq
        self.clear()

    def heard(self, changes: Sequence[Change]) -> None:
        """Changes the hub read from the log, in seq order: drop what they touch."""
        for change in changes:
            self.forget(change.entity, change.id)
        if changes:
            self.seq = max(self.seq, changes[-1].seq)

    def trusts(self, seq: int) -> bool:
        """Whether what is kept is at least as new as a snapshot that saw changes up to `seq`."""
        if self.live and time.monotonic() - self._since > self.max_age:
            self.clear()
        return self.live and seq <= self.seq

    def keep_token(self, seq: int) -> int:
        """Taken before reading rows for a snapshot that saw changes up to `seq`: what they may be
        kept under (`generation`), or -1 (never kept) when the snapshot is older than what this
        cache has heard, as on a replica that has not replayed what the hub read elsewhere: rows
        from it could be older than a change already heard, and nothing would drop them."""
        return self.generation if seq >= self.seq else -1

    def forget(self, entity: str, entity_id: int) -> None:
        raise NotImplementedError

    def clear(self) -> None:
        self.generation += 1
        self._since = time.monotonic()


class Refs(Heard):
    """Catalog references by id, for the pages of this process."""

    def __init__(self, *, max_age: float = 300.0, max_size: int = 200_000) -> None:
        super().__init__(max_age=max_age)
        self.max_size = max_size
        self.blogs: dict[int, BlogRef] = {}
        self.actors: dict[int, ActorLinks] = {}
        self.locations: dict[int, LocationRef] = {}
        self.sources: dict[int, SourceRef] = {}
        self.slugs: dict[tuple[str, str], int] = {}  # (kind, slug) -> id, for what the tables hold

    def forget(self, entity: str, entity_id: int) -> None:
        """Drop one reference (a change to it committed); changes to entries are not ours."""
        tables: dict[str, dict[int, Any]] = {
            "blog": self.blogs,
            "actor": self.actors,
            "location": self.locations,
            "source": self.sources,
        }
        table = tables.get(entity)
        if table is not None:
            self.generation += 1
            table.pop(entity_id, None)
            for key in [key for key, id_ in self.slugs.items() if id_ == entity_id and key[0] == entity]:
                del self.slugs[key]

    def clear(self) -> None:
        super().clear()
        for table in (self.blogs, self.actors, self.locations, self.sources):
            table.clear()
        self.slugs.clear()

    def resolved(self, f: EntryFilter) -> EntryFilter | None:
        """`f` with its references (blog, actor, location, source) as ids from what is kept here,
        when every one is kept and `f` names at least one (and nests no and_/or_/not_); else None.

        A guess, saving the statements that turn slugs into ids: the caller keeps a page read
        with it only if nothing was forgotten meanwhile (`generation`) and the page's statement
        saw no change this cache has not heard (`trusts`), so the references held at its snapshot.
        """
        if not self.live or f.and_ or f.or_ or f.not_:
            return None
        maps: dict[where.RefKind, dict[Ref, int]] = {}
        named = False
        kind: where.RefKind
        for kind, table in (
            ("blog", self.blogs),
            ("actor", self.actors),
            ("location", self.locations),
            ("source", self.sources),
        ):
            found: dict[Ref, int] = {}
            for ref in getattr(f, kind):
                id_ = self.slugs.get((kind, ref)) if isinstance(ref, str) else (ref if ref in table else None)
                if id_ is None:
                    return None
                found[ref] = id_
                named = True
            maps[kind] = found
        return where.rewrite(f, maps) if named else None

    def __len__(self) -> int:
        return len(self.blogs) + len(self.actors) + len(self.locations) + len(self.sources)

    # ---- reading ------------------------------------------------------------------------------

    async def view(
        self,
        conn: asyncpg.Connection,
        seq: int,
        blogs: Iterable[int],
        actors: Iterable[int],
        locations: Iterable[int],
        sources: Iterable[int],
    ) -> Refs:
        """References holding at least these ids, for a snapshot that saw changes up to `seq`:
        this cache (filled from the database where it lacks some) when it `trusts(seq)`, else
        a fresh set read for this request alone."""
        trusted = self.trusts(seq)
        target = self if trusted else Refs()
        missing = (
            [i for i in set(blogs) if i not in target.blogs],
            [i for i in set(actors) if i not in target.actors],
            [i for i in set(locations) if i not in target.locations],
            [i for i in set(sources) if i not in target.sources],
        )
        if any(missing):
            generation = self.keep_token(seq)
            found = await _read(conn, *missing)
            if target is self and (generation != self.generation or len(self) >= self.max_size):
                # something changed while we read, or we are full: use what we read, keep nothing
                target = Refs()
                target.blogs, target.actors = dict(self.blogs), dict(self.actors)
                target.locations, target.sources = dict(self.locations), dict(self.sources)
            target._store(found)
        return target

    def _store(self, found: list[asyncpg.Record]) -> None:
        for r in found:
            kind = r["ref"]
            if kind == "a":
                self.actors[r["id"]] = ActorLinks(from_record(ActorRef, r))
                self.slugs["actor", r["slug"]] = r["id"]
            elif kind == "l":
                self.locations[r["id"]] = from_record(LocationRef, r)
                self.slugs["location", r["slug"]] = r["id"]
            elif kind == "s":
                self.sources[r["id"]] = from_record(SourceRef, r)
                self.slugs["source", r["slug"]] = r["id"]
            else:
                self.blogs[r["id"]] = BlogRef(id=r["id"], slug=r["slug"], title=r["name"])
                self.slugs["blog", r["slug"]] = r["id"]

    # ---- an entry's links, in their order -----------------------------------------------------

    def actor_links(self, ids: list[int] | None, speaker: list[bool] | None) -> list[EntryActor]:
        if not ids or speaker is None:
            return []
        actors = self.actors
        if len(ids) == 1:
            return [actors[ids[0]].by_role[_SPEAKER if speaker[0] else _MENTIONED]]
        ranked = sorted(
            (not says, actors[i].key, actors[i].by_role[_SPEAKER if says else _MENTIONED])
            for i, says in zip(ids, speaker, strict=True)
        )
        return [link for _, _, link in ranked]

    def location_links(self, ids: list[int] | None) -> list[LocationRef]:
        return _by_name(self.locations, ids)

    def source_links(self, ids: list[int] | None) -> list[SourceRef]:
        return _by_name(self.sources, ids)


R = TypeVar("R", LocationRef, SourceRef)


def _by_name(table: dict[int, R], ids: list[int] | None) -> list[R]:
    if not ids:
        return []
    found = [table[i] for i in ids]
    if len(found) > 1:
        found.sort(key=_name_and_id)
    return found


def _name_and_id(ref: LocationRef | SourceRef) -> tuple[str, int]:
    return (ref.name, ref.id)


async def _read(
    conn: asyncpg.Connection, blogs: list[int], actors: list[int], locations: list[int], sources: list[int]
) -> list[asyncpg.Record]:
    return await conn.fetch(query("catalog_refs"), blogs, actors, locations, sources)
