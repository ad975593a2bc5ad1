"""count=true from the entry bitmaps (migrations 0050 and 0060, db/bitcount.py): always equal to
counting the entries, over random filters (full-text ones among them), after random writes of
every kind, with concurrent writers, and after a bulk load that bypassed the triggers."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from db import bitcount, timeline, where
from db.filters import EntryFilter
from db.pool import connect
from db.sql import query
from tests.db import factories as f
from tests.db.factories import T0

MIDNIGHT = T0.replace(hour=0)
DAYS = 6
KINDS = ["post", "video", "interactive", "read_more"]
BOXES = [
    (-180.0, -90.0, 180.0, 90.0),  # everything: every country closed
    (29.0, 44.0, 36.0, 50.0),  # one country and all its places
    (30.0, 46.0, 31.0, 47.0),  # one city
    (32.0, 44.0, 36.0, 46.0),  # a region whose city lies outside: not from bitmaps
    (170.0, -10.0, -170.0, 10.0),  # across the antimeridian
]

# the entries' words: a small vocabulary, so that most terms (and pairs) are in several entries
VOCABULARY = ["drone", "strike", "air", "defence", "missile", "power", "grid", "port", "talks", "and", "the"]
QUERIES = [
    "drone",
    "Drones",  # the same lexeme
    "air defence",  # both words, anywhere
    '"air defence"',  # the pair, adjacent
    '"air defence" -drone',
    "drone or missile",
    "-strike",
    'talks -"power grid"',
    '"strike air defence"',  # three words: pairs could only say which might match
    '"air and defence"',  # a gap where the stopword was
    "zeppelin",  # in no entry: no term tracked
    "airport",  # in one entry (rare_entry): not tracked
    "the",  # a stopword only: an empty query
]

World = dict[str, list[int]]


def moment(days: float) -> datetime:
    return MIDNIGHT + timedelta(days=days)


@pytest.fixture
async def world(conn: asyncpg.Connection) -> World:
    rng = random.Random(7)
    w: World = {
        "blog": [await f.blog(conn) for _ in range(3)],
        "actor": [await f.actor(conn, f"actor-{i}") for i in range(5)],
        "source": [await f.source(conn, f"source-{i}") for i in range(3)],
    }
    country = await f.location(conn, "country-a", 48.0, 31.0, kind="country")
    region = await f.location(conn, "region-a", 45.0, 34.0, kind="region", parent=country)
    city = await f.location(conn, "city-a", 46.5, 30.7, parent=region)
    city2 = await f.location(conn, "city-b", 47.5, 32.0, parent=region)
    other = await f.location(conn, "country-b", 0.0, 175.0, kind="country")
    city3 = await f.location(conn, "city-c", 1.0, -175.0, parent=other)
    loose = await f.location(conn, "loose-site", 10.0, 10.0, kind="site")
    w["location"] = [country, region, city, city2, other, city3, loose]
    w["entry"] = [await random_entry(conn, rng, w) for _ in range(150)]
    await f.entry(conn, w["blog"][0], moment(1.5), headline="An airport reopens")
    await conn.fetchval("SELECT sitrep_track_search_terms(3)")  # the terms of at least 3 entries
    async with conn.transaction():  # updated_at spread over the days (the touch trigger would say now())
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute("UPDATE entries SET updated_at = published_at + interval '1 day' * (id % 3)")
    return w


def random_text(rng: random.Random) -> str:
    return " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(1, 6))).capitalize()


async def random_entry(conn: asyncpg.Connection, rng: random.Random, w: World) -> int:
    return await f.entry(
        conn,
        rng.choice(w["blog"]),
        moment(rng.uniform(0, DAYS)),
        headline=random_text(rng),
        body=[random_text(rng) for _ in range(rng.randint(0, 2))],
        kind=rng.choice(KINDS),
        actors=rng.sample(w["actor"], rng.randint(0, 3)),
        sources=rng.sample(w["source"], rng.randint(0, 2)),
        locations=rng.sample(w["location"], rng.randint(0, 2)),
    )


def random_moment(rng: random.Random) -> datetime:
    day = rng.randint(-1, DAYS + 1)
    return moment(day if rng.random() < 0.4 else day + rng.random())


def random_filter(rng: random.Random, w: World, depth: int = 0) -> EntryFilter:
    kw: dict[str, Any] = {}
    for field in ("blog", "actor", "source", "location"):
        if rng.random() < 0.3:
            kw[field] = tuple(rng.sample(w[field], rng.randint(1, 2)))
    if "actor" in kw and rng.random() < 0.5:
        kw["actor_match"] = "all"
    if rng.random() < 0.2:
        kw["kind"] = tuple(rng.sample(KINDS, rng.randint(1, 2)))
    if rng.random() < 0.3:
        kw["since"] = random_moment(rng)
    if rng.random() < 0.3:
        kw["until"] = random_moment(rng)
    if rng.random() < 0.1:
        kw["bbox"] = rng.choice(BOXES)
    if rng.random() < 0.2:
        kw["q"] = rng.choice(QUERIES)
    if depth == 0 and rng.random() < 0.15:  # the bitmaps take it at the top level only
        kw["updated_since"] = random_moment(rng)
    if depth < 2:
        if rng.random() < 0.2:
            kw["and_"] = tuple(random_filter(rng, w, depth + 1) for _ in range(rng.randint(1, 2)))
        if rng.random() < 0.25:
            kw["or_"] = tuple(random_filter(rng, w, depth + 1) for _ in range(rng.randint(2, 3)))
        if rng.random() < 0.2:
            kw["not_"] = random_filter(rng, w, depth + 1)
    return EntryFilter(**kw)


async def plain_count(conn: asyncpg.Connection, flt: EntryFilter) -> int:
    sql, values = where.count_entries_sql(flt)
    return int(await conn.fetchval(sql, *values))


async def check(conn: asyncpg.Connection, rng: random.Random, w: World, n: int) -> int:
    """Compare `n` random filters; return how many were counted from the bitmaps."""
    compiled = 0
    for _ in range(n):
        flt = random_filter(rng, w)
        covers = await timeline.box_covers(conn, flt)
        compiled += bitcount.compile_count(flt, covers, await bitcount.search_words(conn, flt)) is not None
        assert await timeline.count(conn, flt) == await plain_count(conn, flt), flt
    return compiled


# every bit the triggers keep, decoded into entry ids, against what the tables say now
_KEPT = """
SELECT b.family, b.target, s.entry_id FROM entry_bits b
  JOIN entry_slots s ON s.day = b.day AND s.slot / 1024 = b.part AND get_bit(b.bits, s.slot % 1024) = 1
 WHERE b.family <> 'e' AND EXISTS (SELECT 1 FROM entry_bits u WHERE u.family = 'e' AND u.day = b.day
                                   AND u.part = b.part AND get_bit(u.bits, s.slot % 1024) = 1)
