"""The change feed: one change per entity per transaction, seq in commit order, a mirror never misses."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from db import changes, entries, rows, writes
from db.pool import connect

T0 = datetime(2023, 9, 13, 8, 0, tzinfo=UTC)


async def _catalog(conn: asyncpg.Connection) -> None:
    await writes.create_blog(conn, writes.BlogCreate(slug="day-1", title="Day 1", published_at=T0))
    await writes.create_actor(conn, writes.ActorCreate(slug="peskov", name="Dmitry Peskov", kind="person"))
    await writes.create_actor(conn, writes.ActorCreate(slug="zelenskyy", name="Volodymyr Zelenskyy", kind="person"))
    await writes.create_location(
        conn, writes.LocationCreate(slug="ukraine", name="Ukraine", kind="country", latitude=49.0, longitude=32.0)
    )
    await writes.create_location(
        conn,
        writes.LocationCreate(
            slug="crimea", name="Crimea", kind="region", latitude=45.0, longitude=34.0, parent="ukraine"
        ),
    )
    await writes.create_source(conn, writes.SourceCreate(slug="tass", name="TASS", kind="agency"))


async def test_an_entry_with_links_and_media_is_one_create_then_updates_then_a_tombstone(
    conn: asyncpg.Connection,
) -> None:
    await _catalog(conn)
    start = await changes.last_seq(conn)
    entry_id = await writes.create_entry(
        conn,
        writes.EntryCreate(
            blog="day-1",
            published_at=T0,
            headline="Kremlin responds",
            body=["Peskov said talks are off."],
            actors=[writes.ActorLinkIn(actor="peskov", role="speaker")],
            locations=["crimea"],
            sources=["tass"],
            media=[writes.MediaIn(kind="image", url="https://example.org/a.jpg", caption="A")],
        ),
    )
    await writes.update_entry(conn, entry_id, writes.EntryPatch(actors=[writes.ActorLinkIn(actor="zelenskyy")]))
    await writes.delete_entry(conn, entry_id)
    feed = await changes.list_changes(conn, after=start, limit=100)
    assert [(c.entity, c.id, c.op) for c in feed] == [
        ("entry", entry_id, "create"),
        ("entry", entry_id, "update"),
        ("entry", entry_id, "delete"),
    ]
    created, updated, deleted = (c.data for c in feed)
    assert created is not None
    assert updated is not None
    assert deleted is not None
    assert [a["actor"]["slug"] for a in created["actors"]] == ["peskov"]
    assert created["actors"][0]["role"] == "speaker"
    assert [loc["slug"] for loc in created["locations"]] == ["crimea"]
    assert [s["slug"] for s in created["sources"]] == ["tass"]
    assert created["media"][0]["caption"] == "A"
    assert [a["actor"]["slug"] for a in updated["actors"]] == ["zelenskyy"]
    # the tombstone carries the last state, so a stream can tell subscribers which entry went
    assert deleted["headline"] == "Kremlin responds"
    assert [c.seq for c in feed] == sorted(c.seq for c in feed)


async def test_created_and_deleted_in_one_transaction_leaves_no_trace(conn: asyncpg.Connection) -> None:
    start = await changes.last_seq(conn)
    async with conn.transaction():
        actor_id = await writes.create_actor(conn, writes.ActorCreate(slug="ghost", name="Ghost", kind="person"))
        await conn.execute("DELETE FROM actors WHERE id = $1", actor_id)
    assert await changes.list_changes(conn, after=start, limit=10) == []


async def test_a_transaction_that_commits_later_gets_the_higher_seq(db_dsn: str) -> None:
    """T1 writes first but commits last: a reader that saw T2's seq still gets T1's after it."""
    slow, fast, reader = [await connect(db_dsn) for _ in range(3)]
    try:
        t1 = slow.transaction()
        await t1.start()
        await writes.create_actor(slow, writes.ActorCreate(slug="slow", name="Slow", kind="person"))
        await writes.create_actor(fast, writes.ActorCreate(slug="fast", name="Fast", kind="person"))
        seen = await changes.list_changes(reader, after=0, limit=10)
        assert [c.data["slug"] for c in seen if c.data] == ["fast"]
        await t1.commit()
        after = await changes.list_changes(reader, after=seen[-1].seq, limit=10)
        assert [c.data["slug"] for c in after if c.data] == ["slow"]
    finally:
        for c in (slow, fast, reader):
            await c.close()


async def test_a_later_commit_waits_until_the_earlier_seq_is_visible(db_dsn: str) -> None:
    """T1 holds seq N, numbered but not committed: T2's commit cannot publish N+1 meanwhile."""
    first, second, reader = [await connect(db_dsn) for _ in range(3)]
    try:
        t1 = first.transaction()
        await t1.start()
        await writes.create_actor(first, writes.ActorCreate(slug="first", name="First", kind="person"))
        await first.execute("SET CONSTRAINTS ALL IMMEDIATE")  # number T1's change now, hold the commit
        committing = asyncio.create_task(
            writes.create_actor(second, writes.ActorCreate(slug="second", name="Second", kind="person"))
        )
        await asyncio.sleep(0.3)
        assert not committing.done()  # T2's commit queues behind T1
        assert await changes.list_changes(reader, after=0, limit=10) == []
        await t1.commit()
        await asyncio.wait_for(committing, 5)
        seen = await changes.list_changes(reader, after=0, limit=10)
        assert [c.data["slug"] for c in seen if c.data] == ["first", "second"]
        assert seen[0].seq < seen[1].seq
    finally:
        for c in (first, second, reader):
            await c.close()


