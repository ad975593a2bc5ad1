"""Entry pages read with their links' ids and the references kept in `db.refs.Refs`: the same
entries, links and order as the change feed's documents (built in SQL, migration 0032) and the
GraphQL loaders, and never older than the page's snapshot."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
import msgspec
import pytest

from db import changes, entries, graph
from db.changes import Change
from db.filters import EntryFilter, EntrySort
from db.page import Page
from db.refs import Refs
from tests.db import factories as f
from tests.db.factories import at
from tests.db.test_entries import FILTERS, SORTS, World, build_world


@pytest.fixture
async def world(conn: asyncpg.Connection) -> World:
    return await build_world(conn)


@pytest.mark.parametrize("name", list(FILTERS))
async def test_linked_pages_equal_pages_with_batch_relations(conn: asyncpg.Connection, world: World, name: str) -> None:
    flt = FILTERS[name](world)
    refs = Refs()
    refs.set_live(True)  # kept between pages, as a server keeps it
    for sort in SORTS:
        page = Page(limit=7, count=True)
        while True:
            plain = await entries.list_entries(conn, flt, sort, page)
            want = await _documents(conn, [r.id for r in plain.rows])
            linked = await entries.list_linked(conn, refs, flt, sort, page)
            assert msgspec.to_builtins(linked.rows) == want
            assert (linked.next_key, linked.total) == (plain.next_key, plain.total)
            keys, _ = await entries.list_keys(conn, flt, sort, page)
            assert [(k.id, k.updated_at) for k in keys.rows] == [(r.id, r.updated_at) for r in plain.rows]
            assert (keys.next_key, keys.total) == (plain.next_key, plain.total)
            by_id = await entries.linked_by_ids(conn, refs, [r.id for r in plain.rows])
            assert msgspec.to_builtins([by_id[r.id] for r in plain.rows]) == want
            if plain.next_key is None:
                break
            page = Page(limit=7, after=plain.next_key)


async def _collated(conn: asyncpg.Connection) -> str:
    """An ICU collation when the server can use one (names then sort otherwise than by code
    point); the database's default otherwise (the embedded server is built without ICU)."""
    found = await conn.fetchval("SELECT collname FROM pg_collation WHERE collprovider = 'i' ORDER BY collname LIMIT 1")
    if found is None:
        return "default"
    try:
        await conn.fetchval(f"SELECT 'a' < 'B' COLLATE \"{found}\"")
    except asyncpg.FeatureNotSupportedError:  # listed in the catalog, but not built in
        return "default"
    return str(found)


@pytest.mark.parametrize("sort", SORTS)
async def test_links_are_speakers_first_then_by_code_point_whatever_the_collation(
    conn: asyncpg.Connection, sort: EntrySort
) -> None:
    collation = await _collated(conn)
    for table in ("actors", "locations", "sources"):
        await conn.execute(f'ALTER TABLE {table} ALTER COLUMN name TYPE text COLLATE "{collation}"')
    names = ["alpha", "Beta", "Émile", "zed", "Zed", "beta"]
    actor_ids = [await f.actor(conn, f"a{i}", n) for i, n in enumerate(names)]
    place_ids = [await f.location(conn, f"l{i}", 50.0, 30.0, name=n) for i, n in enumerate(names)]
    source_ids = [await f.source(conn, f"s{i}", name=n) for i, n in enumerate(names)]
    roles = {a: ("speaker" if i in (2, 4) else "mentioned") for i, a in enumerate(actor_ids)}
    b = await f.blog(conn)
    await f.entry(conn, b, at(0), actors=roles, locations=place_ids, sources=source_ids)
    want_actors = [n for i, n in sorted(enumerate(names), key=lambda p: (roles[actor_ids[p[0]]] != "speaker", p[1]))]
    page = await entries.list_linked(conn, Refs(), EntryFilter(), sort)
    (entry,) = page.rows
    assert [a.actor.name for a in entry.actors] == want_actors == ["Zed", "Émile", "Beta", "alpha", "beta", "zed"]
    assert [p.name for p in entry.locations] == sorted(names)
    assert [s.name for s in entry.sources] == sorted(names)
    # GraphQL's loaders and the change feed's documents agree
    assert [a.actor.name for a in (await graph.entry_actors(conn, [entry.id]))[entry.id]] == want_actors
    assert [p.name for p in (await graph.entry_locations(conn, [entry.id]))[entry.id]] == sorted(names)
    assert [s.name for s in (await graph.entry_sources(conn, [entry.id]))[entry.id]] == sorted(names)
    (doc,) = await _documents(conn, [entry.id])
    assert doc == msgspec.to_builtins(entry)