"""
_EXPECTED = """
SELECT 'b'::"char", blog_id, id FROM entries
UNION SELECT 'k', sitrep_kind_no(kind), id FROM entries
UNION SELECT 'a', actor_id, entry_id FROM entry_actors
UNION SELECT 's', source_id, entry_id FROM entry_sources
UNION SELECT 'L', c.ancestor_id, l.entry_id FROM entry_locations l JOIN location_closure c ON c.location_id = l.location_id
UNION SELECT 'L', 0, entry_id FROM entry_locations
UNION SELECT 'w', t.id, e.id FROM entries e, search_terms t
 WHERE e.search @@ (CASE WHEN t.term LIKE '% %' THEN tsquery_phrase(quote_literal(split_part(t.term, ' ', 1))::tsquery,
                                                                   quote_literal(split_part(t.term, ' ', 2))::tsquery)
                    ELSE quote_literal(t.term)::tsquery END)
"""


async def assert_bits_exact(conn: asyncpg.Connection) -> None:
    wrong = await conn.fetch(f"({_KEPT}) EXCEPT ({_EXPECTED}) UNION ALL (({_EXPECTED}) EXCEPT ({_KEPT})) LIMIT 5")
    assert not wrong, [tuple(r) for r in wrong]
    slots = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM entries) AS entries,"
        " (SELECT count(*) FROM entry_slots s JOIN entries e ON e.id = s.entry_id"
        "   AND (e.published_at AT TIME ZONE 'UTC')::date = s.day) AS placed,"
        " (SELECT count(*) FROM entry_slots) AS slots,"
        " (SELECT COALESCE(sum(bit_count(bits)), 0) FROM entry_bits WHERE family = 'e') AS live"
    )
    assert slots["entries"] == slots["placed"] == slots["slots"] == slots["live"], dict(slots)


async def test_random_filters_count_as_many_as_counting_entries(conn: asyncpg.Connection, world: World) -> None:
    rng = random.Random(1)
    compiled = await check(conn, rng, world, 400)
    assert compiled > 300  # the bitmaps answered most of them: this compared them, not the fallback
    await assert_bits_exact(conn)


async def test_counts_stay_exact_through_random_writes(conn: asyncpg.Connection, world: World) -> None:
    rng = random.Random(2)
    w = world
    ids = w["entry"]
    for round_ in range(25):
        for _ in range(6):
            op = rng.randrange(11)
            some = rng.sample(ids, 3)
            if op == 0:
                ids.append(await random_entry(conn, rng, w))
            elif op == 1:  # within the day or across midnights; links follow (0001's trigger)
                hours = rng.choice([1, 7, 23, 30, -26])
                await conn.execute(
                    "UPDATE entries SET published_at = published_at + make_interval(hours => $2) WHERE id = ANY($1)",
                    some,
                    hours,
                )
            elif op == 2:
                await conn.execute("UPDATE entries SET blog_id = $2 WHERE id = ANY($1)", some, rng.choice(w["blog"]))
            elif op == 3:
                await conn.execute("UPDATE entries SET kind = $2 WHERE id = ANY($1)", some, rng.choice(KINDS))
            elif op == 4:
                await conn.execute("DELETE FROM entries WHERE id = ANY($1)", some)
                ids[:] = [i for i in ids if i not in some]
            elif op == 5:
                await conn.execute("DELETE FROM entry_actors WHERE entry_id = ANY($1)", some)
                await conn.execute("DELETE FROM entry_locations WHERE entry_id = $1", some[0])
            elif op == 6:  # relink, as db/ingest/relink does: delete, then insert
                await conn.execute("DELETE FROM entry_sources WHERE entry_id = ANY($1)", some)
                await conn.execute(
                    "INSERT INTO entry_sources (entry_id, source_id, published_at)"
                    " SELECT e.id, $2, e.published_at FROM entries e WHERE e.id = ANY($1)",
                    some,
                    rng.choice(w["source"]),
                )
                await conn.execute(
                    "INSERT INTO entry_locations (entry_id, location_id, published_at)"
                    " SELECT e.id, $2, e.published_at FROM entries e WHERE e.id = ANY($1) ON CONFLICT DO NOTHING",
                    some,
                    rng.choice(w["location"]),
                )
            elif op == 7:  # an UPDATE of the linked id itself
                await conn.execute(
                    "UPDATE entry_actors SET actor_id = $2 WHERE (entry_id, actor_id) IN (SELECT DISTINCT ON (entry_id)"
                    " entry_id, actor_id FROM entry_actors WHERE entry_id = ANY($1) ORDER BY entry_id, actor_id)"
                    " AND NOT EXISTS (SELECT 1 FROM entry_actors x WHERE x.entry_id = entry_actors.entry_id"
                    " AND x.actor_id = $2)",
                    some,
                    rng.choice(w["actor"]),
                )
            elif op == 8:  # the hierarchy moves: location_closure changes under the links
                country, region, _, _, other, _, loose = w["location"]
                await conn.execute(
                    "UPDATE locations SET parent_id = $2 WHERE id = $1", region, rng.choice([country, other, None])
                )
                await conn.execute(
                    "UPDATE locations SET parent_id = $2 WHERE id = $1", loose, rng.choice([None, other])
                )
            elif op == 9:  # new words: a new slot for the entry, its terms' bits with it
                await conn.execute("UPDATE entries SET headline = $2 WHERE id = ANY($1)", some, random_text(rng))
                await conn.execute(
                    "UPDATE entries SET body = $2 WHERE id = $1", some[0], [random_text(rng), random_text(rng)]
                )
            else:  # a write rolled back leaves nothing behind
                try:
                    async with conn.transaction():
                        ids_tx = await random_entry(conn, rng, w)
                        await conn.execute("DELETE FROM entries WHERE id = ANY($1)", some)
                        await conn.execute("UPDATE entries SET kind = 'video' WHERE id = $1", ids_tx)
                        raise _Rollback
                except _Rollback:
                    pass
        await check(conn, rng, w, 16)
        if round_ % 5 == 4:
            await assert_bits_exact(conn)
    await assert_bits_exact(conn)


class _Rollback(Exception):
    pass


async def written_entry(conn: asyncpg.Connection, rng: random.Random, w: World) -> int:
    """An entry and its links written as POST /v1/entries writes them (a statement a link table)."""
    entry_id = int(
        await conn.fetchval(
            "INSERT INTO entries (blog_id, published_at, headline, kind) VALUES ($1, $2, 'An update', $3) RETURNING id",
            rng.choice(w["blog"]),
            moment(rng.uniform(0, DAYS)),
            rng.choice(KINDS),
        )
    )
    actors = rng.sample(w["actor"], rng.randint(0, 3))
    await conn.execute(query("write_link_actors"), entry_id, actors, ["mentioned"] * len(actors))
    await conn.execute(query("write_link_locations"), entry_id, rng.sample(w["location"], rng.randint(0, 2)))
    await conn.execute(query("write_link_sources"), entry_id, rng.sample(w["source"], rng.randint(0, 2)))
    return entry_id


async def test_concurrent_writers_keep_the_bitmaps_exact(conn: asyncpg.Connection, db_dsn: str, world: World) -> None:
    async def writer(seed: int) -> None:
        rng = random.Random(seed)
        c = await connect(db_dsn)
        try:
            # one write a transaction, as the API writes: several in one transaction lock the
            # per-day rows of their days in the order they were written, and can deadlock
            for i in range(12):
                async with c.transaction():
                    new = await written_entry(c, rng, world)
                async with c.transaction():
                    await c.execute("DELETE FROM entry_actors WHERE entry_id = $1", rng.choice(world["entry"]))
                async with c.transaction():
                    hours = 20 if i % 2 else -30
                    await c.execute(
                        "UPDATE entries SET published_at = published_at + make_interval(hours => $2) WHERE id = $1",
                        new,
                        hours,
                    )
        finally:
            await c.close()

    await asyncio.gather(*(writer(s) for s in range(4)))
    await assert_bits_exact(conn)
    await check(conn, random.Random(3), world, 60)


async def test_a_load_with_triggers_off_is_rebuilt(conn: asyncpg.Connection, world: World) -> None:
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        rng = random.Random(4)
        for _ in range(20):
            await random_entry(conn, rng, world)
        await conn.execute("SET LOCAL session_replication_role = origin")
        await timeline.rebuild_rollups(conn)
    await assert_bits_exact(conn)
    await check(conn, random.Random(5), world, 60)


async def test_a_wrong_bit_is_caught(conn: asyncpg.Connection, world: World) -> None:
    """The comparisons above can fail: one cleared bitmap shows in both."""
    actor = world["actor"][0]
    flt = EntryFilter(or_=(EntryFilter(actor=(actor,)), EntryFilter(kind=("video",))), since=moment(0.5))
    assert await timeline.count(conn, flt) == await plain_count(conn, flt)
    await conn.execute(
        "UPDATE entry_bits SET bits = 0::bit(1024)::bit varying WHERE family = 'a' AND target = $1", actor
    )
    assert await timeline.count(conn, flt) < await plain_count(conn, flt)
    with pytest.raises(AssertionError):
        await assert_bits_exact(conn)


async def test_updated_since_with_many_entries_updated_before_it(
    conn: asyncpg.Connection, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More than OLDER_MAX entries updated before updated_since: counted plainly, still exact."""
    monkeypatch.setattr(bitcount, "OLDER_MAX", 3)
    for days in (0.5, 2.5, 9):
        flt = EntryFilter(updated_since=moment(days), actor=tuple(world["actor"][:2]))
        sql, values = timeline.count_plan(flt, {})
        assert "entry_bits" in sql
        plain = await plain_count(conn, flt)
        assert await timeline.count(conn, flt) == plain
        older = await conn.fetchval("SELECT count(*) FROM entries WHERE updated_at < $1", moment(days))
        assert (await conn.fetchval(sql, *values) is None) == (older > 3)