async def test_a_poller_that_keeps_its_last_seq_misses_nothing_under_concurrent_writers(db_dsn: str) -> None:
    writers = [await connect(db_dsn) for _ in range(6)]
    reader = await connect(db_dsn)
    done = asyncio.Event()
    rng = random.Random(7)

    async def write(i: int, conn: asyncpg.Connection) -> None:
        for n in range(25):
            async with conn.transaction():
                await writes.create_actor(conn, writes.ActorCreate(slug=f"w{i}-{n}", name="W", kind="person"))
                await asyncio.sleep(rng.random() * 0.01)  # hold the transaction open a random while

    seen: list[int] = []

    async def poll() -> None:
        after = 0
        while True:
            finished = done.is_set()
            page = await changes.list_changes(reader, after=after, limit=1000)
            seen.extend(c.seq for c in page)
            after = changes.next_after(page, after)
            if finished and not page:
                return
            await asyncio.sleep(0.002)

    try:
        poller = asyncio.create_task(poll())
        await asyncio.gather(*(write(i, c) for i, c in enumerate(writers)))
        done.set()
        await asyncio.wait_for(poller, 10)
        everything = [r["seq"] for r in await reader.fetch("SELECT seq FROM changes ORDER BY seq")]
        assert len(everything) == 150
        assert seen == everything  # every seq, once, in order
    finally:
        for c in (*writers, reader):
            await c.close()


def _apply(mirror: dict[str, dict[int, dict[str, Any]]], feed: list[changes.Change]) -> None:
    for c in feed:
        table = mirror.setdefault(c.entity, {})
        if c.op == "delete":
            table.pop(c.id, None)
        else:
            assert c.data is not None
            table[c.id] = c.data


async def _database_state(conn: asyncpg.Connection) -> dict[str, dict[int, dict[str, Any]]]:
    """Straight from the tables, not through the feed's own functions."""
    state: dict[str, dict[int, dict[str, Any]]] = {}
    for entity, table in (("blog", "blogs"), ("actor", "actors"), ("location", "locations"), ("source", "sources")):
        state[entity] = {r["id"]: dict(r) for r in await conn.fetch(f"SELECT * FROM {table}")}
    state["entry"] = {}
    for r in await conn.fetch("SELECT id, blog_id, headline, body, kind, published_at FROM entries"):
        e = dict(r)
        e["actors"] = {
            (a["actor_id"], a["role"])
            for a in await conn.fetch("SELECT actor_id, role FROM entry_actors WHERE entry_id = $1", r["id"])
        }
        e["locations"] = {
            x["location_id"]
            for x in await conn.fetch("SELECT location_id FROM entry_locations WHERE entry_id = $1", r["id"])
        }
        e["sources"] = {
            x["source_id"] for x in await conn.fetch("SELECT source_id FROM entry_sources WHERE entry_id = $1", r["id"])
        }
        e["media"] = [
            m["url"] for m in await conn.fetch("SELECT url FROM media WHERE entry_id = $1 ORDER BY position", r["id"])
        ]
        state["entry"][r["id"]] = e
    return state


def _entry_from_feed(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": d["id"],
        "blog_id": d["blog"]["id"],
        "headline": d["headline"],
        "body": d["body"],
        "kind": d["kind"],
        "published_at": datetime.fromisoformat(d["published_at"]),
        "actors": {(a["actor"]["id"], a["role"]) for a in d["actors"]},
        "locations": {x["id"] for x in d["locations"]},
        "sources": {x["id"] for x in d["sources"]},
        "media": [m["url"] for m in d["media"]],
    }


