"""Catalog query functions (actors, locations, sources, blogs) and the timeline, on real PostgreSQL."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from db import actors, blogs, locations, sources, timeline
from db.errors import NotFound
from db.filters import ActorFilter, BlogFilter, EntryFilter, LocationFilter, SourceFilter
from db.page import Page
from tests.db import factories as f
from tests.db.factories import at

ACTORS = [
    # slug, name, kind, aliases, country, entries linking it
    ("dmitry-peskov", "Dmitry Peskov", "person", ["Peskov", "Песков"], "RU", 5),
    ("vladimir-putin", "Vladimir Putin", "person", ["Putin", "Путин"], "RU", 3),
    ("volodymyr-zelensky", "Volodymyr Zelensky", "person", ["Zelenskyy"], "UA", 7),
    ("united-nations", "United Nations", "organization", ["UN", "ООН"], None, 1),  # noqa: RUF001
    ("russian-navy", "Russian Navy", "military", ["Black Sea Fleet"], "RU", 0),
    ("percent_odd", "100% Odd_Name", "organization", [], None, 2),
]


@pytest.fixture
async def world(conn: asyncpg.Connection) -> dict[str, int]:
    ids: dict[str, int] = {}
    ids["blog"] = await f.blog(conn, "ukraine-live", title="Russia-Ukraine war live: Crimea bridge hit")
    ids["old-blog"] = await f.blog(conn, "old-live", title="Gaza talks", status="closed", published_at=at(-3000))
    for slug, name, kind, aliases, country, _ in ACTORS:
        ids[slug] = await f.actor(conn, slug.replace("_", "-"), name, kind, aliases, country)
    ids["ukraine"] = await f.location(conn, "ukraine", 49.0, 32.0, "country", country="UA")
    ids["crimea"] = await f.location(conn, "crimea", 45.3, 34.4, "region", ids["ukraine"], country="UA")
    ids["sevastopol"] = await f.location(
        conn, "sevastopol", 44.6, 33.5, "city", ids["crimea"], country="UA", aliases=["Севастополь"]
    )
    ids["kyiv"] = await f.location(conn, "kyiv", 50.45, 30.52, "city", ids["ukraine"], country="UA", aliases=["Kiev"])
    ids["fiji"] = await f.location(conn, "suva", -18.14, 178.44, "city", country="FJ")
    ids["samoa"] = await f.location(conn, "apia", -13.83, -171.76, "city", country="WS")
    ids["tass"] = await f.source(conn, "tass", "agency", "TASS")
    ids["reuters"] = await f.source(conn, "reuters", "agency", "Reuters")
    ids["telegram"] = await f.source(conn, "telegram", "social", "Telegram")
    for k in range(max(n for *_, n in ACTORS)):
        linked = [ids[slug] for slug, *_, n in ACTORS if k < n]
        await f.entry(
            conn,
            ids["blog"],
            at(k * 90),
            f"Entry {k}",
            actors=linked,
            locations=[ids["sevastopol"]] if k % 2 else [ids["kyiv"], ids["crimea"]],
            sources=[ids["tass"]] if k < 4 else [ids["reuters"]],
        )
    return ids


async def walk(lister: Any, conn: asyncpg.Connection, flt: Any, sort: str, limit: int = 2) -> list[Any]:
    rows: list[Any] = []
    page = Page(limit=limit)
    while True:
        got = await lister(conn, flt, sort, page)
        rows += got.rows
        if not got.has_next:
            return rows
        page = Page(limit=limit, after=got.next_key)


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (
            ActorFilter(),
            [
                "100% Odd_Name",
                "Dmitry Peskov",
                "Russian Navy",
                "United Nations",
                "Vladimir Putin",
                "Volodymyr Zelensky",
            ],
        ),
        (ActorFilter(q="pesk"), ["Dmitry Peskov"]),
        (ActorFilter(q="PUT"), ["Vladimir Putin"]),
        (ActorFilter(q="песк"), ["Dmitry Peskov"]),
        (ActorFilter(q="оон"), ["United Nations"]),
        (ActorFilter(q="black sea"), ["Russian Navy"]),
        (ActorFilter(q="100%"), ["100% Odd_Name"]),
        (ActorFilter(q="1%"), []),  # % is a character, not a wildcard
        (ActorFilter(q="eskov"), []),  # prefix, not substring
        (ActorFilter(kind=("organization", "military")), ["100% Odd_Name", "Russian Navy", "United Nations"]),
        (ActorFilter(country=("RU",)), ["Dmitry Peskov", "Russian Navy", "Vladimir Putin"]),
        (
            ActorFilter(kind=("person",), country=("UA", "RU")),
            ["Dmitry Peskov", "Vladimir Putin", "Volodymyr Zelensky"],
        ),
    ],
)
async def test_actor_filters(
    conn: asyncpg.Connection, world: dict[str, int], flt: ActorFilter, expected: list[str]
) -> None:
    assert [a.name for a in await walk(actors.list_actors, conn, flt, "name")] == expected
    assert await actors.count_actors(conn, flt) == len(expected)


async def test_actors_by_entry_count_match_the_links(conn: asyncpg.Connection, world: dict[str, int]) -> None:
    got = await walk(actors.list_actors, conn, ActorFilter(), "-entry_count")
    want = sorted(((n, world[slug]) for slug, *_, n in ACTORS), reverse=True)
    assert [(a.entry_count, a.id) for a in got] == want


async def test_entry_counts_follow_inserts_deletes_and_moves(conn: asyncpg.Connection, world: dict[str, int]) -> None:
    peskov = world["dmitry-peskov"]
    before = (await actors.get_actor(conn, peskov)).entry_count
    eid = await f.entry(
        conn, world["blog"], at(5), actors=[peskov], sources=[world["telegram"]], locations=[world["kyiv"]]
    )
    assert (await actors.get_actor(conn, peskov)).entry_count == before + 1
    assert (await sources.get_source(conn, "telegram")).entry_count == 1
    await conn.execute("UPDATE entries SET published_at = $2 WHERE id = $1", eid, at(50))  # moves the links' copies
    assert (await actors.get_actor(conn, peskov)).entry_count == before + 1
    await conn.execute("DELETE FROM entries WHERE id = $1", eid)
    assert (await actors.get_actor(conn, "dmitry-peskov")).entry_count == before
    assert (await sources.get_source(conn, world["telegram"])).entry_count == 0
    true_count = await conn.fetchval("SELECT count(*) FROM entry_locations WHERE location_id = $1", world["kyiv"])
    assert (await locations.get_location(conn, "kyiv")).entry_count == true_count


@pytest.mark.parametrize("sort", ["name", "-entry_count"])
async def test_backward_catalog_pages(conn: asyncpg.Connection, world: dict[str, int], sort: str) -> None:
    forward = [a.id for a in await walk(actors.list_actors, conn, ActorFilter(), sort)]
    last = await actors.list_actors(conn, ActorFilter(), sort, Page(limit=4, direction="backward"))  # type: ignore[arg-type]
    assert [a.id for a in last.rows] == forward[-4:]
    assert last.has_previous
    earlier = await actors.list_actors(
        conn, ActorFilter(), sort, Page(limit=4, direction="backward", before=last.previous_key)
    )  # type: ignore[arg-type]
    assert [a.id for a in earlier.rows] == forward[:2]
    assert not earlier.has_previous


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (LocationFilter(within=("ukraine",)), ["crimea", "kyiv", "sevastopol"]),
        (LocationFilter(within=("crimea",)), ["sevastopol"]),
        (LocationFilter(kind=("city",), country=("ua",)), []),  # the skin upper-cases; the layer compares as given
        (LocationFilter(kind=("city",), country=("UA",)), ["kyiv", "sevastopol"]),
        (LocationFilter(q="kie"), ["kyiv"]),
        (LocationFilter(q="севас"), ["sevastopol"]),
        (LocationFilter(bbox=(33.0, 44.0, 35.0, 46.0)), ["crimea", "sevastopol"]),
        (LocationFilter(bbox=(170.0, -20.0, -170.0, -10.0)), ["apia", "suva"]),  # across the antimeridian
        (LocationFilter(near=(44.6, 33.5), radius_km=100), ["sevastopol"]),  # crimea's point is 105 km away
        (LocationFilter(near=(44.6, 33.5), radius_km=110), ["crimea", "sevastopol"]),
        (LocationFilter(near=(50.45, 30.52), radius_km=1), ["kyiv"]),
        (LocationFilter(near=(-16.0, 179.9), radius_km=1200), ["apia", "suva"]),
    ],
)
async def test_location_filters(
    conn: asyncpg.Connection, world: dict[str, int], flt: LocationFilter, expected: list[str]
) -> None:
    got = await walk(locations.list_locations, conn, flt, "name")
    assert [x.slug for x in got] == expected
    assert await locations.count_locations(conn, flt) == len(expected)
    if flt.near:
        assert all(x.distance_km is not None and x.distance_km <= (flt.radius_km or 0) for x in got)


async def test_location_parent_ancestors_and_unknowns(conn: asyncpg.Connection, world: dict[str, int]) -> None:
    sev = await locations.get_location(conn, "sevastopol")
    assert [a.slug for a in sev.ancestors] == ["ukraine", "crimea"]
    assert sev.parent is not None
    assert sev.parent.slug == "crimea"
    top = await locations.get_location(conn, world["ukraine"])
    assert top.parent is None
    assert top.ancestors == []
    with pytest.raises(NotFound) as caught:
        await locations.list_locations(conn, LocationFilter(within=("atlantis",)))
    assert caught.value.field == "within"
    with pytest.raises(NotFound):
        await locations.get_location(conn, "atlantis")


async def test_sources_and_blogs(conn: asyncpg.Connection, world: dict[str, int]) -> None:
    agencies = await walk(sources.list_sources, conn, SourceFilter(kind=("agency",)), "-entry_count")
    assert [(s.slug, s.entry_count) for s in agencies] == [("reuters", 3), ("tass", 4)][::-1]
    assert [s.slug for s in (await sources.list_sources(conn, SourceFilter(q="tel"))).rows] == ["telegram"]
    assert [b.slug for b in (await blogs.list_blogs(conn, BlogFilter())).rows] == ["ukraine-live", "old-live"]
    assert [b.slug for b in (await blogs.list_blogs(conn, BlogFilter(status=("closed",)))).rows] == ["old-live"]
    assert [b.slug for b in (await blogs.list_blogs(conn, BlogFilter(q="bridge crimea"))).rows] == ["ukraine-live"]
    blog = await blogs.get_blog(conn, "ukraine-live")
    assert blog.entry_count == 7
    with pytest.raises(NotFound):
        await blogs.get_blog(conn, 10**6)


async def test_timeline_fills_empty_buckets(conn: asyncpg.Connection, world: dict[str, int]) -> None:
    hours = await timeline.timeline(conn, EntryFilter(blog=("ukraine-live",)), "hour")
    # entries every 90 minutes from 06:00: 7 entries over 10 hours, some hours empty
    assert sum(b.count for b in hours) == 7
    assert [b.start.hour for b in hours] == list(range(6, 6 + len(hours)))
    assert 0 in [b.count for b in hours]
    days = await timeline.timeline(conn, EntryFilter(actor=("vladimir-putin",)), "day")
    assert [(b.start.isoformat(), b.count) for b in days] == [("2023-09-13T00:00:00+00:00", 3)]
    assert await timeline.timeline(conn, EntryFilter(q="nothing-matches-this"), "day") == []
    with pytest.raises(NotFound):
        await timeline.timeline(conn, EntryFilter(source=("nobody",)), "day")


@pytest.mark.parametrize(
    "make",
    [
        lambda w: EntryFilter(),
        lambda w: EntryFilter(since=at(60).replace(minute=0), until=at(400).replace(minute=0)),
        lambda w: EntryFilter(since=at(75)),  # not hour-aligned: counted from entries
        lambda w: EntryFilter(actor=("dmitry-peskov",)),
        lambda w: EntryFilter(actor=("dmitry-peskov", "volodymyr-zelensky")),
        lambda w: EntryFilter(actor=("dmitry-peskov", "volodymyr-zelensky"), actor_match="all"),
        lambda w: EntryFilter(source=("reuters",), until=at(500)),
        lambda w: EntryFilter(location=("crimea",)),
        lambda w: EntryFilter(location=("ukraine",), kind=("post",)),
        lambda w: EntryFilter(blog=("ukraine-live", "old-live")),
    ],
)
@pytest.mark.parametrize("interval", ["hour", "day"])
async def test_every_timeline_path_agrees_with_counting_entries(
    conn: asyncpg.Connection, world: dict[str, int], make: Any, interval: Any
) -> None:
    from db import where

    # make the rollups work: a move across hours, a delete, and a second blog
    moved = await conn.fetchval("SELECT id FROM entries ORDER BY id LIMIT 1")
    await conn.execute("UPDATE entries SET published_at = published_at + interval '3 hours' WHERE id = $1", moved)
    await conn.execute("DELETE FROM entries WHERE id = (SELECT max(id) FROM entries)")
    await f.entry(conn, world["old-blog"], at(30), actors=[world["dmitry-peskov"]], locations=[world["crimea"]])
    flt = make(world)
    resolved = await where.resolve_entry_filter(conn, flt)
    sql, values = where.timeline_sql(resolved, interval)
    truth = {r["start"]: r["count"] for r in await conn.fetch(sql, *values)}
    got = await timeline.timeline(conn, flt, interval)
    assert {b.start: b.count for b in got if b.count} == truth
    count_sql, count_values = timeline.count_plan(resolved)
    assert await conn.fetchval(count_sql, *count_values) == sum(truth.values())
    assert (await blogs.get_blog(conn, "old-live")).entry_count == 1


@pytest.mark.parametrize(
    ("flt", "reads"),
    [
        (EntryFilter(), "entry_hour_counts"),
        (EntryFilter(until=at(0).replace(minute=0)), "entry_hour_counts"),
        (EntryFilter(until=at(1)), "FROM entries e"),
        (EntryFilter(actor=(1, 2)), "FROM entry_actors l"),
        (EntryFilter(actor=(1, 2), actor_match="all"), "FROM entries e"),
        (EntryFilter(source=(1,), since=at(0)), "FROM entry_sources l"),
        (EntryFilter(location=(1,)), "FROM entry_locations l"),
        (EntryFilter(location=(1,), q="drone"), "FROM entries e"),
    ],
)
def test_timeline_counts_from_the_cheapest_exact_source(flt: EntryFilter, reads: str) -> None:
    sql, _ = timeline.timeline_plan(flt, "day")
    assert reads in sql


async def test_rollups_can_be_rebuilt_after_a_load_that_bypassed_triggers(
    conn: asyncpg.Connection, world: dict[str, int]
) -> None:
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(
            "INSERT INTO entries (blog_id, published_at, headline) SELECT $1, $2::timestamptz + i * interval '7 minutes', 'x'"
            " FROM generate_series(1, 100) i",
            world["old-blog"],
            at(0),
        )
        await timeline.rebuild_rollups(conn)
    assert (await blogs.get_blog(conn, "old-live")).entry_count == 100
    hours = await timeline.timeline(conn, EntryFilter(), "hour")
    assert sum(b.count for b in hours) == await conn.fetchval("SELECT count(*) FROM entries")