async def test_full_text_counts_come_from_the_bitmaps_of_tracked_terms(conn: asyncpg.Connection, world: World) -> None:
    """Every query of QUERIES counts as many as `@@` on the entries, alone and with other filters;
    the bitmaps answer those made of words and two-word phrases (an untracked one's bits made
    from its entries), the rest count plainly."""
    plain_only = {'"strike air defence"', '"air and defence"', "the"}
    actor = world["actor"][0]
    for q in QUERIES:
        for flt in (
            EntryFilter(q=q),
            EntryFilter(q=q, actor=(actor,), since=moment(1.5)),
            EntryFilter(or_=(EntryFilter(q=q), EntryFilter(kind=("video",)))),
            EntryFilter(not_=EntryFilter(q=q), until=moment(4)),
        ):
            words = await bitcount.search_words(conn, flt)
            compiled = bitcount.compile_count(flt, {}, words)
            assert (compiled is not None) == (q not in plain_only), (q, words)
            untracked = q in ("zeppelin", "airport")
            assert compiled is None or ("'w'" in compiled[0]) != untracked
            assert await timeline.count(conn, flt) == await plain_count(conn, flt), flt
    assert await plain_count(conn, EntryFilter(q='"air defence"')) > 0  # the phrase is there to find


async def test_a_phrase_is_its_words_side_by_side(conn: asyncpg.Connection) -> None:
    blog = await f.blog(conn)
    for headline in ("Air defence holds", "Defence of the air bases", "Air and defence", "More air defence"):
        await f.entry(conn, blog, T0, headline=headline)
    await conn.fetchval("SELECT sitrep_track_search_terms(1)")
    for q, expected, tracked in (
        ('"air defence"', 2, True),
        ("air defence", 4, True),
        ('air -"air defence"', 2, True),
        ('"defence air"', 0, True),  # a pair in no entry: no bitmap, its (no) entries make its bits
    ):
        flt = EntryFilter(q=q)
        assert (bitcount.compile_count(flt, {}, await bitcount.search_words(conn, flt)) is not None) == tracked
        assert await timeline.count(conn, flt) == expected == await plain_count(conn, flt), q


