"""JSON entry lists with the entry cache (api/entry_cache.py): the same bytes as without it,
and never older than the database at the moment of the request, whoever changed it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.entry_cache import EntryCache
from api.settings import Settings
from db import entries
from db import keys as keydb
from db.filters import EntryFilter
from db.page import Page
from db.refs import Refs
from tests.db.test_entries import World, build_world

SECRET = "entry-cache-test"
QUERIES = [
    "/v1/entries",
    "/v1/entries?limit=5",
    "/v1/entries?actor=dmitry-peskov&limit=4",
    "/v1/entries?location=crimea&sort=updated_at",
    "/v1/entries?q=drone&limit=3",
    "/v1/entries?blog=kyiv-live&kind=post&sort=-updated_at&limit=2",
]


def _settings(**overrides: Any) -> Settings:
    return Settings(secret=SECRET, anonymous_rate=100_000, redis_url=None, **overrides)


@pytest.fixture
async def world(conn: asyncpg.Connection) -> World:
    return await build_world(conn)


@pytest.fixture
async def client(db_dsn: str, world: World) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(_settings(), db_dsn)) as client:
        yield client


@pytest.fixture
async def uncached(db_dsn: str, world: World) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(_settings(entry_cache_mb=0), db_dsn)) as client:
        yield client


def _cache(client: AsyncTestClient[Any]) -> EntryCache:
    cache: EntryCache = client.app.state.entry_cache
    return cache


async def _page(client: AsyncTestClient[Any], path: str) -> tuple[bytes, str]:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return response.content, response.headers["etag"]


async def _pages(client: AsyncTestClient[Any], path: str) -> list[tuple[bytes, str]]:
    """Every page of a list, following next_cursor: (body, ETag) each."""
    out = []
    while path:
        response = await client.get(path)
        assert response.status_code == 200, response.text
        out.append((response.content, response.headers["etag"]))
        cursor = response.json()["page"]["next_cursor"]
        base = path.split("&cursor=")[0]
        path = f"{base}{'&' if '?' in base else '?'}cursor={cursor}" if cursor else ""
    return out


@pytest.mark.parametrize("path", QUERIES)
async def test_pages_are_byte_identical_with_and_without_the_cache(
    client: AsyncTestClient[Any], uncached: AsyncTestClient[Any], path: str
) -> None:
    want = await _pages(uncached, path)
    assert await _pages(client, path) == want  # filled on the way
    assert len(_cache(client)) > 0
    assert await _pages(client, path) == want  # now served from it
    assert len(_cache(uncached)) == 0


async def _headlines(client: AsyncTestClient[Any]) -> dict[int, dict[str, Any]]:
    response = await client.get("/v1/entries?limit=200")
    return {e["id"]: e for e in response.json()["data"]}


async def test_a_change_by_another_instance_shows_at_once(
    client: AsyncTestClient[Any], conn: asyncpg.Connection, world: World
) -> None:
    before = await _headlines(client)
    assert len(_cache(client)) == len(before)
    first = world.rows[0]["id"]
    peskov = world.ids["peskov"]
    # written on another connection, as another instance would; no waiting for this one's hub
    await conn.execute("UPDATE entries SET headline = 'Changed elsewhere' WHERE id = $1", first)
    await conn.execute("UPDATE actors SET name = 'Dmitrii Peskov' WHERE id = $1", peskov)
    linked = next(r["id"] for r in world.rows if peskov in r["actors"])
    await conn.execute("DELETE FROM entry_actors WHERE entry_id = $1 AND actor_id = $2", linked, peskov)
    gone = world.rows[1]["id"]
    await conn.execute("DELETE FROM entries WHERE id = $1", gone)
    after = await _headlines(client)
    assert after[first]["headline"] == "Changed elsewhere"
    assert gone not in after
    assert peskov not in {a["actor"]["id"] for a in after[linked]["actors"]}
    names = {a["actor"]["name"] for e in after.values() for a in e["actors"] if a["actor"]["id"] == peskov}
    assert names == {"Dmitrii Peskov"}


async def test_a_write_through_the_api_is_read_back_at_once(
    client: AsyncTestClient[Any], conn: asyncpg.Connection, world: World
) -> None:
    _, token = await keydb.create_key(conn, SECRET, name="cache-writer", scopes=("read", "write"), rate=100_000)
    auth = {"Authorization": f"Bearer {token}"}
    await _headlines(client)
    entry_id = world.rows[2]["id"]
    response = await client.patch(
        f"/v1/entries/{entry_id}", json={"headline": "Patched", "actors": [{"actor": "united-nations"}]}, headers=auth
    )
    assert response.status_code == 200, response.text
    got = (await _headlines(client))[entry_id]
    assert got == response.json()
    assert [a["actor"]["slug"] for a in got["actors"]] == ["united-nations"]
    response = await client.patch("/v1/actors/united-nations", json={"name": "UN"}, headers=auth)
    assert response.status_code == 200, response.text
    assert [a["actor"]["name"] for a in (await _headlines(client))[entry_id]["actors"]] == ["UN"]


async def test_a_lost_listen_connection_serves_nothing_stale(
    client: AsyncTestClient[Any], conn: asyncpg.Connection, world: World
) -> None:
    await _headlines(client)
    # the hub's LISTEN connection dies; changes go unheard until it is back
    killed = await conn.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = 'sitrep-live' AND datname = current_database()"
    )
    assert killed == 1
    first = world.rows[0]["id"]
    await conn.execute("UPDATE entries SET headline = 'Unheard change' WHERE id = $1", first)
    await conn.execute("UPDATE sources SET name = 'TASS agency' WHERE slug = 'tass'")
    after = await _headlines(client)
    assert after[first]["headline"] == "Unheard change"
    names = {s["name"] for e in after.values() for s in e["sources"] if s["slug"] == "tass"}
    assert names == {"TASS agency"}


async def test_the_list_etag_follows_the_bytes(
    client: AsyncTestClient[Any], conn: asyncpg.Connection, world: World
) -> None:
    path = "/v1/entries?limit=5"
    first = await client.get(path)
    tag = first.headers["etag"]
    again = await client.get(path, headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again.content == b""
    # another page, another tag; the same page from a cold cache, the same tag
    assert (await client.get("/v1/entries?limit=4")).headers["etag"] != tag
    _cache(client).clear()
    assert (await client.get(path)).headers["etag"] == tag
    await conn.execute(
        "UPDATE entries SET body = ARRAY['A new paragraph.'] WHERE id = $1", first.json()["data"][-1]["id"]
    )
    changed = await client.get(path, headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != tag
    assert changed.json()["data"][-1]["body"] == ["A new paragraph."]


async def test_the_cache_keeps_within_its_bound_dropping_the_oldest(conn: asyncpg.Connection, world: World) -> None:
    ids = [r["id"] for r in world.rows]
    found = await entries.linked_by_ids(conn, Refs(), ids)
    sizes = [len(msgspec.json.encode(found[i])) for i in ids]
    cache = EntryCache(max_bytes=sum(sizes[-5:]))
    cache.set_live(True)
    for i in ids:  # one at a time, oldest first
        cache.render({i: found[i]}, cache.generation)
        assert cache.size <= cache.max_bytes
    keys = {k.id: k for k in (await entries.list_keys(conn, EntryFilter(), page=Page(limit=200)))[0].rows}
    kept = [i for i in ids if cache.get(keys[i]) is not None]
    assert kept == ids[-5:]  # the newest five fit exactly; everything older went first
    assert cache.size == sum(sizes[-5:])
    # nothing is kept while the hub may miss changes, nor from a read that raced one
    cache.set_live(False)
    cache.render({ids[0]: found[ids[0]]}, cache.generation)
    assert len(cache) == 0
    cache.set_live(True)
    stale = cache.generation
    cache.forget("entry", ids[1])
    cache.render({ids[0]: found[ids[0]]}, stale)
    assert len(cache) == 0


async def test_a_working_set_larger_than_the_cache_reads_pages_in_one_statement(
    client: AsyncTestClient[Any], uncached: AsyncTestClient[Any], world: World
) -> None:
    cache = _cache(client)
    cache.max_bytes = 4_000  # a few entries; every list below spans all of them
    paths = [f"/v1/entries?limit=3&blog={blog}" for blog in ("kyiv-live", "gaza-live")] + ["/v1/entries?limit=4"]
    for _ in range(3):
        for path in paths:
            assert await _pages(client, path) == await _pages(uncached, path)
            assert cache.size <= cache.max_bytes
    assert cache.evictions > 0
    assert cache.hit_rate < 0.8
    assert not cache.keys_first  # so pages are read in one statement
    metrics = (await client.get("/metrics")).text
    assert f"sitrep_entry_cache_evictions_total {float(cache.evictions)}" in metrics
    assert "sitrep_entry_cache_keys_first 0.0" in metrics


async def test_a_full_cache_that_finds_half_a_page_fills_one_page_in_thirty_two(
    client: AsyncTestClient[Any], uncached: AsyncTestClient[Any], world: World
) -> None:
    """A mix that finds 40-60% of each page here never reaches keys first: filling every page then
    costs an encode per entry and as many evictions for nothing (bench/compare.py's actor mix)."""
    cache = _cache(client)
    cache.max_bytes = 4_000
    paths = [f"/v1/entries?limit=3&blog={blog}" for blog in ("kyiv-live", "gaza-live")] + ["/v1/entries?limit=4"]
    for path in paths * 2:
        assert await _pages(client, path) == await _pages(uncached, path)
    assert cache.size * 8 >= cache.max_bytes * 7  # full
    cache.count(1_000, 600)  # as if over half of every page had been found here lately
    assert 0.5 <= cache.hit_rate < 0.8
    evictions = cache.evictions
    for path in paths * 8:  # 24 first pages, 80 entries' worth
        assert await _page(client, path) == await _page(uncached, path)
    assert cache.evictions - evictions <= 4  # at most 1 page of the 24 kept, 4 entries each


def test_a_full_cache_fills_one_page_in_thirty_two_whatever_it_finds() -> None:
    """Below keys first, what is kept only pays once the traffic narrows: a crawler's working set
    far larger than the cache (0.1 found) and the actor mix (half found, 13% slower filling one
    page in 8) alike keep one page in 32; a cache with room keeps every page."""
    cache = EntryCache(max_bytes=1_000)
    cache.size = 1_000  # full
    cache.count(1_000, 100)  # a hit rate of 0.1
    assert sum(cache.fills() for _ in range(640)) == 20
    cache.count(1_000, 900)  # half found now
    assert 0.25 <= cache.hit_rate < 0.8
    assert sum(cache.fills() for _ in range(640)) == 20
    cache.size = 800  # room again: every page
    assert all(cache.fills() for _ in range(10))


async def test_traffic_narrowed_to_what_fits_reaches_keys_first_in_a_full_cache(
    client: AsyncTestClient[Any], uncached: AsyncTestClient[Any], world: World
) -> None:
    cache = _cache(client)
    cache.max_bytes = 4_000
    for blog in ("kyiv-live", "gaza-live"):
        await _pages(client, f"/v1/entries?limit=3&blog={blog}")
    await _pages(client, "/v1/entries?limit=4")
    assert cache.size * 8 >= cache.max_bytes * 7  # full of the broad mix
    path = "/v1/entries?limit=2&blog=kyiv-live"
    want = await _page(uncached, path)
    for _ in range(300):
        assert await _page(client, path) == want
        if cache.keys_first:
            break
    assert cache.keys_first, f"not keys first after 300 pages (hit rate {cache.hit_rate:.2f})"


async def test_pages_narrowed_to_what_the_cache_holds_read_keys_first(
    client: AsyncTestClient[Any], uncached: AsyncTestClient[Any], world: World
) -> None:
    path = "/v1/entries?limit=5&blog=kyiv-live"
    want = await _pages(uncached, path)
    for _ in range(5):  # the first fills the cache; then it finds 1/2, 2/3, 3/4, 4/5 of what is asked
        assert await _pages(client, path) == want
    cache = _cache(client)
    assert cache.hit_rate >= 0.8
    assert cache.keys_first
    hits = cache.hits
    assert await _pages(client, path) == want
    assert cache.hits > hits
    assert "sitrep_entry_cache_keys_first 1.0" in (await client.get("/metrics")).text


@pytest.mark.parametrize("cached", [True, False])
async def test_a_renamed_slug_is_refused_at_once_and_the_new_one_answers(
    client: AsyncTestClient[Any],
    uncached: AsyncTestClient[Any],
    conn: asyncpg.Connection,
    world: World,
    cached: bool,
) -> None:
    """Slugs in filters are turned into ids from the references a process keeps (db/refs.py
    Refs.resolved); a rename by another instance must not leave the old slug answering."""
    app = client if cached else uncached
    for path in ("/v1/entries?blog=kyiv-live", "/v1/entries?actor=dmitry-peskov"):
        assert (await app.get(path)).status_code == 200
    assert app.app.state.refs.slugs.get(("blog", "kyiv-live")) == world.ids["kyiv-live"]
    await conn.execute("UPDATE blogs SET slug = 'kyiv-live-renamed' WHERE slug = 'kyiv-live'")
    await conn.execute("UPDATE actors SET slug = 'd-peskov' WHERE slug = 'dmitry-peskov'")
    for old, new in (("blog=kyiv-live", "blog=kyiv-live-renamed"), ("actor=dmitry-peskov", "actor=d-peskov")):
        gone = await app.get(f"/v1/entries?{old}")
        assert gone.status_code == 404, gone.text
        assert (await app.get(f"/v1/entries?{new}")).status_code == 200