async def _documents(conn: asyncpg.Connection, ids: list[int]) -> list[dict[str, Any]]:
    """The entries as the change feed carries them: built in SQL, apart from the code under test."""
    found = await conn.fetch("SELECT id, doc FROM sitrep_entry_docs($1::bigint[])", ids)
    docs = {r["id"]: changes.rest_shape("entry", r["doc"]) for r in found}
    return [docs[i] for i in ids]


def _change(seq: int, entity: str, entity_id: int) -> Change:
    return Change(seq=seq, entity=entity, id=entity_id, op="update", at=datetime.now(UTC), data=None)  # type: ignore[arg-type]


async def _actor_names(conn: asyncpg.Connection, refs: Refs) -> list[str]:
    page = await entries.list_linked(conn, refs, EntryFilter(actor=("dmitry-peskov",)), page=Page(limit=1))
    return [a.actor.name for e in page.rows for a in e.actors if a.actor.slug == "dmitry-peskov"]


async def _last_seq(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT COALESCE(max(seq), 0) FROM changes"))


async def test_a_page_never_shows_references_older_than_its_snapshot(conn: asyncpg.Connection, world: World) -> None:
    refs = Refs()
    refs.set_live(True, await _last_seq(conn))
    assert await _actor_names(conn, refs) == ["Dmitry Peskov"]
    kept = len(refs)
    assert kept > 0  # the references are kept between pages
    # another instance renames the actor; this one's hub has not passed the change on yet
    await conn.execute("UPDATE actors SET name = 'Dmitrii Peskov' WHERE slug = 'dmitry-peskov'")
    seq = await _last_seq(conn)
    assert not refs.trusts(seq)
    assert await _actor_names(conn, refs) == ["Dmitrii Peskov"]  # read afresh for this page
    # once the hub passes the change on, the kept reference is dropped and the cache trusted again
    refs.heard([_change(seq, "actor", world.ids["peskov"])])
    assert refs.trusts(seq)
    assert world.ids["peskov"] not in refs.actors
    assert await _actor_names(conn, refs) == ["Dmitrii Peskov"]
    assert world.ids["peskov"] in refs.actors


async def test_nothing_is_kept_while_changes_may_go_unheard(conn: asyncpg.Connection, world: World) -> None:
    refs = Refs()
    assert await _actor_names(conn, refs) == ["Dmitry Peskov"]
    assert len(refs) == 0  # not live: every page reads its references
    refs.set_live(True, await _last_seq(conn))
    await _actor_names(conn, refs)
    assert len(refs) > 0
    refs.set_live(False)  # the hub lost its LISTEN connection
    assert len(refs) == 0
    assert not refs.trusts(0)


async def test_a_read_that_raced_a_change_is_used_but_not_kept(conn: asyncpg.Connection, world: World) -> None:
    refs = Refs()
    refs.set_live(True, await _last_seq(conn))
    original = refs.heard

    # the hub drops a reference while this page reads its references from the database
    async def read_then_forget(query: str, *args: object) -> list[asyncpg.Record]:
        found: list[asyncpg.Record] = await conn.fetch(query, *args)
        original([_change(refs.seq, "actor", world.ids["peskov"])])
        return found

    page = await entries.list_entries(conn, EntryFilter(actor=("dmitry-peskov",)), page=Page(limit=1))
    racing = cast(asyncpg.Connection, _Proxy(conn, read_then_forget))
    view = await refs.view(racing, refs.seq, [page.rows[0].blog_id], [world.ids["peskov"]], [], [])
    assert world.ids["peskov"] in view.actors  # this page has what it read
    assert view is not refs
    assert len(refs) == 0


class _Proxy:
    """A connection whose `fetch` runs a given coroutine (to interleave a change with a read)."""

    def __init__(self, conn: asyncpg.Connection, fetch: object) -> None:
        self._conn = conn
        self.fetch = fetch