async def test_an_untracked_word_beside_a_tracked_one(conn: asyncpg.Connection) -> None:
    blog = await f.blog(conn)
    for headline in ("Drone seen", "Drone again", "A zeppelin", "Zeppelin and drone"):
        await f.entry(conn, blog, T0, headline=headline)
    flt = EntryFilter(q="drone or zeppelin")
    assert await bitcount.search_words(conn, flt) == {"drone or zeppelin": None}  # nothing tracked yet
    await conn.fetchval("SELECT sitrep_track_search_terms(3)")  # drone only
    words = await bitcount.search_words(conn, flt)
    assert words["drone or zeppelin"] is not None
    assert words["drone or zeppelin"][0] == "|"
    assert {w[0] for w in words["drone or zeppelin"][1:]} == {"t", "u"}
    for q, expected in (("drone or zeppelin", 4), ("zeppelin -drone", 1), ('"zeppelin and drone"', 1)):
        flt = EntryFilter(q=q)
        assert await timeline.count(conn, flt) == expected == await plain_count(conn, flt), q


async def test_tracking_chooses_the_common_terms(conn: asyncpg.Connection) -> None:
    blog = await f.blog(conn)
    for i in range(5):
        await f.entry(conn, blog, T0, headline="Drone strike" if i < 3 else "Drone")
    assert await conn.fetchval("SELECT sitrep_track_search_terms(3)") == 3  # drone, strike, 'drone strike'
    terms = {r[0] for r in await conn.fetch("SELECT term FROM search_terms")}
    assert terms == {"drone", "strike", "drone strike"}
    assert await conn.fetchval("SELECT sitrep_track_search_terms(4)") == 1
    await assert_bits_exact(conn)


@pytest.mark.parametrize(
    ("flt", "compiled"),
    [
        (EntryFilter(actor=(1, 2)), True),
        (EntryFilter(not_=EntryFilter(source=(1,)), since=moment(0.5)), True),
        (EntryFilter(or_=(EntryFilter(location=(1,)), EntryFilter(kind=("video",))), until=moment(2)), True),
        (EntryFilter(actor=(1,), q="drone"), False),
        (EntryFilter(or_=(EntryFilter(actor=(1,)), EntryFilter(updated_since=moment(1)))), False),
        (EntryFilter(updated_since=moment(1), kind=("video",)), True),
        (EntryFilter(updated_since=moment(1), q="drone"), False),
        (EntryFilter(bbox=(0.0, 0.0, 1.0, 1.0)), False),  # without a cover
    ],
)
def test_which_filters_the_bitmaps_answer(flt: EntryFilter, compiled: bool) -> None:
    assert (bitcount.compile_count(flt) is not None) == compiled