async def test_applying_the_feed_to_an_empty_copy_reproduces_the_database(conn: asyncpg.Connection) -> None:
    await _catalog(conn)
    rng = random.Random(3)
    ids: list[int] = []
    for n in range(40):
        roll = rng.random()
        if roll < 0.5 or not ids:
            ids.append(
                await writes.create_entry(
                    conn,
                    writes.EntryCreate(
                        blog="day-1",
                        published_at=T0,
                        headline=f"Entry {n}",
                        body=[f"paragraph {n}"],
                        actors=[writes.ActorLinkIn(actor=rng.choice(["peskov", "zelenskyy"]))],
                        locations=[rng.choice(["ukraine", "crimea"])],
                        sources=[],
                        media=[writes.MediaIn(url=f"https://example.org/{n}.jpg")],
                    ),
                )
            )
        elif roll < 0.8:
            await writes.update_entry(
                conn, rng.choice(ids), writes.EntryPatch(headline=f"Edited {n}", sources=["tass"], media=[])
            )
        elif roll < 0.9:
            await writes.delete_entry(conn, ids.pop(rng.randrange(len(ids))))
        else:
            await writes.update_actor(conn, "peskov", writes.ActorPatch(aliases=[f"alias {n}"]))
    await conn.execute("DELETE FROM sources WHERE slug = 'tass' AND NOT EXISTS (SELECT 1 FROM entry_sources)")

    mirror: dict[str, dict[int, dict[str, Any]]] = {}
    after = 0
    while page := await changes.list_changes(conn, after=after, limit=7):
        _apply(mirror, page)
        after = changes.next_after(page, after)

    state = await _database_state(conn)
    assert {i: _entry_from_feed(d) for i, d in mirror.get("entry", {}).items()} == state["entry"]
    for entity in ("blog", "actor", "location", "source"):
        got = {
            i: {k: (datetime.fromisoformat(v) if k.endswith("_at") else v) for k, v in d.items()}
            for i, d in mirror.get(entity, {}).items()
        }
        assert got == state[entity], entity


async def test_one_transaction_touching_many_entries_publishes_one_change_each_with_its_state(
    conn: asyncpg.Connection,
) -> None:
    """As `sitrep relink` writes a batch: every entry edited (some twice, some then deleted) in one transaction."""
    await _catalog(conn)
    rng = random.Random(11)
    actors, places = ["peskov", "zelenskyy"], ["ukraine", "crimea"]
    start = await changes.last_seq(conn)
    async with conn.transaction():
        ids = [
            await writes.create_entry(
                conn,
                writes.EntryCreate(
                    blog="day-1",
                    published_at=T0,
                    headline=f"Entry {n}",
                    body=[f"paragraph {n}"],
                    actors=[writes.ActorLinkIn(actor=a) for a in rng.sample(actors, rng.randint(0, 2))],
                    locations=rng.sample(places, rng.randint(0, 2)),
                    sources=["tass"] if n % 2 else [],
                    media=[writes.MediaIn(url=f"https://example.org/{n}-{m}.jpg") for m in range(n % 3)],
                ),
            )
            for n in range(120)
        ]
    created = await changes.list_changes(conn, after=start, limit=1000)
    assert sorted((c.entity, c.id, c.op) for c in created) == [("entry", i, "create") for i in sorted(ids)]
    for c in created:
        # exactly the entry REST answers, links in REST's order
        assert msgspec.convert(c.data, rows.Entry) == await entries.get_entry(conn, c.id)

    gone = set(ids[::10])
    last_state: dict[int, rows.Entry] = {}
    async with conn.transaction():
        for i in ids:
            await writes.update_entry(
                conn,
                i,
                writes.EntryPatch(
                    headline=f"Edited {i}",
                    actors=[writes.ActorLinkIn(actor=rng.choice(actors), role="speaker")],
                    locations=rng.sample(places, rng.randint(0, 2)),
                ),
            )
        for i in ids[::3]:
            await writes.update_entry(conn, i, writes.EntryPatch(sources=[], media=[writes.MediaIn(url=f"x:{i}")]))
        for i in sorted(gone):
            last_state[i] = await entries.get_entry(conn, i)
            await writes.delete_entry(conn, i)
        await writes.update_actor(conn, "peskov", writes.ActorPatch(aliases=["Kremlin spokesman"]))
    feed = await changes.list_changes(conn, after=created[-1].seq, limit=1000)

    assert [c.seq for c in feed] == sorted({c.seq for c in feed})
    peskov = await conn.fetchval("SELECT id FROM actors WHERE slug = 'peskov'")
    assert sorted((c.entity, c.id) for c in feed) == sorted([("entry", i) for i in ids] + [("actor", peskov)])
    for c in feed:
        if c.entity == "actor":
            assert c.op == "update"
            assert c.data is not None
            assert c.data["aliases"] == ["Kremlin spokesman"]
        elif c.id in gone:
            assert c.op == "delete"
            assert msgspec.convert(c.data, rows.Entry) == last_state[c.id]  # the tombstone: edits included
        else:
            assert c.op == "update"
            got = msgspec.convert(c.data, rows.Entry)
            assert got == await entries.get_entry(conn, c.id)
            assert got.headline == f"Edited {c.id}"
            assert [a.role for a in got.actors] == ["speaker"]
    state = await _database_state(conn)
    assert {c.id: _entry_from_feed(c.data) for c in feed if c.entity == "entry" and c.op != "delete" and c.data} == (
        state["entry"]
    )
